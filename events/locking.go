package events

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Lock modes.
const (
	LockExclusive = "exclusive"
	LockShared    = "shared"
)

// Lock errors. Match them with errors.Is; *LockError carries the details.
var (
	ErrLockConflict = errors.New("events: lock held by another holder")
	ErrNotHolder    = errors.New("events: not the holder of this lock")
	ErrLocked       = errors.New("events: file is locked")              // HTTP 423
	ErrStale        = errors.New("events: stale lock or fencing token") // HTTP 409
)

// Lease is a lock held on a path. Token is the holder's secret and is set
// only in answers to the holder itself.
type Lease struct {
	Workspace    string    `json:"workspace"`
	Path         string    `json:"path"`
	Holder       string    `json:"holder"`
	Mode         string    `json:"mode"`
	Token        string    `json:"lock_token,omitempty"`
	FencingToken uint64    `json:"fencing_token"`
	ExpiresAt    time.Time `json:"expires_at"`
}

// LockRequest asks for a lock, or refreshes one when Token is set.
type LockRequest struct {
	Workspace string        `json:"workspace"`
	Path      string        `json:"path"`
	Holder    string        `json:"holder,omitempty"`
	Mode      string        `json:"mode,omitempty"` // exclusive (default) or shared
	TTL       time.Duration `json:"-"`              // default 60s
	Wait      time.Duration `json:"-"`              // wait for a holder to let go; 0 fails at once
	Token     string        `json:"lock_token,omitempty"`
}

// LockError names who holds a lock that refused a request.
type LockError struct {
	Kind      error // ErrLockConflict, ErrLocked or ErrStale
	Path      string
	Holder    string
	Mode      string
	ExpiresAt time.Time
	Why       string
}

func (e *LockError) Error() string {
	msg := fmt.Sprintf("%v: %s", e.Kind, e.Path)
	if e.Holder != "" {
		msg += fmt.Sprintf(" is locked (%s) by %s until %s", e.Mode, e.Holder, e.ExpiresAt.UTC().Format(time.RFC3339))
	}
	if e.Why != "" {
		msg += "; " + e.Why
	}
	return msg
}

// Unwrap returns the kind.
func (e *LockError) Unwrap() error { return e.Kind }

// WriteRequest writes a file through the hub, so locks and fencing apply.
type WriteRequest struct {
	Workspace    string
	Path         string
	Content      []byte
	Delete       bool   // delete the file instead of writing Content
	LockToken    string // the writer's lock, if it holds one
	FencingToken uint64 // if set, must be the fencing token of LockToken's lease
	Actor        string // "api:<token name>" or "mcp:<client name>"
}

// Locker is what the MCP server needs to lock and write files; the embedded
// hub and a remote hub both provide it. Implementations are safe for
// concurrent use.
type Locker interface {
	// Lock acquires (or, with r.Token, refreshes) a lease. A conflict is a
	// *LockError wrapping ErrLockConflict naming the holder and expiry.
	Lock(ctx context.Context, r LockRequest) (Lease, error)
	// Unlock releases a lease; a wrong token is ErrNotHolder.
	Unlock(ctx context.Context, ws, path, token string) error
	// Locks lists the current leases of ws (tokens omitted).
	Locks(ctx context.Context, ws string) ([]Lease, error)
	// WriteFile writes or deletes a file, refusing with ErrLocked when
	// another holder has it exclusively locked and ErrStale when the
	// writer's lock or fencing token is no longer current. It returns the
	// event the change produced (with Seq), or a zero Event when the content
	// was unchanged.
	WriteFile(ctx context.Context, w WriteRequest) (Event, error)
}
