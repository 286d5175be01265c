package wire_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/filecast/filecast/events"
	"github.com/filecast/filecast/events/wire"
)

func TestErrorCode(t *testing.T) {
	tests := []struct {
		err    error
		status int
		code   string
	}{
		{&events.Error{Kind: events.ErrUnknownWorkspace, Value: "x"}, 404, "unknown_workspace"},
		{events.ErrCursorExpired, 410, "cursor_expired"},
		{&http.MaxBytesError{Limit: 1}, 413, "too_large"},
		{&events.Error{Kind: events.ErrWorkspaceUnavailable, Value: "docs"}, 503, "workspace_unavailable"},
		{fmt.Errorf("write a.md: %w: the disk is full", events.ErrInsufficientStorage), 507, "insufficient_storage"},
		{fmt.Errorf("content 3f2a: %w", events.ErrNotStored), 404, "not_stored"},
		{events.ErrBinary, 404, "binary"},
		{io.ErrUnexpectedEOF, 500, "internal"},
	}
	for _, tt := range tests {
		status, code := wire.ErrorCode(tt.err)
		if status != tt.status || code != tt.code {
			t.Errorf("ErrorCode(%v) = %d %s, want %d %s", tt.err, status, code, tt.status, tt.code)
		}
		if back := wire.CodeError(code); code != "internal" && back == nil {
			t.Errorf("CodeError(%q) = nil", code)
		}
	}
}

// TestWriteError_LockError: a lock error written by the server comes back
// whole to a client: the sentinel from the code, and who holds the lock
// until when from the body.
func TestWriteError_LockError(t *testing.T) {
	expires := time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC)
	sent := &events.LockError{Kind: events.ErrLocked, Path: "a.md", Holder: "claude#3f2a", Mode: events.LockExclusive, ExpiresAt: expires, Why: "take the lock"}
	rec := httptest.NewRecorder()
	wire.WriteError(rec, fmt.Errorf("write a.md: %w", sent))
	if rec.Code != http.StatusLocked {
		t.Fatalf("status %d, want 423", rec.Code)
	}
	var body wire.ErrorBody
	if err := json.NewDecoder(rec.Body).Decode(&body); err != nil {
		t.Fatal(err)
	}
	if body.Error.Code != "locked" || !errors.Is(wire.CodeError(body.Error.Code), events.ErrLocked) {
		t.Errorf("code %q", body.Error.Code)
	}
	got := body.Error.LockError()
	if got == nil {
		t.Fatal("LockError() = nil for a locked error body")
	}
	if got.Kind != sent.Kind || got.Path != sent.Path || got.Holder != sent.Holder || got.Mode != sent.Mode || !got.ExpiresAt.Equal(expires) || got.Why != sent.Why {
		t.Errorf("LockError() = %+v, want %+v", got, sent)
	}
	if (wire.ErrorDetail{Code: "not_found"}).LockError() != nil {
		t.Error("LockError() of a not_found body is not nil")
	}
}

// TestWriteError_Internal: an error that names no sentinel is a 500 whose
// message keeps the details in the server.
func TestWriteError_Internal(t *testing.T) {
	rec := httptest.NewRecorder()
	wire.WriteError(rec, errors.New("open /var/secret: permission denied"))
	if rec.Code != http.StatusInternalServerError {
		t.Fatalf("status %d, want 500", rec.Code)
	}
	if strings.Contains(rec.Body.String(), "secret") {
		t.Errorf("the body leaks the error: %s", rec.Body)
	}
}

// TestWriteJSON: every JSON answer is uncached and unsniffed, and a value
// that cannot be encoded is an internal error, not half a body.
func TestWriteJSON(t *testing.T) {
	rec := httptest.NewRecorder()
	wire.WriteJSON(rec, http.StatusCreated, map[string]int{"n": 1})
	h := rec.Header()
	if rec.Code != http.StatusCreated || h.Get("Content-Type") != "application/json" || h.Get("Cache-Control") != "no-store" || h.Get("X-Content-Type-Options") != "nosniff" {
		t.Errorf("status %d, headers %v", rec.Code, h)
	}
	if rec.Body.String() != "{\"n\":1}\n" {
		t.Errorf("body %q", rec.Body)
	}
	rec = httptest.NewRecorder()
	wire.WriteJSON(rec, http.StatusOK, func() {})
	if rec.Code != http.StatusInternalServerError || !strings.Contains(rec.Body.String(), `"internal"`) {
		t.Errorf("unencodable value: status %d, body %q", rec.Code, rec.Body)
	}
}
