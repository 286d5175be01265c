package lock

import (
	"errors"
	"fmt"
	"strings"
	"time"
)

// Sentinel errors of the package; match them with errors.Is. The error
// text is written for a person or an agent and says what to do next.
var (
	// ErrConflict means another holder has the lock; the error is a
	// *ConflictError naming the holder and the expiry.
	ErrConflict = errors.New("lock: held by someone else")
	// ErrNotHolder means a lock_token does not hold the lock it was given
	// for: it is wrong, or its lease was released or has expired.
	ErrNotHolder = errors.New("lock: lock_token does not hold this lock")
	// ErrLocked means a write was refused because someone else holds an
	// exclusive lock on the path (HTTP 423); the error is a *LockedError.
	ErrLocked = errors.New("lock: locked by someone else")
	// ErrStale means a write carried a lock_token or fencing token that is
	// no longer current: the lease expired, was released or was replaced
	// (HTTP 409).
	ErrStale = errors.New("lock: stale lock")
	// ErrBadRequest means a lock request has an invalid field (mode, ttl,
	// wait, holder). Bad paths and workspace names are *events.Error
	// wrapping events.ErrBadPath instead.
	ErrBadRequest = errors.New("lock: invalid request")
)

// ConflictError reports that a lock could not be taken because another
// holder has it. It wraps ErrConflict.
type ConflictError struct {
	Workspace string
	Path      string
	Holder    string    // the holder, or the holders joined by ", " for a shared lock
	Mode      Mode      // the mode the path is locked in
	ExpiresAt time.Time // when the conflicting lock runs out at the latest, unless refreshed
}

func (e *ConflictError) Error() string {
	return fmt.Sprintf("%q is locked (%s) by %s until %s (%s from now); retry after that, or wait for it (wait_ms)",
		e.Path, e.Mode, e.Holder, e.ExpiresAt.UTC().Format(time.RFC3339), untilNow(e.ExpiresAt))
}

// Unwrap returns ErrConflict.
func (e *ConflictError) Unwrap() error { return ErrConflict }

// LockedError reports that a write was refused because another holder has
// an exclusive lock on the path. It wraps ErrLocked.
type LockedError struct {
	Workspace    string
	Path         string
	Holder       string
	FencingToken uint64
	ExpiresAt    time.Time
}

func (e *LockedError) Error() string {
	return fmt.Sprintf("%q is locked (exclusive) by %s until %s (%s from now); take the lock, waiting for it if needed, and pass its lock_token",
		e.Path, e.Holder, e.ExpiresAt.UTC().Format(time.RFC3339), untilNow(e.ExpiresAt))
}

// Unwrap returns ErrLocked.
func (e *LockedError) Unwrap() error { return ErrLocked }

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
