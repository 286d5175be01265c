package watch_test

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/filecast/filecast/events"
	"github.com/filecast/filecast/events/watch"
)

// logBuffer collects a Watcher's log lines.
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

// lines returns the lines that contain s.
func (l *logBuffer) lines(s string) []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []string
	for line := range strings.SplitSeq(l.b.String(), "\n") {
		if strings.Contains(line, s) {
			out = append(out, line)
		}
	}
	return out
}

func (l *logBuffer) logger() *slog.Logger {
	return slog.New(slog.NewTextHandler(l, &slog.HandlerOptions{Level: slog.LevelInfo}))
}

// age sets the times of everything under root an hour back, as a
// workspace that has not changed for a while has them.
func age(t testing.TB, root string) {
	t.Helper()
	old := time.Now().Add(-time.Hour)
	err := filepath.WalkDir(root, func(p string, _ os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		return os.Chtimes(p, old, old)
	})
	if err != nil {
		t.Fatal(err)
	}
}

func (e *env) round() {
	e.t.Helper()
	if err := e.cur.w.PollRound(context.Background()); err != nil {
		e.t.Fatalf("poll round: %v", err)
	}
}

// TestPoll_Interval: a poll watcher looks on its own every PollInterval,
// and says that it polls, and why.
func TestPoll_Interval(t *testing.T) {
	e := newEnv(t)
	var logs logBuffer
	w := e.start(watch.Options{Watch: watch.Poll, PollInterval: 20 * time.Millisecond, Logger: logs.logger()})
	x, ok := w.Watching()
	if want := (watch.Watching{Kind: watch.Poll, Interval: 20 * time.Millisecond, Reason: "asked for (--watch poll)"}); !ok || !cmp.Equal(x, want) {
		t.Errorf("Watching() = %+v, %v; want %+v", x, ok, want)
	}
	if got := logs.lines("watching by polling"); len(got) != 1 || !strings.Contains(got[0], "watcher=poll") || !strings.Contains(got[0], "interval=20ms") {
		t.Errorf("log lines about the watcher: %q, want one with watcher=poll interval=20ms", got)
	}
	e.write("a.txt", "hello")
	e.waitEvents("a.txt created", func(evs []events.Event) bool {
		return len(evs) == 1 && evs[0].Type == events.FileCreated && evs[0].Path == "a.txt"
	})
	if err := os.WriteFile(e.path("a.txt"), []byte("hello again"), 0o644); err != nil {
		t.Fatal(err)
	}
	e.waitEvents("a.txt updated", func(evs []events.Event) bool {
		return len(evs) == 2 && evs[1].Type == events.FileUpdated && evs[1].SHA256 == sum("hello again")
	})
	if n := w.Counters().PollRounds.Load(); n == 0 {
		t.Error("PollRounds = 0 after changes were found by polling")
	}
}

// TestPoll_ListsOnlyChangedFolders: a round lists again only the folders
// whose mtime changed — still finding a file's new content, which does
// not change its folder — once their listing is old enough to trust.
func TestPoll_ListsOnlyChangedFolders(t *testing.T) {
	e := newEnv(t)
	for _, d := range []string{"a", "b", "c/d"} {
		if err := os.MkdirAll(e.path(d), 0o755); err != nil {
			t.Fatal(err)
		}
		e.write(d+"/x.txt", "x")
	}
	age(t, e.root)
	var mu sync.Mutex
	listed := map[string]int{}
	e.before = func(w *watch.Watcher) {
		w.SetReadFault(func(p string) error {
			if fi, err := os.Lstat(p); err == nil && fi.IsDir() {
				mu.Lock()
				listed[p]++
				mu.Unlock()
			}
			return nil
		})
	}
	took := func() []string {
		mu.Lock()
		defer mu.Unlock()
		var out []string
		for p := range listed {
			rel, _ := e.ws.Rel(p)
			out = append(out, rel)
		}
		clear(listed)
		slices.Sort(out)
		return out
	}
	e.start(watch.Options{Watch: watch.Poll, PollInterval: time.Hour})
	e.round() // the first lists every folder
	if got, want := took(), []string{"", "a", "b", "c", "c/d"}; !cmp.Equal(got, want) {
		t.Errorf("folders listed by the startup scan and the first round: %q, want %q", got, want)
	}
	e.round()
	if got := took(); len(got) != 0 {
		t.Errorf("a round with nothing changed listed %q, want nothing", got)
	}
	// Content changes: no folder changes, the file is found all the same.
	if err := os.WriteFile(e.path("c/d/x.txt"), []byte("changed"), 0o644); err != nil {
		t.Fatal(err)
	}
	e.round()
	e.waitEvents("c/d/x.txt updated", func(evs []events.Event) bool {
		return len(evs) == 1 && evs[0].Type == events.FileUpdated && evs[0].Path == "c/d/x.txt"
	})
	if got := took(); len(got) != 0 {
		t.Errorf("a round after a file's content changed listed %q, want nothing", got)
	}
	// A new file changes its folder: only that one is listed.
	if err := os.WriteFile(e.path("b/new.txt"), []byte("new"), 0o644); err != nil {
		t.Fatal(err)
	}
	e.round()
	e.waitEvents("b/new.txt created", func(evs []events.Event) bool {
		return len(evs) == 2 && evs[1].Type == events.FileCreated && evs[1].Path == "b/new.txt"
	})
	if got := slices.DeleteFunc(took(), func(p string) bool { return p == "b/new.txt" }); !cmp.Equal(got, []string{"b"}) {
		t.Errorf("a round after a file was created in b listed %q, want only b", got)
	}
}

