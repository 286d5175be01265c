// Package hubtest runs a complete embedded hub for tests: an embedded NATS
// server with its JetStream store, the journal, the hub, its lock manager
// and a watcher per workspace, all on real folders. It is what the hub,
// api and remote tests exercise writes and locks against.
//
//	st := hubtest.Start(t, hubtest.Options{})       // one workspace "docs"
//	ev, err := st.Hub.WriteFile(ctx, events.WriteRequest{Workspace: "docs", Path: "a.md", Content: b})
//	next := st.Next(t, ev.Seq)                       // the next event in the log
//
// Everything stops when the test ends, or earlier with Stop; Start again on
// the same Data folder resumes the same log, locks and index.
package hubtest

import (
	"context"
	"errors"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/sourcegraph/conc"

	"github.com/filecast/filecast/events"
	"github.com/filecast/filecast/events/content"
	"github.com/filecast/filecast/events/hub"
	"github.com/filecast/filecast/events/journal"
	"github.com/filecast/filecast/events/lock"
	"github.com/filecast/filecast/events/natsd"
	"github.com/filecast/filecast/events/watch"
	"github.com/filecast/filecast/events/workspace"
)

var _ hub.Expecter = (*watch.Watcher)(nil)

// Timeout bounds every wait of the package.
const Timeout = 10 * time.Second

// Settle is the watchers' settle time: long enough that a file written
// with os.WriteFile on a loaded test machine is one event, not two.
const Settle = 50 * time.Millisecond

// Options configures Start; zero fields take the defaults.
type Options struct {
	Names  []string // workspace names; default "docs"
	Dirs   []string // their folders; default a t.TempDir() each
	Data   string   // the state folder (JetStream store, indexes); default a t.TempDir()
	NoLock bool     // run without a lock manager
	// SerialAppend hands the watchers the hub as a plain watch.Appender,
	// so they append one event at a time instead of in batches.
	SerialAppend bool
	// MaxStore and MinFree are the embedded server's (natsd.Options);
	// the journal asks its Room before every append, as filecast does.
	MaxStore, MinFree int64
	// Contents, when set, opens a content store with these options
	// (Stack.Contents) for the hub and the watchers: changes then carry
	// diffs.
	Contents *content.Options
	// Watch and PollInterval are the watchers' (watch.Options): how they
	// learn of changes; default Auto.
	Watch        watch.Kind
	PollInterval time.Duration
}

// Stack is a running embedded hub.
type Stack struct {
	Hub      *hub.Hub
	Locks    *lock.Manager // nil with Options.NoLock
	Journal  *journal.Journal
	Contents *content.Store // nil without Options.Contents
	NATS     *natsd.Server
	Watchers map[string]*watch.Watcher
	Dirs     map[string]string // workspace folders by name
	Data     string

	cancel  context.CancelFunc
	wg      conc.WaitGroup
	stopped bool
}

