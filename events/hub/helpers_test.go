package hub_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/filecast/filecast/events"
	"github.com/filecast/filecast/events/hub"
	"github.com/filecast/filecast/events/journal"
	"github.com/filecast/filecast/events/natsd/natstest"
	"github.com/filecast/filecast/events/workspace"
)

const deadline = 10 * time.Second

var errEnough = errors.New("test: enough events")

// startHub creates a hub over log for the named workspaces, runs it until
// the test ends, and waits until it is ready.
func startHub(t testing.TB, log hub.Log, opts hub.Options, names ...string) *hub.Hub {
	t.Helper()
	h := newHub(t, log, opts, names...)
	runHub(t, h)
	return h
}

func newHub(t testing.TB, log hub.Log, opts hub.Options, names ...string) *hub.Hub {
	t.Helper()
	if len(names) == 0 {
		names = []string{"docs"}
	}
	dir := t.TempDir()
	for _, n := range names {
		opts.Workspaces = append(opts.Workspaces, workspace.Workspace{Name: n, Dir: dir})
	}
	opts.Log = log
	h, err := hub.New(opts)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return h
}

func runHub(t testing.TB, h *hub.Hub) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- h.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	select {
	case <-h.Ready():
	case err := <-done:
		t.Fatalf("Run returned early: %v", err)
	case <-time.After(deadline):
		t.Fatal("hub not ready")
	}
}

func fileEvent(ws string, i int) events.Event {
	return events.Event{Workspace: ws, Type: events.FileUpdated, Path: fmt.Sprintf("dir/f%d.txt", i), Actor: events.ActorFS}
}

func appendN(t testing.TB, h *hub.Hub, ws string, n int) {
	t.Helper()
	for i := range n {
		if _, err := h.Append(context.Background(), fileEvent(ws, i)); err != nil {
			t.Fatalf("Append: %v", err)
		}
	}
}

func seqs(evs []events.Event) []uint64 {
	out := make([]uint64, len(evs))
	for i, ev := range evs {
		out[i] = ev.Seq
	}
	return out
}

func seqRange(from, to uint64) []uint64 {
	var out []uint64
	for s := from; s <= to; s++ {
		out = append(out, s)
	}
	return out
}

// collect subscribes from after and returns the seqs received once the
// last one is want, or the error Subscribe returned.
func collect(ctx context.Context, h *hub.Hub, ws string, after, want uint64) ([]uint64, error) {
	var got []uint64
	err := h.Subscribe(ctx, ws, after, func(ev events.Event) error {
		got = append(got, ev.Seq)
		if ev.Seq >= want {
			return errEnough
		}
		return nil
	})
	if errors.Is(err, errEnough) {
		err = nil
	}
	return got, err
}

// newJournal opens the log filecast runs on, the JetStream journal on an
// embedded NATS server, with the streams of the named workspaces ("docs"
// when none). The in-memory memLog stands in for it only where a test
// makes the log fail, lag or forget.
func newJournal(t testing.TB, names ...string) *journal.Journal {
	t.Helper()
	if len(names) == 0 {
		names = []string{"docs"}
	}
	srv := natstest.Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), deadline)
	defer cancel()
	j, err := journal.Open(ctx, srv.Conn(), journal.Options{})
	if err != nil {
		t.Fatalf("open journal: %v", err)
	}
	t.Cleanup(func() { _ = j.Close() })
	for _, name := range names {
		if err := j.Ensure(ctx, name); err != nil {
			t.Fatalf("ensure %s: %v", name, err)
		}
	}
	return j
}
