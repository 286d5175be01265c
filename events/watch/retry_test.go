package watch_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/filecast/filecast/events"
	"github.com/filecast/filecast/events/eventstest"
	"github.com/filecast/filecast/events/watch"
)

// logRec is a slog.Handler that keeps every record's level and message
// (with its attributes) and passes it on to the test's log.
type logRec struct {
	mu   sync.Mutex
	recs []string
	t    testing.TB
}

func (l *logRec) Enabled(context.Context, slog.Level) bool { return true }
func (l *logRec) WithAttrs([]slog.Attr) slog.Handler       { return l }
func (l *logRec) WithGroup(string) slog.Handler            { return l }

func (l *logRec) Handle(_ context.Context, r slog.Record) error {
	var b strings.Builder
	b.WriteString(r.Level.String() + " " + r.Message)
	r.Attrs(func(a slog.Attr) bool {
		b.WriteString(" " + a.String())
		return true
	})
	l.mu.Lock()
	l.recs = append(l.recs, b.String())
	l.mu.Unlock()
	l.t.Log(b.String())
	return nil
}

// count returns how many records hold every one of parts.
func (l *logRec) count(parts ...string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, r := range l.recs {
		ok := true
		for _, p := range parts {
			ok = ok && strings.Contains(r, p)
		}
		if ok {
			n++
		}
	}
	return n
}

// faults fails opening chosen paths a number of times.
type faults struct {
	mu   sync.Mutex
	left map[string]int // absolute path → failures still to come
	err  map[string]error
	hits map[string]int
}

func newFaults() *faults {
	return &faults{left: map[string]int{}, err: map[string]error{}, hits: map[string]int{}}
}

func (f *faults) set(path string, n int, err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.left[path], f.err[path] = n, err
}

func (f *faults) open(path string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.left[path] > 0 {
		f.left[path]--
		f.hits[path]++
		return f.err[path]
	}
	return nil
}

func (f *faults) failed(path string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.hits[path]
}

// TestWatcher_RetriesWithoutDescriptors reports files that could not be
// opened for want of descriptors once they can be, says so in the log
// once (not per file) and again when descriptors are back, and counts
// the retries.
func TestWatcher_RetriesWithoutDescriptors(t *testing.T) {
	e := newEnv(t)
	f := newFaults()
	logs := &logRec{t: t}
	e.before = func(w *watch.Watcher) { w.SetReadFault(f.open) }
	w := e.start(watch.Options{Logger: slog.New(logs)})

	for _, p := range []string{"a.txt", "b.txt"} {
		f.set(e.path(p), 4, syscall.EMFILE)
	}
	e.write("a.txt", "alpha")
	e.write("b.txt", "beta")
	e.waitEvents("both files reported", func(evs []events.Event) bool { return len(evs) == 2 })
	got := map[string]string{}
	for _, ev := range e.events() {
		if ev.Type != events.FileCreated {
			t.Fatalf("unexpected %v", brief(ev))
		}
		got[ev.Path] = ev.SHA256
	}
	if got["a.txt"] != sum("alpha") || got["b.txt"] != sum("beta") {
		t.Fatalf("reported %v", got)
	}
	for _, p := range []string{"a.txt", "b.txt"} {
		if n := f.failed(e.path(p)); n != 4 {
			t.Fatalf("%s failed %d times, want 4", p, n)
		}
	}
	c := w.Counters()
	if n := c.DescriptorRetries.Load(); n < 8 || c.ReadRetries.Load() < n {
		t.Fatalf("counted %d retries for want of descriptors (%d in all), want at least 8", n, c.ReadRetries.Load())
	}
	eventstest.Eventually(t, "no path waiting to be read again", func() bool { return c.Retrying.Load() == 0 })
	eventstest.Eventually(t, "the log to say descriptors are back", func() bool { return logs.count("INFO", "available again") == 1 })
	if n := logs.count("WARN", "out of file descriptors"); n != 1 {
		t.Fatalf("%d warnings about descriptors, want 1", n)
	}
	if n := logs.count("WARN", "cannot read"); n != 0 {
		t.Fatalf("%d warnings per path, want none", n)
	}
	e.checkIndex()
}

