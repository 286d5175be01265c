package roots_test

import (
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/client/transport"
	"github.com/mark3labs/mcp-go/mcp"
	mcpserver "github.com/mark3labs/mcp-go/server"
	"github.com/sourcegraph/conc"

	"github.com/filecast/filecast/events"
	"github.com/filecast/filecast/events/eventstest"
	"github.com/filecast/filecast/events/hub"
	"github.com/filecast/filecast/events/journal"
	"github.com/filecast/filecast/events/natsd/natstest"
	"github.com/filecast/filecast/events/workspace"
	"github.com/filecast/filecast/server/roots"
)

// host is an MCP host's list of roots, which it can change.
type host struct {
	mu   sync.Mutex
	dirs []string
}

func (h *host) ListRoots(context.Context, mcp.ListRootsRequest) (*mcp.ListRootsResult, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	res := &mcp.ListRootsResult{Roots: []mcp.Root{}}
	for _, d := range h.dirs {
		res.Roots = append(res.Roots, mcp.Root{URI: "file://" + d, Name: filepath.Base(d)})
	}
	return res, nil
}

func (h *host) set(dirs ...string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.dirs = dirs
}

// hubs starts real hubs over one event log, as the hubs of one data
// folder follow each other; it records them, newest last.
type hubs struct {
	t   *testing.T
	log *journal.Journal

	mu      sync.Mutex
	started []*hub.Hub
	names   [][]string
}

func newHubs(t *testing.T) *hubs {
	srv := natstest.Start(t)
	j, err := journal.Open(t.Context(), srv.Conn(), journal.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = j.Close() })
	return &hubs{t: t, log: j}
}

func (h *hubs) start(wss []workspace.Workspace) (roots.Hub, error) {
	var names []string
	for _, ws := range wss {
		if err := h.log.Ensure(context.Background(), ws.Name); err != nil {
			return nil, err
		}
		names = append(names, ws.Name)
	}
	hb, err := hub.New(hub.Options{Workspaces: wss, Log: h.log})
	if err != nil {
		return nil, err
	}
	h.mu.Lock()
	h.started = append(h.started, hb)
	h.names = append(h.names, names)
	h.mu.Unlock()
	return hb, nil
}

func (h *hubs) last() (*hub.Hub, int) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.started) == 0 {
		return nil, 0
	}
	return h.started[len(h.started)-1], len(h.started)
}

// connect runs r on an MCP server and connects a host with roots to it
// over a pipe, as over stdio.
func connect(t *testing.T, r *roots.Roots, roots *host) *client.Client {
	s := mcpserver.NewMCPServer("test", "1", mcpserver.WithRoots(), mcpserver.WithHooks(&mcpserver.Hooks{}))
	r.Attach(s)
	ctx, cancel := context.WithCancel(context.Background())
	toServer, fromHost := io.Pipe()
	toHost, fromServer := io.Pipe()
	var wg conc.WaitGroup
	wg.Go(func() {
		if err := r.Run(ctx); err != nil {
			t.Errorf("Run = %v", err)
		}
	})
	wg.Go(func() { _ = mcpserver.NewStdioServer(s).Listen(ctx, toServer, fromServer) })
	c := client.NewClient(transport.NewIO(toHost, fromHost, io.NopCloser(strings.NewReader(""))), client.WithRootsHandler(roots))
	t.Cleanup(func() {
		_ = c.Close()
		cancel()
		_ = toServer.Close()
		_ = toHost.Close()
		wg.Wait()
	})
	if err := c.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	req := mcp.InitializeRequest{}
	req.Params.ProtocolVersion = "2025-11-25" // initialize is where the roots are asked for
	req.Params.ClientInfo = mcp.Implementation{Name: "host", Version: "1"}
	req.Params.Capabilities.Roots = &struct {
		ListChanged bool `json:"listChanged,omitempty"`
	}{ListChanged: true}
	if _, err := c.Initialize(t.Context(), req); err != nil {
		t.Fatal(err)
	}
	return c
}

