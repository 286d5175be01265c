package jsonenc_test

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/filecast/filecast/events/jsonenc"
)

var strs = []string{
	"", "a", "reports/q3.md", `quote " and \ backslash`, "tab\tnew\nline\rcr\bbs\fff",
	"\x00\x01\x1f\x7f", "<script>&amp;</script>", "é ü ß 日本語 🎉", "\u2028 line \u2029 para",
	"\xff invalid \xc3", "\xed\xa0\x80 surrogate bytes", "mixed <\u2028\xfe\"\\>",
	strings.Repeat("long path/", 100),
}

// encoderString is what a json.Encoder with escapeHTML writes for s.
func encoderString(t testing.TB, s string, escapeHTML bool) string {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(escapeHTML)
	if err := enc.Encode(s); err != nil {
		t.Fatal(err)
	}
	return strings.TrimSuffix(buf.String(), "\n")
}

func TestString_AsEncodingJSON(t *testing.T) {
	for _, s := range strs {
		for _, esc := range []bool{true, false} {
			want := encoderString(t, s, esc)
			if got := string(jsonenc.String([]byte("x"), s, esc)); got != "x"+want {
				t.Errorf("String(%q, %v) = %s, want x%s", s, esc, got, want)
			}
		}
	}
}

func FuzzString(f *testing.F) {
	for _, s := range strs {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		for _, esc := range []bool{true, false} {
			if got, want := string(jsonenc.String(nil, s, esc)), encoderString(t, s, esc); got != want {
				t.Fatalf("String(%q, %v) = %s, want %s", s, esc, got, want)
			}
		}
	})
}

func TestTime_AsMarshalJSON(t *testing.T) {
	for _, tm := range []time.Time{
		time.Date(2026, 11, 27, 10, 0, 0, 123456000, time.UTC),
		time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC),
		time.Date(2026, 1, 2, 3, 4, 5, 1, time.FixedZone("x", 3600)),
		{},
	} {
		want, err := tm.MarshalJSON()
		if err != nil {
			t.Fatal(err)
		}
		got, ok := jsonenc.Time(nil, tm)
		if !ok || string(got) != string(want) {
			t.Errorf("Time(%v) = %s, %v, want %s", tm, got, ok, want)
		}
	}
	if _, ok := jsonenc.Time(nil, time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)); ok {
		t.Error("Time of year 10000 is ok, want refused as MarshalJSON refuses it")
	}
}
