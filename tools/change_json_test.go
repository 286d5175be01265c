package tools

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/filecast/filecast/events"
	"github.com/filecast/filecast/events/delta"
)

// compactEvent is the compact form of an event as encoding/json writes
// it from these tags: the reference of change.appendJSON.
type compactEvent struct {
	Seq       uint64           `json:"seq"`
	Type      events.Type      `json:"type"`
	Workspace string           `json:"workspace,omitempty"`
	Path      string           `json:"path"`
	OldPath   string           `json:"old_path,omitempty"`
	Size      *int64           `json:"size,omitempty"`
	Actor     string           `json:"actor,omitempty"`
	Lock      *events.LockInfo `json:"lock,omitempty"`
	Conflict  bool             `json:"conflict,omitempty"`
	ExpiresAt string           `json:"expires_at,omitempty"`
	Time      string           `json:"timestamp"`
	delta.Diff
}

// reflected is change's encoding through encoding/json.
type reflected change

func (c reflected) MarshalJSON() ([]byte, error) {
	ev := c.ev
	if c.enc.detail != DetailFull {
		out := compactEvent{
			Seq: ev.Seq, Type: ev.Type, Path: ev.Path, OldPath: ev.OldPath,
			Actor: ev.Actor, Lock: ev.Lock, Conflict: ev.Conflict, Time: formatTime(ev.Time), Diff: c.diff,
		}
		if c.enc.workspace {
			out.Workspace = ev.Workspace
		}
		if ev.HasContent() {
			size := ev.Size
			out.Size = &size
		}
		if !ev.ExpiresAt.IsZero() {
			out.ExpiresAt = formatTime(ev.ExpiresAt)
		}
		return marshal(out)
	}
	b, err := json.Marshal(ev)
	if err != nil || c.diff == (delta.Diff{}) {
		return b, err
	}
	d, err := marshal(c.diff)
	if err != nil {
		return nil, err
	}
	return append(append(b[:len(b)-1], ','), d[1:]...), nil
}

// TestChangesResult_AsEncodingJSON encodes varied results by hand and
// through encoding/json (with the tags of compactEvent and events.Event)
// and wants the same bytes: unicode, escapes, HTML characters, invalid
// UTF-8, locks, diffs, both details, one workspace and several.
func TestChangesResult_AsEncodingJSON(t *testing.T) {
	at := time.Date(2026, 11, 27, 10, 0, 0, 123456789, time.FixedZone("CET", 3600))
	evs := []events.Event{
		typical(1),
		{ID: "a", Seq: 2, Type: events.FileCreated, Workspace: "proj", Path: "empty file", Actor: events.ActorFS, Time: at},
		{ID: "b", Seq: 3, Type: events.FileDeleted, Workspace: "proj", Path: "gone.txt", Size: 9, Actor: "api:ci", Time: at},
		{ID: "c", Seq: 4, Type: events.FileMoved, Workspace: "other", Path: "new <&>.go", OldPath: "old \"q\"\\.go", Size: 7, Actor: "mcp:claude", Conflict: true, Time: at,
			Lock: &events.LockInfo{Holder: "claude<code>#3f2a", FencingToken: 7}},
		{ID: "d", Seq: 5, Type: events.LockAcquired, Workspace: "proj", Path: "日本語/é 🎉.txt", Actor: "mcp:x",
			Lock: &events.LockInfo{Holder: "h", FencingToken: 1, Mode: "shared"}, ExpiresAt: at.Add(time.Minute), Time: at},
		{ID: "e", Seq: 6, Type: events.LockExpired, Workspace: "proj", Path: "a\nb\tc\x00\x1f\u2028\u2029\xff\xfe", Time: at},
		{ID: "f", Seq: 7, Type: events.FileUpdated, Workspace: "", Path: "p", Size: 0, Time: at},
	}
	diffs := []delta.Diff{
		{},
		{Text: "@@ -0,0 +1,1 @@\n+<html> & \"x\"\u2028\n"},
		{Unavailable: delta.NotStored},
		{Text: "@@ -1 +1 @@\n-a\n+b\n", Truncated: true},
		{},
		{Truncated: true, Unavailable: "binary"},
		{Text: "\xff"},
	}
	for _, detail := range []string{"", DetailCompact, DetailFull} {
		for _, ws := range []bool{false, true} {
			for _, withDiffs := range []bool{false, true} {
				r := changesResult{Cursor: "proj:7,other:<4>", HasMore: ws, Overflowed: withDiffs}
				ref := struct {
					Events     []reflected `json:"events"`
					Cursor     string      `json:"cursor"`
					HasMore    bool        `json:"has_more,omitempty"`
					Overflowed bool        `json:"overflowed,omitempty"`
				}{Events: []reflected{}, Cursor: r.Cursor, HasMore: r.HasMore, Overflowed: r.Overflowed}
				for i, ev := range evs {
					c := change{ev: ev, enc: encoding{detail: detail, workspace: ws}}
					if withDiffs {
						c.diff = diffs[i]
					}
					r.Events = append(r.Events, c)
					ref.Events = append(ref.Events, reflected(c))
				}
				got, err := r.appendJSON(nil)
				if err != nil {
					t.Fatal(err)
				}
				want, err := marshal(ref)
				if err != nil {
					t.Fatal(err)
				}
				if string(got) != string(want) {
					t.Errorf("detail %q, workspace %v, diffs %v:\n got %s\nwant %s", detail, ws, withDiffs, got, want)
				}
				one, err := r.Events[3].MarshalJSON()
				if err != nil {
					t.Fatal(err)
				}
				if want, _ := ref.Events[3].MarshalJSON(); string(one) != string(want) {
					t.Errorf("MarshalJSON = %s, want %s", one, want)
				}
			}
		}
	}
	empty, _ := changesResult{Events: []change{}, Cursor: "proj:0"}.appendJSON(nil)
	if want := `{"events":[],"cursor":"proj:0"}`; string(empty) != want {
		t.Errorf("empty result = %s, want %s", empty, want)
	}
}

func BenchmarkChangesResult_Encode(b *testing.B) {
	r := changesResult{Cursor: "proj:1042", Events: []change{{ev: typical(1042)}}}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := r.appendJSON(nil); err != nil {
			b.Fatal(err)
		}
	}
}
