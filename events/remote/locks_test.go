package remote_test

import (
	"context"
	"errors"
	"net/http/httptest"
	"os"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/filecast/filecast/events"
	"github.com/filecast/filecast/events/api"
	"github.com/filecast/filecast/events/feed"
	"github.com/filecast/filecast/events/hub/hubtest"
	"github.com/filecast/filecast/events/remote"
)

// TestClient_Locker drives a real hub's locks and writes through the
// client: the leases, events and errors come back as the hub made them.
func TestClient_Locker(t *testing.T) {
	t.Parallel()
	st := hubtest.Start(t, hubtest.Options{})
	fd := feed.New(st.Hub, feed.Options{})
	srv := httptest.NewServer(api.New(st.Hub, fd, api.Options{Tokens: []api.Token{{Name: "ci", Secret: "ci-secret-0123456789"}}}))
	t.Cleanup(func() {
		fd.Close()
		srv.CloseClientConnections()
		srv.Close()
	})
	c, err := remote.New(srv.URL, remote.Options{Token: "ci-secret-0123456789"})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()

	l, err := c.Lock(ctx, events.LockRequest{Workspace: "docs", Path: "dir/a.md", Holder: "claude#3f2a", TTL: 30 * time.Second})
	if err != nil {
		t.Fatalf("Lock: %v", err)
	}
	if l.Holder != "claude#3f2a" || l.Token == "" || l.FencingToken == 0 || l.Mode != "exclusive" {
		t.Fatalf("lease %+v", l)
	}

	// A conflict keeps its details across the network.
	_, err = c.Lock(ctx, events.LockRequest{Workspace: "docs", Path: "dir/a.md", Holder: "other#1"})
	le, ok := errors.AsType[*events.LockError](err)
	if !errors.Is(err, events.ErrLockConflict) || !ok {
		t.Fatalf("conflicting Lock = %v, want a *LockError wrapping ErrLockConflict", err)
	}
	if le.Holder != "claude#3f2a" || !le.ExpiresAt.Equal(l.ExpiresAt) || le.Mode != "exclusive" || le.Path != "dir/a.md" {
		t.Errorf("LockError %+v, want the holder and expiry of %+v", le, l)
	}

	ls, err := c.Locks(ctx, "docs")
	if err != nil {
		t.Fatal(err)
	}
	want := []events.Lease{{Workspace: "docs", Path: "dir/a.md", Holder: "claude#3f2a", Mode: "exclusive", FencingToken: l.FencingToken, ExpiresAt: l.ExpiresAt}}
	if diff := cmp.Diff(want, ls, cmpopts.EquateApproxTime(0)); diff != "" {
		t.Errorf("Locks (-want +got):\n%s", diff)
	}

	// Writes: by the holder, refused for others, stale with a wrong fencing token.
	ev, err := c.WriteFile(ctx, events.WriteRequest{Workspace: "docs", Path: "dir/a.md", Content: []byte("v1"), LockToken: l.Token, FencingToken: l.FencingToken})
	if err != nil {
		t.Fatalf("WriteFile: %v", err)
	}
	if ev.Seq == 0 || ev.Type != events.FileCreated || ev.Actor != "api:ci" || ev.Lock == nil || ev.Lock.Holder != "claude#3f2a" || ev.Size != 2 {
		t.Errorf("event %+v", ev)
	}
	same, err := c.WriteFile(ctx, events.WriteRequest{Workspace: "docs", Path: "dir/a.md", Content: []byte("v1"), LockToken: l.Token})
	if err != nil || same.Seq != 0 {
		t.Errorf("unchanged write = %+v, %v", same, err)
	}
	_, err = c.WriteFile(ctx, events.WriteRequest{Workspace: "docs", Path: "dir/a.md", Content: []byte("v2")})
	if le, ok := errors.AsType[*events.LockError](err); !errors.Is(err, events.ErrLocked) || !ok || le.Holder != "claude#3f2a" {
		t.Errorf("write by another = %v, want ErrLocked naming the holder", err)
	}
	_, err = c.WriteFile(ctx, events.WriteRequest{Workspace: "docs", Path: "dir/a.md", Content: []byte("v2"), LockToken: l.Token, FencingToken: l.FencingToken + 5})
	if !errors.Is(err, events.ErrStale) {
		t.Errorf("write with a wrong fencing token = %v, want ErrStale", err)
	}
	if b, _ := os.ReadFile(st.Path("docs", "dir/a.md")); string(b) != "v1" {
		t.Errorf("on disk %q, want v1", b)
	}
	if _, err := c.WriteFile(ctx, events.WriteRequest{Workspace: "docs", Path: "../x", Content: []byte("x")}); !errors.Is(err, events.ErrBadPath) {
		t.Errorf("escaping path = %v, want ErrBadPath", err)
	}

	// Refresh, then unlock: a wrong token is ErrNotHolder.
	r, err := c.Lock(ctx, events.LockRequest{Workspace: "docs", Path: "dir/a.md", Token: l.Token, TTL: 90 * time.Second})
	if err != nil || r.FencingToken != l.FencingToken || !r.ExpiresAt.After(l.ExpiresAt) {
		t.Errorf("refresh = %+v, %v", r, err)
	}
	if err := c.Unlock(ctx, "docs", "dir/a.md", "lk_wrongwrongwrongwrongwron"); !errors.Is(err, events.ErrNotHolder) {
		t.Errorf("Unlock with a wrong token = %v, want ErrNotHolder", err)
	}
	if err := c.Unlock(ctx, "docs", "dir/a.md", l.Token); err != nil {
		t.Fatalf("Unlock: %v", err)
	}
	del, err := c.WriteFile(ctx, events.WriteRequest{Workspace: "docs", Path: "dir/a.md", Delete: true, LockToken: l.Token})
	if !errors.Is(err, events.ErrStale) {
		t.Errorf("delete with a released token = %+v, %v; want ErrStale", del, err)
	}
	del, err = c.WriteFile(ctx, events.WriteRequest{Workspace: "docs", Path: "dir/a.md", Delete: true})
	if err != nil || del.Type != events.FileDeleted || del.Seq <= ev.Seq {
		t.Errorf("delete = %+v, %v", del, err)
	}
	if _, err := c.WriteFile(ctx, events.WriteRequest{Workspace: "docs", Path: "dir/a.md", Delete: true}); !errors.Is(err, events.ErrNotFound) {
		t.Errorf("delete of a missing file = %v, want ErrNotFound", err)
	}
	if _, err := c.Locks(ctx, "nope"); !errors.Is(err, events.ErrUnknownWorkspace) {
		t.Errorf("Locks of an unknown workspace = %v", err)
	}
}