// TestWatcher_RetriesFolderListing reads again a new folder that could
// not be listed, reporting its files, and does not take the files of a
// folder that a rescan could not list for deleted.
func TestWatcher_RetriesFolderListing(t *testing.T) {
	e := newEnv(t)
	if err := os.Mkdir(e.path("keep"), 0o755); err != nil {
		t.Fatal(err)
	}
	e.write("keep/a.txt", "one")
	f := newFaults()
	e.before = func(w *watch.Watcher) { w.SetReadFault(f.open) }
	w := e.start(watch.Options{})

	f.set(e.path("sub"), 3, syscall.EMFILE)
	if err := os.Mkdir(e.path("sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	e.write("sub/x.txt", "x")
	e.write("sub/y.txt", "y")
	e.waitEvents("the files of the new folder", func(evs []events.Event) bool { return len(evs) == 2 })
	if n := f.failed(e.path("sub")); n != 3 {
		t.Fatalf("the folder failed to list %d times, want 3", n)
	}

	// Notifications of keep are lost; the rescan that follows cannot
	// list it at first.
	ctx := t.Context()
	if err := w.DropWatch(ctx, "keep", false); err != nil {
		t.Fatal(err)
	}
	e.write("keep/a.txt", "two")
	f.set(e.path("keep"), 2, syscall.ENFILE)
	if err := w.InjectError(ctx, errors.New("lost")); err != nil {
		t.Fatal(err)
	}
	evs := e.waitEvents("keep/a.txt updated", func(evs []events.Event) bool { return len(evs) == 3 })
	if got := brief(evs[2]); got.Type != events.FileUpdated || got.Path != "keep/a.txt" || got.SHA256 != sum("two") {
		t.Fatalf("third event %v", got)
	}
	if n := f.failed(e.path("keep")); n != 2 {
		t.Fatalf("keep failed to list %d times, want 2", n)
	}
	e.checkIndex()
}

// TestWatcher_RetriesOtherErrors reads again a file that failed for
// another reason, with one warning for the path.
func TestWatcher_RetriesOtherErrors(t *testing.T) {
	e := newEnv(t)
	f := newFaults()
	logs := &logRec{t: t}
	e.before = func(w *watch.Watcher) { w.SetReadFault(f.open) }
	w := e.start(watch.Options{Logger: slog.New(logs)})
	f.set(e.path("c.txt"), 3, syscall.EIO)
	e.write("c.txt", "gamma")
	e.waitEvents("c.txt reported", func(evs []events.Event) bool { return len(evs) == 1 && evs[0].SHA256 == sum("gamma") })
	if n := logs.count("WARN", "cannot read a path", "c.txt"); n != 1 {
		t.Fatalf("%d warnings for c.txt, want 1", n)
	}
	if w.Counters().DescriptorRetries.Load() != 0 || w.Counters().ReadRetries.Load() < 3 {
		t.Fatalf("counters %d/%d", w.Counters().DescriptorRetries.Load(), w.Counters().ReadRetries.Load())
	}
}

// TestWatcher_FirstStartRetry indexes silently, once it can be read, a
// file that the very first start could not read.
func TestWatcher_FirstStartRetry(t *testing.T) {
	e := newEnv(t)
	e.write("old.txt", "was here")
	e.write("other.txt", "too")
	f := newFaults()
	f.set(e.path("old.txt"), 3, syscall.EMFILE)
	e.before = func(w *watch.Watcher) { w.SetReadFault(f.open) }
	w := e.start(watch.Options{})
	eventstest.Eventually(t, "old.txt indexed", func() bool {
		fi, ok := w.Stat("old.txt")
		return ok && fi.SHA256 == sum("was here")
	})
	if evs := e.events(); len(evs) != 0 {
		t.Fatalf("a first start reported %s", dump(evs))
	}
}

// TestWatcher_WatchLimit says once that the inotify watch limit is
// reached, naming the setting to raise, counts the folders it could not
// watch, still reports changes in them, and says when every folder is
// watched again.
func TestWatcher_WatchLimit(t *testing.T) {
	const dirs, allowed = 30, 10
	e := newEnv(t)
	for i := range dirs {
		e.writeAll(fmt.Sprintf("d%02d/f.txt", i), "x")
	}
	var mu sync.Mutex
	limited := true
	added := map[string]bool{}
	logs := &logRec{t: t}
	e.before = func(w *watch.Watcher) {
		w.SetAddWatch(func(name string, add func(string) error) error {
			mu.Lock()
			defer mu.Unlock()
			if limited && !added[name] && len(added) >= allowed {
				return fmt.Errorf("add watch: %w", syscall.ENOSPC)
			}
			if err := add(name); err != nil {
				return err
			}
			added[name] = true
			return nil
		})
	}
	w := e.start(watch.Options{Logger: slog.New(logs)})
	c := w.Counters()
	if n := c.Unwatched.Load(); n != dirs+1-allowed {
		t.Fatalf("%d folders unwatched, want %d", n, dirs+1-allowed)
	}
	// Changes in folders beyond the limit are found by the periodic
	// rescans, which fail to add the watches again without a warning.
	// (Poll runs the periodic round at once; TestWatcher_Settle checks
	// that it runs every PollEvery.)
	failures := c.WatchFailures.Load()
	e.write("d29/new.txt", "new")
	if err := w.Poll(t.Context()); err != nil {
		t.Fatal(err)
	}
	e.waitEvents("a file in an unwatched folder", func(evs []events.Event) bool { return len(evs) == 1 })
	if n := c.WatchFailures.Load(); n < failures+dirs+1-allowed {
		t.Fatalf("%d watch failures after a rescan, want at least %d", n, failures+dirs+1-allowed)
	}
	if n := logs.count("WARN", "fs.inotify.max_user_watches", "sysctl"); n != 1 {
		t.Fatalf("%d warnings about the watch limit, want 1", n)
	}
	if n := logs.count("WARN"); n != 1 {
		t.Fatalf("%d warnings in all, want 1", n)
	}

	mu.Lock()
	limited = false
	mu.Unlock()
	if err := w.Poll(t.Context()); err != nil {
		t.Fatal(err)
	}
	if n := c.Unwatched.Load(); n != 0 {
		t.Fatalf("%d folders unwatched after a rescan with no limit", n)
	}
	if n := logs.count("INFO", "every folder is watched again"); n != 1 {
		t.Fatalf("%d messages that every folder is watched again, want 1", n)
	}
	e.write("d00/later.txt", "later")
	e.waitEvents("a file in a folder watched again", func(evs []events.Event) bool { return len(evs) == 2 })
	e.checkIndex()
}

// writeAll writes a file, making its folders.
func (e *env) writeAll(p, content string) {
	e.t.Helper()
	if err := os.MkdirAll(filepath.Dir(e.path(p)), 0o755); err != nil {
		e.t.Fatal(err)
	}
	e.write(p, content)
}
