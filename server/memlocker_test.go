package server_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/filecast/filecast/events"
	"github.com/filecast/filecast/events/workspace"
	"github.com/filecast/filecast/server"
)

// memLocker is an in-memory events.Locker over a memSource: exclusive and
// shared leases with TTLs on an injected clock (Advance), secret tokens and
// a fencing counter that only grows. Lock changes and writes are appended
// to the memSource's log like the hub does.
type memLocker struct {
	src *memSource

	mu      sync.Mutex
	offset  time.Duration             // added to time.Now
	fencing uint64                    // last fencing token handed out
	leases  map[string][]events.Lease // by workspace "\x00" path; tokens set
	changed chan struct{}             // closed and replaced on every release or clock move
	waiters int                       // Lock calls waiting for a holder to let go
	unlocks map[string]int            // Unlock calls by outcome: "ok", "not-holder"
}

// lockingSource is a memSource that can lock.
type lockingSource struct {
	*memSource
	*memLocker
}

var (
	_ events.Locker = (*memLocker)(nil)
	_ events.Source = lockingSource{}
	_ events.Locker = lockingSource{}
)

func newMemLocker(src *memSource) *memLocker {
	return &memLocker{src: src, leases: map[string][]events.Lease{}, changed: make(chan struct{}),
		unlocks: map[string]int{}}
}

// startLocking runs a Server over a fresh memSource with a memLocker.
func startLocking(t testing.TB, opts server.Options, workspaces ...string) (*harness, *memLocker) {
	t.Helper()
	src := newMemSource(t, workspaces...)
	lk := newMemLocker(src)
	return &harness{src: src, srv: serve(t, lockingSource{src, lk}, opts)}, lk
}

func (m *memLocker) now() time.Time { return time.Now().Add(m.offset) }

// Advance moves the locker's clock forward by d.
func (m *memLocker) Advance(d time.Duration) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.offset += d
	m.signalLocked()
}

func (m *memLocker) signalLocked() {
	close(m.changed)
	m.changed = make(chan struct{})
}

// Waiters returns how many Lock calls are waiting.
func (m *memLocker) Waiters() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.waiters
}

// Unlocks returns how many Unlock calls ended with outcome.
func (m *memLocker) Unlocks(outcome string) int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.unlocks[outcome]
}

// Held returns the live leases on ws/path.
func (m *memLocker) Held(ws, path string) []events.Lease {
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.Clone(m.liveLocked(ws + "\x00" + path))
}

// liveLocked drops the expired leases of key and returns the rest.
func (m *memLocker) liveLocked(key string) []events.Lease {
	now := m.now()
	live := slices.DeleteFunc(m.leases[key], func(l events.Lease) bool { return !now.Before(l.ExpiresAt) })
	if len(live) == 0 {
		delete(m.leases, key)
		return nil
	}
	m.leases[key] = live
	return live
}

func (m *memLocker) check(ws, path string) (string, error) {
	if !m.src.has(ws) {
		return "", &events.Error{Kind: events.ErrUnknownWorkspace, Value: ws}
	}
	return workspace.Clean(path)
}

func newLockToken() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return "lk_" + hex.EncodeToString(b[:])
}

func (m *memLocker) Lock(ctx context.Context, r events.LockRequest) (events.Lease, error) {
	p, err := m.check(r.Workspace, r.Path)
	if err != nil {
		return events.Lease{}, err
	}
	mode := r.Mode
	if mode == "" {
		mode = events.LockExclusive
	}
	ttl := r.TTL
	if ttl == 0 {
		ttl = time.Minute
	}
	key := r.Workspace + "\x00" + p
	deadline := time.Now().Add(r.Wait)
	m.mu.Lock()
	for {
		live := m.liveLocked(key)
		if r.Token != "" {
			i := slices.IndexFunc(live, func(l events.Lease) bool { return l.Token == r.Token })
			if i < 0 {
				m.mu.Unlock()
				return events.Lease{}, fmt.Errorf("%w: the lock_token holds no lock on %q", events.ErrNotHolder, p)
			}
			live[i].ExpiresAt = m.now().Add(ttl)
			l := live[i]
			m.mu.Unlock()
			return l, nil
		}
		free := len(live) == 0 || mode == events.LockShared && !slices.ContainsFunc(live, func(l events.Lease) bool { return l.Mode != events.LockShared })
		if free {
			m.fencing++
			l := events.Lease{Workspace: r.Workspace, Path: p, Holder: r.Holder, Mode: mode, Token: newLockToken(),
				FencingToken: m.fencing, ExpiresAt: m.now().Add(ttl)}
			m.leases[key] = append(live, l)
			m.mu.Unlock()
			m.src.AppendEvent(events.Event{Type: events.LockAcquired, Workspace: r.Workspace, Path: p, Actor: r.Holder,
				Lock: &events.LockInfo{Holder: r.Holder, FencingToken: l.FencingToken, Mode: mode}, ExpiresAt: l.ExpiresAt})
			return l, nil
		}
		first := live[0]
		wake := m.changed
		remaining := time.Until(deadline)
		if remaining <= 0 {
			m.mu.Unlock()
			return events.Lease{}, &events.LockError{Kind: events.ErrLockConflict, Path: p, Holder: first.Holder, Mode: first.Mode, ExpiresAt: first.ExpiresAt}
		}
		m.waiters++
		m.mu.Unlock()
		t := time.NewTimer(remaining)
		select {
		case <-ctx.Done():
		case <-wake:
		case <-t.C:
		}
		t.Stop()
		m.mu.Lock()
		m.waiters--
		if err := ctx.Err(); err != nil {
			m.mu.Unlock()
			return events.Lease{}, err
		}
	}
}

