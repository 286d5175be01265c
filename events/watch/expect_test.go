package watch_test

import (
	"os"
	"testing"

	"github.com/filecast/filecast/events"
	"github.com/filecast/filecast/events/eventstest"
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

	evs := e.waitEvents("c.txt and d.txt", func(evs []events.Event) bool { return len(evs) >= 2 })
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
	eventstest.Eventually(t, rel+" in the index", func() bool {
		fi, found := w.Stat(rel)
		return found && ok(fi)
	})
}

func waitGone(t *testing.T, w *watch.Watcher, rel string) {
	t.Helper()
	eventstest.Eventually(t, rel+" gone from the index", func() bool {
		_, found := w.Stat(rel)
		return !found
	})
}

// TestWatcher_AbandonAfterSeen abandons an announcement the Watcher had
// already taken into its index silently: the change was made but has no
// event, so the Watcher reports it after all.
func TestWatcher_AbandonAfterSeen(t *testing.T) {
	e := newEnv(t)
	w := e.start(watch.Options{})
	w.Expect("c.txt", sum("three"), false)
	e.write("c.txt", "three")
	waitStat(t, w, "c.txt", func(fi events.FileInfo) bool { return fi.SHA256 == sum("three") })
	w.Abandon("c.txt", sum("three"), false)
	if err := w.Poll(t.Context()); err != nil {
		t.Fatal(err)
	}
	evs := e.waitEvents("c.txt", func(evs []events.Event) bool { return len(evs) >= 1 })
	if got := shorts(evs); len(got) != 1 || got[0].Type != events.FileCreated || got[0].Path != "c.txt" {
		t.Fatalf("events %v, want c.txt created", got)
	}
}

// TestWatcher_Undo takes back a change the Watcher had taken into its
// index silently: the file is put back, the index holds its previous
// entry again, and neither the change nor its undoing is reported.
func TestWatcher_Undo(t *testing.T) {
	e := newEnv(t)
	e.write("a.txt", "old")
	w := e.start(watch.Options{})
	before, _ := w.Stat("a.txt")

	w.Expect("a.txt", sum("new"), false)
	e.write(".a.tmp", "new")
	if err := os.Rename(e.path(".a.tmp"), e.path("a.txt")); err != nil {
		t.Fatal(err)
	}
	waitStat(t, w, "a.txt", func(fi events.FileInfo) bool { return fi.SHA256 == sum("new") })
	err := w.Undo("a.txt", sum("new"), false, func() error {
		e.write(".a.tmp", "old")
		return os.Rename(e.path(".a.tmp"), e.path("a.txt"))
	})
	if err != nil {
		t.Fatal(err)
	}
	if fi, _ := w.Stat("a.txt"); fi.SHA256 != sum("old") || fi.Version != before.Version {
		t.Errorf("a.txt in the index after Undo: %+v, want %+v", fi, before)
	}
	// Whatever the Watcher sees of the undoing (and its look again) is no change.
	if err := w.Poll(t.Context()); err != nil {
		t.Fatal(err)
	}
	e.write("marker.txt", "m")
	evs := e.waitEvents("the marker", func(evs []events.Event) bool { return len(evs) >= 1 })
	if got := shorts(evs); len(got) != 1 || got[0].Path != "marker.txt" {
		t.Fatalf("events %v, want only the marker", got)
	}
}
