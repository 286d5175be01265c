package main_test

import (
	"net/http"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/mark3labs/mcp-go/client"

	"github.com/filecast/filecast/events/eventstest"
)

// TestMCPHTTP_SessionsAreSeparate connects two agents over streamable HTTP:
// each has its own subscriptions and buffer.
func TestMCPHTTP_SessionsAreSeparate(t *testing.T) {
	root := t.TempDir()
	addr := freeAddr(t)
	startProc(t, "mcp", "--http", addr, "--root", "w="+root, "--data", t.TempDir())
	url := "http://" + addr + "/mcp"
	waitMCP(t, url)

	connect := func() *agent {
		c, err := client.NewStreamableHttpClient(url)
		if err != nil {
			t.Fatal(err)
		}
		if err := c.Start(t.Context()); err != nil {
			t.Fatal(err)
		}
		return newAgent(t, c, legacyVersion)
	}
	md, txt := connect(), connect()
	md.mustCall("subscribe", map[string]any{"paths": []string{"*.md"}}, nil)
	txt.mustCall("subscribe", map[string]any{"paths": []string{"*.txt"}}, nil)

	writeFile(t, filepath.Join(root, "x.md"), "m")
	writeFile(t, filepath.Join(root, "y.txt"), "t")
	got, _ := md.collect(nil, 1)
	if diff := cmp.Diff([]string{"file.created x.md"}, kinds(got)); diff != "" {
		t.Errorf("md agent (-want +got):\n%s", diff)
	}
	got, _ = txt.collect(nil, 1)
	if diff := cmp.Diff([]string{"file.created y.txt"}, kinds(got)); diff != "" {
		t.Errorf("txt agent (-want +got):\n%s", diff)
	}
	// Reading one buffer does not drain the other: md has nothing more.
	var r changes
	md.mustCall("list_changes", map[string]any{"wait_ms": 100}, &r)
	if len(r.Events) != 0 {
		t.Errorf("md agent got extra events %v", kinds(r.Events))
	}
}

// TestMCPHTTP_OriginChecked refuses a request from another site's page.
func TestMCPHTTP_OriginChecked(t *testing.T) {
	addr := freeAddr(t)
	startProc(t, "mcp", "--http", addr, "--root", "w="+t.TempDir(), "--data", t.TempDir())
	url := "http://" + addr + "/mcp"
	waitMCP(t, url)
	body := `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"x","version":"1"}}}`
	for origin, want := range map[string]int{"https://evil.example": http.StatusForbidden, "http://127.0.0.1:3000": http.StatusOK} {
		req, _ := http.NewRequest("POST", url, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Accept", "application/json, text/event-stream")
		req.Header.Set("Origin", origin)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("Origin %s: status %d, want %d", origin, resp.StatusCode, want)
		}
	}
}

// waitMCP waits until the HTTP MCP endpoint accepts connections.
func waitMCP(t *testing.T, url string) {
	t.Helper()
	eventstest.Eventually(t, url, func() bool {
		resp, err := http.Get(url)
		if err != nil {
			return false
		}
		resp.Body.Close()
		return true
	})
}
