package lock

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/filecast/filecast/events"
)

// Acquire takes a lock, or, when r.Token is set, refreshes the lease it
// belongs to (new expiry from now, same fencing token, same mode). When
// the path is held in a conflicting mode it waits up to r.Wait for the
// holder to release it or for its lease to run out, watching the key, and
// then fails with a *events.LockError (wrapping ErrConflict) naming the
// holder, mode and expiry. A refresh with a token that holds no current lease fails with
// a *events.LockError wrapping ErrNotHolder. Bad paths are *events.Error wrapping events.ErrBadPath;
// other bad fields wrap ErrBadRequest. It emits lock.acquired (also on a
// refresh) and lock.expired for expired holders it removes. It blocks for
// at most r.Wait plus the time of a few server requests.
func (m *Manager) Acquire(ctx context.Context, r events.LockRequest) (events.Lease, error) {
	l, err := m.acquire(ctx, r)
	if err != nil {
		return events.Lease{}, withOp("acquire lock", err)
	}
	return l, nil
}

func (m *Manager) acquire(ctx context.Context, r events.LockRequest) (events.Lease, error) {
	if m.closed() {
		return events.Lease{}, events.ErrClosed
	}
	if err := events.ValidWorkspaceName(r.Workspace); err != nil {
		return events.Lease{}, err
	}
	ttl, err := normTTL(r.TTL)
	if err != nil {
		return events.Lease{}, err
	}
	if r.Wait < 0 || r.Wait > MaxWait {
		return events.Lease{}, badRequest("wait %v is out of range: use 0 to %v", r.Wait, MaxWait)
	}
	if r.Mode != "" && r.Mode != events.LockExclusive && r.Mode != events.LockShared {
		return events.Lease{}, badRequest("mode %q: use %q or %q", r.Mode, events.LockExclusive, events.LockShared)
	}
	if r.Token != "" {
		return m.refresh(ctx, r, ttl)
	}
	if r.Mode == "" {
		r.Mode = events.LockExclusive
	}
	if err := checkHolder(r.Holder); err != nil {
		return events.Lease{}, err
	}
	path, key, err := target(r.Workspace, r.Path)
	if err != nil {
		return events.Lease{}, err
	}
	r.Path = path

	deadline := time.Now().Add(r.Wait)
	var w jetstream.KeyWatcher
	defer func() {
		if w != nil {
			_ = w.Stop()
		}
	}()
	for tries := 0; ; {
		l, conflict, err := m.tryAcquire(ctx, key, r, ttl)
		if errors.Is(err, errCAS) {
			if tries++; tries > casRetries {
				return events.Lease{}, fmt.Errorf("too much contention on %q: %w", r.Path, err)
			}
			continue
		}
		var soon *expiringSoon
		near := errors.As(err, &soon)
		if !near && (err != nil || conflict == nil) {
			return l, err
		}
		if !near && !time.Now().Before(deadline) {
			return events.Lease{}, conflict
		}
		if w == nil {
			// Watch first, then read again, so that no change is missed.
			if w, err = m.kv.Watch(ctx, key, jetstream.UpdatesOnly()); err != nil {
				return events.Lease{}, fmt.Errorf("watch %q: %w", r.Path, err)
			}
			continue
		}
		// Wake on any change of the key, or when the conflicting lease runs
		// out (an expired holder is replaced without waiting for the server
		// to remove it), or at the deadline. A key the server is about to
		// remove is waited for briefly whatever the deadline.
		var wake time.Time
		if near {
			wake = soon.until
		} else {
			wake = minTime(deadline, conflict.ExpiresAt)
		}
		if err := m.waitChange(ctx, w, time.Until(wake)); err != nil {
			return events.Lease{}, err
		}
	}
}

// expiringSoon means the key's server-side TTL is about to run out. The
// server then writes its delete marker with a subject rollup, which would
// wipe a value written in the same instant, so no value is written over it
// until the marker has appeared, or until is past.
type expiringSoon struct{ until time.Time }

func (e *expiringSoon) Error() string { return "lock: the lock's key is about to expire" }

// Guards around the server's removal of an expired key: no compare-and-set
// on a key from keyGuard before its TTL runs out until its delete marker
// appears or markerWait after the TTL.
const (
	keyGuard   = 250 * time.Millisecond
	markerWait = 2 * time.Second
)

