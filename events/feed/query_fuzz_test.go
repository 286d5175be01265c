package feed

import (
	"errors"
	"net/http"
	"net/url"
	"testing"

	"github.com/filecast/filecast/events"
	"github.com/filecast/filecast/events/wire"
)

// FuzzQuery feeds arbitrary values to the parsers of the stream and
// /changes parameters: they never panic, stay in bounds, and every
// rejection is a 4xx error with a message.
func FuzzQuery(f *testing.F) {
	for _, s := range [][4]string{
		{"", "", "", ""},
		{"42", "100", "5s", "7"},
		{"docs:3,src:9", "5000", "30000", "docs:1"},
		{"docs:x", "-1", "-5ms", "abc"},
		{"18446744073709551616", "9223372036854775808", "1h", "0"},
		{"a:1,a:2", "1e3", "99999999999999999999", "\x00"},
	} {
		f.Add(s[0], s[1], s[2], s[3])
	}
	f.Fuzz(func(t *testing.T, cursor, limit, wait, lastID string) {
		rejected := func(what string, err error) {
			t.Helper()
			status, _ := wire.ErrorCode(err)
			if status < 400 || status >= 500 || err.Error() == "" {
				t.Fatalf("%s: error %v maps to %d", what, err, status)
			}
		}
		if _, err := parsePosition("docs", cursor); err != nil {
			rejected("cursor", err)
			if !errors.Is(err, events.ErrBadCursor) {
				t.Fatalf("cursor error %v is not ErrBadCursor", err)
			}
		}
		if n, err := parseLimit(limit); err != nil {
			rejected("limit", err)
		} else if n < 1 || n > MaxLimit {
			t.Fatalf("limit %q gives %d", limit, n)
		}
		if d, err := parseWait(wait); err != nil {
			rejected("wait", err)
		} else if d < 0 || d > MaxWait {
			t.Fatalf("wait %q gives %v", wait, d)
		}
		r := &http.Request{Header: http.Header{}, URL: &url.URL{RawQuery: url.Values{"cursor": {cursor}}.Encode()}}
		if lastID != "" {
			r.Header.Set("Last-Event-ID", lastID)
		}
		after, ok, err := parseResume("docs", r)
		switch {
		case err != nil:
			rejected("resume", err)
		case ok != (lastID != "" || cursor != ""):
			t.Fatalf("resume ok=%v for header %q cursor %q", ok, lastID, cursor)
		case !ok && after != 0:
			t.Fatalf("no position but after=%d", after)
		}
	})
}
