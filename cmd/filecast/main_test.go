package main_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/client/transport"
	"github.com/mark3labs/mcp-go/mcp"

	"github.com/filecast/filecast/events/eventstest"
)

// binary is the filecast binary built once for every test of this package.
var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "filecast-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binary = filepath.Join(dir, "filecast")
	args := []string{"build", "-o", binary}
	if raceEnabled {
		args = append(args, "-race")
	}
	cmd := exec.Command("go", append(args, ".")...)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "build filecast:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// legacyVersion pins clients to the protocol revision that has
// resources/subscribe; modernVersion uses subscriptions/listen.
const legacyVersion = "2025-11-25"

// wsEvent is the part of an event the tests look at.
type wsEvent struct {
	ID        string `json:"event_id"`
	Seq       uint64 `json:"seq"`
	Type      string `json:"type"`
	Workspace string `json:"workspace"`
	Path      string `json:"path"`
	OldPath   string `json:"old_path"`
	Size      *int64 `json:"size"`
	SHA256    string `json:"sha256"`
	Actor     string `json:"actor"`
}

func (e wsEvent) String() string {
	if e.OldPath != "" {
		return e.Type + " " + e.OldPath + "->" + e.Path
	}
	return e.Type + " " + e.Path
}

type changes struct {
	Events     []wsEvent `json:"events"`
	Cursor     string    `json:"cursor"`
	HasMore    bool      `json:"has_more"`
	Overflowed bool      `json:"overflowed"`
}

// agent is an MCP client connected to a filecast process.
type agent struct {
	t      *testing.T
	c      *client.Client
	mu     sync.Mutex
	notes  []mcp.JSONRPCNotification
	noteCh chan struct{}
}

func newAgent(t *testing.T, c *client.Client, version string) *agent {
	t.Helper()
	a := &agent{t: t, c: c, noteCh: make(chan struct{}, 1)}
	c.OnNotification(func(n mcp.JSONRPCNotification) {
		a.mu.Lock()
		a.notes = append(a.notes, n)
		a.mu.Unlock()
		select {
		case a.noteCh <- struct{}{}:
		default:
		}
	})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	req := mcp.InitializeRequest{}
	req.Params.ProtocolVersion = version
	req.Params.ClientInfo = mcp.Implementation{Name: "test-agent", Version: "1"}
	if _, err := c.Initialize(ctx, req); err != nil {
		t.Fatalf("initialize: %v", err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return a
}

// startStdio launches "filecast mcp ARGS" as an MCP host would.
func startStdio(t *testing.T, version string, args ...string) *agent {
	t.Helper()
	stderr := &lockedBuffer{}
	c, err := client.NewStdioMCPClientWithOptions(binary, nil, append([]string{"mcp"}, args...),
		transport.WithCommandStderrWriter(stderr))
	if err != nil {
		t.Fatalf("start filecast mcp: %v", err)
	}
	// The stdio constructor starts the transport but not the client, which
	// is what routes notifications to OnNotification handlers.
	if err := c.Start(t.Context()); err != nil {
		t.Fatalf("start client: %v", err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("filecast mcp stderr:\n%s", stderr.String())
		}
	})
	return newAgent(t, c, version)
}

// call invokes a tool and decodes its structured result into out. It
// returns the error text when the tool reported isError.
func (a *agent) call(name string, args map[string]any, out any) (toolErr string) {
	a.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 40*time.Second)
	defer cancel()
	req := mcp.CallToolRequest{}
	req.Params.Name = name
	req.Params.Arguments = args
	res, err := a.c.CallTool(ctx, req)
	if err != nil {
		a.t.Fatalf("%s(%v): protocol error %v", name, args, err)
	}
	text := ""
	for _, c := range res.Content {
		if tc, ok := c.(mcp.TextContent); ok {
			text += tc.Text
		}
	}
	if res.IsError {
		if text == "" {
			a.t.Fatalf("%s: isError without a message", name)
		}
		return text
	}
	if out != nil {
		raw := res.RawStructuredContent
		if len(raw) == 0 {
			b, err := json.Marshal(res.StructuredContent)
			if err != nil {
				a.t.Fatal(err)
			}
			raw = b
		}
		if err := json.Unmarshal(raw, out); err != nil {
			a.t.Fatalf("%s: decode structured result %s: %v", name, raw, err)
		}
		// The text content carries the same JSON for older clients.
		var again any
		if err := json.Unmarshal([]byte(text), &again); err != nil {
			a.t.Fatalf("%s: text content is not the JSON result: %q", name, text)
		}
	}
	return ""
}