// nearKeyExpiry reports whether rec's key is in the window in which the
// server may remove it, and the end of that window.
func nearKeyExpiry(rec *record, now time.Time) (bool, time.Time) {
	if rec == nil {
		return false, time.Time{}
	}
	until := rec.KeyExpires.Add(markerWait)
	return now.After(rec.KeyExpires.Add(-keyGuard)) && now.Before(until), until
}

// waitChange blocks until the watcher reports a change, d passes, or ctx
// or the Manager is done.
func (m *Manager) waitChange(ctx context.Context, w jetstream.KeyWatcher, d time.Duration) error {
	t := time.NewTimer(max(d, 0))
	defer t.Stop()
	select {
	case _, ok := <-w.Updates():
		if !ok {
			return fmt.Errorf("watch lock: %w", events.ErrClosed)
		}
		for drained := false; !drained; { // coalesce a burst of changes
			select {
			case <-w.Updates():
			default:
				drained = true
			}
		}
		return nil
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-m.closing.Done():
		return events.ErrClosed
	}
}

// tryAcquire makes one attempt. It returns a conflict when the path is held
// in a conflicting mode, errCAS when the key changed under it.
func (m *Manager) tryAcquire(ctx context.Context, key string, r events.LockRequest, ttl time.Duration) (events.Lease, *events.LockError, error) {
	rec, rev, err := m.read(ctx, key)
	if err != nil {
		return events.Lease{}, nil, err
	}
	now := time.Now()
	live, gone := rec.split(now)
	if len(live) > 0 && (r.Mode == events.LockExclusive || rec.Mode == events.LockExclusive) {
		return events.Lease{}, conflictError(r.Path, holderNames(live), rec.Mode, latest(live)), nil
	}
	if near, until := nearKeyExpiry(rec, now); near {
		return events.Lease{}, nil, &expiringSoon{until: until}
	}
	token := newToken()
	h := holder{Holder: r.Holder, TokenHash: hashToken(token), TTL: ttl, Expires: now.Add(ttl)}
	next := &record{Workspace: r.Workspace, Path: r.Path, Mode: r.Mode, Holders: append(live, h)}
	newRev, err := m.write(ctx, key, next, rev, now)
	if err != nil {
		return events.Lease{}, nil, err
	}
	next.Holders[len(next.Holders)-1].Fencing = newRev
	m.apply(key, newRev, next, now)
	l := next.lease(next.Holders[len(next.Holders)-1])
	l.Token = token
	m.emitChange(ctx, events.LockAcquired, key, next, next.Holders[len(next.Holders)-1], rec, gone)
	return l, nil, nil
}

// refresh extends the lease of r.Token.
func (m *Manager) refresh(ctx context.Context, r events.LockRequest, ttl time.Duration) (events.Lease, error) {
	hash := hashToken(r.Token)
	key, err := m.locate(ctx, r.Workspace, r.Path, hash)
	if err != nil {
		return events.Lease{}, err
	}
	for range casRetries {
		rec, rev, err := m.read(ctx, key)
		if err != nil {
			return events.Lease{}, err
		}
		now := time.Now()
		live, gone := rec.split(now)
		i := find(live, hash)
		if i < 0 {
			return events.Lease{}, notHolder(rec, gone, hash, r.Path)
		}
		if near, _ := nearKeyExpiry(rec, now); near {
			return events.Lease{}, notHolderError(rec.Path, "the lease runs out in less than %v, too late to refresh; take the lock again", keyGuard)
		}
		if r.Mode != "" && r.Mode != rec.Mode {
			return events.Lease{}, badRequest("this lock is %s and a refresh keeps its mode; to hold it as %s, release it and take a new lock with mode %s", rec.Mode, r.Mode, r.Mode)
		}
		live[i].TTL = ttl
		live[i].Expires = now.Add(ttl)
		next := &record{Workspace: rec.Workspace, Path: rec.Path, Mode: rec.Mode, Holders: live}
		newRev, err := m.write(ctx, key, next, rev, now)
		if errors.Is(err, errCAS) {
			continue
		}
		if err != nil {
			return events.Lease{}, err
		}
		m.apply(key, newRev, next, now)
		l := next.lease(live[i])
		l.Token = r.Token
		m.emitChange(ctx, events.LockAcquired, key, next, live[i], rec, gone)
		return l, nil
	}
	return events.Lease{}, fmt.Errorf("too much contention on %q: %w", r.Path, errCAS)
}
