package lock

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/filecast/filecast/events"
)

// List returns the current leases of workspace ws, read from the bucket,
// sorted by path. Token is empty.
func (m *Manager) List(ctx context.Context, ws string) ([]events.Lease, error) {
	ls, err := m.list(ctx, ws)
	if err != nil {
		return nil, fmt.Errorf("list locks: %w", err)
	}
	return ls, nil
}

func (m *Manager) list(ctx context.Context, ws string) ([]events.Lease, error) {
	if m.closed() {
		return nil, events.ErrClosed
	}
	if err := events.ValidWorkspaceName(ws); err != nil {
		return nil, err
	}
	ctx, cancel := withTimeout(ctx)
	defer cancel()
	w, err := m.kv.Watch(ctx, wsFilter(ws), jetstream.IgnoreDeletes())
	if err != nil {
		return nil, err
	}
	defer func() { _ = w.Stop() }()
	out := []events.Lease{}
	now := time.Now()
	for {
		select {
		case e, ok := <-w.Updates():
			if !ok {
				return nil, events.ErrClosed
			}
			if e == nil {
				slices.SortFunc(out, func(a, b events.Lease) int {
					return cmp.Or(strings.Compare(a.Path, b.Path), cmp.Compare(a.FencingToken, b.FencingToken))
				})
				return out, nil
			}
			if e.Operation() != jetstream.KeyValuePut {
				continue
			}
			rec, err := decodeRecord(e.Value(), e.Revision())
			if err != nil {
				m.log.Warn("skip undecodable lock", "key", e.Key(), "err", err)
				continue
			}
			live, _ := rec.split(now)
			for _, h := range live {
				out = append(out, rec.lease(h))
			}
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// Holders returns the current holders of path in ws from the mirror, sorted
// by fencing token; Token is empty. It does no I/O. path must be clean (as
// in events).
func (m *Manager) Holders(ws, path string) []events.Lease {
	key := keyFor(ws, path)
	now := time.Now()
	m.mu.Lock()
	defer m.mu.Unlock()
	e := m.mirror[key]
	if e == nil || e.rec == nil {
		return nil
	}
	var out []events.Lease
	for _, h := range e.rec.Holders {
		if now.Before(h.Expires) {
			out = append(out, e.rec.lease(h))
		}
	}
	return out
}
