package dashboard_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/filecast/filecast/events"
	"github.com/filecast/filecast/events/dashboard"
	"github.com/filecast/filecast/events/dashboard/dashboardtest"
	"github.com/filecast/filecast/events/feed"
	"github.com/filecast/filecast/events/feed/feedtest"
)

// TestBrowser loads the page from a running hub in headless Chromium,
// changes a file, and checks the page shows its event, the locks and
// webhooks panels, and then notices the hub going away.
func TestBrowser(t *testing.T) {
	dashboardtest.Require(t)
	src := feedtest.New()
	docs := t.TempDir()
	src.AddWorkspace("docs", docs)
	src.AddWorkspace("src", t.TempDir())
	// History the page replays when it connects.
	src.Append("docs",
		events.Event{Type: events.FileCreated, Path: "reports/q3.md", Size: 1834, SHA256: "aa"},
		events.Event{Type: events.FileMoved, Path: "reports/q3-final.md", OldPath: "reports/q3.md", Size: 1834, SHA256: "aa"},
		events.Event{Type: events.LockAcquired, Path: "reports/q3-final.md", Actor: "mcp:claude-code",
			Lock:      &events.LockInfo{Holder: "claude-code#3f2a", FencingToken: 7, Mode: events.LockExclusive},
			ExpiresAt: time.Now().Add(time.Minute)},
		events.Event{Type: events.FileUpdated, Path: "reports/q3-final.md", Size: 20480, SHA256: "bb", Conflict: true,
			Lock: &events.LockInfo{Holder: "claude-code#3f2a", FencingToken: 7}},
	)
	src.Append("src", events.Event{Type: events.FileDeleted, Path: "main_old.go"})

	fd := feed.New(src, feed.Options{})
	t.Cleanup(fd.Close)
	mux := http.NewServeMux()
	mux.Handle("GET /", dashboard.Handler(dashboard.Options{Stats: func() dashboard.Stats {
		return dashboard.Stats{MCPSessions: 2, SSESubscribers: fd.Subscribers(), Workspaces: []string{"docs", "src"}, Version: "test",
			Problems: []events.Problem{{Code: events.ProblemInsufficientStorage, Message: "the disk of the data folder has 12 MiB free", Since: time.Now()}},
			Watchers: []dashboard.Watcher{{Workspace: "docs", Kind: "poll", PollIntervalMS: 250, Reason: "the workspace folder is on nfs4"}, {Workspace: "src", Kind: "notify"}}}
	}}))
	mux.HandleFunc("GET /v1/workspaces", fd.Workspaces)
	mux.HandleFunc("GET /v1/workspaces/{ws}/events", fd.Events)
	// Stand-ins for the lock and webhook routes, in their wire shapes.
	mux.HandleFunc("GET /v1/workspaces/{ws}/locks", func(w http.ResponseWriter, r *http.Request) {
		var leases []events.Lease
		if r.PathValue("ws") == "docs" {
			leases = append(leases, events.Lease{Workspace: "docs", Path: "drafts/outline.md", Holder: "codex#9b1c",
				Mode: events.LockExclusive, FencingToken: 7, ExpiresAt: time.Now().Add(95 * time.Second)})
		}
		writeJSON(w, map[string]any{"workspace": r.PathValue("ws"), "locks": leases})
	})
	mux.HandleFunc("GET /v1/webhooks", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, []map[string]any{
			{"id": "wh1", "url": "https://ci.example.com/hooks/filecast", "workspace": "docs", "status": "active",
				"stats": map[string]any{"delivered": 118, "failed": 2, "p95_ms": 84.2, "last_errors": []map[string]any{
					{"time": time.Now().Add(-time.Minute), "response_code": 503, "error": "service unavailable"}}}},
			{"id": "wh2", "url": "https://search.example.com/reindex", "workspace": "src", "status": "failed",
				"reason": "challenge not answered"},
		})
	})
	mux.HandleFunc("GET /v1/webhooks/{id}/deliveries", func(w http.ResponseWriter, r *http.Request) {
		now := time.Now()
		writeJSON(w, []map[string]any{
			{"status": "pending", "latency_ms": 2000, "error": "dial tcp: connection refused", "time": now, "path": "main_old.go"},
			{"status": "succeeded", "latency_ms": 40, "response_code": 200, "time": now.Add(-time.Minute)},
			{"status": "succeeded", "latency_ms": 55, "response_code": 200, "time": now.Add(-2 * time.Minute)},
			{"status": "succeeded", "latency_ms": 61, "response_code": 200, "time": now.Add(-3 * time.Minute)},
		})
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(func() {
		fd.Close()
		srv.CloseClientConnections()
		srv.Close()
	})

	// Markup in a file name must show as text.
	name := "notes/<b>q4</b> & plan.md"
	dashboardtest.Run(t, dashboardtest.Options{
		BaseURL:  srv.URL,
		FileName: name,
		FileType: string(events.FileCreated),
		Expect: []string{
			"codex#9b1c",                            // the lock's holder
			"https://ci.example.com/hooks/filecast", // a webhook
			"98.3%",                                 // its success rate from stats
			"p95 2000 ms",                           // the other's p95 from its deliveries
			"dial tcp: connection refused",          // and its last failure
			"conflict",
			"Event log full", // the health banner
			"the disk of the data folder has 12 MiB free",
			"polling, every 250 ms", // how docs is watched
			"notifications",         // and src
		},
		Change: func(t testing.TB) {
			content := []byte("# Q4 plan\n")
			file := filepath.Join(docs, filepath.FromSlash(name))
			if err := os.MkdirAll(filepath.Dir(file), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(file, content, 0o644); err != nil {
				t.Fatal(err)
			}
			src.Append("docs", events.Event{Type: events.FileCreated, Path: name, Size: int64(len(content)), SHA256: "cc"})
		},
		Stop: func(t testing.TB) {
			fd.Close()
			srv.CloseClientConnections()
			srv.Close()
		},
	})
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}
