package watch_test

import (
	"context"
	"fmt"
	"os"
	"sync/atomic"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/filecast/filecast/events"
	"github.com/filecast/filecast/events/eventstest"
	"github.com/filecast/filecast/events/watch"
)

// fullLog is a log that refuses every event for want of room while full
// is set, and says so through Room, as the hub does: a fault put in front
// of the journal.
type fullLog struct {
	watch.Appender
	full    atomic.Bool
	refused atomic.Int64 // appends refused
}

func (f *fullLog) Append(ctx context.Context, ev events.Event) (events.Event, error) {
	if f.full.Load() {
		f.refused.Add(1)
		return ev, fmt.Errorf("append: %w: the disk is full", events.ErrInsufficientStorage)
	}
	return f.Appender.Append(ctx, ev)
}

func (f *fullLog) Room() error {
	if f.full.Load() {
		return fmt.Errorf("%w: the disk is full", events.ErrInsufficientStorage)
	}
	return nil
}

// TestWatcher_HoldsChangesWhileTheLogIsFull changes files while the log
// refuses events: the watcher keeps running, reports nothing, holds each
// changed path once however often it changed, and reports every held
// change — each path once, with its final content — when the log has room.
func TestWatcher_HoldsChangesWhileTheLogIsFull(t *testing.T) {
	e := newEnv(t)
	e.write("hot.txt", "0")
	e.write("doomed.txt", "d")
	e.write("same.txt", "same")
	log := &fullLog{Appender: e.log}
	e.app = log
	w := e.start(watch.Options{})

	log.full.Store(true)
	for i := 1; i <= 200; i++ {
		e.write("hot.txt", fmt.Sprint(i))
	}
	e.write("new.txt", "new")
	e.write("brief.txt", "here and gone")
	if err := os.Remove(e.path("brief.txt")); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(e.path("doomed.txt")); err != nil {
		t.Fatal(err)
	}
	e.write("same.txt", "other")
	e.write("same.txt", "same")
	eventstest.Eventually(t, "the changes to be held", func() bool {
		n, _ := w.HeldChanges()
		return n >= 3 // hot, new, doomed (brief and same may be held too)
	})
	if evs := e.events(); len(evs) != 0 {
		t.Fatalf("events reported while the log is full:\n%s", dump(evs))
	}
	if files, _ := w.Files(""); len(files) != 3 {
		t.Errorf("the index holds %d files while the log is full, want the 3 the log knows", len(files))
	}

	log.full.Store(false)
	evs := e.waitEvents("the held changes", func(evs []events.Event) bool { return len(evs) >= 3 })
	want := []string{"file.created new.txt", "file.deleted doomed.txt", "file.updated hot.txt"}
	if diff := cmp.Diff(want, sortedShorts(evs)); diff != "" {
		t.Errorf("events (-want +got):\n%s", diff)
	}
	for _, ev := range evs {
		if ev.Path == "hot.txt" && ev.SHA256 != sum("200") {
			t.Errorf("hot.txt reported with sha256 %s, want the last content's", ev.SHA256)
		}
	}
	if n, rescan := w.HeldChanges(); n != 0 || rescan {
		t.Errorf("HeldChanges() = %d, %v after the log has room, want 0, false", n, rescan)
	}
	e.checkIndex()

	// Reported as usual again.
	e.write("hot.txt", "201")
	e.waitEvents("a change once the log has room", func(evs []events.Event) bool { return len(evs) == len(want)+1 })
}

// TestWatcher_HeldBeyondTheBound holds more paths than it may one by one:
// it falls back to comparing the whole tree, and nothing is lost.
func TestWatcher_HeldBeyondTheBound(t *testing.T) {
	watch.SetMaxHeld(t, 5)
	e := newEnv(t)
	e.write("old.txt", "old")
	log := &fullLog{Appender: e.log}
	e.app = log
	w := e.start(watch.Options{})

	log.full.Store(true)
	for i := range 12 {
		e.write(fmt.Sprintf("f%02d.txt", i), "x")
	}
	if err := os.Remove(e.path("old.txt")); err != nil {
		t.Fatal(err)
	}
	eventstest.Eventually(t, "a rescan to be pending", func() bool {
		_, rescan := w.HeldChanges()
		return rescan
	})
	log.full.Store(false)
	evs := e.waitEvents("every held change", func(evs []events.Event) bool { return len(evs) >= 13 })
	if len(evs) != 13 {
		t.Errorf("%d events, want 13:\n%s", len(evs), dump(evs))
	}
	e.checkIndex()
}
