package server

import (
	"bytes"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestCheckText(t *testing.T) {
	for _, tc := range []struct {
		msg    string
		offset int // -1: valid
		why    string
	}{
		{`{"a":"plain"}`, -1, ""},
		{`{"a":"é😀"}`, -1, ""},
		{`{"a":"\u00e9 \ud83d\ude00 \\ud800"}`, -1, ""}, // an escaped backslash, then text
		{"{\"a\":\"\xff\"}", 6, "0xff is not part of"},
		{"{\"a\":\"ok\xc3\"}", 8, "0xc3 is not part of"},
		{`{"a":"\udc80"}`, 6, "second half"},
		{`{"a":"x\ud800"}`, 7, "first half"},
		{`{"a":"\ud800\u0041"}`, 6, "first half"},
		{`{"a":"\ud800\ud800"}`, 6, "first half"},
		{`{"\udfff":1}`, 2, "second half"},
	} {
		te := checkText([]byte(tc.msg))
		switch {
		case tc.offset < 0 && te != nil:
			t.Errorf("%q: %v, want valid", tc.msg, te)
		case tc.offset >= 0 && (te == nil || te.offset != tc.offset || !strings.Contains(te.why, tc.why)):
			t.Errorf("%q: %+v, want offset %d and %q", tc.msg, te, tc.offset, tc.why)
		}
	}
}

func FuzzCheckText(f *testing.F) {
	for _, s := range []string{`{"a":"b"}`, "\xff", `"\ud800"`, `"\\u"`, `"\u12"`, `\`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, msg []byte) {
		te := checkText(msg)
		if !utf8.Valid(msg) && te == nil {
			t.Fatalf("%q is not UTF-8 but passed", msg)
		}
		if utf8.Valid(msg) && !bytes.Contains(msg, []byte(`\u`)) && te != nil {
			t.Fatalf("%q is UTF-8 without escapes but was refused: %v", msg, te)
		}
		if te != nil && (te.offset < 0 || te.offset >= len(msg)) {
			t.Fatalf("offset %d out of %q", te.offset, msg)
		}
	})
}
