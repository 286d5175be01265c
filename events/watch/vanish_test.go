package watch_test

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/filecast/filecast/events"
	"github.com/filecast/filecast/events/eventstest"
	"github.com/filecast/filecast/events/watch"
)

// waitMissing waits until the watcher says whether the folder is missing.
func waitMissing(t *testing.T, w *watch.Watcher, want bool) {
	t.Helper()
	eventstest.Eventually(t, fmt.Sprintf("Missing() = %v", want), func() bool {
		_, missing := w.Missing()
		return missing == want
	})
}

// sortedShorts is the sorted short form of events.
func sortedShorts(evs []events.Event) []string {
	out := make([]string, 0, len(evs))
	for _, ev := range evs {
		out = append(out, brief(ev).String())
	}
	slices.Sort(out)
	return out
}

// TestWatcher_RootMovedAwayAndBack moves the workspace folder away,
// changes files inside it while it is away (none of which may be
// reported), and moves it back: what changed is reported then, by the
// rules of a restart, and nothing else.
func TestWatcher_RootMovedAwayAndBack(t *testing.T) {
	e := newEnv(t)
	e.write("keep.txt", "same")
	e.write("edit.txt", "before")
	e.write("gone.txt", "bye")
	if err := os.Mkdir(e.path("sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	e.write("sub/deep.txt", "deep")
	w := e.start(watch.Options{})
	if _, missing := w.Missing(); missing {
		t.Fatal("Missing() before the folder went")
	}

	away := filepath.Join(filepath.Dir(e.root), "away")
	if err := os.Rename(e.root, away); err != nil {
		t.Fatal(err)
	}
	waitMissing(t, w, true)
	// Changes made to the folder while it is elsewhere.
	for p, c := range map[string]string{"edit.txt": "after", "new.txt": "new", "sub/deep.txt": "deeper"} {
		if err := os.WriteFile(filepath.Join(away, p), []byte(c), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Remove(filepath.Join(away, "gone.txt")); err != nil {
		t.Fatal(err)
	}
	if files, _ := w.Files(""); len(files) != 4 {
		t.Errorf("the index holds %d files while the folder is missing, want the 4 it had", len(files))
	}
	if err := os.Rename(away, e.root); err != nil {
		t.Fatal(err)
	}
	waitMissing(t, w, false)
	want := []string{"file.created new.txt", "file.deleted gone.txt", "file.updated edit.txt", "file.updated sub/deep.txt"}
	evs := e.waitEvents("the changes made while the folder was away", func(evs []events.Event) bool { return len(evs) >= len(want) })
	if diff := cmp.Diff(want, sortedShorts(evs)); diff != "" {
		t.Errorf("events (-want +got):\n%s", diff)
	}
	e.checkIndex()

	// Watched again: a change now is reported as usual.
	e.write("sub/deep.txt", "deepest")
	e.waitEvents("a change after the return", func(evs []events.Event) bool { return len(evs) == len(want)+1 })
	e.checkIndex()
}

// TestWatcher_RootRemovedAndRecreated removes the folder with everything
// in it (each removal is reported as it happens), then makes it again
// with other files.
func TestWatcher_RootRemovedAndRecreated(t *testing.T) {
	e := newEnv(t)
	e.write("a.txt", "a")
	e.write("b.txt", "b")
	w := e.start(watch.Options{})
	if err := os.RemoveAll(e.root); err != nil {
		t.Fatal(err)
	}
	waitMissing(t, w, true)
	e.waitEvents("the removals", func(evs []events.Event) bool { return len(evs) == 2 })

	// A new folder with its files appears at once (made elsewhere and
	// moved into place, so that no file is seen half-written).
	staging := filepath.Join(filepath.Dir(e.root), "staging")
	if err := os.Mkdir(staging, 0o755); err != nil {
		t.Fatal(err)
	}
	for p, c := range map[string]string{"a.txt": "a again", "c.txt": "c"} {
		if err := os.WriteFile(filepath.Join(staging, p), []byte(c), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Rename(staging, e.root); err != nil {
		t.Fatal(err)
	}
	waitMissing(t, w, false)
	evs := e.waitEvents("the files of the new folder", func(evs []events.Event) bool { return len(evs) == 4 })
	want := []string{"file.created a.txt", "file.created c.txt", "file.deleted a.txt", "file.deleted b.txt"}
	if diff := cmp.Diff(want, sortedShorts(evs)); diff != "" {
		t.Errorf("events (-want +got):\n%s", diff)
	}
	e.checkIndex()
}

// TestWatcher_RootMissingAtStart starts on an index whose folder is
// missing: nothing is reported deleted, and the folder is compared with
// the index once it appears.
func TestWatcher_RootMissingAtStart(t *testing.T) {
	e := newEnv(t)
	e.write("a.txt", "a")
	e.write("b.txt", "b")
	e.start(watch.Options{})
	e.stop()

	away := filepath.Join(filepath.Dir(e.root), "away")
	if err := os.Rename(e.root, away); err != nil {
		t.Fatal(err)
	}
	w := e.start(watch.Options{})
	if _, missing := w.Missing(); !missing {
		t.Fatal("Missing() = false for a folder missing at the start")
	}
	if files, _ := w.Files(""); len(files) != 2 {
		t.Errorf("the index holds %d files, want the 2 it had", len(files))
	}
	if err := os.WriteFile(filepath.Join(away, "b.txt"), []byte("b2"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(away, e.root); err != nil {
		t.Fatal(err)
	}
	waitMissing(t, w, false)
	evs := e.waitEvents("the change made while it was missing", func(evs []events.Event) bool { return len(evs) == 1 })
	if diff := cmp.Diff([]string{"file.updated b.txt"}, sortedShorts(evs)); diff != "" {
		t.Errorf("events (-want +got):\n%s", diff)
	}
	e.checkIndex()
}