// TestPoll_FolderTimesNotKept: where a folder's mtime does not change
// when an entry is added, the listing of every folder in every
// FullEvery-th round finds what the others missed, and from then on
// every folder is listed in every round.
func TestPoll_FolderTimesNotKept(t *testing.T) {
	e := newEnv(t)
	if err := os.Mkdir(e.path("d"), 0o755); err != nil {
		t.Fatal(err)
	}
	e.write("d/x.txt", "x")
	age(t, e.root)
	fi, err := os.Stat(e.path("d"))
	if err != nil {
		t.Fatal(err)
	}
	// hide adds a file to d the way such a file system would: d's mtime
	// stays as it was.
	hide := func(name, content string) {
		t.Helper()
		e.write("d/"+name, content)
		if err := os.Chtimes(e.path("d"), fi.ModTime(), fi.ModTime()); err != nil {
			t.Fatal(err)
		}
	}
	var logs logBuffer
	e.start(watch.Options{Watch: watch.Poll, PollInterval: time.Hour, Logger: logs.logger()})
	rounds := 1
	e.round()
	hide("y.txt", "y")
	e.write("marker.txt", "m")
	e.round()
	rounds++
	evs := e.waitEvents("marker.txt created", func(evs []events.Event) bool { return len(evs) >= 1 })
	if got := dump(evs); got != "\tfile.created marker.txt\n" {
		t.Fatalf("events after a round: %s, want marker.txt created only (d's listing is trusted)", got)
	}
	for ; rounds < watch.FullEvery; rounds++ {
		e.round()
	}
	e.waitEvents("d/y.txt created", func(evs []events.Event) bool {
		return len(evs) == 2 && evs[1].Type == events.FileCreated && evs[1].Path == "d/y.txt"
	})
	if got := logs.lines("folder times do not change"); len(got) != 1 {
		t.Errorf("log lines about folder times: %q, want one", got)
	}
	hide("z.txt", "z")
	e.round()
	e.waitEvents("d/z.txt created in the next round", func(evs []events.Event) bool {
		return len(evs) == 3 && evs[2].Type == events.FileCreated && evs[2].Path == "d/z.txt"
	})
}

// TestPoll_MoveIntoNewFolder: a file moved into a folder made since the
// last round is moved, paired by its inode, as is a folder moved into one.
func TestPoll_MoveIntoNewFolder(t *testing.T) {
	e := newEnv(t)
	e.write("a.txt", "a")
	if err := os.MkdirAll(e.path("d/sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	e.write("d/sub/b.txt", "b")
	e.start(watch.Options{Watch: watch.Poll, PollInterval: time.Hour})
	if err := os.MkdirAll(e.path("n/m"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(e.path("a.txt"), e.path("n/m/a.txt")); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(e.path("d"), e.path("n/d")); err != nil {
		t.Fatal(err)
	}
	e.round()
	evs := e.waitEvents("two moves", atLeast(2))
	got := make([]string, len(evs))
	for i, ev := range evs {
		got[i] = brief(ev).String()
	}
	slices.Sort(got)
	if want := []string{"file.moved a.txt -> n/m/a.txt", "file.moved d/sub/b.txt -> n/d/sub/b.txt"}; !cmp.Equal(got, want) {
		t.Errorf("events = %q, want %q", got, want)
	}
	e.write("n/m/c.txt", "c")
	e.round()
	e.waitEvents("n/m/c.txt created", func(evs []events.Event) bool {
		return len(evs) == 3 && evs[2].Type == events.FileCreated && evs[2].Path == "n/m/c.txt"
	})
	e.checkIndex()
}

// TestPoll_NextRound: rounds start an interval apart, or DutyFactor times
// their duration apart when that is longer, so that polling a big tree
// takes at most a tenth of a core.
func TestPoll_NextRound(t *testing.T) {
	for _, tt := range []struct{ interval, took, want time.Duration }{
		{time.Second, 10 * time.Millisecond, 990 * time.Millisecond},
		{time.Second, 100 * time.Millisecond, 900 * time.Millisecond},
		{time.Second, 400 * time.Millisecond, 3600 * time.Millisecond},
		{250 * time.Millisecond, 0, 250 * time.Millisecond},
	} {
		if got := watch.NextRound(tt.interval, tt.took); got != tt.want {
			t.Errorf("NextRound(%v, %v) = %v, want %v", tt.interval, tt.took, got, tt.want)
		}
	}
	if watch.DutyFactor != 10 {
		t.Errorf("DutyFactor = %d, want 10 (a tenth of a core, as the README says)", watch.DutyFactor)
	}
}
