package node_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/filecast/filecast/events/eventstest"
	"github.com/filecast/filecast/events/natsd"
	"github.com/filecast/filecast/events/node"
	"github.com/filecast/filecast/events/workspace"
)

// TestNode_ServesWhatItWatches opens a node on a real folder with the
// embedded log, and follows a file from the disk to its HTTP API: /healthz
// says "starting" until the first index is done, then the change made on
// disk is in the workspace's changes, and the metrics count it.
func TestNode_ServesWhatItWatches(t *testing.T) {
	dir, data := t.TempDir(), t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "before.txt"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	ws, err := workspace.Parse("w=" + dir)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	n, err := node.Open(ctx, node.Config{
		Workspaces:  []workspace.Workspace{ws},
		Data:        data,
		NATS:        natsd.Options{StoreDir: filepath.Join(data, "jetstream"), MinFree: -1},
		MCPSessions: func() int { return 3 },
		Version:     "test",
	})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(n.Handler(nil, nil, false))
	if code, body := get(t, srv.URL+"/healthz"); code != http.StatusServiceUnavailable || !strings.Contains(body, "starting") {
		t.Errorf("before Run: /healthz = %d %q, want 503 starting", code, body)
	}
	done := make(chan error, 1)
	go func() { done <- n.Run(ctx) }()
	t.Cleanup(func() {
		srv.Close()
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
		n.Close()
	})
	select {
	case <-n.Indexed():
	case err := <-done:
		t.Fatalf("Run returned before the index: %v", err)
	}
	if code, _ := get(t, srv.URL+"/healthz"); code != http.StatusOK {
		t.Errorf("indexed: /healthz = %d, want 200", code)
	}
	if err := os.WriteFile(filepath.Join(dir, "after.txt"), []byte("y"), 0o644); err != nil {
		t.Fatal(err)
	}
	eventstest.Eventually(t, "after.txt in the changes", func() bool {
		_, body := get(t, srv.URL+"/v1/workspaces/w/changes?cursor=0")
		return strings.Contains(body, `"path":"after.txt"`)
	})
	_, metrics := get(t, srv.URL+"/metrics")
	for _, want := range []string{`filecast_events_appended_total{type="file.created"}`, "filecast_mcp_sessions 3"} {
		if !strings.Contains(metrics, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
}

// TestOpen_RefusesAStoreItCannotMake shows Open failing, not hanging, when
// the embedded log cannot be created, and leaving nothing running.
func TestOpen_RefusesAStoreItCannotMake(t *testing.T) {
	dir, data := t.TempDir(), t.TempDir()
	blocker := filepath.Join(data, "jetstream")
	if err := os.WriteFile(blocker, nil, 0o644); err != nil { // a file where the store's folder must be
		t.Fatal(err)
	}
	ws, err := workspace.Parse("w=" + dir)
	if err != nil {
		t.Fatal(err)
	}
	n, err := node.Open(t.Context(), node.Config{
		Workspaces: []workspace.Workspace{ws},
		Data:       data,
		NATS:       natsd.Options{StoreDir: blocker, MinFree: -1},
	})
	if err == nil {
		n.Close()
		t.Fatal("Open succeeded with a file in place of the store's folder")
	}
	if !strings.Contains(err.Error(), "event log") || !strings.Contains(err.Error(), blocker) {
		t.Errorf("error %q does not say which part failed and where", err)
	}
}

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(b)
}
