package server

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/mark3labs/mcp-go/mcp"
	mcpserver "github.com/mark3labs/mcp-go/server"
)

// TestEncodeMessage_AsJSONMarshal wants encodeMessage to write what
// json.Marshal writes, for the tool results it encodes by hand and for
// those it leaves to json.Marshal.
func TestEncodeMessage_AsJSONMarshal(t *testing.T) {
	texts := []string{"", "plain", `{"events":[],"cursor":"w:1"}`, "<b>&amp;</b> \"q\" \\ \n\t\x00 é 日本 🎉 \u2028\u2029 \xff"}
	structured := []any{
		nil,
		json.RawMessage(`{"events":[{"path":"<a&b>.go","diff":"\u2028 é"}],"cursor":"w:1"}`),
		json.RawMessage("{ \"spaced\" : [ 1, 2 ],\n \"x\":\"<>\" }"),
		json.RawMessage("{\"unicode\":\"日本 \xff\"}"),
		map[string]any{"a": 1},
	}
	ids := []mcp.RequestId{mcp.NewRequestId(int64(7)), mcp.NewRequestId(float64(3)), mcp.NewRequestId("id-<1>"), mcp.NewRequestId(nil)}
	var results []*mcp.CallToolResult
	for _, text := range texts {
		for _, sc := range structured {
			for _, isErr := range []bool{false, true} {
				r := mcp.NewToolResultStructured(sc, text)
				r.IsError = isErr
				results = append(results, r)
			}
		}
	}
	meta := mcp.NewToolResultText("with meta")
	meta.Meta = &mcp.Meta{AdditionalFields: map[string]any{"k": "v"}}
	two := mcp.NewToolResultText("two")
	two.Content = append(two.Content, mcp.NewTextContent("contents"))
	typed := mcp.NewToolResultText("modern")
	typed.ResultType = "complete"
	results = append(results, meta, two, typed, mcp.NewToolResultError("failed <here>"), &mcp.CallToolResult{})
	msgs := []mcp.JSONRPCMessage{
		mcp.NewJSONRPCResultResponse(mcp.NewRequestId(int64(1)), mcp.EmptyResult{}),
		mcp.JSONRPCError{JSONRPC: mcp.JSONRPC_VERSION, ID: mcp.NewRequestId(nil), Error: mcp.NewJSONRPCErrorDetails(mcp.PARSE_ERROR, "Parse error", nil)},
	}
	for _, id := range ids {
		for _, r := range results {
			msgs = append(msgs, mcp.NewJSONRPCResultResponse(id, r))
		}
	}
	for _, msg := range msgs {
		got, err := encodeMessage([]byte("x"), msg)
		if err != nil {
			t.Fatal(err)
		}
		want, err := json.Marshal(msg)
		if err != nil {
			t.Fatal(err)
		}
		if string(got) != "x"+string(want) {
			t.Errorf("encodeMessage =\n%s\nwant\nx%s", got, want)
		}
	}
	// Structured content that is not JSON fails as json.Marshal fails.
	bad := mcp.NewJSONRPCResultResponse(mcp.NewRequestId(int64(1)), mcp.NewToolResultStructured(json.RawMessage(`{"a":`), "t"))
	if _, err := encodeMessage(nil, bad); err == nil {
		t.Error("encodeMessage of invalid structured content: nil error, want json.Marshal's")
	}
}

// TestAppendURINotification_AsJSONMarshal wants the notifications the
// stdio writer encodes by hand encoded as json.Marshal does, and the
// others left to it.
func TestAppendURINotification_AsJSONMarshal(t *testing.T) {
	note := func(method string, params map[string]any, meta map[string]any) mcp.JSONRPCNotification {
		return mcp.JSONRPCNotification{JSONRPC: mcp.JSONRPC_VERSION, Notification: mcp.Notification{
			Method: method, Params: mcp.NotificationParams{AdditionalFields: params, Meta: meta}}}
	}
	var hand int
	for _, n := range []mcp.JSONRPCNotification{
		note(mcp.MethodNotificationResourceUpdated, map[string]any{"uri": "filecast://docs/reports/q3.md"}, nil),
		note(mcp.MethodNotificationResourceUpdated, map[string]any{"uri": "filecast://w/<é 日本 🎉>\u2028 \"q\" \\ \n\xff"}, nil),
		note(mcp.MethodNotificationResourceUpdated, map[string]any{"uri": "filecast://w/a"}, map[string]any{mcp.MetaKeySubscriptionID: 7}),
		note(mcp.MethodNotificationResourcesListChanged, map[string]any{}, nil),
		note(mcp.MethodNotificationResourcesListChanged, nil, nil),
		note("notifications/message", map[string]any{"uri": 5}, nil),
		note("notifications/message", map[string]any{"uri": "u", "level": "info"}, nil),
	} {
		want, err := json.Marshal(n)
		if err != nil {
			t.Fatal(err)
		}
		got, ok := appendURINotification([]byte("x"), n)
		if !ok {
			if string(got) != "x" {
				t.Errorf("appendURINotification declined %s but wrote %s", want, got)
			}
			continue
		}
		hand++
		if string(got) != "x"+string(want) {
			t.Errorf("appendURINotification =\n%s\nwant\nx%s", got, want)
		}
	}
	if hand != 2 {
		t.Errorf("%d notifications encoded by hand, want the 2 with only a uri", hand)
	}
}

