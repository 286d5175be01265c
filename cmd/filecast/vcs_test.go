package main_test

import (
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mark3labs/mcp-go/mcp"
)

// vcsFiles are version-control internals a test workspace holds.
var vcsFiles = map[string]string{
	".git/config":                "[remote \"origin\"]\n\turl = https://user:secret@example.com/r.git\n",
	".git/hooks/pre-commit":      "#!/bin/sh\nexit 0\n",
	"vendor/x/.git/config":       "[core]\n",
	".hg/hgrc":                   "[hooks]\n",
	"plain.txt":                  "plain",
	"vendor/x/.git/hooks/a-hook": "#!/bin/sh\n",
}

func vcsWorkspace(t *testing.T) string {
	t.Helper()
	root := t.TempDir()
	for p, c := range vcsFiles {
		writeFile(t, filepath.Join(root, p), c)
	}
	if err := os.Chmod(filepath.Join(root, ".git/hooks/pre-commit"), 0o755); err != nil {
		t.Fatal(err)
	}
	return root
}

// checkVCSUntouched fails the test when a file of vcsFiles changed or a
// hook appeared.
func checkVCSUntouched(t *testing.T, root string) {
	t.Helper()
	for p, c := range vcsFiles {
		if got, err := os.ReadFile(filepath.Join(root, p)); err != nil || string(got) != c {
			t.Errorf("%s holds %q, %v", p, got, err)
		}
	}
	if fi, err := os.Stat(filepath.Join(root, ".git/hooks/pre-commit")); err != nil || fi.Mode().Perm() != 0o755 {
		t.Errorf("pre-commit hook: %v %v", fi, err)
	}
	for _, p := range []string{".git/hooks/post-checkout", "sub/.git", ".svn"} {
		if _, err := os.Lstat(filepath.Join(root, p)); !os.IsNotExist(err) {
			t.Errorf("%s was created: %v", p, err)
		}
	}
}

// tryVCSDoors calls every MCP door that takes a path on version-control
// internals: each must refuse, saying why.
func tryVCSDoors(t *testing.T, a *agent) {
	t.Helper()
	for _, p := range []string{".git/config", ".git/hooks/post-checkout", "vendor/x/.git/hooks/a-hook", ".hg/hgrc", "sub/.git", ".svn/entries", ".GIT/config"} {
		msg := a.call("write_file", map[string]any{"path": p, "content": "[core]\n\tfsmonitor = \"touch /tmp/PWNED; false\"\n"}, &map[string]any{})
		if !strings.Contains(msg, "version-control") {
			t.Errorf("write_file %s: %q, want a refusal saying why", p, msg)
		}
		msg = a.call("lock", map[string]any{"path": p, "ttl_seconds": 30}, &lockResult{})
		if !strings.Contains(msg, "version-control") {
			t.Errorf("lock %s: %q, want a refusal saying why", p, msg)
		}
	}
	ctx := t.Context()
	for _, uri := range []string{"filecast://w/.git/config", "filecast://w/vendor/x/.git/config", "filecast://w/.git/", "filecast://w/.hg/"} {
		req := mcp.ReadResourceRequest{}
		req.Params.URI = uri
		if res, err := a.c.ReadResource(ctx, req); err == nil || !strings.Contains(err.Error(), "version-control") {
			t.Errorf("resources/read %s = %v, %v; want an error saying why", uri, res, err)
		}
		sub := mcp.SubscribeRequest{}
		sub.Params.URI = uri
		if err := a.c.Subscribe(ctx, sub); err == nil || !strings.Contains(err.Error(), "version-control") {
			t.Errorf("resources/subscribe %s = %v; want an error saying why", uri, err)
		}
	}
	list, err := a.c.ListResources(ctx, mcp.ListResourcesRequest{})
	if err != nil {
		t.Fatal(err)
	}
	var uris []string
	for _, r := range list.Resources {
		uris = append(uris, r.URI)
		if strings.Contains(r.URI, ".git") || strings.Contains(r.URI, ".hg") {
			t.Errorf("resources/list shows %s", r.URI)
		}
	}
	if strings.Join(uris, " ") != "filecast://w/ filecast://w/plain.txt" {
		t.Errorf("resources/list = %v, want the workspace and plain.txt", uris)
	}
	req := mcp.ReadResourceRequest{}
	req.Params.URI = "filecast://w/"
	res, err := a.c.ReadResource(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	if tc, ok := res.Contents[0].(mcp.TextResourceContents); !ok || strings.Contains(tc.Text, ".git") {
		t.Errorf("the workspace folder resource lists %#v", res.Contents[0])
	}
}

// TestVCS_MCP keeps version-control internals out of reach of an agent,
// with the hub in the MCP process: write_file, lock, resources/read,
// resources/subscribe and the resource listings all refuse or leave
// them out, and nothing changes on disk.
func TestVCS_MCP(t *testing.T) {
	root := vcsWorkspace(t)
	a := startStdio(t, legacyVersion, "--root", "w="+root, "--data", t.TempDir())
	tryVCSDoors(t, a)
	checkVCSUntouched(t, root)
}

// TestVCS_RemoteHub does the same through "filecast mcp --hub" against a
// "filecast hub" process, whose HTTP API answers 403 vcs_internal.
func TestVCS_RemoteHub(t *testing.T) {
	root := vcsWorkspace(t)
	addr := freeAddr(t)
	startProc(t, "hub", "--root", "w="+root, "--listen", addr, "--data", t.TempDir())
	waitHTTP(t, "http://"+addr+"/healthz")
	a := startStdio(t, legacyVersion, "--hub", "http://"+addr)
	tryVCSDoors(t, a)

	req, err := http.NewRequest("PUT", "http://"+addr+"/v1/workspaces/w/files/.git/hooks/pre-commit", strings.NewReader("#!/bin/sh\ntouch /tmp/PWNED\n"))
	if err != nil {
		t.Fatal(err)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var body struct {
		Error struct{ Code, Message string } `json:"error"`
	}
	b, _ := io.ReadAll(res.Body)
	if err := json.Unmarshal(b, &body); err != nil || res.StatusCode != http.StatusForbidden || body.Error.Code != "vcs_internal" {
		t.Errorf("PUT a hook: %d %s, want 403 vcs_internal", res.StatusCode, b)
	}
	checkVCSUntouched(t, root)
}
