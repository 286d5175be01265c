package watch_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fsnotify/fsnotify"
	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/filecast/filecast/events"
	"github.com/filecast/filecast/events/eventstest"
	"github.com/filecast/filecast/events/watch"
	"github.com/filecast/filecast/events/workspace"
)

func TestNew_Errors(t *testing.T) {
	e := newEnv(t)
	tests := []struct {
		name string
		opts watch.Options
		app  watch.Appender
		want error
	}{
		{"no appender", watch.Options{Workspace: e.ws}, nil, watch.ErrNoAppender},
		{"index inside the workspace", watch.Options{Workspace: e.ws, IndexPath: filepath.Join(e.root, "state", "index.json")}, e.log, watch.ErrIndexInWorkspace},
		{"relative folder", watch.Options{Workspace: workspace.Workspace{Name: "x", Dir: "rel"}}, e.log, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := watch.New(tt.opts, tt.app)
			if err == nil {
				t.Fatal("New succeeded, want an error")
			}
			if tt.want != nil && !errors.Is(err, tt.want) {
				t.Errorf("New error = %v, want %v", err, tt.want)
			}
		})
	}
}

func TestWatcher_RunTwice(t *testing.T) {
	e := newEnv(t)
	w := e.start(watch.Options{})
	if err := w.Run(context.Background()); !errors.Is(err, watch.ErrRunning) {
		t.Errorf("second Run = %v, want ErrRunning", err)
	}
}

