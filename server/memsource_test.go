package server_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/filecast/filecast/events"
	"github.com/filecast/filecast/events/feed/feedtest"
)

// memSource is a feedtest.Source with the hooks the server tests need.
type memSource struct {
	*feedtest.Source

	routed func(events.Event) // called after a subscriber's fn returned
}

var _ events.Source = (*memSource)(nil)

func newMemSource(t testing.TB, names ...string) *memSource {
	t.Helper()
	m := &memSource{Source: feedtest.New()}
	for _, n := range names {
		real, err := filepath.EvalSymlinks(t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		m.AddWorkspace(n, real)
	}
	return m
}

// Write creates a file in a workspace folder (no event).
func (m *memSource) Write(t testing.TB, ws, rel string, data []byte) {
	t.Helper()
	p := filepath.Join(m.Dir(ws), filepath.FromSlash(rel))
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

// Append adds an event to a workspace log and returns it.
func (m *memSource) Append(ws string, typ events.Type, path string, oldPath ...string) events.Event {
	ev := events.Event{Type: typ, Path: path}
	if len(oldPath) > 0 {
		ev.OldPath = oldPath[0]
	}
	return m.Source.Append(ws, ev)[0]
}

// AppendEvent adds ev to its workspace's log and returns it as stored.
func (m *memSource) AppendEvent(ev events.Event) events.Event {
	return m.Source.Append(ev.Workspace, ev)[0]
}

// has reports whether ws is a workspace of m.
func (m *memSource) has(ws string) bool { return m.Dir(ws) != "" }

func (m *memSource) Subscribe(ctx context.Context, ws string, after uint64, fn func(events.Event) error) error {
	routed := m.routed
	if routed == nil {
		return m.Source.Subscribe(ctx, ws, after, fn)
	}
	return m.Source.Subscribe(ctx, ws, after, func(ev events.Event) error {
		if err := fn(ev); err != nil {
			return err
		}
		routed(ev)
		return nil
	})
}
