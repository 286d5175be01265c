package main_test

import (
	"context"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/client/transport"
	"github.com/mark3labs/mcp-go/mcp"

	"github.com/filecast/filecast/events/eventstest"
)

// hostRoots is an MCP host's list of roots, which it can change.
type hostRoots struct {
	mu   sync.Mutex
	dirs []string
}

func (h *hostRoots) ListRoots(context.Context, mcp.ListRootsRequest) (*mcp.ListRootsResult, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	res := &mcp.ListRootsResult{Roots: []mcp.Root{}}
	for _, d := range h.dirs {
		res.Roots = append(res.Roots, mcp.Root{URI: "file://" + d, Name: filepath.Base(d)})
	}
	return res, nil
}

func (h *hostRoots) set(dirs ...string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.dirs = dirs
}

// TestMCPStdio_RootsFromHost starts "filecast mcp" with no --root: it asks
// the host for its roots, watches them, and follows a change of roots.
func TestMCPStdio_RootsFromHost(t *testing.T) {
	one, two := filepath.Join(t.TempDir(), "alpha"), filepath.Join(t.TempDir(), "beta")
	writeFile(t, filepath.Join(one, "seed.txt"), "x")
	writeFile(t, filepath.Join(two, "seed.txt"), "y")
	roots := &hostRoots{}
	roots.set(one)

	stderr := &lockedBuffer{}
	tr := transport.NewStdioWithOptions(binary, nil, []string{"mcp", "--data", t.TempDir()}, transport.WithCommandStderrWriter(stderr))
	if err := tr.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	c := client.NewClient(tr, client.WithRootsHandler(roots))
	if err := c.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("filecast mcp stderr:\n%s", stderr.String())
		}
	})
	a := &agent{t: t, c: c, noteCh: make(chan struct{}, 1)}
	req := mcp.InitializeRequest{}
	req.Params.ProtocolVersion = legacyVersion
	req.Params.ClientInfo = mcp.Implementation{Name: "test-agent", Version: "1"}
	req.Params.Capabilities.Roots = &struct {
		ListChanged bool `json:"listChanged,omitempty"`
	}{ListChanged: true}
	if _, err := c.Initialize(t.Context(), req); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })

	// The first call waits for the hub on the host's roots.
	a.mustCall("subscribe", map[string]any{"paths": []string{"*.md"}}, nil)
	eventstest.Eventually(t, "the roots to be watched", func() bool { return len(stderrLines(stderr, "watching the host's roots")) > 0 })
	writeFile(t, filepath.Join(one, "a.md"), "in alpha")
	got, _ := a.collect(nil, 1)
	if diff := cmp.Diff([]string{"file.created a.md"}, kinds(got)); diff != "" {
		t.Fatalf("(-want +got):\n%s", diff)
	}
	if got[0].Workspace != "alpha" {
		t.Fatalf("workspace %q, want alpha (the folder's name)", got[0].Workspace)
	}

	roots.set(one, two)
	if err := c.RootListChanges(t.Context()); err != nil {
		t.Fatal(err)
	}
	eventstest.Eventually(t, "the new root to be followed", func() bool { return len(stderrLines(stderr, "following a new workspace")) > 0 })
	writeFile(t, filepath.Join(two, "b.md"), "in beta")
	writeFile(t, filepath.Join(one, "c.md"), "in alpha again")
	got, _ = a.collect(nil, 2)
	ws := map[string]string{}
	for _, e := range got {
		ws[e.Path] = e.Workspace
	}
	if diff := cmp.Diff(map[string]string{"b.md": "beta", "c.md": "alpha"}, ws); diff != "" {
		t.Fatalf("after the roots changed (-want +got):\n%s", diff)
	}
}

// TestMCPStdio_NoRootsNoFlags: a host that shares no roots gets a clear
// tool error saying what to pass.
func TestMCPStdio_NoRootsNoFlags(t *testing.T) {
	a := startStdio(t, legacyVersion, "--data", t.TempDir())
	msg := a.call("list_changes", map[string]any{"wait_ms": 10}, &changes{})
	if msg == "" || !strings.Contains(msg, "--root") {
		t.Fatalf("list_changes without roots = %q, want an error naming --root", msg)
	}
}

func stderrLines(b *lockedBuffer, sub string) []string {
	var out []string
	for _, l := range strings.Split(b.String(), "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return out
}
