package watch_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/filecast/filecast/events"
	"github.com/filecast/filecast/events/watch"
	"github.com/filecast/filecast/events/workspace"
)

// recorder is an Appender that keeps every event and numbers them, and a
// watch.Log over them. Events before floor count as dropped by retention.
type recorder struct {
	mu    sync.Mutex
	evs   []events.Event
	fail  error
	floor uint64
	reads int // Read calls
}

var _ watch.Log = (*recorder)(nil)

// Read returns the recorded events after after, like journal.Read.
func (r *recorder) Read(ctx context.Context, ws string, after uint64, limit int) ([]events.Event, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.reads++
	last := uint64(len(r.evs))
	if after+1 < r.floor && after < last {
		return nil, fmt.Errorf("read: %w", events.ErrCursorExpired)
	}
	var out []events.Event
	for _, ev := range r.evs[min(after, last):] {
		if len(out) == limit {
			break
		}
		if ev.Workspace == ws {
			out = append(out, ev)
		}
	}
	return out, nil
}

// First returns the seq of the oldest event held, 0 if none.
func (r *recorder) First(context.Context, string) (uint64, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.evs) == 0 || r.floor > uint64(len(r.evs)) {
		return 0, nil
	}
	return max(r.floor, 1), nil
}

func (r *recorder) Append(ctx context.Context, ev events.Event) (events.Event, error) {
	if err := ctx.Err(); err != nil {
		return ev, err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.fail != nil {
		return ev, r.fail
	}
	ev.Seq = uint64(len(r.evs) + 1)
	r.evs = append(r.evs, ev)
	return ev, nil
}

func (r *recorder) events() []events.Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]events.Event(nil), r.evs...)
}

// waitFor polls until cond holds for the recorded events or 5 s pass.
func (r *recorder) waitFor(t testing.TB, what string, cond func([]events.Event) bool) []events.Event {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		evs := r.events()
		if cond(evs) {
			return evs
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s; events so far:\n%s", what, dump(evs))
		}
		time.Sleep(2 * time.Millisecond)
	}
}

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

type env struct {
	t     testing.TB
	root  string // the workspace folder
	out   string // a folder outside the workspace, same file system
	index string
	ws    workspace.Workspace
	rec   *recorder
	app   watch.Appender // nil means rec
	cur   *run
	// before, when set, is called with each new Watcher before it runs.
	before func(w *watch.Watcher)
}

func newEnv(t testing.TB) *env {
	t.Helper()
	base := t.TempDir()
	e := &env{t: t, root: filepath.Join(base, "ws"), out: filepath.Join(base, "out"), index: filepath.Join(base, "state", "index.json"), rec: &recorder{}}
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
	t.Cleanup(e.stop)
	return e
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
	var app watch.Appender = e.rec
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
	case <-time.After(10 * time.Second):
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
	case <-time.After(10 * time.Second):
		e.t.Error("Run did not return 10s after cancel")
	}
}

func (e *env) path(p string) string {
	if rest, ok := strings.CutPrefix(p, "$OUT"); ok {
		return filepath.Join(e.out, filepath.FromSlash(rest))
	}
	return filepath.Join(e.root, filepath.FromSlash(p))
}

func (e *env) write(p, content string) {
	e.t.Helper()
	if err := os.WriteFile(e.path(p), []byte(content), 0o644); err != nil {
		e.t.Fatal(err)
	}
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
	evs := e.rec.events()
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
	deadline := time.Now().Add(time.Second)
	for {
		got, cursor := e.cur.w.Files("")
		for i := range got {
			got[i].ModTime = time.Time{}
		}
		diff := cmp.Diff(want, got)
		n := uint64(len(evs))
		if diff == "" && cursor == n {
			return
		}
		if time.Now().After(deadline) {
			if diff != "" {
				e.t.Errorf("Files(\"\") does not match the folder (-want +got):\n%s", diff)
			}
			if cursor != n {
				e.t.Errorf("Files cursor = %d, want %d (the last event's seq)", cursor, n)
			}
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}
