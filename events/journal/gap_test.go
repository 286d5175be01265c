package journal_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/filecast/filecast/events"
	"github.com/filecast/filecast/events/eventstest"
	"github.com/filecast/filecast/events/journal"
	"github.com/filecast/filecast/events/natsd"
	"github.com/filecast/filecast/events/natsd/natstest"
)

// TestJournal_SeqsWithoutEvent covers a log whose seqs are not all taken
// by events (as a write the store failed for want of space leaves them):
// one at the head, one inside. A young log within its limits has dropped
// nothing, so no cursor expires: readers and followers get every event.
func TestJournal_SeqsWithoutEvent(t *testing.T) {
	j, nc := openConn(t, t.TempDir(), journal.Options{})
	ctx := t.Context()
	appendN(t, j, "docs", 4)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	st, err := js.Stream(ctx, journal.StreamName("docs"))
	if err != nil {
		t.Fatal(err)
	}
	for _, seq := range []uint64{1, 3} {
		if err := st.DeleteMsg(ctx, seq); err != nil {
			t.Fatal(err)
		}
	}
	for after, want := range map[uint64][]uint64{0: {2, 4}, 1: {2, 4}, 2: {4}, 3: {4}, 4: {}} {
		evs, err := j.Read(ctx, "docs", after, 10)
		if err != nil || !cmp.Equal(seqs(evs), want) {
			t.Errorf("Read after %d = %v, %v; want %v", after, seqs(evs), err, want)
		}
	}
	f := follow(t, j, "docs", 0)
	if got := seqs(f.next(t, 2)); !cmp.Equal(got, []uint64{2, 4}) {
		t.Errorf("Follow from 0 = %v, want [2 4]", got)
	}
	if _, err := j.Append(ctx, event("docs", 5)); err != nil {
		t.Fatal(err)
	}
	if got := seqs(f.next(t, 1)); !cmp.Equal(got, []uint64{5}) {
		t.Errorf("Follow then = %v, want [5]", got)
	}
}

// TestJournal_DroppedUnderRaisedLimits drops events by count, then raises
// the count limit: the log remembers that retention dropped events, so a
// cursor before them still expires.
func TestJournal_DroppedUnderRaisedLimits(t *testing.T) {
	dir := t.TempDir()
	srv := natstest.StartWith(t, natsd.Options{StoreDir: dir})
	ctx := t.Context()
	j, err := journal.Open(ctx, srv.Conn(), journal.Options{MaxEvents: 3})
	if err != nil {
		t.Fatal(err)
	}
	appendN(t, j, "docs", 5)
	if _, err := j.Read(ctx, "docs", 0, 10); !errors.Is(err, events.ErrCursorExpired) {
		t.Fatalf("Read after 0 = %v, want ErrCursorExpired", err)
	}
	_ = j.Close()

	j, err = journal.Open(ctx, srv.Conn(), journal.Options{MaxEvents: 100})
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	if err := j.Ensure(ctx, "docs"); err != nil {
		t.Fatal(err)
	}
	if _, err := j.Read(ctx, "docs", 0, 10); !errors.Is(err, events.ErrCursorExpired) {
		t.Errorf("Read after 0 once the limit is raised = %v, want ErrCursorExpired", err)
	}
	fctx, cancel := context.WithTimeout(ctx, waitFor)
	defer cancel()
	if err := j.Follow(fctx, "docs", 1, func(events.Event) error { return nil }); !errors.Is(err, events.ErrCursorExpired) {
		t.Errorf("Follow after 1 once the limit is raised = %v, want ErrCursorExpired", err)
	}
}

// TestJournal_FirstWriteFailsOnAFullDisk fills the disk (a small tmpfs) of
// a new log, with no reserve, so that its very first append fails in the
// store. Once space is freed the store is opened again and the event is
// appended; a reader from the start gets it, and is not told that events
// were dropped, whatever seq the store gave it.
func TestJournal_FirstWriteFailsOnAFullDisk(t *testing.T) {
	disk := natstest.SmallDisk(t, "16m")
	srv := natstest.StartWith(t, natsd.Options{StoreDir: filepath.Join(disk, "js"), MinFree: -1})
	ctx := t.Context()
	j, err := journal.Open(ctx, srv.Conn(), journal.Options{Room: srv.Room})
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	if err := j.Ensure(ctx, "docs"); err != nil {
		t.Fatal(err)
	}
	filler := natstest.Fill(t, disk)
	actx, cancel := context.WithTimeout(ctx, 3*time.Second)
	_, err = j.Append(actx, event("docs", 1))
	cancel()
	if !errors.Is(err, events.ErrInsufficientStorage) {
		t.Fatalf("Append on a full disk = %v, want ErrInsufficientStorage", err)
	}
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	eventstest.Eventually(t, "the store to be opened again", func() bool { return srv.Reopened() > 0 && j.Room() == nil })
	ev, err := j.Append(ctx, event("docs", 1))
	if err != nil {
		t.Fatalf("Append once there is room: %v", err)
	}
	t.Logf("the event got seq %d", ev.Seq)
	if evs, err := j.Read(ctx, "docs", 0, 10); err != nil || !cmp.Equal(seqs(evs), []uint64{ev.Seq}) {
		t.Errorf("Read after 0 = %v, %v; want [%d]", seqs(evs), err, ev.Seq)
	}
	f := follow(t, j, "docs", 0)
	if got := seqs(f.next(t, 1)); !cmp.Equal(got, []uint64{ev.Seq}) {
		t.Errorf("Follow from 0 = %v, want [%d]", got, ev.Seq)
	}
}
