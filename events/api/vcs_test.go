package api_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/filecast/filecast/events/api"
	"github.com/filecast/filecast/events/feed"
	"github.com/filecast/filecast/events/hub/hubtest"
	"github.com/filecast/filecast/events/wire"
)

// TestVCS_HTTPDoors tries every route that takes a path on version-control
// internals of a real hub, as a careless client or a hostile page would:
// each answers 403 vcs_internal and nothing is read, written or locked.
func TestVCS_HTTPDoors(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	files := map[string]string{
		".git/config":                 "[remote \"origin\"]\n\turl = https://user:secret@example.com/r.git\n",
		".git/hooks/pre-commit":       "#!/bin/sh\nexit 0\n",
		"vendor/x/.git/config":        "[core]\n",
		".hg/hgrc":                    "[hooks]\n",
		"sub/.svn/entries":            "12\n",
		"vendor/x/.git/hooks/post-co": "#!/bin/sh\n",
	}
	for p, content := range files {
		mustWriteFile(t, filepath.Join(dir, p), content)
	}
	hook := filepath.Join(dir, ".git/hooks/pre-commit")
	if err := os.Chmod(hook, 0o755); err != nil {
		t.Fatal(err)
	}
	// Links into a version-control folder, made before and after the
	// first index.
	if err := os.Symlink(".git/config", filepath.Join(dir, "cfg")); err != nil {
		t.Fatal(err)
	}
	st := hubtest.Start(t, hubtest.Options{Dirs: []string{dir}})
	if err := os.Symlink(".git", filepath.Join(dir, "gitdir")); err != nil {
		t.Fatal(err)
	}
	fd := feed.New(st.Hub, feed.Options{})
	srv := httptest.NewServer(api.New(st.Hub, fd, api.Options{}))
	t.Cleanup(func() { fd.Close(); srv.Close() })
	base := srv.URL + "/v1/workspaces/docs"

	paths := []string{".git/config", ".git/hooks/pre-commit", ".git", "vendor/x/.git/config",
		"vendor/x/.git/hooks/new-hook", ".hg/hgrc", "sub/.svn/entries", ".GIT/config"}
	for _, p := range []string{"cfg", "gitdir/config"} {
		res := do(t, "GET", base+"/files/"+p, nil, nil)
		if code := errorCode(t, res); res.StatusCode != http.StatusForbidden || code != "vcs_internal" {
			t.Errorf("GET %s (a link into .git): %d %s, want 403 vcs_internal", p, res.StatusCode, code)
		}
	}
	for _, p := range paths {
		esc := (&url.URL{Path: p}).EscapedPath()
		for _, req := range []struct{ method, url, body string }{
			{"GET", base + "/files/" + esc, ""},
			{"HEAD", base + "/files/" + esc, ""},
			{"PUT", base + "/files/" + esc, "[core]\n\tfsmonitor = \"touch /tmp/PWNED; false\"\n"},
			{"DELETE", base + "/files/" + esc, ""},
			{"POST", base + "/locks", `{"path":` + quote(p) + `,"ttl_seconds":30}`},
			{"DELETE", base + "/locks/lk_x?path=" + url.QueryEscape(p), ""},
		} {
			var body io.Reader
			if req.body != "" {
				body = strings.NewReader(req.body)
			}
			res := do(t, req.method, req.url, nil, body)
			if res.StatusCode != http.StatusForbidden {
				t.Errorf("%s %s: status %d, want 403", req.method, req.url, res.StatusCode)
				continue
			}
			if req.method == "HEAD" {
				continue
			}
			d := decode[wire.ErrorBody](t, res).Error
			if d.Code != "vcs_internal" || !strings.Contains(d.Message, "version-control") || strings.Contains(d.Message, "secret") {
				t.Errorf("%s %s: error %+v, want code vcs_internal saying why", req.method, req.url, d)
			}
		}
	}
	for _, prefix := range []string{".git/", ".git", "vendor/x/.git/", "sub/.svn/"} {
		res := do(t, "GET", base+"/files?prefix="+url.QueryEscape(prefix), nil, nil)
		if code := errorCode(t, res); res.StatusCode != http.StatusForbidden || code != "vcs_internal" {
			t.Errorf("listing prefix %q: %d %s, want 403 vcs_internal", prefix, res.StatusCode, code)
		}
	}

	// The listing of the workspace holds none of them, and nothing changed
	// on disk: the hook keeps its content and mode, no new hook appeared.
	res := do(t, "GET", base+"/files", nil, nil)
	list := decode[struct {
		Files []struct{ Path string } `json:"files"`
	}](t, res)
	for _, f := range list.Files {
		t.Errorf("the listing shows %s", f.Path)
	}
	for p, content := range files {
		got, err := os.ReadFile(filepath.Join(dir, p))
		if err != nil || string(got) != content {
			t.Errorf("%s now holds %q, %v", p, got, err)
		}
	}
	if fi, err := os.Stat(hook); err != nil || fi.Mode().Perm() != 0o755 {
		t.Errorf("hook mode %v, %v", fi.Mode(), err)
	}
	if _, err := os.Stat(filepath.Join(dir, "vendor/x/.git/hooks/new-hook")); !os.IsNotExist(err) {
		t.Errorf("a new hook was written: %v", err)
	}
	res = do(t, "GET", base+"/locks", nil, nil)
	if locks := decode[api.LockList](t, res); len(locks.Locks) != 0 {
		t.Errorf("locks taken: %+v", locks.Locks)
	}

	// Names that only look alike are files like any other.
	for _, p := range []string{".gitignore", ".github/workflows/ci.yml", "notes.git/x"} {
		if res := do(t, "PUT", base+"/files/"+p, nil, strings.NewReader("ok")); res.StatusCode != http.StatusOK {
			t.Errorf("PUT %s: status %d, want 200", p, res.StatusCode)
		}
	}
}

func quote(s string) string {
	return `"` + strings.ReplaceAll(s, `"`, `\"`) + `"`
}

func mustWriteFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}
