package hub

import (
	"context"
	"fmt"
	"time"

	"github.com/filecast/filecast/events"
)

// Gate is a hub as its clients see it (an MCP server, the other processes
// of a data folder, the HTTP API) while the first index of a workspace is
// being built: the calls whose answer depends on the index wait for it,
// bounded by their context. They are a listing (Files), a read (ReadFile:
// its version comes from the index) and a page of changes after a cursor
// (Changes: the changes made while filecast was not running are still
// being appended, and a page read earlier would look complete without
// them). Everything else is served at once, the live event stream
// included, so that no change made meanwhile is missed. A Gate is safe for
// concurrent use.
type Gate struct {
	backend
	ready map[string]<-chan struct{} // by workspace
}

// backend is what a Gate passes calls to.
type backend interface {
	events.Source
	events.Locker
}

var (
	_ events.Source = (*Gate)(nil)
	_ events.Locker = (*Gate)(nil)
)

// NewGate returns h behind a gate: the index-bound calls of a workspace
// ws wait until ready[ws] is closed (a watcher's Ready); those of a
// workspace without an entry are served at once.
func NewGate(h *Hub, ready map[string]<-chan struct{}) *Gate {
	return &Gate{backend: h, ready: ready}
}

// wait returns once ws is indexed (at once for a workspace it does not
// know: the hub answers that), or ctx's error.
func (g *Gate) wait(ctx context.Context, ws string) error {
	ready, ok := g.ready[ws]
	if !ok {
		return nil
	}
	select {
	case <-ready:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("wait for the index of %s: %w", ws, ctx.Err())
	}
}

// Files implements events.Source once ws is indexed.
func (g *Gate) Files(ctx context.Context, ws, prefix string) (events.Listing, error) {
	if err := g.wait(ctx, ws); err != nil {
		return events.Listing{}, err
	}
	return g.backend.Files(ctx, ws, prefix)
}

// ReadFile implements events.Source once ws is indexed.
func (g *Gate) ReadFile(ctx context.Context, ws, path string, r events.Range) ([]byte, events.FileInfo, error) {
	if err := g.wait(ctx, ws); err != nil {
		return nil, events.FileInfo{}, err
	}
	return g.backend.ReadFile(ctx, ws, path, r)
}

// Changes implements events.Source once ws is indexed.
func (g *Gate) Changes(ctx context.Context, ws string, after uint64, limit int, wait time.Duration) (events.Page, error) {
	if err := g.wait(ctx, ws); err != nil {
		return events.Page{}, err
	}
	return g.backend.Changes(ctx, ws, after, limit, wait)
}
