package lock

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
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

// locate returns the key of the lock on path, or, when path is empty, of
// the lock in ws that token hash holds according to the mirror.
func (m *Manager) locate(ctx context.Context, ws, path, hash string) (string, error) {
	if err := events.ValidWorkspaceName(ws); err != nil {
		return "", err
	}
	if path != "" {
		_, key, err := target(ws, path)
		return key, err
	}
	m.mu.Lock()
	for key, e := range m.mirror {
		if e.rec != nil && e.rec.Workspace == ws && find(e.rec.Holders, hash) >= 0 {
			m.mu.Unlock()
			return key, nil
		}
	}
	m.mu.Unlock()
	// Not in the mirror, which may lag the bucket (a lock taken through
	// another hub while this one's watch was being re-established): look
	// in the bucket itself.
	if key := m.scan(ctx, ws, hash); key != "" {
		return key, nil
	}
	return "", notHolderError("", "no lock in workspace %s is held with this lock_token (it may have expired or been released)", ws)
}

// scan reads the locks of ws from the bucket and returns the key of the
// one held with the token whose hash is given, or "" (also when the bucket
// cannot be read).
func (m *Manager) scan(ctx context.Context, ws, hash string) string {
	ctx, cancel := withTimeout(ctx)
	defer cancel()
	w, err := m.kv.Watch(ctx, wsFilter(ws), jetstream.IgnoreDeletes())
	if err != nil {
		return ""
	}
	defer func() { _ = w.Stop() }()
	for {
		select {
		case e, ok := <-w.Updates():
			if !ok || e == nil {
				return ""
			}
			if rec, err := decodeRecord(e.Value(), e.Revision()); err == nil && find(rec.Holders, hash) >= 0 {
				return e.Key()
			}
		case <-ctx.Done():
			return ""
		}
	}
}

func notHolder(rec *record, gone []holder, hash, path string) error {
	if rec != nil {
		path = rec.Path
	}
	if i := find(gone, hash); i >= 0 {
		return notHolderError(path, "the lease expired at %s; take the lock again", gone[i].Expires.UTC().Format(time.RFC3339))
	}
	return notHolderError(path, "the lock_token holds no lock here (wrong token, or the lease was released or replaced)")
}

// Release ends the lease of token on path. path may be empty, in which case
// the lease is looked up by token in the mirror Run keeps. A token that
// does not hold a current lease on the path fails with ErrNotHolder. It
// emits lock.released.
func (m *Manager) Release(ctx context.Context, ws, path, token string) error {
	if err := m.release(ctx, ws, path, token); err != nil {
		return withOp("release lock", err)
	}
	return nil
}

func (m *Manager) release(ctx context.Context, ws, path, token string) error {
	if m.closed() {
		return events.ErrClosed
	}
	if !strings.HasPrefix(token, tokenPrefix) {
		return notHolderError(path, "that is not a lock_token (they start with %q)", tokenPrefix)
	}
	hash := hashToken(token)
	key, err := m.locate(ctx, ws, path, hash)
	if err != nil {
		return err
	}
	announced := false
	for range casRetries {
		rec, rev, err := m.read(ctx, key)
		if err != nil {
			return err
		}
		now := time.Now()
		live, gone := rec.split(now)
		i := find(live, hash)
		if i < 0 {
			return notHolder(rec, gone, hash, path)
		}
		h := live[i]
		rest := slices.Delete(slices.Clone(live), i, i+1)
		if !announced {
			// lock.released goes into the log before the key changes, so
			// that a waiter's lock.acquired can never precede it.
			m.emitChange(ctx, events.LockReleased, key, rec, h, rec, gone)
			announced = true
		}
		var next *record
		var newRev uint64
		if len(rest) == 0 {
			newRev, err = m.remove(ctx, key, rev)
		} else {
			next = &record{Workspace: rec.Workspace, Path: rec.Path, Mode: rec.Mode, Holders: rest}
			newRev, err = m.write(ctx, key, next, rev, now)
		}
		if errors.Is(err, errCAS) {
			continue
		}
		if err != nil {
			return err
		}
		m.apply(key, newRev, next, now)
		return nil
	}
	return fmt.Errorf("too much contention on %q: %w", path, errCAS)
}

// ReleaseAll releases the leases of tokens, found in the mirror Run keeps,
// for a session that ends cleanly. Tokens that hold nothing are skipped;
// failures are logged.
func (m *Manager) ReleaseAll(ctx context.Context, tokens []string) {
	for _, t := range tokens {
		hash := hashToken(t)
		m.mu.Lock()
		var ws, path string
		for _, e := range m.mirror {
			if e.rec != nil && find(e.rec.Holders, hash) >= 0 {
				ws, path = e.rec.Workspace, e.rec.Path
				break
			}
		}
		m.mu.Unlock()
		if ws == "" {
			continue
		}
		if err := m.Release(ctx, ws, path, t); err != nil && !errors.Is(err, ErrNotHolder) {
			m.log.Warn("release lock of ended session", "workspace", ws, "path", path, "err", err)
		}
	}
}

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
	return decide(rec, clean, token, fencing)
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
	return decide(rec, clean, token, fencing)
}

// decide is Check's verdict on the record under the path's key (nil when
// it holds no lock).
func decide(rec *record, clean, token string, fencing uint64) (events.Lease, error) {
	var hash string
	if token != "" {
		hash = hashToken(token)
	}
	var live []holder
	if rec != nil {
		live, _ = rec.split(time.Now())
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
