package wire

import (
	"context"
	"errors"
	"net/http"
	"time"

	"github.com/filecast/filecast/events"
)

// Error codes written in the "code" member of a JSON error body, beside the
// ones that name an events sentinel (see [ErrorCode]).
const (
	CodeBadRequest       = "bad_request"
	CodeUnauthorized     = "unauthorized"
	CodeNoRoute          = "no_route"
	CodeMethodNotAllowed = "method_not_allowed"
	CodeUnavailable      = "unavailable"
	CodeInternal         = "internal"
)

// ErrBadRequest is the sentinel of a request the hub cannot take as it
// is: a query parameter that is not valid (a limit that is not a number),
// or a body that is not the JSON a route expects (see [DecodeJSON]).
var ErrBadRequest = errors.New("wire: bad request")

// errorCodes maps the sentinels to their HTTP status and wire code; the
// order matters only for errors that wrap several.
var errorCodes = []struct {
	err    error
	status int
	code   string
}{
	{events.ErrWorkspaceUnavailable, http.StatusServiceUnavailable, events.ProblemWorkspaceUnavailable},
	{events.ErrInsufficientStorage, http.StatusInsufficientStorage, events.ProblemInsufficientStorage},
	{events.ErrUnknownWorkspace, http.StatusNotFound, "unknown_workspace"},
	{events.ErrCursorExpired, http.StatusGone, "cursor_expired"},
	{events.ErrBadCursor, http.StatusBadRequest, "bad_cursor"},
	{events.ErrBadGlob, http.StatusBadRequest, "bad_glob"},
	{events.ErrBadType, http.StatusBadRequest, "bad_type"},
	{events.ErrBadPath, http.StatusBadRequest, "bad_path"},
	{events.ErrVCSInternal, http.StatusForbidden, "vcs_internal"},
	{events.ErrNotFound, http.StatusNotFound, "not_found"},
	{events.ErrNotStored, http.StatusNotFound, "not_stored"},
	{events.ErrBinary, http.StatusNotFound, "binary"},
	{events.ErrTooLarge, http.StatusRequestEntityTooLarge, "too_large"},
	{events.ErrClosed, http.StatusServiceUnavailable, CodeUnavailable},
	{events.ErrLockConflict, http.StatusConflict, "lock_conflict"},
	{events.ErrNotHolder, http.StatusForbidden, "not_holder"},
	{events.ErrLocked, http.StatusLocked, "locked"},
	{events.ErrStale, http.StatusConflict, "stale"},
	{ErrBadRequest, http.StatusBadRequest, CodeBadRequest},
}

// ErrorBody is the JSON form of every error the hub's HTTP API answers:
// {"error": {"code": "...", "message": "..."}}.
type ErrorBody struct {
	Error ErrorDetail `json:"error"`
}

// ErrorDetail is the inner object of an [ErrorBody]. A lock error
// (lock_conflict, locked, stale, not_holder) also names the path and, when
// someone holds it, the holder, the mode and when the lock expires.
type ErrorDetail struct {
	Code      string     `json:"code"`
	Message   string     `json:"message"`
	Path      string     `json:"path,omitempty"`
	Holder    string     `json:"holder,omitempty"`
	Mode      string     `json:"mode,omitempty"`
	ExpiresAt *time.Time `json:"expires_at,omitempty"`
	Why       string     `json:"why,omitempty"` // what to do about it
}

// LockError returns the *events.LockError an error body describes, or nil
// when it is not a lock error. It is the inverse of [WriteError] for
// clients.
func (d ErrorDetail) LockError() *events.LockError {
	kind := CodeError(d.Code)
	switch kind {
	case events.ErrLockConflict, events.ErrNotHolder, events.ErrLocked, events.ErrStale:
	default:
		return nil
	}
	le := &events.LockError{Kind: kind, Path: d.Path, Holder: d.Holder, Mode: d.Mode, Why: d.Why}
	if d.ExpiresAt != nil {
		le.ExpiresAt = *d.ExpiresAt
	}
	return le
}

// ErrorCode returns the HTTP status and wire code for err: the code of the
// events sentinel it wraps, too_large for a request body over the limit,
// and internal (500) for anything else.
func ErrorCode(err error) (status int, code string) {
	for _, c := range errorCodes {
		if errors.Is(err, c.err) {
			return c.status, c.code
		}
	}
	if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
		return http.StatusRequestEntityTooLarge, "too_large"
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return http.StatusServiceUnavailable, CodeUnavailable
	}
	return http.StatusInternalServerError, CodeInternal
}

// Degraded reports whether err comes from a condition the hub reports
// once by itself — a missing workspace folder, a full event log — rather
// than a fault worth logging at every request that meets it.
func Degraded(err error) bool {
	return errors.Is(err, events.ErrWorkspaceUnavailable) || errors.Is(err, events.ErrInsufficientStorage)
}

// CodeError returns the sentinel a wire code stands for, or nil for a code
// that names none. It is the inverse of [ErrorCode] for clients.
func CodeError(code string) error {
	for _, c := range errorCodes {
		if c.code == code {
			return c.err
		}
	}
	if code == "too_large" {
		return events.ErrTooLarge
	}
	return nil
}

// WriteError answers the request with err as a JSON error body whose code
// and status come from [ErrorCode]. The message is err's text, except for
// internal errors, whose details stay in the server's log.
func WriteError(w http.ResponseWriter, err error) {
	status, code := ErrorCode(err)
	d := ErrorDetail{Code: code, Message: err.Error()}
	if status == http.StatusInternalServerError {
		d.Message = "internal error"
	}
	if le, ok := errors.AsType[*events.LockError](err); ok {
		d.Path, d.Holder, d.Mode, d.Why = le.Path, le.Holder, le.Mode, le.Why
		if !le.ExpiresAt.IsZero() {
			t := le.ExpiresAt.UTC()
			d.ExpiresAt = &t
		}
	}
	WriteJSON(w, status, ErrorBody{Error: d})
}

// WriteErrorCode answers the request with a JSON error body of the given
// status, code and message.
func WriteErrorCode(w http.ResponseWriter, status int, code, message string) {
	WriteJSON(w, status, ErrorBody{Error: ErrorDetail{Code: code, Message: message}})
}
