package journal_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/filecast/filecast/events"
	"github.com/filecast/filecast/events/journal"
)

// exactTime compares times by representation (instant, location and
// monotonic reading), not only by instant.
var exactTime = cmp.Comparer(func(a, b time.Time) bool { return a == b })

// TestJournal_AppendStoredIsWhatReadReturns checks that the event
// AppendStored returns is exactly the one Read and Follow decode, for the
// fields the wire form changes: times (zone, monotonic reading), size of
// events without content, strings JSON would replace.
func TestJournal_AppendStoredIsWhatReadReturns(t *testing.T) {
	j := open(t, t.TempDir(), journal.Options{})
	ctx := t.Context()
	zone := time.FixedZone("X", 5400)
	evs := []events.Event{
		{ID: "a", Type: events.FileUpdated, Workspace: "docs", Path: "a.md", Size: 3, SHA256: "ab", Actor: "fs", Time: time.Now()},
		{ID: "b", Type: events.FileDeleted, Workspace: "docs", Path: "a.md", Size: 7, Actor: "fs", Time: time.Now().In(zone)},
		{ID: "c", Type: events.FileMoved, Workspace: "docs", Path: "b.md", OldPath: "a.md", Size: 0, SHA256: "cd", Actor: "api:ci", Time: t0},
		{ID: "d", Type: events.LockAcquired, Workspace: "docs", Path: "b.md", Size: 9, Actor: "mcp:claude",
			Lock: &events.LockInfo{Holder: "claude#3f2a", FencingToken: 7, Mode: "exclusive"}, ExpiresAt: t0.In(zone), Time: t0.In(zone)},
		{ID: "e", Type: events.FileCreated, Workspace: "docs", Path: "c.md", Size: 1, SHA256: "ef", Actor: "mcp:bad\xffname", Conflict: true, Time: t0},
	}
	var stored []events.Event
	for _, ev := range evs {
		got, ok, err := j.AppendStored(ctx, ev)
		if err != nil || !ok {
			t.Fatalf("AppendStored(%s) = %v, %v; want stored", ev.ID, ok, err)
		}
		stored = append(stored, got)
	}
	read, err := j.Read(ctx, "docs", 0, 100)
	if err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff(read, stored, exactTime); d != "" {
		t.Errorf("AppendStored results differ from Read (-read +stored):\n%s", d)
	}
	for i := range stored {
		a, _ := json.Marshal(stored[i])
		b, _ := json.Marshal(read[i])
		if string(a) != string(b) {
			t.Errorf("event %d encodes as\n%s\nwant\n%s", i, a, b)
		}
	}
	if stored[3].Lock == evs[3].Lock {
		t.Error("the stored event shares its LockInfo with the caller's")
	}

	again, ok, err := j.AppendStored(ctx, evs[0])
	if err != nil || ok || again.Seq != stored[0].Seq {
		t.Errorf("AppendStored of a duplicate = seq %d, stored %v, %v; want seq %d, not stored", again.Seq, ok, err, stored[0].Seq)
	}
}

// TestJournal_FollowSkipping checks that skipped seqs reach neither fn nor
// break the order of the others.
func TestJournal_FollowSkipping(t *testing.T) {
	j := open(t, t.TempDir(), journal.Options{})
	appendN(t, j, "docs", 6)
	ctx, cancel := context.WithTimeout(t.Context(), waitFor)
	defer cancel()
	var got []uint64
	err := j.FollowSkipping(ctx, "docs", 1, func(seq uint64) bool { return seq%2 == 0 }, func(ev events.Event) error {
		got = append(got, ev.Seq)
		if ev.Seq == 5 {
			return context.Canceled
		}
		return nil
	})
	if err != context.Canceled {
		t.Fatalf("FollowSkipping = %v, want fn's error", err)
	}
	if d := cmp.Diff([]uint64{3, 5}, got); d != "" {
		t.Errorf("seqs (-want +got):\n%s", d)
	}
}
