package api_test

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/filecast/filecast/events"
	"github.com/filecast/filecast/events/api"
	"github.com/filecast/filecast/events/feed/feedtest"
)

// recordingLocker grants every lock and records what it was asked.
type recordingLocker struct {
	mu   sync.Mutex
	last events.LockRequest
}

func (l *recordingLocker) Lock(_ context.Context, r events.LockRequest) (events.Lease, error) {
	l.mu.Lock()
	l.last = r
	l.mu.Unlock()
	return events.Lease{Workspace: r.Workspace, Path: r.Path, Holder: r.Holder, Mode: r.Mode, Token: "lk_x", FencingToken: 1}, nil
}
func (l *recordingLocker) Unlock(context.Context, string, string, string) error { return nil }
func (l *recordingLocker) Locks(context.Context, string) ([]events.Lease, error) {
	return nil, nil
}
func (l *recordingLocker) WriteFile(context.Context, events.WriteRequest) (events.Event, error) {
	return events.Event{}, nil
}

// FuzzLockBody posts arbitrary bodies to the lock route: the answer is a
// lease or a client error, never a server error, and what reaches the
// Locker is within the documented limits.
func FuzzLockBody(f *testing.F) {
	for _, s := range []string{
		`{"path":"a.md","ttl_seconds":30,"mode":"shared","wait_ms":100,"holder":"x"}`,
		`{"path":"a.md","ttl_seconds":-5}`, `{"path":"a","wait_ms":1e99}`, `{"lock_token":"lk_1"}`,
		`null`, `[]`, `{"path":1}`, ``, `{"mode":"EXCLUSIVE","path":"b"}`,
	} {
		f.Add([]byte(s))
	}
	src := feedtest.New()
	src.AddWorkspace("docs", f.TempDir())
	lk := &recordingLocker{}
	h := api.New(src, nil, api.Options{Locker: lk, ClientRate: -1})
	f.Fuzz(func(t *testing.T, body []byte) {
		req := httptest.NewRequest(http.MethodPost, "/v1/workspaces/docs/locks", bytes.NewReader(body))
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		switch rec.Code {
		case http.StatusCreated, http.StatusOK:
			lk.mu.Lock()
			r := lk.last
			lk.mu.Unlock()
			if r.TTL < 0 || r.TTL > 24*time.Hour || r.Wait < 0 || r.Wait > 5*time.Minute ||
				(r.Mode != "" && r.Mode != events.LockExclusive && r.Mode != events.LockShared) || (r.Path == "" && r.Token == "") || r.Holder == "" && r.Token == "" {
				t.Fatalf("body %q reached the Locker as %+v", body, r)
			}
		case http.StatusBadRequest, http.StatusRequestEntityTooLarge:
		default:
			t.Fatalf("body %q: status %d: %s", body, rec.Code, rec.Body)
		}
	})
}
