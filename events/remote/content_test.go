package remote_test

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/filecast/filecast/events"
	"github.com/filecast/filecast/events/api"
	"github.com/filecast/filecast/events/content"
	"github.com/filecast/filecast/events/delta"
	"github.com/filecast/filecast/events/feed"
	"github.com/filecast/filecast/events/hub/hubtest"
	"github.com/filecast/filecast/events/remote"
	"github.com/filecast/filecast/events/wire"
)

// TestClient_Content reads earlier contents of a real hub over HTTP: the
// diffs a remote agent gets are the hub's own, and a token limited to one
// workspace reads no content of another.
func TestClient_Content(t *testing.T) {
	t.Parallel()
	st := hubtest.Start(t, hubtest.Options{Names: []string{"a", "b"}, Contents: &content.Options{}})
	fd := feed.New(st.Hub, feed.Options{})
	srv := httptest.NewServer(api.New(st.Hub, fd, api.Options{Tokens: []api.Token{
		{Name: "all", Secret: "all-secret-0123456789"},
		{Name: "only-b", Secret: "b-secret-0123456789", Workspaces: []string{"b"}},
	}}))
	t.Cleanup(func() {
		fd.Close()
		srv.CloseClientConnections()
		srv.Close()
	})
	c, err := remote.New(srv.URL, remote.Options{Token: "all-secret-0123456789"})
	if err != nil {
		t.Fatal(err)
	}
	write := func(rel, data string) events.Event {
		head := st.Head(t, "a")
		if err := os.WriteFile(filepath.Join(st.Dirs["a"], rel), []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
		for {
			ev := st.Next(t, "a", head)
			if sum := sha256.Sum256([]byte(data)); ev.Path == rel && ev.SHA256 == hex.EncodeToString(sum[:]) {
				return ev
			}
			head = ev.Seq
		}
	}
	write("a.txt", "one\ntwo\n")
	ev := write("a.txt", "one\n2\n")

	got, err := c.Content(t.Context(), "a", ev.PrevSHA256)
	if err != nil || string(got) != "one\ntwo\n" {
		t.Fatalf("Content = %q, %v", got, err)
	}
	page, err := c.Changes(t.Context(), "a", 0, 100, 0)
	if err != nil {
		t.Fatal(err)
	}
	remoteDiffs, err := delta.Events(t.Context(), c, page.Events, delta.Options{})
	if err != nil {
		t.Fatal(err)
	}
	hubDiffs, err := delta.Events(t.Context(), st.Hub, page.Events, delta.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff(hubDiffs, remoteDiffs); d != "" {
		t.Errorf("diffs over HTTP differ from the hub's (-hub +remote):\n%s", d)
	}
	if remoteDiffs[len(remoteDiffs)-1].Text != "@@ -1,2 +1,2 @@\n one\n-two\n+2\n" {
		t.Errorf("diff over HTTP = %+v", remoteDiffs[len(remoteDiffs)-1])
	}

	// Errors keep their meaning across the network.
	for _, tt := range []struct {
		ws, sha string
		want    error
	}{
		{"b", ev.PrevSHA256, events.ErrNotStored}, // another workspace's content
		{"a", ev.PrevSHA256[:10], events.ErrBadPath},
		{"nope", ev.PrevSHA256, events.ErrUnknownWorkspace},
	} {
		if _, err := c.Content(t.Context(), tt.ws, tt.sha); !errors.Is(err, tt.want) {
			t.Errorf("Content(%s, %.12s) = %v, want %v", tt.ws, tt.sha, err, tt.want)
		}
	}
	bin := write("logo.png", "\x89PNG\x00\x00")
	if _, err := c.Content(t.Context(), "a", bin.SHA256); !errors.Is(err, events.ErrBinary) {
		t.Errorf("Content of a binary file = %v, want ErrBinary", err)
	}

	// A token limited to b cannot ask a's route.
	onlyB, err := remote.New(srv.URL, remote.Options{Token: "b-secret-0123456789"})
	if err != nil {
		t.Fatal(err)
	}
	_, err = onlyB.Content(t.Context(), "a", ev.PrevSHA256)
	var re *remote.Error
	if !errors.As(err, &re) || re.Status != http.StatusForbidden {
		t.Errorf("Content of workspace a with a token for b = %v, want 403", err)
	}
	if _, err := onlyB.Content(t.Context(), "b", ev.PrevSHA256); !errors.Is(err, events.ErrNotStored) {
		t.Errorf("Content of a's sha256 in b with a token for b = %v, want not stored", err)
	}

	// The route itself: bytes, sha256 header, ETag.
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, srv.URL+"/v1/workspaces/a/content/"+ev.PrevSHA256, nil)
	req.Header.Set("Authorization", "Bearer all-secret-0123456789")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusOK || res.Header.Get(wire.HeaderSHA256) != ev.PrevSHA256 || res.Header.Get("ETag") != `"`+ev.PrevSHA256+`"` ||
		res.Header.Get("Content-Type") != "application/octet-stream" {
		t.Errorf("GET content: %d %v", res.StatusCode, res.Header)
	}
}

// TestClient_ContentChecked: content that does not match the sha256
// asked for is refused, whatever the hub says.
func TestClient_ContentChecked(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write([]byte("not what was asked for"))
	}))
	t.Cleanup(srv.Close)
	c, err := remote.New(srv.URL, remote.Options{})
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256([]byte("the real content"))
	if _, err := c.Content(t.Context(), "a", hex.EncodeToString(sum[:])); !errors.Is(err, remote.ErrProtocol) {
		t.Fatalf("Content of a mismatching answer = %v, want ErrProtocol", err)
	}
}