func (m *memLocker) Unlock(_ context.Context, ws, path, token string) error {
	p, err := m.check(ws, path)
	if err != nil {
		return err
	}
	key := ws + "\x00" + p
	m.mu.Lock()
	live := m.liveLocked(key)
	i := slices.IndexFunc(live, func(l events.Lease) bool { return l.Token == token })
	if i < 0 {
		m.unlocks["not-holder"]++
		m.mu.Unlock()
		return fmt.Errorf("%w: the lock_token holds no lock on %q", events.ErrNotHolder, p)
	}
	l := live[i]
	m.leases[key] = slices.Delete(live, i, i+1)
	m.liveLocked(key)
	m.unlocks["ok"]++
	m.signalLocked()
	m.mu.Unlock()
	m.src.AppendEvent(events.Event{Type: events.LockReleased, Workspace: ws, Path: p, Actor: l.Holder,
		Lock: &events.LockInfo{Holder: l.Holder, FencingToken: l.FencingToken, Mode: l.Mode}})
	return nil
}

func (m *memLocker) Locks(_ context.Context, ws string) ([]events.Lease, error) {
	if !m.src.has(ws) {
		return nil, &events.Error{Kind: events.ErrUnknownWorkspace, Value: ws}
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []events.Lease
	for key := range m.leases {
		for _, l := range m.liveLocked(key) {
			if l.Workspace == ws {
				l.Token = ""
				out = append(out, l)
			}
		}
	}
	return out, nil
}

func (m *memLocker) WriteFile(_ context.Context, w events.WriteRequest) (events.Event, error) {
	p, err := m.check(w.Workspace, w.Path)
	if err != nil {
		return events.Event{}, err
	}
	m.mu.Lock()
	defer m.mu.Unlock() // held across the write: check and write are one step
	live := m.liveLocked(w.Workspace + "\x00" + p)
	var mine *events.Lease
	if w.LockToken != "" {
		if i := slices.IndexFunc(live, func(l events.Lease) bool { return l.Token == w.LockToken }); i >= 0 {
			mine = &live[i]
		}
	}
	switch {
	case len(live) > 0 && live[0].Mode == events.LockShared:
		// Shared locks are read locks, as on the hub.
		return events.Event{}, &events.LockError{Kind: events.ErrLocked, Path: p, Holder: live[0].Holder, Mode: live[0].Mode, ExpiresAt: live[0].ExpiresAt}
	case w.LockToken != "" && mine == nil:
		e := &events.LockError{Kind: events.ErrStale, Path: p, Why: "the lock_token holds no current lock on this path"}
		if len(live) > 0 {
			e.Holder, e.Mode, e.ExpiresAt = live[0].Holder, live[0].Mode, live[0].ExpiresAt
		}
		return events.Event{}, e
	case mine != nil && w.FencingToken != 0 && w.FencingToken != mine.FencingToken:
		return events.Event{}, &events.LockError{Kind: events.ErrStale, Path: p, Why: "the fencing token is not the lease's"}
	case mine == nil && len(live) > 0 && live[0].Mode == events.LockExclusive:
		return events.Event{}, &events.LockError{Kind: events.ErrLocked, Path: p, Holder: live[0].Holder, Mode: live[0].Mode, ExpiresAt: live[0].ExpiresAt}
	}
	abs := filepath.Join(m.src.Dir(w.Workspace), filepath.FromSlash(p))
	old, err := os.ReadFile(abs)
	typ := events.FileUpdated
	switch {
	case errors.Is(err, os.ErrNotExist):
		typ = events.FileCreated
	case err != nil:
		return events.Event{}, err
	case bytes.Equal(old, w.Content):
		return events.Event{}, nil
	}
	if err := os.MkdirAll(filepath.Dir(abs), 0o755); err != nil {
		return events.Event{}, err
	}
	if err := os.WriteFile(abs, w.Content, 0o644); err != nil {
		return events.Event{}, err
	}
	sum := sha256.Sum256(w.Content)
	ev := events.Event{Type: typ, Workspace: w.Workspace, Path: p, Size: int64(len(w.Content)), SHA256: hex.EncodeToString(sum[:]), Actor: w.Actor}
	if mine != nil {
		ev.Lock = &events.LockInfo{Holder: mine.Holder, FencingToken: mine.FencingToken, Mode: mine.Mode}
	}
	return m.src.AppendEvent(ev), nil
}
