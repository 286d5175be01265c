package tools

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/mark3labs/mcp-go/mcp"

	"github.com/filecast/filecast/events"
	"github.com/filecast/filecast/events/delta"
)

// maxCompactEvent is what a typical file event may cost in the text of a
// list_changes result.
const maxCompactEvent = 130

// typical is a file event as most list_changes results carry them.
func typical(seq uint64) events.Event {
	return events.Event{
		ID: "01JDX5K2W8QZ3V4N6M7P8R9T0A", Seq: seq, Type: events.FileUpdated, Workspace: "proj",
		Path: "src/main.go", Size: 1834, SHA256: "2c8b08da5ce60398e1f19af0e5dccc744df274b826abe585eaba68c525434806",
		Actor: events.ActorFS, Time: time.Date(2026, 11, 27, 10, 0, 0, 123456789, time.UTC),
	}
}

// resultText returns the text content of the list_changes result of evs.
func resultText(t *testing.T, evs []events.Event, detail string) string {
	t.Helper()
	cur := events.Cursor{"proj": 1042}
	res := (&toolset{}).answer(t.Context(), ListChangesResult{Events: evs, Cursor: cur.String()}, ListChangesArgs{Detail: detail}, cur)
	if res.IsError {
		t.Fatalf("result: %v", res.Content)
	}
	return res.Content[0].(mcp.TextContent).Text
}

// TestCompact_EventBytes measures what one typical file event (a
// file.updated of src/main.go seen on disk) adds to the text of a
// list_changes result, compact and full, and fails when the compact form
// is over maxCompactEvent bytes.
func TestCompact_EventBytes(t *testing.T) {
	per := map[string]int{}
	for _, detail := range []string{DetailCompact, DetailFull} {
		one := resultText(t, []events.Event{typical(1042)}, detail)
		two := resultText(t, []events.Event{typical(1042), typical(1043)}, detail)
		per[detail] = len(two) - len(one) // one event and its comma
		if detail == DetailCompact {
			fmt.Printf("compact event: %d bytes per event (full: see below); a result with one: %s\n", per[detail], one)
		}
	}
	empty := resultText(t, []events.Event{}, DetailCompact)
	fmt.Printf("list_changes text: %d bytes per typical file event compact, %d full; %d bytes of result around them\n",
		per[DetailCompact], per[DetailFull], len(empty))
	if per[DetailCompact] > maxCompactEvent {
		t.Errorf("a typical compact event costs %d bytes, over %d", per[DetailCompact], maxCompactEvent)
	}
}

