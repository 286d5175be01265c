//go:build linux

package watch_test

import (
	"log/slog"
	"os"
	"testing"
	"time"

	"github.com/filecast/filecast/events"
	"github.com/filecast/filecast/events/watch"
)

// The tests of this file run the Watcher on inotify itself, real files in
// a temporary folder: what the kernel tells beyond fsnotify's ops (a
// writer's close, a whole read of its queue) settles a change without
// waiting out Settle, which they set to an hour where a change must not
// wait for it.

// TestInotify_CloseWrite reports a new file once its writer closes it,
// and a known file rewritten likewise: Settle is never waited for.
func TestInotify_CloseWrite(t *testing.T) {
	e := newEnv(t)
	e.write("old.txt", "old")
	e.start(watch.Options{Settle: time.Hour})
	e.write("new.txt", "new")
	e.waitEvents("file.created new.txt", func(evs []events.Event) bool { return len(evs) == 1 })
	e.write("old.txt", "changed")
	evs := e.waitEvents("file.updated old.txt", func(evs []events.Event) bool { return len(evs) == 2 })
	want := []short{
		{Type: events.FileCreated, Path: "new.txt", SHA256: sum("new"), Size: 3},
		{Type: events.FileUpdated, Path: "old.txt", SHA256: sum("changed"), Size: 7},
	}
	for i, ev := range evs {
		if got := brief(ev); got != want[i] {
			t.Errorf("event %d: %v, want %v", i, got, want[i])
		}
	}
}

// TestInotify_OneRead takes a file removed and made again, both in one
// read of the queue, as one file.updated: neither waits for the other.
func TestInotify_OneRead(t *testing.T) {
	e := newEnv(t)
	e.write("a.txt", "one")
	e.write("b.txt", "same")
	var g *watch.ReadGate
	e.before = func(w *watch.Watcher) { g = w.UseReadGate() }
	e.start(watch.Options{Settle: time.Hour})
	g.Hold()
	for _, f := range []struct{ path, content string }{{"a.txt", "two"}, {"b.txt", "same"}} {
		if err := os.Remove(e.path(f.path)); err != nil {
			t.Fatal(err)
		}
		e.write(f.path, f.content)
	}
	g.Release()
	e.write("marker.txt", "m")
	evs := e.waitEvents("the marker", func(evs []events.Event) bool {
		return len(evs) > 0 && evs[len(evs)-1].Path == "marker.txt"
	})
	if len(evs) != 2 || brief(evs[0]) != (short{Type: events.FileUpdated, Path: "a.txt", SHA256: sum("two"), Size: 3}) {
		t.Fatalf("want file.updated a.txt then the marker, got:\n%s", dump(evs))
	}
	e.checkIndex()
}

// TestInotify_OpenWriter reports a file whose writer keeps it open once
// it has been quiet for Settle: the close it waits for does not come.
func TestInotify_OpenWriter(t *testing.T) {
	e := newEnv(t)
	e.write("old.txt", "old")
	e.start(watch.Options{Settle: 50 * time.Millisecond})
	open := func(p string, flag int) *os.File {
		f, err := os.OpenFile(e.path(p), flag, 0o644)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { f.Close() })
		return f
	}
	nf := open("new.log", os.O_WRONLY|os.O_CREATE|os.O_EXCL)
	if _, err := nf.WriteString("new"); err != nil {
		t.Fatal(err)
	}
	e.waitEvents("file.created new.log, still open", func(evs []events.Event) bool { return len(evs) == 1 })
	of := open("old.txt", os.O_WRONLY|os.O_APPEND)
	if _, err := of.WriteString(" more"); err != nil {
		t.Fatal(err)
	}
	evs := e.waitEvents("file.updated old.txt, still open", func(evs []events.Event) bool { return len(evs) == 2 })
	want := []short{
		{Type: events.FileCreated, Path: "new.log", SHA256: sum("new"), Size: 3},
		{Type: events.FileUpdated, Path: "old.txt", SHA256: sum("old more"), Size: 8},
	}
	for i, ev := range evs {
		if got := brief(ev); got != want[i] {
			t.Errorf("event %d: %v, want %v", i, got, want[i])
		}
	}
}

// TestInotify_Overflow rescans when the kernel's queue overflowed: every
// change whose notification was dropped is reported, once.
func TestInotify_Overflow(t *testing.T) {
	e := newEnv(t)
	e.write("mod.txt", "one")
	e.write("gone.txt", "gone")
	e.write("same.txt", "same")
	var g *watch.ReadGate
	e.before = func(w *watch.Watcher) { g = w.UseReadGate() }
	logs := &logRec{t: t}
	e.start(watch.Options{Settle: time.Hour, Logger: slog.New(logs)})
	g.Hold()
	e.write("mod.txt", "two")
	e.write("new.txt", "new")
	if err := os.Remove(e.path("gone.txt")); err != nil {
		t.Fatal(err)
	}
	g.ReleaseOverflowed()
	e.waitEvents("3 events", func(evs []events.Event) bool { return len(evs) >= 3 })
	e.write("marker.txt", "m")
	evs := e.waitEvents("the marker", func(evs []events.Event) bool {
		return len(evs) > 0 && evs[len(evs)-1].Path == "marker.txt"
	})
	got := map[string]events.Type{}
	for _, ev := range evs[:len(evs)-1] {
		if _, dup := got[ev.Path]; dup {
			t.Errorf("%s reported twice:\n%s", ev.Path, dump(evs))
		}
		got[ev.Path] = ev.Type
	}
	want := map[string]events.Type{"mod.txt": events.FileUpdated, "new.txt": events.FileCreated, "gone.txt": events.FileDeleted}
	if len(got) != len(want) {
		t.Errorf("events:\n%s", dump(evs))
	}
	for p, ty := range want {
		if got[p] != ty {
			t.Errorf("%s: %q, want %q", p, got[p], ty)
		}
	}
	if n := logs.count("WARN", "overflowed", "rescanning"); n != 1 {
		t.Errorf("%d warnings that notifications overflowed, want 1", n)
	}
	e.checkIndex()
}
