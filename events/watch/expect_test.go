package watch_test

import (
	"os"
	"testing"

	"github.com/filecast/filecast/events"
	"github.com/filecast/filecast/events/watch"
)

// TestWatcher_Expect covers the hub's own changes: announced with Expect,
// they are taken into the index silently, whether the hub's Applied comes
// before or after the Watcher sees the change; an abandoned announcement
// is reported as usual.
func TestWatcher_Expect(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.write("a.txt", "old")
	w := e.start(watch.Options{})

	// Applied before the Watcher looks.
	w.Expect("a.txt", sum("one"), false)
	w.Applied(events.Event{Seq: 100, Type: events.FileUpdated, Path: "a.txt", SHA256: sum("one"), Size: 3})
	e.write("a.txt", "one")
	// Applied after the Watcher looked (it usually sees the rename first).
	w.Expect("b.txt", sum("two"), false)
	e.write("b.txt", "two")
	waitStat(t, w, "b.txt", func(fi events.FileInfo) bool { return fi.SHA256 == sum("two") })
	w.Applied(events.Event{Seq: 101, Type: events.FileCreated, Path: "b.txt", SHA256: sum("two"), Size: 3})
	// A delete.
	w.Expect("a.txt", "", true)
	waitStat(t, w, "a.txt", func(fi events.FileInfo) bool { return fi.Version == 100 })
	if err := os.Remove(e.path("a.txt")); err != nil {
		t.Fatal(err)
	}
	waitGone(t, w, "a.txt")
	w.Applied(events.Event{Seq: 102, Type: events.FileDeleted, Path: "a.txt"})
	// Abandoned: the Watcher reports it.
	w.Expect("c.txt", sum("three"), false)
	w.Abandon("c.txt", sum("three"), false)
	e.write("c.txt", "three")
	// Announced content that differs from what appears: reported.
	w.Expect("d.txt", sum("four"), false)
	e.write("d.txt", "something else")

	evs := e.rec.waitFor(t, "c.txt and d.txt", func(evs []events.Event) bool { return len(evs) >= 2 })
	got := shorts(evs)
	want := []short{{Type: events.FileCreated, Path: "c.txt"}, {Type: events.FileCreated, Path: "d.txt"}}
	if len(got) != 2 || got[0].Path != want[0].Path || got[1].Path != want[1].Path {
		t.Fatalf("events %v, want only c.txt and d.txt created", got)
	}
	if fi, _ := w.Stat("b.txt"); fi.Version != 101 {
		t.Errorf("b.txt version %d, want 101 from Applied", fi.Version)
	}
	if _, seq := w.Files(""); seq < 102 {
		t.Errorf("listing cursor %d, want at least 102", seq)
	}
}

func waitStat(t *testing.T, w *watch.Watcher, rel string, ok func(events.FileInfo) bool) {
	t.Helper()
	e := &recorder{}
	e.waitFor(t, rel+" in the index", func([]events.Event) bool {
		fi, found := w.Stat(rel)
		return found && ok(fi)
	})
}

func waitGone(t *testing.T, w *watch.Watcher, rel string) {
	t.Helper()
	e := &recorder{}
	e.waitFor(t, rel+" gone from the index", func([]events.Event) bool {
		_, found := w.Stat(rel)
		return !found
	})
}
