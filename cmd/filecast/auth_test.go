package main_test

import (
	"context"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/client/transport"
	"github.com/mark3labs/mcp-go/mcp"
)

const (
	adminSecret  = "admin-secret-0123456789"
	readerSecret = "reader-secret-0123456789"
	slowSecret   = "slow-secret-0123456789"
)

func bearer(secret string) map[string]string {
	return map[string]string{"Authorization": "Bearer " + secret}
}

// TestHub_ScopedTokens: a hub with a full token, a slow one and, from a
// token file, a read-only token limited to one workspace.
func TestHub_ScopedTokens(t *testing.T) {
	docs, src := t.TempDir(), t.TempDir()
	writeFile(t, filepath.Join(docs, "a.md"), "docs a")
	writeFile(t, filepath.Join(src, "b.go"), "package b")
	tokenFile := filepath.Join(t.TempDir(), "tokens")
	writeFile(t, tokenFile, "# read-only bots\n\nreader="+readerSecret+",ws=docs,ro\n")
	if err := os.Chmod(tokenFile, 0o600); err != nil {
		t.Fatal(err)
	}
	addr := freeAddr(t)
	startProc(t, "hub", "--root", "docs="+docs, "--root", "src="+src, "--listen", addr, "--data", t.TempDir(),
		"--token", "admin="+adminSecret, "--token", "slow="+slowSecret+",rate=1", "--token-file", tokenFile)
	base := "http://" + addr
	waitHTTP(t, base+"/healthz")

	// No token, or a wrong one: 401.
	for _, hdr := range []map[string]string{nil, bearer("wrong-secret-0123456789")} {
		if code := doJSON(t, "GET", base+"/v1/workspaces", nil, hdr, nil); code != http.StatusUnauthorized {
			t.Errorf("GET /v1/workspaces with %v = %d, want 401", hdr, code)
		}
	}

	// The reader sees and reads docs only, and cannot write.
	var wss struct {
		Workspaces []struct {
			Name string `json:"name"`
		} `json:"workspaces"`
	}
	if code := doJSON(t, "GET", base+"/v1/workspaces", nil, bearer(readerSecret), &wss); code != 200 || len(wss.Workspaces) != 1 || wss.Workspaces[0].Name != "docs" {
		t.Fatalf("reader's workspaces: %d %+v", code, wss)
	}
	for _, tt := range []struct {
		method, path string
		body         any
		want         int
	}{
		{"GET", "/v1/workspaces/docs/files/a.md", nil, 200},
		{"GET", "/v1/workspaces/docs/files", nil, 200},
		{"GET", "/v1/workspaces/docs/changes", nil, 200},
		{"GET", "/v1/workspaces/src/files/b.go", nil, 403},
		{"GET", "/v1/workspaces/src/changes", nil, 403},
		{"PUT", "/v1/workspaces/docs/files/new.md", "x", 403},
		{"DELETE", "/v1/workspaces/docs/files/a.md", nil, 403},
		{"POST", "/v1/workspaces/docs/locks", map[string]any{"path": "a.md"}, 403},
		{"GET", "/v1/webhooks", nil, 403},
		{"GET", "/metrics", nil, 403},
	} {
		if code := doJSON(t, tt.method, base+tt.path, tt.body, bearer(readerSecret), nil); code != tt.want {
			t.Errorf("reader %s %s = %d, want %d", tt.method, tt.path, code, tt.want)
		}
	}
	if b, err := os.ReadFile(filepath.Join(docs, "a.md")); err != nil || string(b) != "docs a" {
		t.Fatalf("docs/a.md after the reader's refused writes: %q, %v", b, err)
	}

	// The admin writes and locks in its name.
	var put struct {
		Event struct {
			Actor string `json:"actor"`
		} `json:"event"`
	}
	if code := doJSON(t, "PUT", base+"/v1/workspaces/src/files/new.go", "package n", bearer(adminSecret), &put); code != 200 || put.Event.Actor != "api:admin" {
		t.Fatalf("admin PUT: %d, actor %q", code, put.Event.Actor)
	}
	var lease lockResult
	if code := doJSON(t, "POST", base+"/v1/workspaces/docs/locks", map[string]any{"path": "a.md", "ttl_seconds": 5}, bearer(adminSecret), &lease); code != 201 || lease.Holder != "admin" {
		t.Fatalf("admin lock: %d, holder %q", code, lease.Holder)
	}

	// rate=1 allows a burst of 2, then 429 with Retry-After; others go on.
	codes := []int{}
	var last *http.Response
	for range 3 {
		req, _ := http.NewRequest("GET", base+"/v1/workspaces", nil)
		req.Header.Set("Authorization", "Bearer "+slowSecret)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		codes, last = append(codes, res.StatusCode), res
	}
	if d := cmp.Diff([]int{200, 200, 429}, codes); d != "" {
		t.Errorf("slow token (-want +got):\n%s", d)
	}
	if s, err := strconv.Atoi(last.Header.Get("Retry-After")); err != nil || s < 1 {
		t.Errorf("Retry-After %q", last.Header.Get("Retry-After"))
	}
	if code := doJSON(t, "GET", base+"/v1/workspaces", nil, bearer(adminSecret), nil); code != 200 {
		t.Errorf("admin after the slow token's 429: %d", code)
	}

	// Oversized requests get a clear status, not a hang.
	big := bearer(adminSecret)
	big["X-Padding"] = strings.Repeat("p", 100<<10)
	if code := doJSON(t, "GET", base+"/v1/workspaces", nil, big, nil); code != http.StatusRequestHeaderFieldsTooLarge {
		t.Errorf("100 KiB of headers: %d, want 431", code)
	}
	if code := doJSON(t, "GET", base+"/v1/workspaces/docs/files/"+strings.Repeat("x/", 10<<10), nil, bearer(adminSecret), nil); code != http.StatusRequestURITooLong {
		t.Errorf("20 KiB URL: %d, want 414", code)
	}
}

