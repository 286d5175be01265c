package api_test

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/filecast/filecast/events"
	"github.com/filecast/filecast/events/api"
	"github.com/filecast/filecast/events/feed"
	"github.com/filecast/filecast/events/hub/hubtest"
	"github.com/filecast/filecast/events/wire"
)

const (
	aliceSecret = "alice-secret-0123456789"
	bobSecret   = "bob-secret-0123456789"
)

// newHubServer serves a real hub (journal, locks, watcher) with two tokens.
func newHubServer(t *testing.T) (*httptest.Server, *hubtest.Stack) {
	t.Helper()
	st := hubtest.Start(t, hubtest.Options{})
	fd := feed.New(st.Hub, feed.Options{})
	srv := httptest.NewServer(api.New(st.Hub, fd, api.Options{Tokens: []api.Token{
		{Name: "alice", Secret: aliceSecret}, {Name: "bob", Secret: bobSecret},
	}}))
	t.Cleanup(func() {
		fd.Close()
		srv.CloseClientConnections()
		srv.Close()
	})
	return srv, st
}

func auth(secret string, extra ...string) map[string]string {
	h := map[string]string{"Authorization": "Bearer " + secret}
	for i := 0; i+1 < len(extra); i += 2 {
		h[extra[i]] = extra[i+1]
	}
	return h
}

func decode[T any](t *testing.T, res *http.Response) T {
	t.Helper()
	var v T
	if err := json.NewDecoder(res.Body).Decode(&v); err != nil {
		t.Fatalf("decode %T: %v", v, err)
	}
	return v
}

func errorDetail(t *testing.T, res *http.Response, status int, code string) wire.ErrorDetail {
	t.Helper()
	if res.StatusCode != status {
		t.Fatalf("status %d, want %d", res.StatusCode, status)
	}
	d := decode[wire.ErrorBody](t, res).Error
	if d.Code != code || d.Message == "" {
		t.Fatalf("error %+v, want code %q with a message", d, code)
	}
	return d
}

func TestLocks_Routes(t *testing.T) {
	t.Parallel()
	srv, st := newHubServer(t)
	base := srv.URL + "/v1/workspaces/docs"

	// Acquire: 201 with a token; the holder defaults to the token name.
	res := do(t, "POST", base+"/locks", auth(aliceSecret), strings.NewReader(`{"path":"a.md","ttl_seconds":30}`))
	if res.StatusCode != http.StatusCreated {
		t.Fatalf("POST locks: status %d", res.StatusCode)
	}
	lease := decode[events.Lease](t, res)
	if lease.Holder != "alice" || lease.Mode != "exclusive" || !strings.HasPrefix(lease.Token, "lk_") || lease.FencingToken == 0 ||
		time.Until(lease.ExpiresAt) < 25*time.Second {
		t.Fatalf("lease %+v", lease)
	}

	// Conflict: 409 lock_conflict naming the holder and expiry.
	res = do(t, "POST", base+"/locks", auth(bobSecret), strings.NewReader(`{"path":"a.md","holder":"bob#7"}`))
	d := errorDetail(t, res, http.StatusConflict, "lock_conflict")
	if d.Holder != "alice" || d.ExpiresAt == nil || !d.ExpiresAt.Equal(lease.ExpiresAt) || d.Path != "a.md" {
		t.Errorf("conflict detail %+v, want alice until %v", d, lease.ExpiresAt)
	}

	// List: holder and expiry, no token.
	res = do(t, "GET", base+"/locks", auth(bobSecret), nil)
	list := decode[api.LockList](t, res)
	if len(list.Locks) != 1 || list.Locks[0].Holder != "alice" || list.Locks[0].Token != "" || !list.Locks[0].ExpiresAt.Equal(lease.ExpiresAt) {
		t.Errorf("GET locks = %+v", list)
	}

	// Refresh.
	res = do(t, "PATCH", base+"/locks/"+lease.Token, auth(aliceSecret), strings.NewReader(`{"ttl_seconds":120}`))
	if res.StatusCode != http.StatusOK {
		t.Fatalf("PATCH: status %d", res.StatusCode)
	}
	if r := decode[events.Lease](t, res); r.FencingToken != lease.FencingToken || time.Until(r.ExpiresAt) < 100*time.Second {
		t.Errorf("refreshed lease %+v", r)
	}

	// Bad requests.
	for _, body := range []string{`{"path":"a.md","ttl_seconds":-1}`, `{"path":"a.md","mode":"weird"}`, `{"path":"a.md","wait_ms":99999999}`, `not json`, `{"ttl_seconds":5}`} {
		errorDetail(t, do(t, "POST", base+"/locks", auth(bobSecret), strings.NewReader(body)), http.StatusBadRequest, "bad_request")
	}
	errorDetail(t, do(t, "POST", base+"/locks", auth(bobSecret), strings.NewReader(`{"path":"../x"}`)), http.StatusBadRequest, "bad_path")
	errorDetail(t, do(t, "POST", srv.URL+"/v1/workspaces/nope/locks", auth(bobSecret), strings.NewReader(`{"path":"x"}`)), http.StatusNotFound, "unknown_workspace")

	// Release: a wrong token is 403 not_holder; the right one 200.
	errorDetail(t, do(t, "DELETE", base+"/locks/lk_wrongwrongwrongwrongwron", auth(bobSecret), nil), http.StatusForbidden, "not_holder")
	res = do(t, "DELETE", base+"/locks/"+lease.Token+"?path=a.md", auth(aliceSecret), nil)
	if res.StatusCode != http.StatusOK || !decode[api.Released](t, res).Released {
		t.Fatalf("DELETE lock: status %d", res.StatusCode)
	}
	res = do(t, "GET", base+"/locks", auth(bobSecret), nil)
	if list := decode[api.LockList](t, res); len(list.Locks) != 0 {
		t.Errorf("locks after release: %+v", list.Locks)
	}
	// The lock changes are events.
	acq := st.Next(t, "docs", 0, events.LockAcquired)
	rel := st.Next(t, "docs", acq.Seq, events.LockReleased)
	if acq.Actor != "alice" || rel.Path != "a.md" {
		t.Errorf("lock events %+v, %+v", acq, rel)
	}
}

