package tools

import (
	"cmp"
	"maps"
	"slices"
	"strings"
	"sync"

	"github.com/filecast/filecast/events"
)

// Leases is the set of locks one MCP session took through the lock tool
// and has not released yet, so that the server can release them when the
// session ends cleanly. A process that crashes leaves its locks to their
// TTL. Leases is safe for concurrent use; its zero value is not usable:
// call NewLeases.
type Leases struct {
	mu     sync.Mutex
	held   map[string]events.Lease // by lock token
	closed bool
}

// NewLeases returns an empty, open set.
func NewLeases() *Leases { return &Leases{held: map[string]events.Lease{}} }

// Add records a lease by its token (a refresh replaces the earlier entry).
// It returns false, recording nothing, once Close has been called: the
// session is gone and the caller should release the lease itself.
func (l *Leases) Add(lease events.Lease) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return false
	}
	if lease.Token != "" {
		l.held[lease.Token] = lease
	}
	return true
}

// Remove forgets the lease of token if it is the one on ws and path.
func (l *Leases) Remove(ws, path, token string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if h, ok := l.held[token]; ok && h.Workspace == ws && h.Path == path {
		delete(l.held, token)
	}
}

// Held returns the leases recorded, sorted by workspace and path.
func (l *Leases) Held() []events.Lease {
	l.mu.Lock()
	defer l.mu.Unlock()
	return sorted(l.held)
}

// Close marks the set closed and returns the leases still recorded, sorted
// by workspace and path; later calls return nothing.
func (l *Leases) Close() []events.Lease {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.closed = true
	out := sorted(l.held)
	clear(l.held)
	return out
}

func sorted(m map[string]events.Lease) []events.Lease {
	out := slices.Collect(maps.Values(m))
	slices.SortFunc(out, func(a, b events.Lease) int {
		return cmp.Or(strings.Compare(a.Workspace, b.Workspace), strings.Compare(a.Path, b.Path), strings.Compare(a.Token, b.Token))
	})
	return out
}
