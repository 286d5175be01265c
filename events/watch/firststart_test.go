package watch_test

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/filecast/filecast/events"
	"github.com/filecast/filecast/events/eventstest"
	"github.com/filecast/filecast/events/watch"
)

// A first start reports, as created, the files changed at or after
// Options.Since (while the first index was being built) and indexes the
// others silently; a restart then reports nothing.
func TestWatcher_FirstStartReportsChangesSince(t *testing.T) {
	e := newEnv(t)
	e.write("old.md", "there before")
	if err := os.Mkdir(e.path("sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	e.write("sub/rewritten.md", "first")
	since := fileClockTick(t, e.out)
	e.write("new.md", "after the start")
	e.write("sub/rewritten.md", "second")

	e.start(watch.Options{Since: since})
	want := []string{"file.created new.md", "file.created sub/rewritten.md"}
	got := e.events()
	var kinds []string
	for _, ev := range got {
		kinds = append(kinds, string(ev.Type)+" "+ev.Path)
	}
	if diff := cmp.Diff(want, kinds); diff != "" {
		t.Fatalf("events at Ready (-want +got):\n%s", diff)
	}
	if got[1].SHA256 != sum("second") {
		t.Errorf("sub/rewritten.md reported with sha256 %s, want the content after the start", got[1].SHA256)
	}
	e.checkIndex()

	e.stop()
	e.start(watch.Options{Since: since})
	if n := len(e.events()); n != len(want) {
		t.Fatalf("a restart reported %d more events: %s", n-len(want), dump(e.events()[len(want):]))
	}
	e.checkIndex()
}

// Without Options.Since a first start is silent, however recent the files.
func TestWatcher_FirstStartSilentWithoutSince(t *testing.T) {
	e := newEnv(t)
	e.write("a.md", "a")
	e.start(watch.Options{})
	if evs := e.events(); len(evs) != 0 {
		t.Fatalf("first start reported %s", dump(evs))
	}
	e.write("b.md", "b")
	e.waitEvents("b.md created", func(evs []events.Event) bool {
		return len(evs) == 1 && evs[0].Type == events.FileCreated && evs[0].Path == "b.md"
	})
}

// A workspace bigger than one listing batch, in nested folders, is indexed
// completely by the parallel scan, and a restart reads no file again.
func TestWatcher_ScanIndexesNestedTree(t *testing.T) {
	e := newEnv(t)
	n := 0
	for a := range 3 {
		for b := range 3 {
			dir := filepath.Join(e.root, string(rune('a'+a)), string(rune('a'+b)))
			if err := os.MkdirAll(dir, 0o755); err != nil {
				t.Fatal(err)
			}
			for i := range 100 {
				if err := os.WriteFile(filepath.Join(dir, "f"+string(rune('0'+i/10))+string(rune('0'+i%10))+".txt"), []byte{byte(i)}, 0o644); err != nil {
					t.Fatal(err)
				}
				n++
			}
		}
	}
	e.write("skip.swp", "ignored")
	w := e.start(watch.Options{})
	if files, _ := w.Files(""); len(files) != n {
		t.Fatalf("indexed %d files, want %d", len(files), n)
	}
	e.checkIndex()
	e.write("a/b/late.txt", "late")
	e.waitEvents("a/b/late.txt created", func(evs []events.Event) bool {
		return len(evs) == 1 && evs[0].Path == "a/b/late.txt"
	})
}

// fileClockTick returns a time of the clock that stamps files (the
// kernel's coarse clock, behind time.Now by up to a tick) later than every
// file written so far: it writes a file in dir until its mtime moves on.
func fileClockTick(t *testing.T, dir string) time.Time {
	t.Helper()
	probe := func() time.Time {
		p := filepath.Join(dir, "clock-probe")
		if err := os.WriteFile(p, []byte("tick"), 0o644); err != nil {
			t.Fatal(err)
		}
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		return fi.ModTime()
	}
	first := probe() // no earlier than any file written so far
	var next time.Time
	eventstest.Eventually(t, "the file clock to tick", func() bool {
		next = probe()
		return next.After(first)
	})
	return next
}
