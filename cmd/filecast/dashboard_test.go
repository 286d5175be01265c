package main_test

import (
	"path/filepath"
	"testing"

	"github.com/filecast/filecast/events/dashboard/dashboardtest"
)

// TestDashboard_RealHub opens the dashboard of a running hub process in
// headless Chromium, locks a file and changes another, and checks both
// appear on the page; then stops the hub and checks the page says so.
func TestDashboard_RealHub(t *testing.T) {
	root := t.TempDir()
	addr := freeAddr(t)
	hub := startProc(t, "hub", "--root", "docs="+root, "--listen", addr, "--data", t.TempDir())
	base := "http://" + addr
	waitHTTP(t, base+"/healthz")
	var l lockResult
	if code := doJSON(t, "POST", base+"/v1/workspaces/docs/locks", map[string]any{"path": "plan.md", "holder": "alice#1", "ttl_seconds": 300}, nil, &l); code != 201 {
		t.Fatalf("lock = %d", code)
	}
	shot := filepath.Join(t.TempDir(), "dashboard.png")
	if mod, err := dashboardtest.ModuleRoot(); err == nil {
		shot = filepath.Join(mod, "testdata", "artifacts", "dashboard-hub.png")
	}
	dashboardtest.Run(t, dashboardtest.Options{
		BaseURL:    base,
		FileName:   "reports/q3.md",
		FileType:   "file.created",
		Expect:     []string{l.Holder, "notifications"}, // the lock, how docs is watched
		Change:     func(testing.TB) { writeFile(t, filepath.Join(root, "reports", "q3.md"), "# Q3") },
		Stop:       func(testing.TB) { hub.stop(t) },
		Screenshot: shot,
	})
	t.Logf("dashboard screenshot: %s", shot)
}

// TestDashboard_RealHubWithToken opens the dashboard of a hub with tokens
// as /?token=SECRET: its requests send the token as a bearer token, its
// event streams as access_token, and the hub's Origin check lets the page
// of its own origin through.
func TestDashboard_RealHubWithToken(t *testing.T) {
	root := t.TempDir()
	addr := freeAddr(t)
	const secret = "dash-secret-0123456789"
	startProc(t, "hub", "--root", "docs="+root, "--listen", addr, "--data", t.TempDir(), "--token", "alice="+secret)
	base := "http://" + addr
	waitHTTP(t, base+"/healthz")
	var l lockResult
	if code := doJSON(t, "POST", base+"/v1/workspaces/docs/locks", map[string]any{"path": "plan.md", "ttl_seconds": 300},
		map[string]string{"Authorization": "Bearer " + secret}, &l); code != 201 {
		t.Fatalf("lock = %d", code)
	}
	dashboardtest.Run(t, dashboardtest.Options{
		BaseURL:    base,
		Query:      "token=" + secret,
		FileName:   "notes/todo.md",
		FileType:   "file.created",
		Expect:     []string{l.Holder},
		Change:     func(testing.TB) { writeFile(t, filepath.Join(root, "notes", "todo.md"), "- [ ] ship") },
		Screenshot: filepath.Join(t.TempDir(), "dashboard-token.png"),
	})
}
