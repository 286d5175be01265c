package relay_test

import (
	"context"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/sourcegraph/conc"

	"github.com/filecast/filecast/events"
	"github.com/filecast/filecast/events/eventstest"
	"github.com/filecast/filecast/events/hub"
	"github.com/filecast/filecast/events/journal"
	"github.com/filecast/filecast/events/lock"
	"github.com/filecast/filecast/events/natsd"
	"github.com/filecast/filecast/events/natsd/natstest"
	"github.com/filecast/filecast/events/relay"
	"github.com/filecast/filecast/events/watch"
	"github.com/filecast/filecast/events/workspace"
)

// timeout bounds every wait of the tests.
const timeout = 10 * time.Second

// node is one hub process: its own NATS connection, journal and hub, and
// a relay client set on every workspace.
type node struct {
	nc      *nats.Conn
	hub     *hub.Hub
	locks   *lock.Manager
	watcher *watch.Watcher
	client  *relay.Client
	dir     string
}

// run runs f until the test ends, failing the test if it returns an error
// other than a cancellation.
func run(t *testing.T, name string, f func(context.Context) error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	var wg conc.WaitGroup
	wg.Go(func() {
		if err := f(ctx); err != nil && !errors.Is(err, context.Canceled) {
			t.Errorf("%s: %v", name, err)
		}
	})
	t.Cleanup(func() { cancel(); wg.Wait() })
}

// connect opens a connection of its own to the cluster, closed when the
// test ends.
func connect(t testing.TB, c *natstest.C) *nats.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	srv, err := natsd.Start(ctx, natsd.Options{URL: c.URL(0)})
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	t.Cleanup(func() { _ = srv.Close() })
	return srv.Conn()
}

// startHub starts a hub serving workspace ws from its own folder on the
// cluster. With watching, it also runs a lock manager, a watcher and
// relay.Serve: it is the hub that watches ws.
func startHub(t *testing.T, c *natstest.C, ws string, watching bool) *node {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	dir, err := filepath.EvalSymlinks(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	n := &node{nc: connect(t, c), dir: dir}
	j, err := journal.Open(ctx, n.nc, journal.Options{})
	if err != nil {
		t.Fatalf("open journal: %v", err)
	}
	t.Cleanup(func() { _ = j.Close() })
	if err := j.Ensure(ctx, ws); err != nil {
		t.Fatalf("ensure %s: %v", ws, err)
	}
	w := workspace.Workspace{Name: ws, Dir: dir}
	hopts := hub.Options{Workspaces: []workspace.Workspace{w}, Log: j}
	if watching {
		n.locks, err = lock.Open(ctx, n.nc, lock.Options{})
		if err != nil {
			t.Fatalf("open locks: %v", err)
		}
		t.Cleanup(func() { _ = n.locks.Close() })
		hopts.Locks = n.locks
	}
	n.hub, err = hub.New(hopts)
	if err != nil {
		t.Fatalf("new hub: %v", err)
	}
	n.client = relay.New(n.nc, relay.Options{})
	n.hub.SetRelay(ws, n.client)
	run(t, "hub", n.hub.Run)
	waits := []<-chan struct{}{n.hub.Ready()}
	if watching {
		n.watcher, err = watch.New(watch.Options{Workspace: w, IndexPath: filepath.Join(t.TempDir(), "index.json"), Settle: 50 * time.Millisecond}, n.hub)
		if err != nil {
			t.Fatalf("new watcher: %v", err)
		}
		n.hub.SetIndex(ws, n.watcher)
		run(t, "locks", func(ctx context.Context) error { return n.locks.Run(ctx, n.hub) })
		run(t, "watcher", n.watcher.Run)
		waits = append(waits, n.locks.Ready(), n.watcher.Ready())
	}
	for _, ch := range waits {
		select {
		case <-ch:
		case <-ctx.Done():
			t.Fatal("the hub did not get ready")
		}
	}
	if watching {
		run(t, "relay", func(ctx context.Context) error {
			return relay.Serve(ctx, n.nc, ws, n.hub, relay.Options{})
		})
	}
	return n
}

// waitServing waits until a relayed listing of ws through c is answered,
// which tells that Serve's subscriptions have reached the server.
func waitServing(t *testing.T, c *relay.Client, ws string) {
	t.Helper()
	var err error
	eventstest.Within(t, timeout, "the relay of "+ws+" to be served", func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_, err = c.Files(ctx, ws, "")
		return err == nil || !errors.Is(err, relay.ErrNoLeader)
	})
	if err != nil {
		t.Fatalf("relay of %s not served: %v", ws, err)
	}
}

// changes returns the file events of ws after after in h's log, waiting
// until the one with seq until is among them.
func changes(t *testing.T, h *hub.Hub, ws string, after, until uint64) []events.Event {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	var out []events.Event
	for after < until {
		page, err := h.Changes(ctx, ws, after, 100, time.Second)
		if err != nil {
			t.Fatalf("changes of %s after %d (waiting for %d): %v", ws, after, until, err)
		}
		for _, ev := range page.Events {
			if ev.Type.IsFile() {
				out = append(out, ev)
			}
		}
		after = page.Next
	}
	return out
}

// fakeLocal is a relay.Local whose answers the test decides.
type fakeLocal struct {
	files func(ctx context.Context, ws, prefix string) (events.Listing, error)
	write func(ctx context.Context, w events.WriteRequest) (events.Event, error)
}

func (f fakeLocal) Files(ctx context.Context, ws, prefix string) (events.Listing, error) {
	return f.files(ctx, ws, prefix)
}

func (f fakeLocal) WriteFile(ctx context.Context, w events.WriteRequest) (events.Event, error) {
	return f.write(ctx, w)
}
