package lock

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/filecast/filecast/events"
)

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
