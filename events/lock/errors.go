package lock

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/filecast/filecast/events"
)

// The errors of the package are the project-wide lock errors of package
// events; match them with errors.Is. A conflict, a refused write, a stale
// token and a token that holds nothing are *events.LockError values (with
// Kind one of these), whose text is written for a person or an agent and
// says what to do next.
var (
	// ErrConflict means another holder has the lock; the error is a
	// *events.LockError naming the holder, the mode and the expiry.
	ErrConflict = events.ErrLockConflict
	// ErrNotHolder means a lock_token does not hold the lock it was given
	// for: it is wrong, or its lease was released or has expired.
	ErrNotHolder = events.ErrNotHolder
	// ErrLocked means a write was refused because someone else holds an
	// exclusive lock on the path, or anyone holds a shared one (HTTP 423);
	// the error is a *events.LockError naming the holders and the expiry.
	ErrLocked = events.ErrLocked
	// ErrStale means a write carried a lock_token or fencing token that is
	// no longer current: the lease expired, was released or was replaced
	// (HTTP 409).
	ErrStale = events.ErrStale
	// ErrBadRequest means a lock request has an invalid field (mode, ttl,
	// wait, holder). Bad paths and workspace names are *events.Error
	// wrapping events.ErrBadPath instead.
	ErrBadRequest = errors.New("lock: invalid request")
)

// conflictError reports that path could not be locked because holders
// (joined by ", " for a shared lock) have it in mode until expires at the
// latest.
func conflictError(path, holders string, mode string, expires time.Time) *events.LockError {
	return &events.LockError{
		Kind: ErrConflict, Path: path, Holder: holders, Mode: mode, ExpiresAt: expires,
		Why: fmt.Sprintf("that is in %s; retry after that, or wait for it (wait_ms)", untilNow(expires)),
	}
}

// lockedError reports that a write to path was refused because holder has
// it locked exclusively until expires.
func lockedError(path, holder string, expires time.Time) *events.LockError {
	return &events.LockError{
		Kind: ErrLocked, Path: path, Holder: holder, Mode: events.LockExclusive, ExpiresAt: expires,
		Why: fmt.Sprintf("that is in %s; take the lock, waiting for it if needed (wait_ms), and pass its lock_token", untilNow(expires)),
	}
}

// sharedLockedError reports that a write to path was refused because
// holders (joined by ", ") have it locked shared, the last of them until
// expires.
func sharedLockedError(path, holders string, expires time.Time) *events.LockError {
	return &events.LockError{
		Kind: ErrLocked, Path: path, Holder: holders, Mode: events.LockShared, ExpiresAt: expires,
		Why: fmt.Sprintf("a shared lock is a read lock: nobody writes while one is held, its holders included; the last one ends in %s unless refreshed. A writer releases its shared lock and takes the exclusive lock, waiting for it if needed (wait_ms)", untilNow(expires)),
	}
}

// notHolderError reports that a lock_token holds no lock on path (which
// may be empty when the lease was looked up by token); why says more.
func notHolderError(path, why string, args ...any) *events.LockError {
	return &events.LockError{Kind: ErrNotHolder, Path: path, Why: fmt.Sprintf(why, args...)}
}

// staleError reports that a write's lock_token or fencing token on path is
// no longer current; why says more.
func staleError(path, why string, args ...any) *events.LockError {
	return &events.LockError{Kind: ErrStale, Path: path, Why: fmt.Sprintf(why, args...)}
}

// withOp prefixes err with op, except a *events.LockError, which already
// names its path and is passed on as it is.
func withOp(op string, err error) error {
	if le, ok := errors.AsType[*events.LockError](err); ok {
		return le
	}
	return fmt.Errorf("%s: %w", op, err)
}

func untilNow(t time.Time) string {
	d := time.Until(t)
	if d < 0 {
		d = 0
	}
	return d.Round(100 * time.Millisecond).String()
}

func badRequest(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrBadRequest, fmt.Sprintf(format, args...))
}

func holderNames(hs []holder) string {
	names := make([]string, len(hs))
	for i, h := range hs {
		names[i] = h.Holder
	}
	return strings.Join(names, ", ")
}
