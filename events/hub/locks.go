package hub

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"

	"github.com/filecast/filecast/events"
	"github.com/filecast/filecast/events/workspace"
)

// LockManager keeps the leases on workspace paths (satisfied by
// *lock.Manager, whose Run appends its lock events to the hub). Its
// methods are safe for concurrent use; Holders does no I/O.
type LockManager interface {
	// Acquire takes a lease, or refreshes the one of r.Token. Its lock
	// errors are *events.LockError values, which the hub passes on as they are.
	Acquire(ctx context.Context, r events.LockRequest) (events.Lease, error)
	// Release ends the lease of token on path ("" looks it up by token).
	Release(ctx context.Context, ws, path, token string) error
	// List returns the current leases of ws, sorted by path, tokens omitted.
	List(ctx context.Context, ws string) ([]events.Lease, error)
	// Holders returns the current leases on a clean path, tokens omitted.
	Holders(ws, path string) []events.Lease
	// Verify decides, from the lock's current state, whether a write to
	// path may go ahead; a refusal is a *events.LockError wrapping
	// events.ErrLocked or events.ErrStale.
	Verify(ctx context.Context, ws, path, token string, fencing uint64) (events.Lease, error)
}

// ErrNoLocks is returned by Lock, Unlock and Locks of a hub that has no
// lock manager. It wraps events.ErrClosed, so the API answers 503.
var ErrNoLocks error = noLocksError{}

type noLocksError struct{}

func (noLocksError) Error() string {
	return "hub: locks are not available: this hub runs without a lock manager"
}

func (noLocksError) Unwrap() error { return events.ErrClosed }

var _ events.Locker = (*Hub)(nil)

// Lock implements [events.Locker]: it takes a lease on r.Path, or with
// r.Token refreshes one. A path held in a conflicting mode is a
// *events.LockError wrapping events.ErrLockConflict that names the holder
// and expiry; a refresh with a token that holds nothing wraps
// events.ErrNotHolder; an invalid ttl, wait, mode or holder is the lock
// manager's error (lock.ErrBadRequest). A path that goes through a symbolic link leading out
// of the workspace is refused like a write there (events.ErrBadPath), when
// this hub watches the workspace's folder. It blocks up to r.Wait for a
// conflicting holder.
// A new lock (not a refresh) is refused with events.ErrWorkspaceUnavailable
// while the workspace's folder is missing, and with
// events.ErrInsufficientStorage while the log has no room for its event.
// Refreshing and releasing a lock held already are tried then too: they
// work as long as the store takes them, and otherwise fail with
// events.ErrInsufficientStorage.
func (h *Hub) Lock(ctx context.Context, r events.LockRequest) (events.Lease, error) {
	lm := h.locks
	if lm == nil {
		return events.Lease{}, ErrNoLocks
	}
	st, err := h.state(r.Workspace)
	if err != nil {
		return events.Lease{}, err
	}
	if r.Token == "" {
		if _, err := h.unavailable(st); err != nil {
			return events.Lease{}, err
		}
		if err := h.Room(); err != nil {
			return events.Lease{}, fmt.Errorf("%w; no lock was taken", err)
		}
		if err := lockablePath(st, r.Path); err != nil {
			return events.Lease{}, err
		}
	}
	l, err := lm.Acquire(ctx, r)
	if err != nil {
		if errors.Is(err, events.ErrLockConflict) {
			h.lockConflicts.Add(1)
		}
		return events.Lease{}, h.lockStorageError(err)
	}
	return l, nil
}

