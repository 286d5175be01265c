package wire_test

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/filecast/filecast/events/wire"
)

func TestDecodeJSON(t *testing.T) {
	type body struct {
		Path string `json:"path"`
		N    int    `json:"n"`
	}
	for _, tt := range []struct {
		name, in string
		strict   bool
		want     body
		err      error // nil: no error
	}{
		{"object", `{"path":"a.md","n":2}`, false, body{"a.md", 2}, nil},
		{"white space around", " \n{\"path\":\"a\"}\r\n\t ", false, body{Path: "a"}, nil},
		{"escapes", `{"path":"caf\u00e9 \ud83d\ude00 \"q\" \\u"}`, false, body{Path: "café 😀 \"q\" \\u"}, nil},
		{"an escaped backslash before u", `{"path":"\\ud800"}`, false, body{Path: `\ud800`}, nil},
		{"literal U+FFFD is data", "{\"path\":\"\uFFFD\"}", false, body{Path: "\uFFFD"}, nil},
		{"unknown member", `{"path":"a","x":1}`, false, body{Path: "a"}, nil},
		{"unknown member, strict", `{"path":"a","x":1}`, true, body{}, wire.ErrBadRequest},
		{"empty", "", false, body{}, io.EOF},
		{"white space only", "  \n", false, body{}, io.EOF},
		{"trailing garbage", `{"path":"a"} x`, false, body{}, wire.ErrBadRequest},
		{"trailing brace", `{"path":"a"}}`, false, body{}, wire.ErrBadRequest},
		{"trailing bracket", `{"path":"a"}]`, false, body{}, wire.ErrBadRequest},
		{"two values", `{"path":"a"}{"path":"b"}`, false, body{}, wire.ErrBadRequest},
		{"invalid UTF-8 in a string", "{\"path\":\"a\xffb\"}", false, body{}, wire.ErrBadRequest},
		{"invalid UTF-8 outside strings", "{\"path\":\"a\"}\xff", false, body{}, wire.ErrBadRequest},
		{"a lone high surrogate", `{"path":"a\ud800b"}`, false, body{}, wire.ErrBadRequest},
		{"a lone low surrogate", `{"path":"\udc00"}`, false, body{}, wire.ErrBadRequest},
		{"a high surrogate at the end", `{"path":"\uD83D"}`, false, body{}, wire.ErrBadRequest},
		{"two high surrogates", `{"path":"\ud83d\ud83d"}`, false, body{}, wire.ErrBadRequest},
		{"a lone surrogate in a member name", `{"\ud800":1}`, false, body{}, wire.ErrBadRequest},
		{"wrong type", `{"n":"x"}`, false, body{}, wire.ErrBadRequest},
		{"not JSON", `{`, false, body{}, wire.ErrBadRequest},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var got body
			err := wire.DecodeJSON(strings.NewReader(tt.in), &got, wire.DecodeOptions{Strict: tt.strict})
			if tt.err == nil {
				if err != nil || got != tt.want {
					t.Fatalf("DecodeJSON(%q) = %+v, %v; want %+v", tt.in, got, err, tt.want)
				}
				return
			}
			if !errors.Is(err, tt.err) {
				t.Fatalf("DecodeJSON(%q) error = %v, want %v", tt.in, err, tt.err)
			}
		})
	}
}

// TestDecodeJSON_TooLarge: a body over an http.MaxBytesReader limit gives
// its *http.MaxBytesError, which WriteError answers with 413.
func TestDecodeJSON_TooLarge(t *testing.T) {
	rec := httptest.NewRecorder()
	r := http.MaxBytesReader(rec, io.NopCloser(strings.NewReader(`{"path":"`+strings.Repeat("a", 100)+`"}`)), 10)
	var v map[string]string
	err := wire.DecodeJSON(r, &v, wire.DecodeOptions{})
	if _, ok := errors.AsType[*http.MaxBytesError](err); !ok {
		t.Fatalf("error = %v, want *http.MaxBytesError", err)
	}
	if status, _ := wire.ErrorCode(err); status != http.StatusRequestEntityTooLarge {
		t.Errorf("status %d, want 413", status)
	}
}

// FuzzDecodeJSON: whatever the body, a decoded value holds no U+FFFD that
// the body did not spell out, and a body with more than one value is
// refused.
func FuzzDecodeJSON(f *testing.F) {
	for _, s := range []string{`{"a":"b"}`, `"\ud800"`, `["\ud83d\ude00"]`, "\"\xff\"", `{"a":1} 2`, `"\\ud800"`, "\"\uFFFD\"", `"\uFFFD"`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		var v any
		err := wire.DecodeJSON(strings.NewReader(in), &v, wire.DecodeOptions{})
		if err != nil {
			return
		}
		if !utf8.ValidString(in) || !json.Valid([]byte(in)) {
			t.Fatalf("DecodeJSON accepted %q, which is not valid JSON text", in)
		}
		spelt := strings.Count(in, "\uFFFD") + strings.Count(strings.ToLower(in), `\ufffd`)
		if got := countFFFD(v); got > spelt {
			t.Fatalf("DecodeJSON(%q) made %d U+FFFD, the body spells %d", in, got, spelt)
		}
	})
}

func countFFFD(v any) int {
	switch x := v.(type) {
	case string:
		return strings.Count(x, "\uFFFD")
	case []any:
		n := 0
		for _, e := range x {
			n += countFFFD(e)
		}
		return n
	case map[string]any:
		n := 0
		for k, e := range x {
			n += strings.Count(k, "\uFFFD") + countFFFD(e)
		}
		return n
	}
	return 0
}
