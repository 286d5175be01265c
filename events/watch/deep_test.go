package watch_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/filecast/filecast/events"
	"github.com/filecast/filecast/events/eventstest"
	"github.com/filecast/filecast/events/watch"
	"github.com/filecast/filecast/events/workspace"
)

// deepChain makes depth nested folders named d under dir, each holding a
// file f, and returns the relative paths of the files, shallowest first.
// Folders are made one level at a time, as a process that walks down
// would; an absolute path may not exceed PATH_MAX, so depth stays below
// 2,000 for a short dir.
func deepChain(tb testing.TB, dir, rel string, depth int) []string {
	tb.Helper()
	var files []string
	p, r := dir, rel
	for i := range depth {
		p, r = filepath.Join(p, "d"), path.Join(r, "d")
		if err := os.Mkdir(p, 0o755); err != nil {
			tb.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(p, "f"), []byte(fmt.Sprint(i)), 0o644); err != nil {
			tb.Fatal(err)
		}
		files = append(files, path.Join(r, "f"))
	}
	return files
}

// TestWatcher_DeepTree indexes a tree 600 folders deep on a first
// start, then reports the files of a second deep tree made while it
// watches, a deep folder moved, and one removed. Ignored folders deep down
// stay ignored.
func TestWatcher_DeepTree(t *testing.T) {
	const depth = 600
	e := newEnv(t)
	first := deepChain(t, e.root, "", depth)
	deepGit := filepath.Join(e.root, filepath.FromSlash(path.Dir(first[depth/2])), ".git")
	if err := os.Mkdir(deepGit, 0o755); err != nil {
		t.Fatal(err)
	}
	e.write(path.Dir(first[depth/2])+"/.git/config", "ignored")
	w := e.start(watch.Options{})
	if got, _ := w.Files(""); len(got) != depth {
		t.Fatalf("indexed %d files, want %d", len(got), depth)
	}
	if evs := e.events(); len(evs) != 0 {
		t.Fatalf("a first start reported %d events", len(evs))
	}

	if err := os.Mkdir(e.path("x"), 0o755); err != nil {
		t.Fatal(err)
	}
	second := deepChain(t, e.path("x"), "x", depth)
	e.waitEvents("a file.created for every file of the new tree", func(evs []events.Event) bool {
		n := 0
		for _, ev := range evs {
			if ev.Type == events.FileCreated {
				n++
			}
		}
		return n >= depth
	})
	// Each file is created once; on a busy machine a writer may pause for
	// longer than Settle between creating a file and writing it, which
	// is then reported as a file.updated.
	created := map[string]int{}
	for _, ev := range e.events() {
		switch ev.Type {
		case events.FileCreated:
			created[ev.Path]++
		case events.FileUpdated:
			if created[ev.Path] != 1 {
				t.Fatalf("%v before its file.created", brief(ev))
			}
		default:
			t.Fatalf("unexpected event %v", brief(ev))
		}
	}
	for _, f := range second {
		if created[f] != 1 {
			t.Fatalf("%s created %d times", f, created[f])
		}
	}
	waitIndexed(t, w, second)

	// Move the lower half of the second tree to the top, then remove the
	// deepest hundred levels of the first.
	from := path.Dir(second[depth/2])
	n := len(e.events())
	if err := os.Rename(e.path(from), e.path("moved")); err != nil {
		t.Fatal(err)
	}
	e.waitEvents("a file.moved for every moved file", func(evs []events.Event) bool { return len(evs) >= n+depth/2 })
	for _, ev := range e.events()[n:] {
		if ev.Type != events.FileMoved || !strings.HasPrefix(ev.OldPath, from+"/") || ev.Path != "moved"+strings.TrimPrefix(ev.OldPath, from) {
			t.Fatalf("unexpected event %v", brief(ev))
		}
	}
	cut := path.Dir(first[depth-100])
	n = len(e.events())
	if err := os.RemoveAll(e.path(cut)); err != nil {
		t.Fatal(err)
	}
	e.waitEvents("a file.deleted for every removed file", func(evs []events.Event) bool { return len(evs) >= n+100 })
	if evs := e.events(); len(evs) > n+100 {
		t.Fatalf("%d events for 100 removed files", len(evs)-n)
	}
	for _, ev := range e.events()[n:] {
		if ev.Type != events.FileDeleted || !strings.HasPrefix(ev.Path, cut+"/") {
			t.Fatalf("unexpected event %v", brief(ev))
		}
	}
	// The index holds what the folder holds, now; checkIndex's diff would
	// take long on paths this long.
	var want []string
	want = append(want, first[:depth-100]...)
	want = append(want, second[:depth/2]...)
	for _, f := range second[depth/2:] {
		want = append(want, "moved"+strings.TrimPrefix(f, from))
	}
	slices.Sort(want)
	got, _ := w.Files("")
	if len(got) != len(want) {
		t.Fatalf("the index holds %d files, want %d", len(got), len(want))
	}
	for i, f := range got {
		data, err := os.ReadFile(e.path(f.Path))
		if f.Path != want[i] || err != nil || f.SHA256 != sum(string(data)) {
			t.Fatalf("index entry %d = %s %s, want %s (%v)", i, f.Path, f.SHA256, want[i], err)
		}
	}
}