// lockablePath refuses a path that goes through a symbolic link resolving
// outside the workspace; a path that does not exist (yet) is fine. It
// checks only on a hub that watches the workspace, which has its folder.
func lockablePath(st *wsState, p string) error {
	if st.index.Load() == nil {
		return nil
	}
	rel, err := workspace.Clean(p)
	if err != nil {
		return err
	}
	root, err := os.OpenRoot(st.w.Dir)
	if err != nil {
		return fmt.Errorf("open workspace %s: %w", st.w.Name, err)
	}
	defer root.Close()
	segs := strings.Split(rel, "/")
	for i := 1; i <= len(segs); i++ {
		sub := strings.Join(segs[:i], "/")
		fi, err := root.Lstat(sub)
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		if err != nil {
			return pathError(sub, err)
		}
		if fi.Mode()&fs.ModeSymlink == 0 {
			continue
		}
		if _, err := root.Stat(sub); err != nil && !errors.Is(err, fs.ErrNotExist) {
			if e := pathError(sub, err); errors.Is(e, events.ErrBadPath) {
				return &events.Error{Kind: events.ErrBadPath, Value: rel, Why: sub + " is a symbolic link that leads outside the workspace"}
			}
			return pathError(sub, err)
		}
	}
	return nil
}

// lockStorageError explains a lock change that failed while the log's
// store has no room (locks live in the same store): it most likely failed
// for that reason. Lock errors and other failures are returned as they are.
func (h *Hub) lockStorageError(err error) error {
	if _, ok := errors.AsType[*events.LockError](err); ok || errors.Is(err, events.ErrInsufficientStorage) {
		return err
	}
	if room := h.Room(); room != nil {
		return fmt.Errorf("%w (the lock change was not recorded: %v)", room, err)
	}
	return err
}

// Unlock implements [events.Locker]: it releases the lease of token on
// path (an empty path finds the lease by token). A token that holds no
// current lease there is a *events.LockError wrapping events.ErrNotHolder.
func (h *Hub) Unlock(ctx context.Context, ws, path, token string) error {
	lm := h.locks
	if lm == nil {
		return ErrNoLocks
	}
	if _, err := h.state(ws); err != nil {
		return err
	}
	if err := lm.Release(ctx, ws, path, token); err != nil {
		return h.lockStorageError(err)
	}
	return nil
}

// Locks implements [events.Locker]: the current leases of ws, sorted by
// path, without tokens.
func (h *Hub) Locks(ctx context.Context, ws string) ([]events.Lease, error) {
	lm := h.locks
	if lm == nil {
		return nil, ErrNoLocks
	}
	if _, err := h.state(ws); err != nil {
		return nil, err
	}
	return lm.List(ctx, ws)
}

// annotate adds to a file event the lock held on its path (or, for a
// move, on its old path) at this moment. A change that reaches the hub
// through Append — that is, one observed on disk — to a path someone holds
// exclusively bypassed the lock and is flagged as a conflict.
func (h *Hub) annotate(ev *events.Event) {
	lm := h.locks
	if lm == nil || !ev.Type.IsFile() || ev.Lock != nil {
		return
	}
	hs := lm.Holders(ev.Workspace, ev.Path)
	if len(hs) == 0 && ev.OldPath != "" {
		hs = lm.Holders(ev.Workspace, ev.OldPath)
	}
	if len(hs) == 0 {
		return
	}
	ev.Lock = lockInfo(hs[0])
	ev.Conflict = hs[0].Mode == events.LockExclusive
}

func lockInfo(l events.Lease) *events.LockInfo {
	return &events.LockInfo{Holder: l.Holder, FencingToken: l.FencingToken, Mode: l.Mode}
}

// checkWrite returns the lock info of the lease a write by the holder of token (and fencing
// token) may rely on, checking the lock manager; without a manager no path
// is locked and a token holds nothing.
func (h *Hub) checkWrite(ctx context.Context, ws, rel, token string, fencing uint64) (*events.LockInfo, error) {
	lm := h.locks
	if lm == nil {
		if token != "" {
			return nil, &events.LockError{Kind: events.ErrStale, Path: rel, Why: "this hub has no locks, so the lock_token holds none; write without it"}
		}
		return nil, nil
	}
	l, err := lm.Verify(ctx, ws, rel, token, fencing)
	if err != nil {
		return nil, err
	}
	if token != "" {
		return lockInfo(l), nil
	}
	if hs := lm.Holders(ws, rel); len(hs) > 0 {
		// Shared holders let anyone write; the event still says who holds it.
		return lockInfo(hs[0]), nil
	}
	return nil, nil
}
