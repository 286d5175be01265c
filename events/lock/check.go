package lock

import (
	"context"
	"fmt"
	"time"

	"github.com/filecast/filecast/events"
)

// Check decides whether a write to path may go ahead, from the mirror, with
// no I/O. When someone else holds an exclusive lock, or anyone (the
// caller included) holds a shared one, it returns a *events.LockError
// wrapping ErrLocked: shared locks are read locks. When token is given but holds no current lease
// on the path (expired, released or replaced), or fencing is not zero and
// differs from that lease's fencing token, it returns an error wrapping
// ErrStale (also a *events.LockError). Otherwise it returns the caller's lease (with Token set), or the
// zero Lease when no token was given.
func (m *Manager) Check(ws, path, token string, fencing uint64) (events.Lease, error) {
	clean, key, err := target(ws, path)
	if err != nil {
		return events.Lease{}, fmt.Errorf("check lock: %w", err)
	}
	var rec *record
	m.mu.Lock()
	if e := m.mirror[key]; e != nil {
		rec = e.rec
	}
	m.mu.Unlock()
	return decide(rec, clean, token, fencing, time.Now())
}

// Verify is Check against the bucket rather than the mirror: it reads the
// path's key, so that a write is judged by the lock's current state even
// while the mirror lags (its watch of the bucket is re-established after a
// NATS node died, say). When the bucket cannot be read it refuses the
// write with an error wrapping events.ErrClosed: a fenced write is never
// let through on a state that may be stale.
func (m *Manager) Verify(ctx context.Context, ws, path, token string, fencing uint64) (events.Lease, error) {
	clean, key, err := target(ws, path)
	if err != nil {
		return events.Lease{}, fmt.Errorf("check lock: %w", err)
	}
	if m.closed() {
		return events.Lease{}, events.ErrClosed
	}
	rec, rev, err := m.read(ctx, key)
	if err != nil {
		return events.Lease{}, fmt.Errorf("check lock: read %s: %w: %w", clean, events.ErrClosed, err)
	}
	if rec != nil {
		m.apply(key, rev, rec, time.Now())
	}
	return decide(rec, clean, token, fencing, time.Now())
}

// decide is Check's verdict at now on the record under the path's key
// (nil when it holds no lock).
func decide(rec *record, clean, token string, fencing uint64, now time.Time) (events.Lease, error) {
	var hash string
	if token != "" {
		hash = hashToken(token)
	}
	var live []holder
	if rec != nil {
		live, _ = rec.split(now)
	}
	if len(live) > 0 && rec.Mode == events.LockExclusive && (token == "" || live[0].TokenHash != hash) {
		h := live[0]
		return events.Lease{}, lockedError(clean, h.Holder, h.Expires)
	}
	if len(live) > 0 && rec.Mode == events.LockShared {
		// Shared locks are read locks: nobody writes while one is held,
		// its holders included.
		return events.Lease{}, sharedLockedError(clean, holderNames(live), latest(live))
	}
	if token == "" {
		return events.Lease{}, nil
	}
	i := find(live, hash)
	if i < 0 {
		return events.Lease{}, staleError(clean, "the lock_token holds no current lock here (it expired, was released or was replaced); take the lock again")
	}
	if fencing != 0 && fencing != live[i].Fencing {
		return events.Lease{}, staleError(clean, "fencing token %d is not the current one (%d)", fencing, live[i].Fencing)
	}
	l := rec.lease(live[i])
	l.Token = token
	return l, nil
}
