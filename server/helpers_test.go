package server_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http/httptest"
	"os"
	"sync"
	"testing"

	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/client/transport"
	"github.com/mark3labs/mcp-go/mcp"

	"github.com/filecast/filecast/events"
	"github.com/filecast/filecast/server"
	"github.com/filecast/filecast/tools"
)

type harness struct {
	src *memSource
	srv *server.Server
}

// start runs a Server over a fresh memSource until the test ends.
func start(t testing.TB, opts server.Options, workspaces ...string) *harness {
	t.Helper()
	src := newMemSource(t, workspaces...)
	return startOn(t, src, opts)
}

func startOn(t testing.TB, src *memSource, opts server.Options) *harness {
	t.Helper()
	return &harness{src: src, srv: serve(t, src, opts)}
}

// serve runs a Server over src until the test ends.
func serve(t testing.TB, src events.Source, opts server.Options) *server.Server {
	t.Helper()
	if opts.Logger == nil && testing.Verbose() {
		opts.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	if _, bench := t.(*testing.B); !bench {
		opts.CheckOutputSchemas = true // every result the tests see matches its schema
	}
	srv, err := server.New(src, opts)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	return srv
}

// notes collects the notifications a client receives.
type notes struct {
	mu   sync.Mutex
	all  []mcp.JSONRPCNotification
	hook func(mcp.JSONRPCNotification)
}

func (n *notes) add(nt mcp.JSONRPCNotification) {
	if n.hook != nil {
		n.hook(nt)
	}
	n.mu.Lock()
	n.all = append(n.all, nt)
	n.mu.Unlock()
}

func (n *notes) snapshot() []mcp.JSONRPCNotification {
	n.mu.Lock()
	defer n.mu.Unlock()
	return append([]mcp.JSONRPCNotification(nil), n.all...)
}

// updated returns the URIs of the resources/updated notifications seen.
func (n *notes) updated() []string {
	var out []string
	for _, nt := range n.snapshot() {
		if nt.Method == mcp.MethodNotificationResourceUpdated {
			uri, _ := nt.Params.AdditionalFields["uri"].(string)
			out = append(out, uri)
		}
	}
	return out
}

func (n *notes) count(method string) int {
	c := 0
	for _, nt := range n.snapshot() {
		if nt.Method == method {
			c++
		}
	}
	return c
}

// reached returns a channel told (without blocking) each time a call of
// tool reaches s, before its handler runs.
func reached(s *server.Server, tool string) <-chan struct{} {
	ch := make(chan struct{}, 1)
	s.MCPServer().GetHooks().AddBeforeCallTool(func(_ context.Context, _ any, req *mcp.CallToolRequest) {
		if req.Params.Name == tool {
			select {
			case ch <- struct{}{}:
			default:
			}
		}
	})
	return ch
}

type clientOpts struct {
	name   string
	modern bool
}

// stdioClient connects an mcp-go client to h.srv.ServeStdio over pipes.
func (h *harness) stdioClient(t testing.TB, o clientOpts) (*client.Client, *notes) {
	t.Helper()
	inR, inW := io.Pipe()   // client → server
	outR, outW := io.Pipe() // server → client
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- h.srv.ServeStdio(ctx, inR, outW) }()
	var copts []client.ClientOption
	if !o.modern {
		copts = append(copts, client.WithProtocolVersion(mcp.LATEST_LEGACY_PROTOCOL_VERSION))
	}
	c := client.NewClient(transport.NewIO(outR, inW, nil), copts...)
	n := &notes{}
	c.OnNotification(n.add)
	t.Cleanup(func() {
		_ = c.Close()
		cancel()
		_ = inR.Close()
		_ = outW.Close()
		if err := <-done; err != nil {
			t.Errorf("ServeStdio: %v", err)
		}
	})
	if err := c.Start(ctx); err != nil {
		t.Fatal(err)
	}
	initialize(t, c, o.name)
	return c, n
}

func initialize(t testing.TB, c *client.Client, name string) {
	t.Helper()
	if name == "" {
		name = "test-agent"
	}
	req := mcp.InitializeRequest{}
	req.Params.ClientInfo = mcp.Implementation{Name: name, Version: "1"}
	if _, err := c.Initialize(context.Background(), req); err != nil {
		t.Fatalf("initialize: %v", err)
	}
}

// httpClient connects an mcp-go streamable HTTP client to ts.
func httpClient(t testing.TB, ts *httptest.Server, o clientOpts) (*client.Client, *notes) {
	t.Helper()
	topts := []transport.StreamableHTTPCOption{transport.WithHTTPLogger(slog.New(slog.DiscardHandler))}
	var copts []client.ClientOption
	if !o.modern {
		topts = append(topts, transport.WithContinuousListening())
		copts = append(copts, client.WithProtocolVersion(mcp.LATEST_LEGACY_PROTOCOL_VERSION))
	}
	tr, err := transport.NewStreamableHTTP(ts.URL+"/mcp", topts...)
	if err != nil {
		t.Fatal(err)
	}
	c := client.NewClient(tr, copts...)
	n := &notes{}
	c.OnNotification(n.add)
	t.Cleanup(func() { _ = c.Close() })
	if err := c.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	initialize(t, c, o.name)
	return c, n
}

// call calls a tool and fails the test on a protocol error.
func call(t testing.TB, c *client.Client, name string, args map[string]any) *mcp.CallToolResult {
	t.Helper()
	req := mcp.CallToolRequest{}
	req.Params.Name = name
	req.Params.Arguments = args
	res, err := c.CallTool(context.Background(), req)
	if err != nil {
		t.Fatalf("%s: protocol error: %v", name, err)
	}
	return res
}

func text(res *mcp.CallToolResult) string {
	for _, c := range res.Content {
		if tc, ok := c.(mcp.TextContent); ok {
			return tc.Text
		}
	}
	return ""
}

// decode checks that a result succeeded and that its text is the same JSON
// as its structured content, and decodes it.
func decode[T any](t testing.TB, res *mcp.CallToolResult) T {
	t.Helper()
	var v T
	if res.IsError {
		t.Fatalf("tool error: %s", text(res))
	}
	b, err := json.Marshal(res.StructuredContent)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatal(err)
	}
	var fromText T
	if err := json.Unmarshal([]byte(text(res)), &fromText); err != nil {
		t.Fatalf("text content is not the JSON result: %v", err)
	}
	return v
}

func listChanges(t testing.TB, c *client.Client, args map[string]any) tools.ListChangesResult {
	t.Helper()
	return decode[tools.ListChangesResult](t, call(t, c, "list_changes", args))
}

func paths(evs []events.Event) []string {
	out := []string{}
	for _, ev := range evs {
		out = append(out, string(ev.Type)+" "+ev.Path)
	}
	return out
}

var errTimeout = errors.New("timeout")
