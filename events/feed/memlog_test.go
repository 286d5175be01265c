package feed_test

import (
	"context"
	"sync"
	"testing"

	"github.com/filecast/filecast/events"
	"github.com/filecast/filecast/events/hub"
	"github.com/filecast/filecast/events/workspace"
)

// memLog is an in-memory hub.Log for the benchmarks, so that they measure
// the hub and the feed rather than JetStream: a slice of events per
// workspace with seqs 1, 2, 3…, and a channel closed at every append for
// followers.
type memLog struct {
	mu      sync.Mutex
	logs    map[string][]events.Event
	changed chan struct{}
}

var _ hub.Log = (*memLog)(nil)

func newMemLog() *memLog {
	return &memLog{logs: map[string][]events.Event{}, changed: make(chan struct{})}
}

// add appends evs to ws, numbering them, and returns them as stored.
func (m *memLog) add(ws string, evs ...events.Event) []events.Event {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]events.Event, len(evs))
	for i, ev := range evs {
		ev.Workspace = ws
		ev.Seq = uint64(len(m.logs[ws]) + 1)
		m.logs[ws] = append(m.logs[ws], ev)
		out[i] = ev
	}
	close(m.changed)
	m.changed = make(chan struct{})
	return out
}

func (m *memLog) Append(_ context.Context, ev events.Event) (events.Event, error) {
	return m.add(ev.Workspace, ev)[0], nil
}

func (m *memLog) read(ws string, after uint64, limit int) []events.Event {
	kept := m.logs[ws]
	i := min(int(after), len(kept))
	j := min(i+limit, len(kept))
	return append([]events.Event(nil), kept[i:j]...)
}

func (m *memLog) Read(_ context.Context, ws string, after uint64, limit int) ([]events.Event, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.read(ws, after, limit), nil
}

func (m *memLog) Head(_ context.Context, ws string) (uint64, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return uint64(len(m.logs[ws])), nil
}

func (m *memLog) Follow(ctx context.Context, ws string, after uint64, fn func(events.Event) error) error {
	for {
		m.mu.Lock()
		evs := m.read(ws, after, 1024)
		changed := m.changed
		m.mu.Unlock()
		for _, ev := range evs {
			if err := fn(ev); err != nil {
				return err
			}
			after = ev.Seq
		}
		if len(evs) > 0 {
			continue
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// startHub runs a hub over log with one workspace "docs" until the
// benchmark ends.
func startHub(b *testing.B, log *memLog) *hub.Hub {
	b.Helper()
	h, err := hub.New(hub.Options{Workspaces: []workspace.Workspace{{Name: "docs", Dir: b.TempDir()}}, Log: log})
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- h.Run(ctx) }()
	b.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			b.Errorf("hub Run: %v", err)
		}
	})
	select {
	case <-h.Ready():
	case err := <-done:
		b.Fatalf("hub Run: %v", err)
	}
	return h
}