func TestWatcher_FilesAndStat(t *testing.T) {
	e := newEnv(t)
	for _, d := range []string{"docs/sub", "docsx"} {
		if err := os.MkdirAll(e.path(d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for p, c := range map[string]string{"b.txt": "bb", "a.txt": "a", "docs/z.md": "z", "docs/sub/y.md": "yy", "docsx/x.md": "x"} {
		e.write(p, c)
	}
	w := e.start(watch.Options{})

	paths := func(fs []events.FileInfo) []string {
		var out []string
		for _, f := range fs {
			out = append(out, f.Path)
		}
		return out
	}
	tests := []struct {
		prefix string
		want   []string
	}{
		{"", []string{"a.txt", "b.txt", "docs/sub/y.md", "docs/z.md", "docsx/x.md"}},
		{"/", []string{"a.txt", "b.txt", "docs/sub/y.md", "docs/z.md", "docsx/x.md"}},
		{"docs", []string{"docs/sub/y.md", "docs/z.md"}},
		{"docs/", []string{"docs/sub/y.md", "docs/z.md"}},
		{"docs/sub", []string{"docs/sub/y.md"}},
		{"docs/z.md", []string{"docs/z.md"}},
		{"doc", nil},
		{"nothing", nil},
		{"../etc", nil},
	}
	for _, tt := range tests {
		got, cursor := w.Files(tt.prefix)
		if diff := cmp.Diff(tt.want, paths(got)); diff != "" {
			t.Errorf("Files(%q) (-want +got):\n%s", tt.prefix, diff)
		}
		if cursor != 0 {
			t.Errorf("Files(%q) cursor = %d before any event, want 0", tt.prefix, cursor)
		}
	}

	fi, ok := w.Stat("./docs/sub/../z.md")
	want := events.FileInfo{Path: "docs/z.md", Size: 1, SHA256: sum("z")}
	if !ok {
		t.Fatal("Stat(docs/z.md) not found")
	}
	if diff := cmp.Diff(want, fi, cmpopts.IgnoreFields(events.FileInfo{}, "ModTime")); diff != "" {
		t.Errorf("Stat (-want +got):\n%s", diff)
	}
	if st, _ := os.Stat(e.path("docs/z.md")); !fi.ModTime.Equal(st.ModTime()) {
		t.Errorf("Stat ModTime = %v, want %v", fi.ModTime, st.ModTime())
	}
	for _, p := range []string{"nope.txt", "docs", "../x", ""} {
		if _, ok := w.Stat(p); ok {
			t.Errorf("Stat(%q) found something", p)
		}
	}

	e.write("docs/z.md", "zzz")
	evs := e.waitEvents("file.updated docs/z.md", func(evs []events.Event) bool { return len(evs) == 1 })
	eventstest.Eventually(t, "the index to apply it", func() bool { _, c := w.Files(""); return c == evs[0].Seq })
	fi, _ = w.Stat("docs/z.md")
	if fi.Version != evs[0].Seq || fi.SHA256 != sum("zzz") || fi.Size != 3 {
		t.Errorf("after update Stat = %+v, want version %d and the new content", fi, evs[0].Seq)
	}
	ev := evs[0]
	if ev.Workspace != "test" || ev.Actor != events.ActorFS || len(ev.ID) != 26 || ev.Time.Location() != time.UTC || time.Since(ev.Time) > time.Minute {
		t.Errorf("event fields wrong: %+v", ev)
	}
}

func TestWatcher_IndexPersisted(t *testing.T) {
	e := newEnv(t)
	e.write("a.txt", "a")
	e.start(watch.Options{})
	e.stop()
	data, err := os.ReadFile(e.index)
	if err != nil {
		t.Fatalf("index not saved on exit: %v", err)
	}
	if !bytes.Contains(data, []byte(`"a.txt"`)) || !bytes.Contains(data, []byte(sum("a"))) {
		t.Errorf("saved index lacks a.txt: %s", data)
	}
	if entries, _ := os.ReadDir(filepath.Dir(e.index)); len(entries) != 1 {
		t.Errorf("index folder holds %d files, want only the index (no temp files left)", len(entries))
	}

	// Saved while running, too, within about half a second of a change.
	e.start(watch.Options{})
	e.write("b.txt", "b")
	eventstest.Eventually(t, "b.txt saved", func() bool {
		data, _ := os.ReadFile(e.index)
		return bytes.Contains(data, []byte(`"b.txt"`))
	})
}

func TestWatcher_CorruptIndexIndexesSilently(t *testing.T) {
	e := newEnv(t)
	e.write("a.txt", "a")
	if err := os.MkdirAll(filepath.Dir(e.index), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(e.index, []byte("{not json"), 0o600); err != nil {
		t.Fatal(err)
	}
	w := e.start(watch.Options{})
	if _, ok := w.Stat("a.txt"); !ok {
		t.Error("a.txt not indexed")
	}
	e.write("m.txt", "m")
	evs := e.waitEvents("marker", func(evs []events.Event) bool { return len(evs) >= 1 })
	if evs[0].Path != "m.txt" {
		t.Errorf("first event = %v, want the marker", brief(evs[0]))
	}
}

func TestWatcher_AppendFailureStopsRun(t *testing.T) {
	e := newEnv(t)
	fail := errors.New("log is full")
	w, err := watch.New(watch.Options{Workspace: e.ws, Settle: time.Millisecond}, failing{fail})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- w.Run(context.Background()) }()
	<-w.Ready()
	e.write("a.txt", "a")
	select {
	case err := <-done:
		if !errors.Is(err, fail) {
			t.Errorf("Run = %v, want the Append error", err)
		}
	case <-time.After(eventstest.Timeout):
		t.Fatal("Run did not return after Append failed")
	}
}

// A lost notification (an overflow) makes the watcher rescan and report
// what it missed.
func TestWatcher_OverflowRescans(t *testing.T) {
	e := newEnv(t)
	for _, d := range []string{"d", "keep"} {
		if err := os.Mkdir(e.path(d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	e.write("d/changed.txt", "old")
	e.write("d/gone.txt", "gone")
	e.write("d/moved.txt", "moved")
	e.write("keep/k.txt", "k")
	w := e.start(watch.Options{})
	ctx := context.Background()
	if err := w.DropWatch(ctx, "d", false); err != nil {
		t.Fatal(err)
	}
	// Missed by the watcher:
	e.write("d/changed.txt", "new")
	if err := os.Remove(e.path("d/gone.txt")); err != nil {
		t.Fatal(err)
	}
	e.write("d/created.txt", "c")
	if err := os.Rename(e.path("d/moved.txt"), e.path("d/renamed.txt")); err != nil {
		t.Fatal(err)
	}
	if err := w.InjectError(ctx, fmt.Errorf("read: %w", fsnotify.ErrEventOverflow)); err != nil {
		t.Fatal(err)
	}
	want := []short{
		{Type: events.FileMoved, OldPath: "d/moved.txt", Path: "d/renamed.txt"},
		{Type: events.FileUpdated, Path: "d/changed.txt"},
		{Type: events.FileCreated, Path: "d/created.txt"},
		{Type: events.FileDeleted, Path: "d/gone.txt"},
	}
	evs := e.waitEvents("rescan events", func(evs []events.Event) bool { return len(evs) >= len(want) })
	if diff := cmp.Diff(want, shorts(evs), cmpopts.IgnoreFields(short{}, "SHA256", "Size")); diff != "" {
		t.Errorf("rescan events (-want +got):\n%s", diff)
	}
	// The folder is watched again.
	e.write("d/after.txt", "after")
	evs = e.waitEvents("d/after.txt", func(evs []events.Event) bool { return len(evs) > len(want) })
	if got := brief(evs[len(want)]); got.Path != "d/after.txt" || got.Type != events.FileCreated {
		t.Errorf("after the rescan got %v, want file.created d/after.txt", got)
	}
	e.checkIndex()
}

// A folder that could not be watched (the inotify limit) is rescanned
// periodically, so its changes are still reported.
func TestWatcher_UnwatchedFolderIsPolled(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	if err := os.Mkdir(e.path("d"), 0o755); err != nil {
		t.Fatal(err)
	}
	w := e.start(watch.Options{})
	if err := w.DropWatch(context.Background(), "d", true); err != nil {
		t.Fatal(err)
	}
	e.write("d/a.txt", "a")
	// The periodic round, now (TestWatcher_Settle checks that it runs
	// every PollEvery).
	if err := w.Poll(t.Context()); err != nil {
		t.Fatal(err)
	}
	evs := e.waitEvents("d/a.txt", func(evs []events.Event) bool { return len(evs) >= 1 })
	if got := brief(evs[0]); got.Path != "d/a.txt" || got.Type != events.FileCreated {
		t.Errorf("got %v, want file.created d/a.txt", got)
	}
}

func TestWatcher_BigFile(t *testing.T) {
	e := newEnv(t)
	big := bytes.Repeat([]byte("0123456789abcdef"), (3<<20)/16)
	if err := os.WriteFile(e.path("big.bin"), big, 0o644); err != nil {
		t.Fatal(err)
	}
	e.start(watch.Options{})
	big[0] = 'X'
	// Written over in place, without a truncation (see TestWatcher_Settle
	// for that).
	f, err := os.OpenFile(e.path("big.bin"), os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write(big); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	h := sha256.Sum256(big)
	want := short{Type: events.FileUpdated, Path: "big.bin", SHA256: hex.EncodeToString(h[:]), Size: int64(len(big))}
	evs := e.waitEvents("big.bin updated", func(evs []events.Event) bool { return len(evs) >= 1 })
	e.write("m.txt", "m")
	evs = e.waitEvents("marker", func(evs []events.Event) bool { return len(evs) >= 2 })
	if diff := cmp.Diff([]short{want, {Type: events.FileCreated, Path: "m.txt", SHA256: sum("m"), Size: 1}}, shorts(evs)); diff != "" {
		t.Errorf("events (-want +got):\n%s", diff)
	}
}

func TestWatcher_Progress(t *testing.T) {
	if testing.Short() {
		t.Skip("creates 10,000 files")
	}
	t.Parallel()
	e := newEnv(t)
	for i := range 10001 {
		d := e.path(fmt.Sprintf("d%02d", i%50))
		if i < 50 {
			if err := os.Mkdir(d, 0o755); err != nil {
				t.Fatal(err)
			}
		}
		if err := os.WriteFile(filepath.Join(d, fmt.Sprintf("f%d", i)), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	var buf syncBuffer
	w := e.start(watch.Options{Progress: &buf})
	if got, want := buf.String(), "filecast: indexing test: 10000 files\n"; got != want {
		t.Errorf("progress = %q, want %q", got, want)
	}
	if files, _ := w.Files(""); len(files) != 10001 {
		t.Errorf("indexed %d files, want 10001", len(files))
	}
}

type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func shorts(evs []events.Event) []short {
	out := make([]short, len(evs))
	for i, e := range evs {
		out[i] = brief(e)
	}
	return out
}

// BenchmarkWatcher_WriteToEvent measures the time from os.WriteFile of a
// known file to the Append of its file.updated.
func BenchmarkWatcher_WriteToEvent(b *testing.B) {
	e := newEnv(b)
	e.write("a.txt", "start")
	app := &chanAppender{ch: make(chan events.Event, 16)}
	w, err := watch.New(watch.Options{Workspace: e.ws}, app)
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	defer func() { cancel(); <-done }()
	<-w.Ready()
	path := e.path("a.txt")
	contents := [2][]byte{[]byte("content number one"), []byte("content number two")}
	sums := [2]string{sum(string(contents[0])), sum(string(contents[1]))}
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		if err := os.WriteFile(path, contents[i%2], 0o644); err != nil {
			b.Fatal(err)
		}
		for ev := range app.ch {
			if ev.SHA256 == sums[i%2] {
				break
			}
		}
	}
}

// failing is an Appender whose log fails every append.
type failing struct{ err error }

func (f failing) Append(_ context.Context, ev events.Event) (events.Event, error) { return ev, f.err }

type chanAppender struct {
	seq uint64
	ch  chan events.Event
}

func (a *chanAppender) Append(ctx context.Context, ev events.Event) (events.Event, error) {
	a.seq++
	ev.Seq = a.seq
	select {
	case a.ch <- ev:
	case <-ctx.Done():
		return ev, ctx.Err()
	}
	return ev, nil
}
