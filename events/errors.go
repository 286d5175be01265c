package events

import (
	"errors"
	"fmt"
	"time"
)

// Sentinel errors shared by every package that serves events. Match them
// with errors.Is; the error text is written for a person or an agent.
var (
	ErrCursorExpired    = errors.New("events: cursor expired: the log no longer holds events after it; list the files again and continue from the listing's cursor")
	ErrBadCursor        = errors.New("events: invalid cursor")
	ErrUnknownWorkspace = errors.New("events: unknown workspace")
	ErrBadGlob          = errors.New("events: invalid glob")
	ErrBadType          = errors.New("events: invalid event type")
	ErrBadPath          = errors.New("events: invalid path")
	ErrNotFound         = errors.New("events: not found")
	ErrTooLarge         = errors.New("events: too large")
	ErrClosed           = errors.New("events: closed")
	// ErrVCSInternal is a path inside a version-control folder (.git, .hg,
	// .svn) at any depth, or the folder itself: its hooks and configuration
	// run code, so nothing there is read, written, listed or locked.
	ErrVCSInternal = errors.New("events: version-control internals are off limits")

	// ErrWorkspaceUnavailable is a workspace whose folder is missing
	// (removed, or moved away): nothing in it can be read, written, listed
	// or locked until the folder is back.
	ErrWorkspaceUnavailable = errors.New("events: workspace unavailable")
	// ErrInsufficientStorage is a change refused because the event log
	// cannot record it (its disk is full, or its storage limit reached):
	// nothing was changed.
	ErrInsufficientStorage = errors.New("events: insufficient storage")

	// ErrNotStored is an earlier content the hub does not keep (any
	// more): never seen, dropped by the content store's size cap or by
	// the log's retention, or not kept by this hub at all. Read the file
	// instead.
	ErrNotStored = errors.New("events: content not stored")
	// ErrBinary is a content the hub knows is not text: no diff of it is
	// given, and it is not kept.
	ErrBinary = errors.New("events: binary content")
)

// Problem codes: what keeps a hub from serving everything. They are also
// the wire codes of the matching errors.
const (
	ProblemWorkspaceUnavailable = "workspace_unavailable"
	ProblemInsufficientStorage  = "insufficient_storage"
)

// Problem is a condition that keeps a hub from serving everything, as
// /healthz, the dashboard and the logs report it.
type Problem struct {
	Code      string    `json:"code"`                // ProblemWorkspaceUnavailable or ProblemInsufficientStorage
	Workspace string    `json:"workspace,omitempty"` // the workspace concerned; "" for the whole hub
	Message   string    `json:"message"`             // what is wrong and what to do, for a person
	Since     time.Time `json:"since"`               // when it started
}

// Error is an error about one input value; it wraps one of the sentinels.
type Error struct {
	Kind  error  // one of the sentinels above
	Value string // the offending input, quoted in the message
	Why   string // what is wrong with it
}

func (e *Error) Error() string {
	if e.Why == "" {
		return fmt.Sprintf("%v %q", e.Kind, e.Value)
	}
	return fmt.Sprintf("%v %q: %s", e.Kind, e.Value, e.Why)
}

// Unwrap returns the sentinel.
func (e *Error) Unwrap() error { return e.Kind }