// stdioServe is a stdio transport under test.
type stdioServe func(ctx context.Context, s *mcpserver.MCPServer, in io.Reader, out io.Writer) error

func serveOurs(ctx context.Context, s *mcpserver.MCPServer, in io.Reader, out io.Writer) error {
	l := slog.New(slog.DiscardHandler)
	return serveStdio(ctx, s, newStdioWire(in, out, l), l)
}

func serveMCPGo(ctx context.Context, s *mcpserver.MCPServer, in io.Reader, out io.Writer) error {
	stdio := mcpserver.NewStdioServer(s)
	stdio.SetErrorLogger(log.New(io.Discard, "", 0))
	return stdio.Listen(ctx, in, out)
}

// stdioPeer is the client end of a transport under test.
type stdioPeer struct {
	t   *testing.T
	in  *io.PipeWriter
	out *bufio.Reader
}

func (p *stdioPeer) send(line string) {
	p.t.Helper()
	if _, err := io.WriteString(p.in, line+"\n"); err != nil {
		p.t.Fatal(err)
	}
}

// next returns the next line the server writes, or fails after a while.
func (p *stdioPeer) next() string {
	p.t.Helper()
	got := make(chan string, 1)
	go func() {
		line, _ := p.out.ReadString('\n')
		got <- line
	}()
	select {
	case line := <-got:
		return strings.TrimSuffix(line, "\n")
	case <-time.After(10 * time.Second):
		p.t.Fatal("no message from the server within 10 s")
		return ""
	}
}

// startStdio serves s with serve over pipes until the test ends.
func startStdio(t *testing.T, s *mcpserver.MCPServer, serve stdioServe) *stdioPeer {
	inR, inW := io.Pipe()
	outR, outW := io.Pipe()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- serve(ctx, s, inR, outW) }()
	t.Cleanup(func() {
		cancel()
		_ = inW.Close()
		_ = outR.Close()
		if err := <-done; err != nil && !errors.Is(err, context.Canceled) {
			t.Errorf("serve: %v", err)
		}
	})
	return &stdioPeer{t: t, in: inW, out: bufio.NewReader(outR)}
}

// testMCPServer has a tool that echoes its arguments, one that panics
// and one that asks the client for its roots.
func testMCPServer() *mcpserver.MCPServer {
	s := mcpserver.NewMCPServer("test", "1", mcpserver.WithToolCapabilities(false), mcpserver.WithRoots())
	s.AddTool(mcp.NewTool("echo"), func(_ context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		b, _ := json.Marshal(req.Params.Arguments)
		return mcp.NewToolResultStructured(json.RawMessage(b), string(b)), nil
	})
	s.AddTool(mcp.NewTool("panic"), func(context.Context, mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		panic("boom")
	})
	s.AddTool(mcp.NewTool("roots"), func(ctx context.Context, _ mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		rs, ok := mcpserver.ClientSessionFromContext(ctx).(mcpserver.SessionWithRoots)
		if !ok {
			return mcp.NewToolResultError("no roots"), nil
		}
		res, err := rs.ListRoots(ctx, mcp.ListRootsRequest{})
		if err != nil {
			return mcp.NewToolResultError(err.Error()), nil
		}
		b, _ := json.Marshal(res.Roots)
		return mcp.NewToolResultText(string(b)), nil
	})
	return s
}