// TestCompact_Fields checks what the compact form keeps of each kind of
// event: what a model acts on, lock and conflict only when set, the time
// to the millisecond in UTC, the workspace only when asked for.
func TestCompact_Fields(t *testing.T) {
	at := time.Date(2026, 11, 27, 11, 0, 0, 123987000, time.FixedZone("CET", 3600))
	lock := &events.LockInfo{Holder: "claude-code#3f2a", FencingToken: 7, Mode: events.LockExclusive}
	for _, tc := range []struct {
		name      string
		ev        events.Event
		workspace bool
		want      string
	}{
		{"updated", typical(42), false,
			`{"seq":42,"type":"file.updated","path":"src/main.go","size":1834,"actor":"fs","timestamp":"2026-11-27T10:00:00.123Z"}`},
		{"several workspaces", typical(42), true,
			`{"seq":42,"type":"file.updated","workspace":"proj","path":"src/main.go","size":1834,"actor":"fs","timestamp":"2026-11-27T10:00:00.123Z"}`},
		{"empty file created", events.Event{Seq: 1, Type: events.FileCreated, Path: "a", Actor: "fs", Time: at}, false,
			`{"seq":1,"type":"file.created","path":"a","size":0,"actor":"fs","timestamp":"2026-11-27T10:00:00.123Z"}`},
		{"deleted has no size", events.Event{Seq: 2, Type: events.FileDeleted, Path: "a", Actor: "fs", Time: at}, false,
			`{"seq":2,"type":"file.deleted","path":"a","actor":"fs","timestamp":"2026-11-27T10:00:00.123Z"}`},
		{"moved", events.Event{Seq: 3, Type: events.FileMoved, Path: "b", OldPath: "a", Size: 5, Actor: "fs", Time: at}, false,
			`{"seq":3,"type":"file.moved","path":"b","old_path":"a","size":5,"actor":"fs","timestamp":"2026-11-27T10:00:00.123Z"}`},
		{"conflict under a lock", events.Event{Seq: 4, Type: events.FileUpdated, Path: "a", Size: 1, Actor: "fs", Lock: lock, Conflict: true, Time: at}, false,
			`{"seq":4,"type":"file.updated","path":"a","size":1,"actor":"fs","lock":{"holder":"claude-code#3f2a","fencing_token":7,"mode":"exclusive"},"conflict":true,"timestamp":"2026-11-27T10:00:00.123Z"}`},
		{"lock acquired", events.Event{Seq: 5, Type: events.LockAcquired, Path: "a", Actor: "mcp:claude-code#3f2a", Lock: lock, ExpiresAt: at.Add(time.Minute), Time: at}, false,
			`{"seq":5,"type":"lock.acquired","path":"a","actor":"mcp:claude-code#3f2a","lock":{"holder":"claude-code#3f2a","fencing_token":7,"mode":"exclusive"},"expires_at":"2026-11-27T10:01:00.123Z","timestamp":"2026-11-27T10:00:00.123Z"}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b, err := json.Marshal(change{ev: tc.ev, enc: encoding{workspace: tc.workspace}})
			if err != nil {
				t.Fatal(err)
			}
			if d := cmp.Diff(tc.want, string(b)); d != "" {
				t.Errorf("(-want +got):\n%s", d)
			}
			// Full is the event as SSE and webhooks carry it.
			full, err := json.Marshal(change{ev: tc.ev, enc: encoding{detail: DetailFull, workspace: tc.workspace}})
			if err != nil {
				t.Fatal(err)
			}
			want, _ := json.Marshal(tc.ev)
			if string(full) != string(want) {
				t.Errorf("full = %s, want %s", full, want)
			}
		})
	}
}

// TestChange_Diff checks that a diff follows the event's members, compact
// or full, and that an event without one is as it was.
func TestChange_Diff(t *testing.T) {
	ev := typical(42)
	full, _ := json.Marshal(ev)
	for _, tc := range []struct {
		name   string
		detail string
		diff   delta.Diff
		want   string
	}{
		{"compact", DetailCompact, delta.Diff{Text: "@@ -1 +1 @@\n-a\n+b\n"},
			`{"seq":42,"type":"file.updated","path":"src/main.go","size":1834,"actor":"fs","timestamp":"2026-11-27T10:00:00.123Z","diff":"@@ -1 +1 @@\n-a\n+b\n"}`},
		{"compact truncated", DetailCompact, delta.Diff{Text: "@@ -1 +1 @@\n", Truncated: true},
			`{"seq":42,"type":"file.updated","path":"src/main.go","size":1834,"actor":"fs","timestamp":"2026-11-27T10:00:00.123Z","diff":"@@ -1 +1 @@\n","diff_truncated":true}`},
		{"compact unavailable", DetailCompact, delta.Diff{Unavailable: delta.NotStored},
			`{"seq":42,"type":"file.updated","path":"src/main.go","size":1834,"actor":"fs","timestamp":"2026-11-27T10:00:00.123Z","diff_unavailable":"not_stored"}`},
		{"full", DetailFull, delta.Diff{Unavailable: delta.Binary},
			string(full[:len(full)-1]) + `,"diff_unavailable":"binary"}`},
		{"full without", DetailFull, delta.Diff{}, string(full)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b, err := json.Marshal(change{ev: ev, enc: encoding{detail: tc.detail}, diff: tc.diff})
			if err != nil {
				t.Fatal(err)
			}
			if d := cmp.Diff(tc.want, string(b)); d != "" {
				t.Errorf("(-want +got):\n%s", d)
			}
			if !json.Valid(b) {
				t.Errorf("not JSON: %s", b)
			}
		})
	}
}

// TestResult_NoHTMLEscapes: a result's text keeps <, > and & as they
// are, in a diff and in a file's content: a model reads it, no page.
func TestResult_NoHTMLEscapes(t *testing.T) {
	ev := typical(42)
	res := result(changesResult{Events: []change{{ev: ev, diff: delta.Diff{Text: "@@ -1 +1 @@\n-a < b && c > d\n+a <= b\n"}}}, Cursor: "proj:42"})
	txt := res.Content[0].(mcp.TextContent).Text
	if !strings.Contains(txt, `-a < b && c > d\n+a <= b`) || strings.Contains(txt, `\u003c`) {
		t.Errorf("list_changes text escapes HTML: %s", txt)
	}
	res = result(ReadFileResult{Content: "<html>&amp;</html>", Encoding: "text"})
	if txt := res.Content[0].(mcp.TextContent).Text; !strings.Contains(txt, `"<html>&amp;</html>"`) {
		t.Errorf("read_file text escapes HTML: %s", txt)
	}
}
