package lock_test

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/sourcegraph/conc"

	"github.com/filecast/filecast/events"
	"github.com/filecast/filecast/events/lock"
	"github.com/filecast/filecast/events/natsd"
	"github.com/filecast/filecast/events/natsd/natstest"
)

const waitFor = 10 * time.Second

// recorder is an Appender that keeps what it is given, dropping repeated
// IDs as the log's dedup does.
type recorder struct {
	mu   sync.Mutex
	evs  []events.Event
	ids  map[string]bool
	dups int
	seq  uint64
	ch   chan struct{}
}

func newRecorder() *recorder { return &recorder{ids: map[string]bool{}, ch: make(chan struct{}, 1)} }

func (r *recorder) Append(_ context.Context, ev events.Event) (events.Event, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.ids[ev.ID] {
		r.dups++
		return ev, nil
	}
	r.ids[ev.ID] = true
	r.seq++
	ev.Seq = r.seq
	r.evs = append(r.evs, ev)
	select {
	case r.ch <- struct{}{}:
	default:
	}
	return ev, nil
}

func (r *recorder) events() []events.Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.evs)
}

// waitEvent waits until an event of type typ on path is recorded and
// returns it with the time it was seen.
func (r *recorder) waitEvent(t testing.TB, typ events.Type, path string, timeout time.Duration) (events.Event, time.Time) {
	t.Helper()
	deadline := time.After(timeout)
	for {
		for _, ev := range r.events() {
			if ev.Type == typ && ev.Path == path {
				return ev, time.Now()
			}
		}
		select {
		case <-r.ch:
		case <-deadline:
			t.Fatalf("no %s event for %s within %v; got %v", typ, path, timeout, r.events())
		}
	}
}

func (r *recorder) count(typ events.Type, path string) int {
	n := 0
	for _, ev := range r.events() {
		if ev.Type == typ && ev.Path == path {
			n++
		}
	}
	return n
}

// openManager opens a Manager on nc and runs it until the test ends.
func openManager(t testing.TB, nc *nats.Conn, app lock.Appender, opts lock.Options) *lock.Manager {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	m, err := lock.Open(ctx, nc, opts)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { _ = m.Close() })
	runManager(t, m, app)
	return m
}

// runManager runs m with app until the test ends and waits until it is
// ready.
func runManager(t testing.TB, m *lock.Manager, app lock.Appender) {
	t.Helper()
	runCtx, stop := context.WithCancel(context.Background())
	var wg conc.WaitGroup
	wg.Go(func() {
		if err := m.Run(runCtx, app); err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	t.Cleanup(func() {
		stop()
		wg.Wait()
	})
	select {
	case <-m.Ready():
	case <-time.After(waitFor):
		t.Fatal("manager not ready")
	}
}

// setup starts a server and a running Manager with a recorder.
func setup(t testing.TB, opts lock.Options) (*lock.Manager, *recorder, *natsd.Server) {
	t.Helper()
	srv := natstest.Start(t)
	rec := newRecorder()
	return openManager(t, srv.Conn(), rec, opts), rec, srv
}

func acquire(t testing.TB, m *lock.Manager, r events.LockRequest) events.Lease {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	l, err := m.Acquire(ctx, r)
	if err != nil {
		t.Fatalf("Acquire(%+v): %v", r, err)
	}
	return l
}

func req(holder, path string, mode string, ttl time.Duration) events.LockRequest {
	return events.LockRequest{Workspace: "docs", Path: path, Holder: holder, Mode: mode, TTL: ttl}
}

// watchers returns how many watchers the lock bucket has: one per running
// Manager, and one more for each Acquire waiting for a holder to go.
func watchers(t testing.TB, srv *natsd.Server) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	js, err := jetstream.New(srv.Conn())
	if err != nil {
		t.Fatal(err)
	}
	s, err := js.Stream(ctx, "KV_"+lock.DefaultBucket)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return info.State.Consumers
}