// Start opens and runs a stack and waits until the hub, the lock manager
// and every watcher are ready. It stops when the test ends.
func Start(t testing.TB, opts Options) *Stack {
	t.Helper()
	if len(opts.Names) == 0 {
		opts.Names = []string{"docs"}
	}
	if opts.Data == "" {
		opts.Data = t.TempDir()
	}
	ctx, cancel := context.WithTimeout(context.Background(), Timeout)
	defer cancel()
	s := &Stack{Watchers: map[string]*watch.Watcher{}, Dirs: map[string]string{}, Data: opts.Data}
	var wss []workspace.Workspace
	for i, name := range opts.Names {
		dir := ""
		if i < len(opts.Dirs) {
			dir = opts.Dirs[i]
		} else {
			dir = t.TempDir()
		}
		real, err := filepath.EvalSymlinks(dir)
		if err != nil {
			t.Fatalf("hubtest: %v", err)
		}
		wss = append(wss, workspace.Workspace{Name: name, Dir: real})
		s.Dirs[name] = real
	}
	var err error
	s.NATS, err = natsd.Start(ctx, natsd.Options{StoreDir: filepath.Join(opts.Data, "jetstream"), MaxStore: opts.MaxStore, MinFree: opts.MinFree})
	if err != nil {
		t.Fatalf("hubtest: start nats: %v", err)
	}
	t.Cleanup(s.Stop)
	s.Journal, err = journal.Open(ctx, s.NATS.Conn(), journal.Options{Room: s.NATS.Room})
	if err != nil {
		t.Fatalf("hubtest: open journal: %v", err)
	}
	for _, ws := range wss {
		if err := s.Journal.Ensure(ctx, ws.Name); err != nil {
			t.Fatalf("hubtest: ensure %s: %v", ws.Name, err)
		}
	}
	hopts := hub.Options{Workspaces: wss, Log: s.Journal}
	if opts.Contents != nil {
		copts := *opts.Contents
		copts.Room = s.NATS.Room
		s.Contents, err = content.Open(ctx, s.NATS.Conn(), copts)
		if err != nil {
			t.Fatalf("hubtest: open content store: %v", err)
		}
		hopts.Contents = s.Contents
	}
	if !opts.NoLock {
		s.Locks, err = lock.Open(ctx, s.NATS.Conn(), lock.Options{})
		if err != nil {
			t.Fatalf("hubtest: open locks: %v", err)
		}
		hopts.Locks = s.Locks
	}
	s.Hub, err = hub.New(hopts)
	if err != nil {
		t.Fatalf("hubtest: new hub: %v", err)
	}
	var app watch.Appender = s.Hub
	if opts.SerialAppend {
		app = struct{ watch.Appender }{s.Hub}
	}
	for _, ws := range wss {
		wopts := watch.Options{
			Workspace:    ws,
			IndexPath:    filepath.Join(opts.Data, "index", ws.Name+".json"),
			Settle:       Settle,
			Leftover:     hub.IsTempName,
			Watch:        opts.Watch,
			PollInterval: opts.PollInterval,
		}
		if s.Contents != nil {
			wopts.Contents = s.Contents.Workspace(ws.Name)
		}
		w, err := watch.New(wopts, app)
		if err != nil {
			t.Fatalf("hubtest: watch %s: %v", ws.Name, err)
		}
		s.Hub.SetIndex(ws.Name, w)
		s.Watchers[ws.Name] = w
	}

	runCtx, stop := context.WithCancel(context.Background())
	s.cancel = stop
	run := func(name string, f func(context.Context) error) {
		s.wg.Go(func() {
			if err := f(runCtx); err != nil && !errors.Is(err, context.Canceled) {
				t.Errorf("hubtest: %s: %v", name, err)
			}
		})
	}
	run("hub", s.Hub.Run)
	if s.Locks != nil {
		run("locks", func(ctx context.Context) error { return s.Locks.Run(ctx, s.Hub) })
	}
	for name, w := range s.Watchers {
		run("watch "+name, w.Run)
	}
	waits := []<-chan struct{}{s.Hub.Ready()}
	if s.Locks != nil {
		waits = append(waits, s.Locks.Ready())
	}
	for _, w := range s.Watchers {
		waits = append(waits, w.Ready())
	}
	for _, ch := range waits {
		select {
		case <-ch:
		case <-ctx.Done():
			t.Fatal("hubtest: the stack did not get ready")
		}
	}
	return s
}

// Stop stops the loops and closes everything; it is safe to call twice.
func (s *Stack) Stop() {
	if s.stopped {
		return
	}
	s.stopped = true
	if s.cancel != nil {
		s.cancel()
		s.wg.Wait()
	}
	if s.Locks != nil {
		_ = s.Locks.Close()
	}
	if s.Contents != nil {
		_ = s.Contents.Close()
	}
	if s.Journal != nil {
		_ = s.Journal.Close()
	}
	if s.NATS != nil {
		_ = s.NATS.Close()
	}
}

// Path returns the file-system path of rel in workspace ws.
func (s *Stack) Path(ws, rel string) string {
	return filepath.Join(s.Dirs[ws], filepath.FromSlash(rel))
}

// Head returns the seq of the newest event of ws.
func (s *Stack) Head(t testing.TB, ws string) uint64 {
	t.Helper()
	// The journal's head, not the hub's: the hub learns of an append a
	// moment later, from its follower.
	head, err := s.Journal.Head(context.Background(), ws)
	if err != nil {
		t.Fatalf("hubtest: head of %s: %v", ws, err)
	}
	return head
}

// Next waits for the first event of ws after seq whose type is one of
// types (file events when none) and returns it.
func (s *Stack) Next(t testing.TB, ws string, after uint64, types ...events.Type) events.Event {
	t.Helper()
	if len(types) == 0 {
		types = events.FileTypes
	}
	ctx, cancel := context.WithTimeout(context.Background(), Timeout)
	defer cancel()
	for {
		page, err := s.Hub.Changes(ctx, ws, after, 100, time.Second)
		if err != nil {
			t.Fatalf("hubtest: no event of %v after %d: %v", types, after, err)
		}
		for _, ev := range page.Events {
			if slices.Contains(types, ev.Type) {
				return ev
			}
		}
		after = page.Next
	}
}