func TestLocks_WriteRoutes(t *testing.T) {
	t.Parallel()
	srv, st := newHubServer(t)
	base := srv.URL + "/v1/workspaces/docs"
	res := do(t, "POST", base+"/locks", auth(aliceSecret), strings.NewReader(`{"path":"dir/a.md"}`))
	lease := decode[events.Lease](t, res)
	fencing := "X-Filecast-Fencing-Token"

	// The holder writes: 200 with the event.
	res = do(t, "PUT", base+"/files/dir/a.md", auth(aliceSecret, api.HeaderLockToken, lease.Token, fencing, "0"), strings.NewReader("hello"))
	if res.StatusCode != http.StatusOK {
		t.Fatalf("PUT by the holder: status %d", res.StatusCode)
	}
	wr := decode[api.WriteResult](t, res)
	if wr.Event == nil || wr.Seq == 0 || wr.Seq != wr.Event.Seq || wr.Size != 5 || wr.SHA256 != wr.Event.SHA256 ||
		wr.Event.Actor != "api:alice" || wr.Event.Type != events.FileCreated || wr.Event.Lock == nil || wr.Event.Lock.Holder != "alice" || wr.Event.Conflict {
		t.Fatalf("PUT result %+v (event %+v)", wr, wr.Event)
	}
	// Tokens as query parameters, unchanged content.
	res = do(t, "PUT", base+"/files/dir/a.md?lock_token="+lease.Token, auth(aliceSecret), strings.NewReader("hello"))
	if wr := decode[api.WriteResult](t, res); res.StatusCode != 200 || !wr.Unchanged || wr.Seq != 0 || wr.Event != nil {
		t.Errorf("unchanged PUT: %d %+v", res.StatusCode, wr)
	}

	// Someone else: 423 locked naming alice; nothing written.
	d := errorDetail(t, do(t, "PUT", base+"/files/dir/a.md", auth(bobSecret), strings.NewReader("bob was here")), http.StatusLocked, "locked")
	if d.Holder != "alice" || d.ExpiresAt == nil {
		t.Errorf("423 detail %+v", d)
	}
	errorDetail(t, do(t, "DELETE", base+"/files/dir/a.md", auth(bobSecret), nil), http.StatusLocked, "locked")
	if b, _ := os.ReadFile(st.Path("docs", "dir/a.md")); string(b) != "hello" {
		t.Errorf("on disk after refused writes: %q", b)
	}
	// A wrong fencing token: 409 stale.
	errorDetail(t, do(t, "PUT", base+"/files/dir/a.md", auth(aliceSecret, api.HeaderLockToken, lease.Token, fencing, "999999"), strings.NewReader("x")), http.StatusConflict, "stale")
	errorDetail(t, do(t, "PUT", base+"/files/dir/a.md", auth(aliceSecret, api.HeaderLockToken, lease.Token, fencing, "x"), strings.NewReader("x")), http.StatusBadRequest, "bad_request")

	// Too large: 413, before the body is read and while it is.
	big := bytes.Repeat([]byte("x"), events.MaxReadSize+1)
	errorDetail(t, do(t, "PUT", base+"/files/big", auth(bobSecret), bytes.NewReader(big)), http.StatusRequestEntityTooLarge, "too_large")
	req, _ := http.NewRequest("PUT", base+"/files/big", struct{ *bytes.Reader }{bytes.NewReader(big)}) // unknown length
	req.Header.Set("Authorization", "Bearer "+bobSecret)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	errorDetail(t, res, http.StatusRequestEntityTooLarge, "too_large")
	// Exactly at the limit is fine: file writes are not bound by MaxBody.
	res = do(t, "PUT", base+"/files/big", auth(bobSecret), bytes.NewReader(big[:events.MaxReadSize]))
	if res.StatusCode != http.StatusOK {
		t.Errorf("PUT of MaxReadSize bytes: status %d", res.StatusCode)
	}

	// Delete by the holder; then a missing file is 404.
	res = do(t, "DELETE", base+"/files/dir/a.md", auth(aliceSecret, api.HeaderLockToken, lease.Token), nil)
	if wr := decode[api.WriteResult](t, res); res.StatusCode != 200 || wr.Event == nil || wr.Event.Type != events.FileDeleted {
		t.Fatalf("DELETE by the holder: %d %+v", res.StatusCode, wr)
	}
	errorDetail(t, do(t, "DELETE", base+"/files/dir/a.md", auth(aliceSecret, api.HeaderLockToken, lease.Token), nil), http.StatusNotFound, "not_found")
	// After release the token is stale.
	do(t, "DELETE", base+"/locks/"+lease.Token, auth(aliceSecret), nil)
	errorDetail(t, do(t, "PUT", base+"/files/dir/a.md", auth(aliceSecret, api.HeaderLockToken, lease.Token), strings.NewReader("x")), http.StatusConflict, "stale")
	// Paths that escape.
	errorDetail(t, do(t, "PUT", base+"/files/..%2Fescape", auth(bobSecret), strings.NewReader("x")), http.StatusBadRequest, "bad_path")
	// A shared lock is a read lock: 423 for everyone, its holder included.
	shared := decode[events.Lease](t, do(t, "POST", base+"/locks", auth(aliceSecret), strings.NewReader(`{"path":"s.md","mode":"shared"}`)))
	d = errorDetail(t, do(t, "PUT", base+"/files/s.md", auth(aliceSecret, api.HeaderLockToken, shared.Token), strings.NewReader("x")), http.StatusLocked, "locked")
	if d.Mode != "shared" || d.Holder != "alice" {
		t.Errorf("423 under a shared lock: %+v", d)
	}
	errorDetail(t, do(t, "PUT", base+"/files/s.md", auth(bobSecret), strings.NewReader("x")), http.StatusLocked, "locked")
	errorDetail(t, do(t, "DELETE", base+"/files/s.md", auth(bobSecret), nil), http.StatusLocked, "locked")
	// Other bodies keep the small limit.
	errorDetail(t, do(t, "POST", base+"/locks", auth(bobSecret), bytes.NewReader(big[:api.DefaultMaxBody+1])), http.StatusRequestEntityTooLarge, "too_large")
}

