package daemon_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/sourcegraph/conc"

	"github.com/filecast/filecast/events"
	"github.com/filecast/filecast/events/api"
	"github.com/filecast/filecast/events/daemon"
	"github.com/filecast/filecast/events/eventstest"
	"github.com/filecast/filecast/events/feed"
	"github.com/filecast/filecast/events/hub"
	"github.com/filecast/filecast/events/journal"
	"github.com/filecast/filecast/events/lock"
	"github.com/filecast/filecast/events/natsd"
	"github.com/filecast/filecast/events/remote"
	"github.com/filecast/filecast/events/watch"
	"github.com/filecast/filecast/events/workspace"
)

const wsName = "docs"

// stacks records the hubs a test's processes start, newest last.
type stacks struct {
	mu   sync.Mutex
	hubs []*hub.Hub
}

func (s *stacks) add(h *hub.Hub) {
	s.mu.Lock()
	s.hubs = append(s.hubs, h)
	s.mu.Unlock()
}

func (s *stacks) last() *hub.Hub {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.hubs) == 0 {
		return nil
	}
	return s.hubs[len(s.hubs)-1]
}

// become returns an Options.Become that starts the embedded stack the way
// cmd/filecast does: NATS, journal, hub, locks, one watcher, and the hub
// API.
func become(data string, ws workspace.Workspace, rec *stacks, log *slog.Logger) func(context.Context) (*daemon.Owner, error) {
	return func(ctx context.Context) (_ *daemon.Owner, err error) {
		var closers []func()
		closeAll := func() {
			for i := len(closers) - 1; i >= 0; i-- {
				closers[i]()
			}
		}
		defer func() {
			if err != nil {
				closeAll()
			}
		}()
		ns, err := natsd.Start(ctx, natsd.Options{StoreDir: filepath.Join(data, "jetstream"), Logger: log})
		if err != nil {
			return nil, err
		}
		closers = append(closers, func() { _ = ns.Close() })
		j, err := journal.Open(ctx, ns.Conn(), journal.Options{Logger: log})
		if err != nil {
			return nil, err
		}
		closers = append(closers, func() { _ = j.Close() })
		if err := j.Ensure(ctx, ws.Name); err != nil {
			return nil, err
		}
		locks, err := lock.Open(ctx, ns.Conn(), lock.Options{Logger: log})
		if err != nil {
			return nil, err
		}
		closers = append(closers, func() { _ = locks.Close() })
		h, err := hub.New(hub.Options{Workspaces: []workspace.Workspace{ws}, Log: j, Locks: locks, Logger: log})
		if err != nil {
			return nil, err
		}
		w, err := watch.New(watch.Options{
			Workspace: ws,
			IndexPath: filepath.Join(data, "index", ws.Name+".json"),
			Logger:    log,
		}, h)
		if err != nil {
			return nil, err
		}
		h.SetIndex(ws.Name, w)
		f := feed.New(h, feed.Options{Logger: log})
		closers = append(closers, f.Close)
		rec.add(h)
		return &daemon.Owner{
			Backend: h,
			Handler: api.New(h, f, api.Options{Logger: log}),
			Run: func(ctx context.Context) error {
				var wg conc.WaitGroup
				errs := make([]error, 3)
				wg.Go(func() { errs[0] = h.Run(ctx) })
				wg.Go(func() { errs[1] = w.Run(ctx) })
				wg.Go(func() { errs[2] = locks.Run(ctx, h) })
				wg.Wait()
				for _, err := range errs {
					if err != nil && !errors.Is(err, context.Canceled) {
						return err
					}
				}
				return nil
			},
			Close: closeAll,
		}, nil
	}
}

// connect is the Options.Connect that cmd/filecast uses: a remote client
// whose transport dials the socket. sent, if set, is told of every request
// the client sends.
func connect(sent func(*http.Request)) func(string) (daemon.Backend, error) {
	return func(socket string) (daemon.Backend, error) {
		var rt http.RoundTripper = daemon.Transport(socket)
		if sent != nil {
			rt = observed{rt, sent}
		}
		c, err := remote.New("http://filecast", remote.Options{HTTPClient: &http.Client{Transport: rt}})
		if err != nil {
			return nil, err
		}
		return c, nil
	}
}

// observed is a RoundTripper that reports each request as it goes out.
type observed struct {
	http.RoundTripper
	sent func(*http.Request)
}

