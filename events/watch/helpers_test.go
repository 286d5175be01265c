package watch_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/filecast/filecast/events"
	"github.com/filecast/filecast/events/eventstest"
	"github.com/filecast/filecast/events/journal"
	"github.com/filecast/filecast/events/natsd"
	"github.com/filecast/filecast/events/natsd/natstest"
	"github.com/filecast/filecast/events/watch"
	"github.com/filecast/filecast/events/workspace"
)

func dump(evs []events.Event) string {
	var b strings.Builder
	for _, e := range evs {
		b.WriteString("\t")
		b.WriteString(brief(e).String())
		b.WriteString("\n")
	}
	return b.String()
}

// short is the part of an event a test compares.
type short struct {
	Type    events.Type
	Path    string
	OldPath string
	SHA256  string // compared only when the expectation gives content
	Size    int64
}

func (s short) String() string {
	out := string(s.Type) + " " + s.Path
	if s.OldPath != "" {
		out = string(s.Type) + " " + s.OldPath + " -> " + s.Path
	}
	return out
}

func brief(e events.Event) short {
	return short{Type: e.Type, Path: e.Path, OldPath: e.OldPath, SHA256: e.SHA256, Size: e.Size}
}

// wantBriefs fails t unless evs are want, in order, compared by brief.
func wantBriefs(t *testing.T, evs []events.Event, want ...short) {
	t.Helper()
	if len(evs) != len(want) {
		t.Errorf("%d events, want %d", len(evs), len(want))
	}
	for i := range min(len(evs), len(want)) {
		if got := brief(evs[i]); got != want[i] {
			t.Errorf("event %d: %v, want %v", i, got, want[i])
		}
	}
}

func sum(s string) string {
	h := sha256.Sum256([]byte(s))
	return hex.EncodeToString(h[:])
}

// run is one Watcher running in the background of a test.
type run struct {
	w      *watch.Watcher
	cancel context.CancelFunc
	done   chan error
}

// env is a workspace folder, its index file and its log: the journal on
// an embedded NATS server, as filecast runs them.
type env struct {
	t     testing.TB
	root  string // the workspace folder
	out   string // a folder outside the workspace, same file system
	index string
	ws    workspace.Workspace
	nats  *natsd.Server
	log   *journal.Journal
	app   watch.Appender // nil means log
	cur   *run
	// before, when set, is called with each new Watcher before it runs.
	before func(w *watch.Watcher)
}

func newEnv(t testing.TB) *env {
	t.Helper()
	base := t.TempDir()
	e := &env{t: t, root: filepath.Join(base, "ws"), out: filepath.Join(base, "out"), index: filepath.Join(base, "state", "index.json")}
	for _, d := range []string{e.root, e.out} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	ws, err := workspace.Parse("test=" + e.root)
	if err != nil {
		t.Fatal(err)
	}
	e.ws = ws
	e.root = ws.Dir
	if e.out, err = filepath.EvalSymlinks(e.out); err != nil {
		t.Fatal(err)
	}
	e.nats = natstest.Start(t)
	e.log = openJournalOn(t, e.nats, journal.Options{})
	t.Cleanup(e.stop)
	return e
}

// openJournalOn opens a journal on srv; it is closed when the test ends.
func openJournalOn(t testing.TB, srv *natsd.Server, opts journal.Options) *journal.Journal {
	t.Helper()
	j, err := journal.Open(context.Background(), srv.Conn(), opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = j.Close() })
	return j
}

// events returns every event of the workspace in the log.
func (e *env) events() []events.Event {
	e.t.Helper()
	return readAll(e.t, e.log, e.ws.Name)
}

// waitEvents waits until cond holds for the events in the log and returns
// them.
func (e *env) waitEvents(what string, cond func([]events.Event) bool) []events.Event {
	e.t.Helper()
	return waitLog(e.t, e.log, what, cond)
}

// readAll pages through every event of ws that l holds.
func readAll(t testing.TB, l watch.Log, ws string) []events.Event {
	t.Helper()
	return readAfter(t, l, ws, 0)
}

// readAfter pages through the events of ws that l holds after seq after.
func readAfter(t testing.TB, l watch.Log, ws string, after uint64) []events.Event {
	t.Helper()
	var out []events.Event
	for {
		evs, err := l.Read(context.Background(), ws, after, 1000)
		if err != nil {
			t.Fatalf("read the log: %v", err)
		}
		if len(evs) == 0 {
			return out
		}
		out = append(out, evs...)
		after = evs[len(evs)-1].Seq
	}
}

// waitLog waits until cond holds for the events of the workspace "test"
// in l, and returns them.
func waitLog(t testing.TB, l watch.Log, what string, cond func([]events.Event) bool) []events.Event {
	t.Helper()
	var evs []events.Event
	if !eventstest.Poll(eventstest.Timeout, func() bool { evs = readAll(t, l, "test"); return cond(evs) }) {
		t.Fatalf("timed out waiting for %s; events so far:\n%s", what, dump(evs))
	}
	return evs
}

func atLeast(n int) func([]events.Event) bool {
	return func(evs []events.Event) bool { return len(evs) >= n }
}

