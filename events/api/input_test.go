package api_test

import (
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"

	"github.com/filecast/filecast/events/api"
	"github.com/filecast/filecast/events/feed"
	"github.com/filecast/filecast/events/hub/hubtest"
)

// TestNew_StrictInput: a file path ending in "/" is not the file, and a
// JSON body must be one value in valid UTF-8, on a real hub; folder
// prefixes of listings keep their "/".
func TestNew_StrictInput(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	mustWriteFile(t, dir+"/in.txt", "original")
	mustWriteFile(t, dir+"/sub/deep.txt", "deep")
	st := hubtest.Start(t, hubtest.Options{Dirs: []string{dir}})
	fd := feed.New(st.Hub, feed.Options{})
	srv := httptest.NewServer(api.New(st.Hub, fd, api.Options{}))
	t.Cleanup(func() { fd.Close(); srv.Close() })
	base := srv.URL + "/v1/workspaces/docs"

	for _, tt := range []struct{ method, path string }{
		{"GET", "/files/in.txt/"},
		{"PUT", "/files/in.txt/"},
		{"DELETE", "/files/in.txt/"},
		{"PUT", "/files/new/"},
		{"GET", "/files/sub/"},
	} {
		res := do(t, tt.method, base+tt.path, nil, strings.NewReader("replaced"))
		if code := errorCode(t, res); res.StatusCode != http.StatusBadRequest || code != "bad_path" {
			t.Errorf("%s %s: %d %s, want 400 bad_path", tt.method, tt.path, res.StatusCode, code)
		}
	}
	if got, _ := os.ReadFile(st.Path("docs", "in.txt")); string(got) != "original" {
		t.Errorf("in.txt holds %q", got)
	}
	if _, err := os.Stat(st.Path("docs", "new")); !os.IsNotExist(err) {
		t.Errorf("PUT new/ made something: %v", err)
	}
	res := do(t, "GET", base+"/files?prefix=sub/", nil, nil)
	list := decode[struct{ Files []struct{ Path string } }](t, res)
	if res.StatusCode != 200 || len(list.Files) != 1 || list.Files[0].Path != "sub/deep.txt" {
		t.Errorf("listing sub/: %d %+v", res.StatusCode, list.Files)
	}

	for name, body := range map[string]string{
		"trailing garbage":   `{"path":"in.txt","ttl_seconds":30} garbage`,
		"trailing brace":     `{"path":"in.txt","ttl_seconds":30}}`,
		"two objects":        `{"path":"in.txt"}{"path":"sub/deep.txt"}`,
		"invalid UTF-8":      "{\"path\":\"in\xff.txt\"}",
		"invalid UTF-8 name": "{\"path\":\"in.txt\",\"holder\":\"bob\xc3\"}",
		"a lone surrogate":   `{"path":"in.txt","holder":"bob\udc00"}`,
	} {
		res := do(t, "POST", base+"/locks", nil, strings.NewReader(body))
		if code := errorCode(t, res); res.StatusCode != http.StatusBadRequest || code != "bad_request" {
			t.Errorf("%s: %d %s, want 400 bad_request", name, res.StatusCode, code)
		}
	}
	res = do(t, "GET", base+"/locks", nil, nil)
	if l := decode[api.LockList](t, res); len(l.Locks) != 0 {
		t.Errorf("a refused body took a lock: %+v", l.Locks)
	}
	// The same body without the garbage is fine.
	if res := do(t, "POST", base+"/locks", nil, strings.NewReader(`{"path":"in.txt","ttl_seconds":30}`+"\n")); res.StatusCode != http.StatusCreated {
		t.Errorf("a clean body: %d, want 201", res.StatusCode)
	}
}