// TestLocks_NoLocker: a source that is no Locker serves no write routes.
func TestLocks_NoLocker(t *testing.T) {
	srv, _ := newServer(t, api.Options{})
	res := do(t, "PUT", srv.URL+"/v1/workspaces/docs/files/a.md", nil, strings.NewReader("x"))
	if res.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("PUT without a Locker: status %d, want 405", res.StatusCode)
	}
}

// TestLocks_TrustActor: a router that trusts its clients (the data
// folder's socket) records the MCP actor a write names; any other records
// the token's name whatever the header says.
func TestLocks_TrustActor(t *testing.T) {
	t.Parallel()
	st := hubtest.Start(t, hubtest.Options{})
	fd := feed.New(st.Hub, feed.Options{})
	t.Cleanup(fd.Close)
	trusted := httptest.NewServer(api.New(st.Hub, fd, api.Options{TrustActor: true}))
	t.Cleanup(trusted.Close)
	plain := httptest.NewServer(api.New(st.Hub, fd, api.Options{}))
	t.Cleanup(plain.Close)
	for i, tc := range []struct {
		srv   *httptest.Server
		actor string
		want  string
	}{
		{trusted, "mcp:agentA#1d96", "mcp:agentA#1d96"},
		{trusted, "", "api"},
		{trusted, "fs", "api"},                              // not an MCP actor
		{trusted, "mcp:", "api"},                            // no name
		{trusted, "mcp:" + strings.Repeat("a", 300), "api"}, // too long
		{plain, "mcp:agentA#1d96", "api"},                   // not trusted
	} {
		h := map[string]string{}
		if tc.actor != "" {
			h[api.HeaderActor] = tc.actor
		}
		res := do(t, "PUT", tc.srv.URL+"/v1/workspaces/docs/files/"+strconv.Itoa(i)+".md", h, strings.NewReader("x"))
		wr := decode[api.WriteResult](t, res)
		if wr.Event == nil || wr.Event.Actor != tc.want {
			t.Errorf("actor header %q: event %+v, want actor %q", tc.actor, wr.Event, tc.want)
		}
	}
}