func (a *agent) mustCall(name string, args map[string]any, out any) {
	a.t.Helper()
	if msg := a.call(name, args, out); msg != "" {
		a.t.Fatalf("%s(%v): tool error: %s", name, args, msg)
	}
}

// collect calls list_changes (long-polling) until want events arrived or
// the deadline passed, and returns what it got and the last cursor. The
// events are whole (detail full) unless args say otherwise: these tests
// follow ids, workspaces and hashes, which compact events leave out.
func (a *agent) collect(args map[string]any, want int) ([]wsEvent, string) {
	a.t.Helper()
	var got []wsEvent
	cursor := ""
	deadline := time.Now().Add(15 * time.Second)
	for len(got) < want && time.Now().Before(deadline) {
		call := map[string]any{"wait_ms": 2000, "detail": "full"}
		for k, v := range args {
			call[k] = v
		}
		if cursor != "" {
			if _, ok := args["cursor"]; ok {
				call["cursor"] = cursor
			}
		}
		var r changes
		a.mustCall("list_changes", call, &r)
		got = append(got, r.Events...)
		cursor = r.Cursor
	}
	return got, cursor
}

func (a *agent) notifications(method string) []mcp.JSONRPCNotification {
	a.mu.Lock()
	defer a.mu.Unlock()
	var out []mcp.JSONRPCNotification
	for _, n := range a.notes {
		if n.Method == method {
			out = append(out, n)
		}
	}
	return out
}

// waitNote waits until cond holds for the notifications received.
func (a *agent) waitNote(what string, cond func(a *agent) bool) {
	a.t.Helper()
	deadline := time.After(10 * time.Second)
	for !cond(a) {
		select {
		case <-a.noteCh:
		case <-time.After(50 * time.Millisecond):
		case <-deadline:
			a.t.Fatalf("timed out waiting for %s; got %d notifications", what, len(a.notes))
		}
	}
}

func updatedURIs(a *agent) map[string]int {
	out := map[string]int{}
	for _, n := range a.notifications("notifications/resources/updated") {
		if uri, ok := n.Params.AdditionalFields["uri"].(string); ok {
			out[uri]++
		}
	}
	return out
}

func kinds(evs []wsEvent) []string {
	out := make([]string, len(evs))
	for i, e := range evs {
		out[i] = e.String()
	}
	return out
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// freeAddr returns a free 127.0.0.1 address.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// proc is a filecast process the test started and will end.
type proc struct {
	cmd    *exec.Cmd
	stderr *lockedBuffer
	done   chan struct{}
}

func startProc(t *testing.T, args ...string) *proc {
	t.Helper()
	p := &proc{cmd: exec.Command(binary, args...), stderr: &lockedBuffer{}, done: make(chan struct{})}
	p.cmd.Stderr = p.stderr
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { _ = p.cmd.Wait(); close(p.done) }()
	t.Cleanup(func() {
		p.stop(t)
		if t.Failed() {
			t.Logf("filecast %s stderr:\n%s", args[0], p.stderr.String())
		}
	})
	return p
}

// stop sends SIGTERM and waits for the process to exit.
func (p *proc) stop(t *testing.T) {
	select {
	case <-p.done:
		return
	default:
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
		t.Errorf("filecast did not exit within 10s of SIGTERM")
	}
}

// waitHTTP polls url until it answers 200.
func waitHTTP(t *testing.T, url string) {
	t.Helper()
	eventstest.Eventually(t, url+" answering 200", func() bool {
		resp, err := http.Get(url)
		if err != nil {
			return false
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode == 200
	})
}

type lockedBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// sseReader reads raw SSE events from a response body.
type sseReader struct{ r *bufio.Reader }

type sseEvent struct{ id, event, data string }

func (s *sseReader) next() (sseEvent, error) {
	var ev sseEvent
	for {
		line, err := s.r.ReadString('\n')
		if err != nil {
			return ev, err
		}
		line = strings.TrimRight(line, "\r\n")
		switch {
		case line == "":
			if ev.data != "" {
				return ev, nil
			}
		case strings.HasPrefix(line, "id:"):
			ev.id = strings.TrimSpace(line[3:])
		case strings.HasPrefix(line, "event:"):
			ev.event = strings.TrimSpace(line[6:])
		case strings.HasPrefix(line, "data:"):
			ev.data += strings.TrimPrefix(line[5:], " ")
		}
	}
}