// TestMCPHTTP_Token: with --token the HTTP MCP endpoint needs the bearer
// token; an mcp-go client that sends it works.
func TestMCPHTTP_Token(t *testing.T) {
	root := t.TempDir()
	addr := freeAddr(t)
	startProc(t, "mcp", "--http", addr, "--root", "w="+root, "--data", t.TempDir(), "--token", "agent="+adminSecret)
	url := "http://" + addr + "/mcp"
	waitMCP(t, url)

	initialize := `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"x","version":"1"}}}`
	for _, hdr := range []map[string]string{nil, bearer(readerSecret), {"Authorization": adminSecret}} {
		hdr2 := map[string]string{"Content-Type": "application/json", "Accept": "application/json, text/event-stream"}
		for k, v := range hdr {
			hdr2[k] = v
		}
		if code := doJSON(t, "POST", url, initialize, hdr2, nil); code != http.StatusUnauthorized {
			t.Errorf("initialize with %v = %d, want 401", hdr, code)
		}
	}

	// Without the header the client cannot even initialize.
	c, err := client.NewStreamableHttpClient(url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	if err := c.Start(ctx); err == nil {
		req := mcp.InitializeRequest{}
		req.Params.ProtocolVersion = legacyVersion
		req.Params.ClientInfo = mcp.Implementation{Name: "anonymous", Version: "1"}
		if _, err := c.Initialize(ctx, req); err == nil {
			t.Fatal("initialize without a token succeeded")
		}
	}

	// With it, the whole session works.
	c, err = client.NewStreamableHttpClient(url, transport.WithHTTPHeaders(bearer(adminSecret)))
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	a := newAgent(t, c, legacyVersion)
	a.mustCall("subscribe", nil, nil)
	writeFile(t, filepath.Join(root, "hello.md"), "hi")
	got, _ := a.collect(nil, 1)
	if d := cmp.Diff([]string{"file.created hello.md"}, kinds(got)); d != "" {
		t.Errorf("events (-want +got):\n%s", d)
	}
}

// TestTokenFlags_Refused: bad token flags and open addresses without a
// token stop the process at once with a clear message.
func TestTokenFlags_Refused(t *testing.T) {
	noTokens := filepath.Join(t.TempDir(), "empty")
	writeFile(t, noTokens, "# nothing yet\n")
	if err := os.Chmod(noTokens, 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"mcp on every interface", []string{"mcp", "--http", "0.0.0.0:0"}, "--token"},
		{"hub short secret", []string{"hub", "--token", "ci=short"}, "at least 16 characters"},
		{"hub unknown option", []string{"hub", "--token", "ci=" + adminSecret + ",admin"}, `unknown option "admin"`},
		{"hub unknown workspace", []string{"hub", "--token", "ci=" + adminSecret + ",ws=nope"}, "ws=nope is not a workspace of this hub"},
		{"hub duplicate names", []string{"hub", "--token", "ci=" + adminSecret, "--token", "ci=" + readerSecret}, `two tokens named "ci"`},
		{"hub missing token file", []string{"hub", "--token-file", "/nonexistent/tokens"}, "--token-file"},
		{"hub empty token file", []string{"hub", "--token-file", noTokens}, "no tokens"},
		{"mcp scoped token", []string{"mcp", "--http", "127.0.0.1:0", "--token", "ci=" + adminSecret + ",ro"}, "ro and ws="},
		{"mcp token file without http", []string{"mcp", "--token-file", noTokens}, "needs --http"},
		{"hub heartbeat too short", []string{"hub", "--heartbeat", "10ms"}, "--heartbeat must be at least 1s"},
		{"hub unknown watcher", []string{"hub", "--watch", "sometimes"}, "--watch sometimes: want auto, notify or poll"},
		{"mcp poll interval too short", []string{"mcp", "--poll-interval", "1ms"}, "--poll-interval must be between 100ms and 1m0s"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			args := append(tt.args, "--root", "w="+t.TempDir(), "--data", t.TempDir())
			p := startProc(t, args...)
			select {
			case <-p.done:
			case <-time.After(20 * time.Second):
				t.Fatal("kept running")
			}
			stderr := p.stderr.String()
			if p.cmd.ProcessState.ExitCode() == 0 || !strings.Contains(stderr, tt.want) {
				t.Fatalf("exit %d, stderr %q; want a failure mentioning %q", p.cmd.ProcessState.ExitCode(), stderr, tt.want)
			}
			if strings.Contains(stderr, adminSecret) || strings.Contains(stderr, readerSecret) {
				t.Errorf("the message shows a secret: %q", stderr)
			}
			if strings.Count(strings.TrimSpace(stderr), "\n") > 0 {
				t.Errorf("more than one line: %q", stderr)
			}
		})
	}
}

// TestMCP_HubToken: "filecast mcp --hub URL --token SECRET" sends the
// token to the hub and reports the hub's events.
func TestMCP_HubToken(t *testing.T) {
	root := t.TempDir()
	addr := freeAddr(t)
	startProc(t, "hub", "--root", "docs="+root, "--listen", addr, "--data", t.TempDir(), "--token", "agents="+adminSecret+",ws=docs")
	waitHTTP(t, "http://"+addr+"/healthz")
	a := startStdio(t, legacyVersion, "--hub", "http://"+addr, "--token", adminSecret)
	var sub struct {
		Cursor string `json:"cursor"`
	}
	a.mustCall("subscribe", map[string]any{"workspace": "docs"}, &sub)
	writeFile(t, filepath.Join(root, "x.md"), "x")
	got, _ := a.collect(nil, 1)
	if d := cmp.Diff([]string{"file.created x.md"}, kinds(got)); d != "" {
		t.Errorf("events through the hub (-want +got):\n%s", d)
	}
}
