//go:build linux

package watch_test

import (
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

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
	wantBriefs(t, evs, want...)
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

// TestInotify_SlowEmptyRead settles a new file and a removal once the
// queue is quiet even when the reader's read that finds the queue empty
// takes longer than the quiet wait (its thread descheduled): Settle (an
// hour) is not waited for.
func TestInotify_SlowEmptyRead(t *testing.T) {
	e := newEnv(t)
	e.write("old.txt", "old")
	e.before = func(w *watch.Watcher) { w.UseSlowEmptyReads(5 * time.Millisecond) }
	e.start(watch.Options{Settle: time.Hour})
	if err := os.WriteFile(e.path("new.txt"), []byte("new"), 0o644); err != nil {
		t.Fatal(err)
	}
	e.waitEvents("file.created new.txt", func(evs []events.Event) bool { return len(evs) == 1 })
	if err := os.Remove(e.path("old.txt")); err != nil {
		t.Fatal(err)
	}
	evs := e.waitEvents("file.deleted old.txt", func(evs []events.Event) bool { return len(evs) == 2 })
	want := []short{
		{Type: events.FileCreated, Path: "new.txt", SHA256: sum("new"), Size: 3},
		{Type: events.FileDeleted, Path: "old.txt"},
	}
	wantBriefs(t, evs, want...)
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
	wantBriefs(t, evs, want...)
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

// TestInotify_Remove reports a removed file once the queue is quiet, with
// no repository around: Settle (an hour) is not waited for. While git
// holds the index of the repository a file is in (sub/.git/index.lock),
// its removal waits out Settle instead, so that the file git puts back
// is one file.updated.
func TestInotify_Remove(t *testing.T) {
	e := newEnv(t)
	e.write("a.txt", "one")
	if err := os.Mkdir(e.path("sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	e.write("sub/b.txt", "two")
	e.write("c.txt", "three")
	e.write("marker.txt", "m")
	e.start(watch.Options{Settle: time.Hour})
	rm := func(p string) {
		t.Helper()
		if err := os.Remove(e.path(p)); err != nil {
			t.Fatal(err)
		}
	}
	rm("a.txt")
	e.waitEvents("file.deleted a.txt", func(evs []events.Event) bool { return len(evs) == 1 })

	if err := os.Mkdir(e.path("sub/.git"), 0o755); err != nil {
		t.Fatal(err)
	}
	lock := e.path("sub/.git/index.lock")
	if err := os.WriteFile(lock, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	rm("sub/b.txt")
	outOfTheWay(t, e, "marker.txt") // reported once the removal was looked at
	e.waitEvents("file.deleted marker.txt", func(evs []events.Event) bool { return len(evs) >= 2 })
	if err := os.WriteFile(e.path("sub/b.txt"), []byte("two, checked out"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(lock); err != nil {
		t.Fatal(err)
	}
	e.waitEvents("file.updated sub/b.txt", func(evs []events.Event) bool { return len(evs) >= 3 })

	rm("c.txt")
	evs := e.waitEvents("file.deleted c.txt", func(evs []events.Event) bool { return len(evs) >= 4 })
	want := []short{
		{Type: events.FileDeleted, Path: "a.txt"},
		{Type: events.FileDeleted, Path: "marker.txt"},
		{Type: events.FileUpdated, Path: "sub/b.txt", SHA256: sum("two, checked out"), Size: 16},
		{Type: events.FileDeleted, Path: "c.txt"},
	}
	got := make([]short, 0, len(evs))
	for _, ev := range evs {
		got = append(got, brief(ev))
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("events (-want +got):\n%s", diff)
	}
	e.checkIndex()
}

// outOfTheWay renames p out of the workspace: its file.deleted comes once
// the queue is quiet (or after PairWindow, never Settle), after whatever
// removal waited for the same quiet was reported or held.
func outOfTheWay(t *testing.T, e *env, p string) {
	t.Helper()
	if err := os.Rename(e.path(p), e.path("$OUT/"+p)); err != nil {
		t.Fatal(err)
	}
}

// TestInotify_RemoveReplaced holds removals once a removal reported at
// once was followed by the creation of its path within Settle: the
// workspace replaces files by removal and creation, without a lock to
// say so.
func TestInotify_RemoveReplaced(t *testing.T) {
	e := newEnv(t)
	e.write("a.txt", "one")
	e.write("b.txt", "two")
	e.write("marker.txt", "m")
	e.start(watch.Options{Settle: time.Hour})
	if err := os.Remove(e.path("a.txt")); err != nil {
		t.Fatal(err)
	}
	e.waitEvents("file.deleted a.txt", func(evs []events.Event) bool { return len(evs) == 1 })
	if err := os.WriteFile(e.path("a.txt"), []byte("one again"), 0o644); err != nil {
		t.Fatal(err)
	}
	e.waitEvents("file.created a.txt", func(evs []events.Event) bool { return len(evs) == 2 })
	if err := os.Remove(e.path("b.txt")); err != nil {
		t.Fatal(err)
	}
	outOfTheWay(t, e, "marker.txt")
	evs := e.waitEvents("file.deleted marker.txt", func(evs []events.Event) bool { return len(evs) >= 3 })
	want := []short{
		{Type: events.FileDeleted, Path: "a.txt"},
		{Type: events.FileCreated, Path: "a.txt", SHA256: sum("one again"), Size: 9},
		{Type: events.FileDeleted, Path: "marker.txt"},
	}
	got := make([]short, 0, len(evs))
	for _, ev := range evs {
		got = append(got, brief(ev))
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("events (-want +got); b.txt's removal must wait out Settle:\n%s", diff)
	}
}

// TestInotify_GitCheckout runs a real git checkout that modifies, adds
// and deletes files under a Watcher that reports removals once the queue
// is quiet: git's index lock holds them, so each modified file is one
// file.updated (never file.deleted and file.created), each added one one
// file.created, each deleted one one file.deleted. With a Quiet of a
// nanosecond nearly every removal would be split from its creation were
// it not held.
func TestInotify_GitCheckout(t *testing.T) {
	if _, err := exec.LookPath("git"); err != nil {
		t.Skip("SKIPPED: git is not installed; the checkout cannot be tested")
	}
	for _, q := range []time.Duration{time.Nanosecond, watch.DefaultQuiet} {
		t.Run("quiet "+q.String(), func(t *testing.T) { gitCheckout(t, q) })
	}
}

func gitCheckout(t *testing.T, quiet time.Duration) {
	e := newEnv(t)
	git := func(args ...string) {
		t.Helper()
		cmd := exec.Command("git", append([]string{"-C", e.root}, args...)...)
		cmd.Env = append(os.Environ(), "GIT_CONFIG_NOSYSTEM=1", "GIT_CONFIG_GLOBAL="+os.DevNull,
			"GIT_AUTHOR_NAME=t", "GIT_AUTHOR_EMAIL=t@localhost", "GIT_COMMITTER_NAME=t", "GIT_COMMITTER_EMAIL=t@localhost")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("git %v: %v\n%s", args, err, out)
		}
	}
	put := func(p, content string) {
		t.Helper()
		full := e.path(p)
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	const modified, added, deleted = 300, 40, 40
	want := map[string]short{}
	git("init", "-q")
	git("symbolic-ref", "HEAD", "refs/heads/one")
	for i := range modified {
		put(fmt.Sprintf("d%d/m%03d.txt", i%4, i), fmt.Sprintf("one %d\n", i))
	}
	for i := range deleted {
		put(fmt.Sprintf("d%d/x%03d.txt", i%4, i), fmt.Sprintf("old %d\n", i))
		want[fmt.Sprintf("d%d/x%03d.txt", i%4, i)] = short{Type: events.FileDeleted, Path: fmt.Sprintf("d%d/x%03d.txt", i%4, i)}
	}
	put("same.txt", "same\n")
	git("add", "-A")
	git("commit", "-q", "-m", "one")
	git("checkout", "-q", "-b", "two")
	for i := range modified {
		p, c := fmt.Sprintf("d%d/m%03d.txt", i%4, i), fmt.Sprintf("two %d, longer\n", i)
		put(p, c)
		want[p] = short{Type: events.FileUpdated, Path: p, SHA256: sum(c), Size: int64(len(c))}
	}
	for i := range added {
		p, c := fmt.Sprintf("d%d/a%03d.txt", i%4, i), fmt.Sprintf("new %d\n", i)
		put(p, c)
		want[p] = short{Type: events.FileCreated, Path: p, SHA256: sum(c), Size: int64(len(c))}
	}
	for i := range deleted {
		if err := os.Remove(e.path(fmt.Sprintf("d%d/x%03d.txt", i%4, i))); err != nil {
			t.Fatal(err)
		}
	}
	git("add", "-A")
	git("commit", "-q", "-m", "two")
	git("checkout", "-q", "one")

	e.start(watch.Options{Settle: time.Second, Quiet: quiet})
	git("checkout", "-q", "two")
	e.write("marker.txt", "m")
	evs := e.waitEvents("an event for every changed path, and the marker", func(evs []events.Event) bool {
		seen := map[string]bool{}
		for _, ev := range evs {
			seen[ev.Path] = true
		}
		for p := range want {
			if !seen[p] {
				return false
			}
		}
		return seen["marker.txt"]
	})
	// Anything that came after its path's one event is caught by the
	// index check below (each file's version must be its last event).
	got := map[string][]short{}
	for _, ev := range evs {
		if ev.Path != "marker.txt" {
			got[ev.Path] = append(got[ev.Path], brief(ev))
		}
	}
	bad := 0
	for p, x := range want {
		if g := got[p]; len(g) != 1 || g[0] != x {
			if bad++; bad <= 10 {
				t.Errorf("%s: %v, want one %v", p, g, x)
			}
		}
		delete(got, p)
	}
	if bad > 10 {
		t.Errorf("... %d changed paths in all were not reported as one event of their kind", bad)
	}
	for p, g := range got {
		t.Errorf("%s: %v, want nothing (unchanged)", p, g)
	}
	e.checkIndex()
}