func (o observed) RoundTrip(r *http.Request) (*http.Response, error) {
	o.sent(r)
	return o.RoundTripper.RoundTrip(r)
}

// env is one data folder and workspace shared by a test's processes.
type env struct {
	data string
	ws   workspace.Workspace
	hubs *stacks
	log  *slog.Logger
	sent func(*http.Request) // told of the requests clients send, if set
}

func newEnv(t testing.TB) *env {
	t.Helper()
	root := t.TempDir()
	return envAt(t, filepath.Join(root, "data"), filepath.Join(root, "ws"))
}

func envAt(t testing.TB, data, wsDir string) *env {
	t.Helper()
	if err := os.MkdirAll(wsDir, 0o755); err != nil {
		t.Fatal(err)
	}
	ws, err := workspace.Parse(wsName + "=" + wsDir)
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.DiscardHandler)
	if testing.Verbose() {
		log = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return &env{data: data, ws: ws, hubs: &stacks{}, log: log}
}

func (e *env) options(name string) daemon.Options {
	log := e.log.With("process", name)
	return daemon.Options{
		Dir:     e.data,
		Become:  become(e.data, e.ws, e.hubs, log),
		Connect: connect(e.sent),
		Logger:  log,
	}
}

// process is a Shared running in the test, as another process would.
type process struct {
	*daemon.Shared
	cancel context.CancelFunc
	exited chan struct{} // closed when Run has returned
	result error         // Run's result, once exited is closed
}

func start(t *testing.T, opts daemon.Options) *process {
	t.Helper()
	sh, err := daemon.NewShared(opts)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	p := &process{Shared: sh, cancel: cancel, exited: make(chan struct{})}
	go func() {
		defer close(p.exited)
		p.result = sh.Run(ctx)
	}()
	t.Cleanup(func() { _ = p.stop(t) })
	return p
}

// stop ends the process's Run and returns its result.
func (p *process) stop(t *testing.T) error {
	t.Helper()
	p.cancel()
	return p.wait(t, 15*time.Second)
}

// wait returns Run's result once it has returned by itself.
func (p *process) wait(t *testing.T, d time.Duration) error {
	t.Helper()
	select {
	case <-p.exited:
		return p.result
	case <-time.After(d):
		t.Fatalf("Run did not return within %v", d)
		return nil
	}
}

func (p *process) ready(t *testing.T) {
	t.Helper()
	select {
	case <-p.Ready():
	case <-p.exited:
		t.Fatalf("Run returned before ready: %v", p.result)
	case <-time.After(10 * time.Second):
		t.Fatal("not ready within 10s")
	}
}

// appendN appends n events through h and returns the last seq.
func appendN(ctx context.Context, h *hub.Hub, from, n int) (uint64, error) {
	var last uint64
	for i := from; i < from+n; i++ {
		ev, err := h.Append(ctx, events.Event{Workspace: wsName, Type: events.FileUpdated, Path: fmt.Sprintf("f%03d.txt", i)})
		if err != nil {
			return 0, err
		}
		last = ev.Seq
	}
	return last, nil
}

// collector follows the workspace (events.Follow, as the MCP server
// does) and records every delivered seq.
type collector struct {
	mu   sync.Mutex
	seqs []uint64
	err  chan error
}

func subscribe(ctx context.Context, src events.Source, after uint64) *collector {
	c := &collector{err: make(chan error, 1)}
	go func() {
		c.err <- events.Follow(ctx, src, wsName, after, func(ev events.Event) error {
			c.mu.Lock()
			c.seqs = append(c.seqs, ev.Seq)
			c.mu.Unlock()
			return nil
		}, events.FollowOptions{})
	}()
	return c
}

func (c *collector) got() []uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]uint64(nil), c.seqs...)
}

// waitFor waits until the last delivered seq is at least seq.
func (c *collector) waitFor(t *testing.T, seq uint64, d time.Duration) {
	t.Helper()
	eventstest.Within(t, d, fmt.Sprintf("seq %d delivered", seq), func() bool {
		select {
		case err := <-c.err:
			t.Fatalf("the follower returned %v after %v", err, c.got())
		default:
		}
		got := c.got()
		return len(got) > 0 && got[len(got)-1] >= seq
	})
}

func seqs(from, to uint64) []uint64 {
	var out []uint64
	for s := from; s <= to; s++ {
		out = append(out, s)
	}
	return out
}