// waitIndexed waits until the index holds every file of files (made by
// deepChain) with its final content.
func waitIndexed(t *testing.T, w *watch.Watcher, files []string) {
	t.Helper()
	next := 0
	eventstest.Eventually(t, "every file of the new tree indexed with its content", func() bool {
		for ; next < len(files); next++ {
			if f, ok := w.Stat(files[next]); !ok || f.SHA256 != sum(fmt.Sprint(next)) {
				return false
			}
		}
		return true
	})
}

// BenchmarkWatcher_DeepTree measures indexing trees of nested folders, a
// file in each: "index" is a first start (Run to Ready), "live" a tree
// made while the Watcher runs, until every file is in the index (the time
// to make the tree included). chain=N is one chain N deep (2,000 is about
// as deep as PATH_MAX allows); wide=3x1000 three chains of 1,000, 3,000
// folders. Run with -benchtime 1x.
func BenchmarkWatcher_DeepTree(b *testing.B) {
	for _, shape := range []struct {
		name          string
		chains, depth int
	}{{"chain=250", 1, 250}, {"chain=500", 1, 500}, {"chain=1000", 1, 1000}, {"chain=2000", 1, 2000}, {"wide=3x1000", 3, 1000}} {
		make := func(b *testing.B, root string) int {
			for c := range shape.chains {
				dir := filepath.Join(root, fmt.Sprintf("c%d", c))
				if err := os.Mkdir(dir, 0o755); err != nil {
					b.Fatal(err)
				}
				deepChain(b, dir, "", shape.depth)
			}
			return shape.chains * shape.depth
		}
		b.Run("index/"+shape.name, func(b *testing.B) {
			root := filepath.Join(b.TempDir(), "ws")
			if err := os.Mkdir(root, 0o755); err != nil {
				b.Fatal(err)
			}
			files := make(b, root)
			for b.Loop() {
				w, stop := startBench(b, root)
				if got, _ := w.Files(""); len(got) != files {
					b.Fatalf("indexed %d files, want %d", len(got), files)
				}
				stop()
			}
		})
		b.Run("live/"+shape.name, func(b *testing.B) {
			for b.Loop() {
				b.StopTimer()
				root := filepath.Join(b.TempDir(), "ws")
				if err := os.Mkdir(root, 0o755); err != nil {
					b.Fatal(err)
				}
				w, stop := startBench(b, root)
				b.StartTimer()
				files := make(b, root)
				eventstest.Within(b, 5*time.Minute, "every file indexed", func() bool {
					got, _ := w.Files("")
					return len(got) >= files
				})
				b.StopTimer()
				stop()
				b.StartTimer()
			}
		})
	}
}

// startBench starts a Watcher on root with no persisted index and waits
// for it to be ready; stop ends it.
func startBench(b *testing.B, root string) (w *watch.Watcher, stop func()) {
	b.Helper()
	ws, err := workspace.Parse("docs=" + root)
	if err != nil {
		b.Fatal(err)
	}
	w, err = watch.New(watch.Options{Workspace: ws}, &sink{})
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	select {
	case <-w.Ready():
	case err := <-done:
		b.Fatalf("Run returned before Ready: %v", err)
	}
	return w, func() {
		cancel()
		if err := <-done; !errors.Is(err, context.Canceled) {
			b.Fatalf("Run: %v", err)
		}
	}
}