// start runs a new Watcher on the same index and waits until it is ready.
func (e *env) start(opts watch.Options) *watch.Watcher {
	e.t.Helper()
	if e.cur != nil {
		e.t.Fatal("start: a watcher is already running")
	}
	opts.Workspace = e.ws
	if opts.IndexPath == "" {
		opts.IndexPath = e.index
	}
	if opts.Settle == 0 {
		opts.Settle = 50 * time.Millisecond
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.NewTextHandler(testWriter{e.t}, &slog.HandlerOptions{Level: slog.LevelWarn}))
	}
	var app watch.Appender = e.log
	if e.app != nil {
		app = e.app
	}
	w, err := watch.New(opts, app)
	if err != nil {
		e.t.Fatal(err)
	}
	if e.before != nil {
		e.before(w)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &run{w: w, cancel: cancel, done: make(chan error, 1)}
	go func() { r.done <- w.Run(ctx) }()
	e.cur = r
	select {
	case <-w.Ready():
	case err := <-r.done:
		e.cur = nil
		e.t.Fatalf("Run returned before Ready: %v", err)
	case <-time.After(eventstest.Timeout):
		e.t.Fatal("watcher not ready after 10s")
	}
	return w
}

// stop cancels the running Watcher and checks that Run returned ctx.Err().
func (e *env) stop() {
	if e.cur == nil {
		return
	}
	r := e.cur
	e.cur = nil
	r.cancel()
	select {
	case err := <-r.done:
		if !errors.Is(err, context.Canceled) {
			e.t.Errorf("Run returned %v, want context.Canceled", err)
		}
	case <-time.After(eventstest.Timeout):
		e.t.Error("Run did not return 10s after cancel")
	}
}

func (e *env) path(p string) string {
	if rest, ok := strings.CutPrefix(p, "$OUT"); ok {
		return filepath.Join(e.out, filepath.FromSlash(rest))
	}
	return filepath.Join(e.root, filepath.FromSlash(p))
}

// write gives a file its content at once, as a save by rename does: the
// content is written to a file outside the workspace, then renamed onto
// p, so that the Watcher never sees it half-written. (The scripts write
// in place: see writeInPlace.)
func (e *env) write(p, content string) {
	e.t.Helper()
	f, err := os.CreateTemp(e.out, ".write-*")
	if err == nil {
		_, err = f.WriteString(content)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err == nil {
			err = os.Chmod(f.Name(), 0o644)
		}
		if err == nil {
			err = os.Rename(f.Name(), e.path(p))
		}
	}
	if err != nil {
		e.t.Fatal(err)
	}
}

// writeInPlace writes a file as os.WriteFile does — truncated (or
// created), then written — and returns how long the file stayed empty
// at most: a Watcher that reads it meanwhile may see it so.
func (e *env) writeInPlace(p, content string) time.Duration {
	e.t.Helper()
	start := time.Now()
	f, err := os.OpenFile(e.path(p), os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err == nil {
		_, err = f.WriteString(content)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
	}
	if err != nil {
		e.t.Fatal(err)
	}
	return time.Since(start)
}

// checkIndex compares the running Watcher's listing with the folder as it
// is now, and each file's version with the last event for its path.
func (e *env) checkIndex() {
	e.t.Helper()
	if e.cur == nil {
		return
	}
	ig, err := workspace.NewIgnorer(nil)
	if err != nil {
		e.t.Fatal(err)
	}
	evs := e.events()
	version := map[string]uint64{}
	for _, ev := range evs {
		version[ev.Path] = ev.Seq
	}
	var want []events.FileInfo
	err = filepath.WalkDir(e.root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, ok := e.ws.Rel(p)
		if !ok {
			return nil
		}
		if d.IsDir() {
			if ig.IgnoredDir(rel) {
				return fs.SkipDir
			}
			return nil
		}
		if ig.Ignored(rel, false) {
			return nil
		}
		real, err := filepath.EvalSymlinks(p)
		if err != nil {
			return nil
		}
		if _, inside := e.ws.Rel(real); !inside {
			return nil
		}
		fi, err := os.Stat(real)
		if err != nil || !fi.Mode().IsRegular() {
			return nil
		}
		data, err := os.ReadFile(real)
		if err != nil {
			return err
		}
		want = append(want, events.FileInfo{Path: rel, Size: int64(len(data)), SHA256: sum(string(data)), Version: version[rel]})
		return nil
	})
	if err != nil {
		e.t.Fatal(err)
	}
	sort.Slice(want, func(i, j int) bool { return want[i].Path < want[j].Path })
	// The index is updated just after Append returns: allow it a moment.
	var diff string
	var cursor uint64
	n := uint64(len(evs))
	eventstest.Poll(eventstest.Timeout, func() bool {
		var got []events.FileInfo
		got, cursor = e.cur.w.Files("")
		for i := range got {
			got[i].ModTime = time.Time{}
		}
		diff = cmp.Diff(want, got)
		return diff == "" && cursor == n
	})
	if diff != "" {
		e.t.Errorf("Files(\"\") does not match the folder (-want +got):\n%s", diff)
	}
	if cursor != n {
		e.t.Errorf("Files cursor = %d, want %d (the last event's seq)", cursor, n)
	}
}

// sink is an Appender that numbers events and keeps none, for benchmarks.
type sink struct{ seq atomic.Uint64 }

func (s *sink) Append(_ context.Context, ev events.Event) (events.Event, error) {
	ev.Seq = s.seq.Add(1)
	return ev, nil
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}
