package main_test

import (
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// probe is one request a hostile page (or a rebound name) could make.
type probe struct {
	method, path, body string
	header             map[string]string
}

// send makes the request against base with a bounded wait (an event
// stream let through would never end) and returns the status and body.
func (p probe) send(t *testing.T, base string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(p.method, base+p.path, strings.NewReader(p.body))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range p.header {
		if k == "Host" {
			req.Host = v
		} else {
			req.Header.Set(k, v)
		}
	}
	res, err := (&http.Client{Timeout: 5 * time.Second}).Do(req)
	if err != nil {
		t.Errorf("%s %s %v: %v", p.method, p.path, p.header, err)
		return 0, ""
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(res.Body, 64<<10))
	return res.StatusCode, string(b)
}

// hostileRequests are the requests of issue reports against a tokenless
// hub: reads, writes, locks, webhook registration (text/plain, so no
// preflight), the event stream, changes, metrics and the dashboard.
func hostileRequests(extra map[string]string) []probe {
	h := func(kv ...string) map[string]string {
		m := map[string]string{}
		for k, v := range extra {
			m[k] = v
		}
		for i := 0; i+1 < len(kv); i += 2 {
			m[kv[i]] = kv[i+1]
		}
		return m
	}
	return []probe{
		{"GET", "/v1/workspaces/w/files/s.txt", "", h()},
		{"PUT", "/v1/workspaces/w/files/s.txt", "pwned", h("Content-Type", "text/plain")},
		{"DELETE", "/v1/workspaces/w/files/s.txt", "", h()},
		{"GET", "/v1/workspaces/w/files", "", h()},
		{"POST", "/v1/workspaces/w/locks", `{"path":"s.txt","ttl_seconds":300}`, h("Content-Type", "text/plain")},
		{"POST", "/v1/webhooks", `{"url":"https://evil.example/hook","workspace":"w"}`, h("Content-Type", "text/plain")},
		{"GET", "/v1/workspaces/w/events", "", h("Accept", "text/event-stream")},
		{"GET", "/v1/workspaces/w/changes", "", h()},
		{"GET", "/v1/workspaces", "", h()},
		{"GET", "/metrics", "", h()},
		{"GET", "/", "", h()},
		{"GET", "/dashboard/stats", "", h()},
	}
}

// checkHubUntouched fails when s.txt changed, a lock was taken or a
// webhook registered.
func checkHubUntouched(t *testing.T, root, base string, hdr map[string]string) {
	t.Helper()
	if got, err := os.ReadFile(filepath.Join(root, "s.txt")); err != nil || string(got) != "secret" {
		t.Errorf("s.txt holds %q, %v", got, err)
	}
	var locks struct{ Locks []any }
	if code := doJSON(t, "GET", base+"/v1/workspaces/w/locks", nil, hdr, &locks); code != 200 || len(locks.Locks) != 0 {
		t.Errorf("locks: %d %v", code, locks.Locks)
	}
	status, body := probe{"GET", "/v1/webhooks", "", hdr}.send(t, base)
	if status != 200 || strings.Contains(body, "evil.example") {
		t.Errorf("webhooks: %d %s", status, body)
	}
}

// TestHub_HostAndOrigin runs a tokenless hub and sends it what a page
// could: under a rebound name every route answers 421, from another
// site's page 403, and nothing is read, written, locked or registered;
// the hub's own origin and loopback pages are served.
func TestHub_HostAndOrigin(t *testing.T) {
	root := t.TempDir()
	writeFile(t, filepath.Join(root, "s.txt"), "secret")
	addr := freeAddr(t)
	startProc(t, "hub", "--root", "w="+root, "--listen", addr, "--data", t.TempDir())
	base := "http://" + addr
	waitHTTP(t, base+"/healthz")
	port := addr[strings.LastIndex(addr, ":"):]

	for _, p := range hostileRequests(map[string]string{"Host": "evil.example" + port}) {
		if status, body := p.send(t, base); status != http.StatusMisdirectedRequest || strings.Contains(body, "secret") || !strings.Contains(body, "misdirected_request") {
			t.Errorf("rebound %s %s: %d %s, want 421 misdirected_request", p.method, p.path, status, body)
		}
	}
	for _, p := range hostileRequests(map[string]string{"Origin": "http://evil.example"}) {
		if status, body := p.send(t, base); status != http.StatusForbidden || strings.Contains(body, "secret") {
			t.Errorf("cross-site %s %s: %d %s, want 403", p.method, p.path, status, body)
		}
	}
	checkHubUntouched(t, root, base, nil)

	// The dashboard, from the hub's own origin, and a loopback page work.
	for _, p := range []probe{
		{"GET", "/", "", map[string]string{"Sec-Fetch-Site": "none", "Sec-Fetch-Mode": "navigate"}},
		{"GET", "/v1/workspaces", "", map[string]string{"Origin": base, "Sec-Fetch-Site": "same-origin"}},
		{"GET", "/dashboard/stats", "", map[string]string{"Origin": base}},
		{"GET", "/v1/workspaces/w/files/s.txt", "", map[string]string{"Host": "localhost" + port, "Origin": "http://localhost" + port}},
		{"GET", "/v1/workspaces/w/files/s.txt", "", map[string]string{"Origin": "http://127.0.0.1:3000"}},
	} {
		if status, body := p.send(t, base); status != 200 {
			t.Errorf("%s %s %v: %d %s, want 200", p.method, p.path, p.header, status, body)
		}
	}
}

// TestHub_HostAndOriginWithTokens: with tokens the hub answers to any
// name, still refuses other sites' pages (even with a token), and serves
// the sites of --allow-origin with CORS headers.
func TestHub_HostAndOriginWithTokens(t *testing.T) {
	root := t.TempDir()
	writeFile(t, filepath.Join(root, "s.txt"), "secret")
	addr := freeAddr(t)
	const secret = "hub-secret-0123456789"
	startProc(t, "hub", "--root", "w="+root, "--listen", addr, "--data", t.TempDir(),
		"--token", "ci="+secret, "--allow-origin", "https://app.example")
	base := "http://" + addr
	waitHTTP(t, base+"/healthz")
	bearer := map[string]string{"Authorization": "Bearer " + secret}

	for _, p := range hostileRequests(map[string]string{"Origin": "http://evil.example", "Authorization": "Bearer " + secret}) {
		if status, body := p.send(t, base); status != http.StatusForbidden || strings.Contains(body, "secret\"") {
			t.Errorf("cross-site %s %s: %d %s, want 403", p.method, p.path, status, body)
		}
	}
	checkHubUntouched(t, root, base, bearer)

	for name, p := range map[string]probe{
		"a hub behind a name": {"GET", "/v1/workspaces/w/files/s.txt", "", map[string]string{"Host": "hub.example", "Authorization": "Bearer " + secret}},
		"its own dashboard":   {"GET", "/v1/workspaces", "", map[string]string{"Host": "hub.example", "Origin": "https://hub.example", "Authorization": "Bearer " + secret}},
		"an allowed site":     {"GET", "/v1/workspaces/w/files/s.txt", "", map[string]string{"Origin": "https://app.example", "Authorization": "Bearer " + secret}},
	} {
		if status, body := p.send(t, base); status != 200 {
			t.Errorf("%s: %d %s, want 200", name, status, body)
		}
	}
	// The allowed site's preflight is answered before any token is asked.
	req, _ := http.NewRequest("OPTIONS", base+"/v1/workspaces/w/files/s.txt", nil)
	req.Header.Set("Origin", "https://app.example")
	req.Header.Set("Access-Control-Request-Method", "PUT")
	req.Header.Set("Access-Control-Request-Headers", "authorization")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusNoContent || res.Header.Get("Access-Control-Allow-Origin") != "https://app.example" ||
		!strings.Contains(res.Header.Get("Access-Control-Allow-Methods"), "PUT") || res.Header.Get("Access-Control-Allow-Headers") != "authorization" {
		t.Errorf("preflight: %d %v", res.StatusCode, res.Header)
	}
}

// TestHub_AllowOriginChecked refuses an --allow-origin that is no site.
func TestHub_AllowOriginChecked(t *testing.T) {
	for _, v := range []string{"*", "https://app.example/path", "null"} {
		p := startProc(t, "hub", "--root", "w="+t.TempDir(), "--listen", freeAddr(t), "--data", t.TempDir(), "--allow-origin", v)
		select {
		case <-p.done:
		case <-time.After(20 * time.Second):
			t.Fatalf("--allow-origin %s: the hub started", v)
		}
		if msg := p.stderr.String(); !strings.Contains(msg, "--allow-origin") || p.cmd.ProcessState.ExitCode() == 0 {
			t.Errorf("--allow-origin %s: exit %d, stderr %q", v, p.cmd.ProcessState.ExitCode(), msg)
		}
	}
}

// TestMCPHTTP_HostChecked: the HTTP MCP endpoint shares the hub's check —
// a rebound name answers 421 without tokens, and any name is served with
// them, while other sites' pages are refused.
func TestMCPHTTP_HostChecked(t *testing.T) {
	initialize := `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"x","version":"1"}}}`
	mcpHeaders := func(kv ...string) map[string]string {
		m := map[string]string{"Content-Type": "application/json", "Accept": "application/json, text/event-stream"}
		for i := 0; i+1 < len(kv); i += 2 {
			m[kv[i]] = kv[i+1]
		}
		return m
	}
	addr := freeAddr(t)
	startProc(t, "mcp", "--http", addr, "--root", "w="+t.TempDir(), "--data", t.TempDir())
	waitMCP(t, "http://"+addr+"/mcp")
	port := addr[strings.LastIndex(addr, ":"):]
	for name, tt := range map[string]struct {
		p    probe
		want int
	}{
		"rebound name":   {probe{"POST", "/mcp", initialize, mcpHeaders("Host", "evil.example"+port)}, http.StatusMisdirectedRequest},
		"localhost name": {probe{"POST", "/mcp", initialize, mcpHeaders("Host", "localhost"+port)}, http.StatusOK},
		"another site":   {probe{"POST", "/mcp", initialize, mcpHeaders("Origin", "https://evil.example", "Content-Type", "text/plain")}, http.StatusForbidden},
	} {
		if status, body := tt.p.send(t, "http://"+addr); status != tt.want {
			t.Errorf("tokenless %s: %d %s, want %d", name, status, body, tt.want)
		}
	}

	addr = freeAddr(t)
	const secret = "mcp-secret-0123456789"
	startProc(t, "mcp", "--http", addr, "--root", "w="+t.TempDir(), "--data", t.TempDir(), "--token", secret, "--allow-origin", "https://app.example")
	waitMCP(t, "http://"+addr+"/mcp")
	bearer := "Bearer " + secret
	for name, tt := range map[string]struct {
		p    probe
		want int
	}{
		"any name":       {probe{"POST", "/mcp", initialize, mcpHeaders("Host", "mcp.example", "Authorization", bearer)}, http.StatusOK},
		"no token":       {probe{"POST", "/mcp", initialize, mcpHeaders("Host", "mcp.example")}, http.StatusUnauthorized},
		"another site":   {probe{"POST", "/mcp", initialize, mcpHeaders("Origin", "https://evil.example", "Authorization", bearer)}, http.StatusForbidden},
		"an allowed one": {probe{"POST", "/mcp", initialize, mcpHeaders("Origin", "https://app.example", "Authorization", bearer)}, http.StatusOK},
	} {
		if status, body := tt.p.send(t, "http://"+addr); status != tt.want {
			t.Errorf("with a token, %s: %d %s, want %d", name, status, body, tt.want)
		}
	}
}