// TestServeStdio_AsMCPGo sends the same messages to this package's
// transport and to mcp-go's StdioServer, one at a time, and wants the
// same answers: requests, notifications (answered by nothing: a ping
// after each shows what came before it), tool results with unicode and
// escapes, a panicking tool, unknown tools and methods, lines that are
// not JSON or not a message, and answers to requests nobody sent.
func TestServeStdio_AsMCPGo(t *testing.T) {
	script := []struct {
		msg     string
		answers int // lines the server writes for msg
	}{
		{`{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{"roots":{}},"clientInfo":{"name":"t","version":"1"}}}`, 1},
		{`{"jsonrpc":"2.0","method":"notifications/initialized"}`, 0},
		{`{"jsonrpc":"2.0","id":"a","method":"ping"}`, 1},
		{`{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"echo","arguments":{"path":"<é 日本 🎉>\u2028","n":1.5,"q":"\"\\"}}}`, 1},
		{`{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"panic"}}`, 1},
		{`{"jsonrpc":"2.0","id":"s-4","method":"tools/call","params":{"name":"missing"}}`, 1},
		{`{"jsonrpc":"2.0","id":5,"method":"no/such/method"}`, 1},
		{`{oops`, 1},
		{``, 1},
		{`[1,2]`, 1},
		{`"text"`, 1},
		{`{"jsonrpc":"2.0","method":5}`, 1},
		{`{"jsonrpc":"2.0","id":99,"result":{}}`, 0},
		{`{"jsonrpc":"2.0","id":98,"error":{"code":1,"message":"x"}}`, 1},
		{`{"jsonrpc":"2.0","id":null,"method":"ping"}`, 0},
		{`{"jsonrpc":"2.0","id":6,"method":"tools/list"}`, 1},
	}
	run := func(serve stdioServe) []string {
		p := startStdio(t, testMCPServer(), serve)
		var out []string
		for i, step := range script {
			// One write: an io.Pipe blocks a writer until it is read.
			p.send(step.msg + "\n" + `{"jsonrpc":"2.0","id":"sync-` + strconv.Itoa(i) + `","method":"ping"}`)
			// Requests are answered concurrently: wait for the ping and
			// for as many answers as the message has, in any order.
			var got []string
			for synced := false; !synced || len(got) < step.answers; {
				line := p.next()
				if strings.Contains(line, `"sync-`) {
					synced = true
					continue
				}
				got = append(got, line)
			}
			slices.Sort(got)
			out = append(append(out, got...), "--")
		}
		return out
	}
	want := run(serveMCPGo)
	got := run(serveOurs)
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("answers differ from mcp-go's StdioServer (-mcp-go +ours):\n%s", diff)
	}
}

// TestServeStdio_ListRoots asks the client for its roots from a tool, as
// the server's roots package does: the answer reaches the request that
// waits for it, and an error answer fails it.
func TestServeStdio_ListRoots(t *testing.T) {
	p := startStdio(t, testMCPServer(), serveOurs)
	p.send(`{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{"roots":{}},"clientInfo":{"name":"t","version":"1"}}}`)
	p.next()
	p.send(`{"jsonrpc":"2.0","method":"notifications/initialized"}`)
	for i, answer := range []string{
		`"result":{"roots":[{"uri":"file:///tmp/ws","name":"ws"}]}`,
		`"error":{"code":-32601,"message":"roots not supported"}`,
	} {
		p.send(`{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"roots"}}`)
		var req struct {
			ID     json.Number `json:"id"`
			Method string      `json:"method"`
		}
		if err := json.Unmarshal([]byte(p.next()), &req); err != nil || req.Method != string(mcp.MethodListRoots) {
			t.Fatalf("server sent %+v (%v), want a roots/list request", req, err)
		}
		p.send(`{"jsonrpc":"2.0","id":` + req.ID.String() + `,` + answer + `}`)
		res := p.next()
		want := []string{`file:///tmp/ws`, `roots/list request failed: roots not supported`}[i]
		if !strings.Contains(res, want) || !strings.Contains(res, `"id":2`) {
			t.Errorf("tool result = %s, want it to hold %q", res, want)
		}
	}
}

// TestServeStdio_NotificationsBatched queues notifications faster than
// they are written: every one arrives, whole, in order.
func TestServeStdio_NotificationsBatched(t *testing.T) {
	s := testMCPServer()
	p := startStdio(t, s, serveOurs)
	p.send(`{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}`)
	p.next()
	p.send(`{"jsonrpc":"2.0","method":"notifications/initialized"}`)
	p.send(`{"jsonrpc":"2.0","id":"sync","method":"ping"}`)
	p.next()
	const n = 50
	for i := range n {
		if err := s.SendNotificationToSpecificClient("stdio", "notifications/message", map[string]any{"i": i}); err != nil {
			t.Fatal(err)
		}
	}
	for i := range n {
		var got struct {
			Method string `json:"method"`
			Params struct {
				I int `json:"i"`
			} `json:"params"`
		}
		line := p.next()
		if err := json.Unmarshal([]byte(line), &got); err != nil || got.Params.I != i {
			t.Fatalf("notification %d = %s (%v)", i, line, err)
		}
	}
}