// TestRoots_FollowsTheHost: the host's roots become workspaces named
// after their folders; when they change, the hub is replaced and a
// follower carries on from its last event on the new one.
func TestRoots_FollowsTheHost(t *testing.T) {
	hs := newHubs(t)
	alpha := filepath.Join(t.TempDir(), "alpha")
	beta := filepath.Join(t.TempDir(), "beta")
	for _, d := range []string{alpha, beta} {
		if err := mkdir(d); err != nil {
			t.Fatal(err)
		}
	}
	h := &host{}
	h.set(alpha)
	r := roots.New(roots.Options{Start: hs.start})
	c := connect(t, r, h)

	wss, err := r.Workspaces(t.Context())
	if err != nil || len(wss) != 1 || wss[0].Name != "alpha" {
		t.Fatalf("Workspaces = %v, %v; want alpha", wss, err)
	}
	var mu sync.Mutex
	var got []string
	ctx, cancel := context.WithCancel(t.Context())
	followed := make(chan error, 1)
	go func() {
		followed <- events.Follow(ctx, r, "alpha", 0, func(ev events.Event) error {
			mu.Lock()
			got = append(got, ev.Path)
			mu.Unlock()
			return nil
		}, events.FollowOptions{})
	}()
	seen := func(n int) func() bool {
		return func() bool { mu.Lock(); defer mu.Unlock(); return len(got) >= n }
	}
	first, _ := hs.last()
	appendTo(t, first, "alpha", "one.md")
	eventstest.Eventually(t, "one.md followed", seen(1))

	h.set(alpha, beta)
	if err := c.RootListChanges(t.Context()); err != nil {
		t.Fatal(err)
	}
	eventstest.Eventually(t, "a second hub", func() bool { _, n := hs.last(); return n == 2 })
	second, _ := hs.last()
	<-second.Ready()
	appendTo(t, second, "alpha", "two.md")
	appendTo(t, second, "beta", "b.md")
	eventstest.Eventually(t, "two.md followed", seen(2))
	cancel()
	if err := <-followed; !errors.Is(err, context.Canceled) {
		t.Fatalf("Follow = %v", err)
	}
	if diff := cmp.Diff([]string{"one.md", "two.md"}, got); diff != "" {
		t.Errorf("followed across the change of roots (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([][]string{{"alpha"}, {"alpha", "beta"}}, hs.names); diff != "" {
		t.Errorf("hubs started on (-want +got):\n%s", diff)
	}

	// No roots left: every call says what to do.
	h.set()
	if err := c.RootListChanges(t.Context()); err != nil {
		t.Fatal(err)
	}
	eventstest.Eventually(t, "ErrNoRoots", func() bool {
		_, err := r.Workspaces(t.Context())
		return errors.Is(err, roots.ErrNoRoots)
	})
}

// TestRoots_SameNames: two folders with one name get "name" and "name-2".
func TestRoots_SameNames(t *testing.T) {
	hs := newHubs(t)
	one := filepath.Join(t.TempDir(), "project")
	two := filepath.Join(t.TempDir(), "project")
	for _, d := range []string{one, two} {
		if err := mkdir(d); err != nil {
			t.Fatal(err)
		}
	}
	h := &host{}
	h.set(one, two)
	r := roots.New(roots.Options{Start: hs.start})
	connect(t, r, h)
	wss, err := r.Workspaces(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, w := range wss {
		names = append(names, w.Name)
	}
	if diff := cmp.Diff([]string{"project", "project-2"}, names); diff != "" {
		t.Errorf("workspaces (-want +got):\n%s", diff)
	}
}

func TestName(t *testing.T) {
	long := "abcdefghij"
	for range 3 {
		long += long
	}
	tests := []struct{ base, want string }{
		{"project", "project"},
		{"my project", "my_project"},
		{".config", "config"},
		{"-x", "x"},
		{"日本", "__"},
		{"...", "root"},
		{long, long[:60]},
	}
	for _, tt := range tests {
		if got := roots.Name(tt.base); got != tt.want {
			t.Errorf("Name(%q) = %q, want %q", tt.base, got, tt.want)
		}
	}
}

func appendTo(t *testing.T, h *hub.Hub, ws, path string) {
	t.Helper()
	if _, err := h.Append(t.Context(), events.Event{Workspace: ws, Type: events.FileCreated, Path: path, Actor: events.ActorFS}); err != nil {
		t.Fatal(err)
	}
}

func mkdir(d string) error { return os.MkdirAll(d, 0o755) }

// broken is a hub that fails as it starts: a fault to inject.
type broken struct{ roots.Hub }

var errBroken = errors.New("test: the data folder is owned by a hub on other roots")

func (broken) Run(context.Context) error { return errBroken }
func (broken) Ready() <-chan struct{}    { return nil }

// TestRoots_HubFailsToStart: a hub that fails before it can be called
// makes every call say why, rather than wait.
func TestRoots_HubFailsToStart(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "alpha")
	if err := mkdir(dir); err != nil {
		t.Fatal(err)
	}
	h := &host{}
	h.set(dir)
	r := roots.New(roots.Options{Start: func([]workspace.Workspace) (roots.Hub, error) { return broken{}, nil }})
	connect(t, r, h)
	if _, err := r.Workspaces(t.Context()); !errors.Is(err, errBroken) {
		t.Fatalf("Workspaces = %v, want the hub's failure", err)
	}
}
