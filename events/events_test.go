package events_test

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/filecast/filecast/events"
)

func TestEvent_JSONRoundTrip(t *testing.T) {
	ts := time.Date(2026, 11, 27, 10, 0, 0, 123456000, time.UTC)
	tests := []struct {
		name     string
		ev       events.Event
		wantSize bool
	}{
		{"created empty file keeps size 0", events.Event{ID: "01A", Seq: 1, Type: events.FileCreated, Workspace: "docs", Path: "a.md", SHA256: "e3b0", Actor: "fs", Time: ts}, true},
		{"deleted has no size", events.Event{ID: "01B", Seq: 2, Type: events.FileDeleted, Workspace: "docs", Path: "a.md", Actor: "fs", Time: ts}, false},
		{"moved", events.Event{ID: "01C", Seq: 3, Type: events.FileMoved, Workspace: "docs", Path: "b.md", OldPath: "a.md", Size: 12, SHA256: "ab", Actor: "fs", Time: ts}, true},
		{"lock", events.Event{ID: "01D", Seq: 4, Type: events.LockAcquired, Workspace: "docs", Path: "b.md", Actor: "mcp:x", Lock: &events.LockInfo{Holder: "x#1", FencingToken: 7}, ExpiresAt: ts.Add(time.Minute), Time: ts}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := json.Marshal(tt.ev)
			if err != nil {
				t.Fatal(err)
			}
			var m map[string]any
			if err := json.Unmarshal(b, &m); err != nil {
				t.Fatal(err)
			}
			if _, ok := m["size"]; ok != tt.wantSize {
				t.Errorf("size present = %v, want %v in %s", ok, tt.wantSize, b)
			}
			for _, k := range []string{"event_id", "seq", "type", "workspace", "path", "actor", "conflict", "timestamp"} {
				if _, ok := m[k]; !ok {
					t.Errorf("field %q missing in %s", k, b)
				}
			}
			var back events.Event
			if err := json.Unmarshal(b, &back); err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.ev, back); diff != "" {
				t.Errorf("round trip (-want +got):\n%s", diff)
			}
		})
	}
}

func TestParseCursor(t *testing.T) {
	tests := []struct {
		in      string
		want    events.Cursor
		wantErr bool
	}{
		{"", events.Cursor{}, false},
		{"42", events.Cursor{"": 42}, false},
		{"docs:42", events.Cursor{"docs": 42}, false},
		{"src:7,docs:42", events.Cursor{"docs": 42, "src": 7}, false},
		{"my.ws-1:0", events.Cursor{"my.ws-1": 0}, false},
		{"docs", nil, true},
		{"docs:-1", nil, true},
		{"docs:1,docs:2", nil, true},
		{"../x:1", nil, true},
		{"docs:1,", nil, true},
		{"docs:99999999999999999999999", nil, true},
		{strings.Repeat("a", events.MaxCursorLen+1), nil, true},
	}
	for _, tt := range tests {
		got, err := events.ParseCursor(tt.in)
		if (err != nil) != tt.wantErr {
			t.Errorf("ParseCursor(%q) error = %v, wantErr %v", tt.in, err, tt.wantErr)
			continue
		}
		if err != nil {
			if !errors.Is(err, events.ErrBadCursor) {
				t.Errorf("ParseCursor(%q) error %v does not wrap ErrBadCursor", tt.in, err)
			}
			continue
		}
		if diff := cmp.Diff(tt.want, got); diff != "" {
			t.Errorf("ParseCursor(%q) (-want +got):\n%s", tt.in, diff)
		}
	}
}

func TestCursor_StringIsSortedAndParses(t *testing.T) {
	c := events.Cursor{"src": 7, "docs": 42}
	if got, want := c.String(), "docs:42,src:7"; got != want {
		t.Fatalf("String() = %q, want %q", got, want)
	}
	back, err := events.ParseCursor(c.String())
	if err != nil || !cmp.Equal(back, c) {
		t.Fatalf("ParseCursor(String()) = %v, %v", back, err)
	}
	c.Advance(events.Event{Workspace: "docs", Seq: 40})
	c.Advance(events.Event{Workspace: "docs", Seq: 50})
	if c.For("docs") != 50 || c.For("other") != 0 {
		t.Fatalf("Advance/For wrong: %v", c)
	}
}

func FuzzParseCursor(f *testing.F) {
	for _, s := range []string{"", "1", "docs:1", "a:1,b:2", "a:", ":1", "a:1,a:1", "\x00:1"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		c, err := events.ParseCursor(s)
		if err != nil {
			if !errors.Is(err, events.ErrBadCursor) {
				t.Fatalf("error %v does not wrap ErrBadCursor", err)
			}
			return
		}
		if _, bare := c[""]; bare {
			return
		}
		back, err := events.ParseCursor(c.String())
		if err != nil || !cmp.Equal(back, c, cmp.Comparer(func(a, b events.Cursor) bool { return a.String() == b.String() })) {
			t.Fatalf("round trip of %q: %v %v", s, back, err)
		}
	})
}
