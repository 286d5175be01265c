package server

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/mark3labs/mcp-go/mcp"
	mcpserver "github.com/mark3labs/mcp-go/server"

	"github.com/filecast/filecast/events/jsonenc"
)

// The stdio transport serves one client over a pair of streams, one
// JSON-RPC message per line, around mcp-go's MCPServer.HandleMessage and
// its sessions, as mcp-go's StdioServer does, and with the same
// behaviour: tools/call requests run on stdioToolCalls workers, in the
// order they came (stdioQueue of them wait; more wait off the reading
// goroutine), other requests each on their own goroutine, notifications from the
// client in order on the reading goroutine; answers to the server's own
// requests (roots/list, sampling, elicitation) go to the request waiting
// for them; a line that is not JSON is answered with a parse error; a
// handler's panic becomes an internal error. What it does not do is
// spend: the StdioServer decodes every message five times before
// HandleMessage decodes it again, starts a goroutine to read each line
// and hands each tool call to a worker; here a message is decoded once
// to route it, the reading goroutine hands it on directly,
// notifications already queued go out in one write, and tool results
// are encoded without reflection.

// stdioToolCalls is how many tools/call requests run at once, and
// stdioQueue how many wait in order for a worker, as in mcp-go's
// StdioServer. Long-lived workers keep the stacks a call grows.
const (
	stdioToolCalls = 5
	stdioQueue     = 100
)

// stdioNotifications is how many notifications wait for the writer (the
// size of mcp-go's stdio session queue); the server drops more.
const stdioNotifications = 100

// stdioConn is one stdio connection: the transport of a stdioSession.
type stdioConn struct {
	mcp  *mcpserver.MCPServer
	wire *stdioWire
	log  *slog.Logger
	sess *stdioSession

	calls chan toolCall // tools/call requests for the workers
	wg    sync.WaitGroup

	nextID    atomic.Int64
	pendingMu sync.Mutex
	pending   map[int64]chan rpcAnswer // the server's requests awaiting an answer
}

// toolCall is a tools/call request waiting for a worker.
type toolCall struct {
	id  json.RawMessage
	msg []byte
}

// rpcAnswer is the client's answer to a request of the server.
type rpcAnswer struct {
	result json.RawMessage
	err    *mcp.JSONRPCErrorDetails
}

// serveStdio serves wire until ctx ends or its input does.
func serveStdio(ctx context.Context, srv *mcpserver.MCPServer, wire *stdioWire, log *slog.Logger) error {
	c := &stdioConn{
		mcp: srv, wire: wire, log: log,
		calls:   make(chan toolCall, stdioQueue),
		pending: map[int64]chan rpcAnswer{},
	}
	c.sess = &stdioSession{conn: c, notifications: make(chan mcp.JSONRPCNotification, stdioNotifications)}
	if err := srv.RegisterSession(ctx, c.sess); err != nil {
		return fmt.Errorf("register session: %w", err)
	}
	defer srv.UnregisterSession(ctx, c.sess.SessionID())
	ctx = srv.WithContext(ctx, c.sess)
	// Requests are served on their own goroutines; ending the input ends
	// them too, so that none outlives the session.
	ctx, cancel := context.WithCancel(ctx)
	defer func() {
		cancel()
		c.wg.Wait()
	}()
	c.wg.Go(func() { c.writeNotifications(ctx) })
	for range stdioToolCalls {
		c.wg.Go(func() { c.work(ctx) })
	}
	// The reader owns no state of its own: when in cannot be closed, it
	// may stay blocked in a read after ctx ends (see ServeStdio), and
	// then drops what it reads.
	done := make(chan error, 1)
	go func() { done <- c.read(ctx) }()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// read dispatches the lines of the input until it ends.
func (c *stdioConn) read(ctx context.Context) error {
	for {
		line, err := c.wire.in.ReadBytes('\n')
		if err != nil {
			// A last line without its newline is not a message.
			if errors.Is(err, io.EOF) {
				return nil
			}
			return err
		}
		if ctx.Err() != nil {
			return nil
		}
		if msg := c.wire.admit(line); msg != nil {
			c.dispatch(ctx, msg)
		}
	}
}

// envelope is what routing a message reads of it.
type routing struct {
	ID     json.RawMessage `json:"id"`
	Method string          `json:"method"`
	Result json.RawMessage `json:"result"`
	Error  *struct {
		Code    int    `json:"code"`
		Message string `json:"message"`
		Data    any    `json:"data"`
	} `json:"error"`
}

// hasID reports whether the message carries an id (a request, or an
// answer), rather than being a notification.
func (r routing) hasID() bool { return len(r.ID) > 0 && string(r.ID) != "null" }

// dispatch routes one message.
func (c *stdioConn) dispatch(ctx context.Context, msg []byte) {
	var r routing
	if err := json.Unmarshal(msg, &r); err != nil {
		if !json.Valid(msg) {
			c.send(mcp.JSONRPCError{JSONRPC: mcp.JSONRPC_VERSION, ID: mcp.NewRequestId(nil),
				Error: mcp.NewJSONRPCErrorDetails(mcp.PARSE_ERROR, "Parse error", nil)})
			return
		}
		// JSON, but not a message: HandleMessage says what is wrong.
		c.handle(ctx, nil, msg)
		return
	}
	if r.Method == "" && r.hasID() && (r.Result != nil || r.Error != nil) && c.answer(r) {
		return
	}
	switch {
	case r.Method == string(mcp.MethodToolsCall):
		call := toolCall{id: r.ID, msg: msg}
		select {
		case c.calls <- call:
		default:
			// The queue is full: wait for room off the reading goroutine.
			c.wg.Go(func() {
				select {
				case c.calls <- call:
				case <-ctx.Done():
				}
			})
		}
	case r.hasID():
		// A handler that blocks, such as subscriptions/listen, must not
		// stall the reading.
		c.wg.Go(func() { c.handle(ctx, r.ID, msg) })
	default:
		// Notifications carry no answer and keep their order.
		c.handle(ctx, nil, msg)
	}
}

// work serves tools/call requests until ctx ends.
func (c *stdioConn) work(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case call := <-c.calls:
			c.handle(ctx, call.id, call.msg)
		}
	}
}

// answer hands the client's answer r to the request of the server
// waiting for it, and reports whether there was one.
func (c *stdioConn) answer(r routing) bool {
	id, err := strconv.ParseInt(strings.Trim(string(r.ID), `"`), 10, 64)
	if err != nil {
		return false
	}
	c.pendingMu.Lock()
	ch, ok := c.pending[id]
	delete(c.pending, id)
	c.pendingMu.Unlock()
	if !ok {
		return false
	}
	a := rpcAnswer{result: r.Result}
	if r.Error != nil {
		a.err = &mcp.JSONRPCErrorDetails{Code: r.Error.Code, Message: r.Error.Message, Data: r.Error.Data}
	}
	ch <- a // buffered, and only one answer is taken per id
	return true
}

// handle runs HandleMessage and writes its answer, if any. A panicking
// handler gives a request an internal error and a notification nothing.
func (c *stdioConn) handle(ctx context.Context, id json.RawMessage, msg []byte) {
	resp := func() (resp mcp.JSONRPCMessage) {
		defer func() {
			if p := recover(); p != nil {
				c.log.Error("panic recovered in a message handler", "panic", p)
				if len(id) > 0 && string(id) != "null" {
					var v any
					_ = json.Unmarshal(id, &v)
					resp = mcp.JSONRPCError{JSONRPC: mcp.JSONRPC_VERSION, ID: mcp.NewRequestId(v),
						Error: mcp.NewJSONRPCErrorDetails(mcp.INTERNAL_ERROR, fmt.Sprintf("internal panic: %v", p), nil)}
				}
			}
		}()
		return c.mcp.HandleMessage(ctx, msg)
	}()
	if resp != nil {
		c.send(resp)
	}
}

// send writes one message of the server.
func (c *stdioConn) send(msg mcp.JSONRPCMessage) {
	b, err := encodeMessage(make([]byte, 0, 512), msg)
	if err != nil {
		c.log.Warn("encode message", "err", err)
		return
	}
	if _, err := c.wire.writer().Write(append(b, '\n')); err != nil {
		c.log.Warn("write message", "err", err)
	}
}

// writeNotifications writes the session's notifications until ctx ends,
// those already queued in one write.
func (c *stdioConn) writeNotifications(ctx context.Context) {
	var buf []byte
	for {
		select {
		case <-ctx.Done():
			return
		case n := <-c.sess.notifications:
			buf = c.appendNotification(buf[:0], n)
		}
	more:
		for len(buf) < 64<<10 {
			select {
			case n := <-c.sess.notifications:
				buf = c.appendNotification(buf, n)
			default:
				break more
			}
		}
		if len(buf) > 0 {
			if err := c.wire.sendNotifications(buf); err != nil {
				c.log.Warn("write notification", "err", err)
			}
		}
	}
}

func (c *stdioConn) appendNotification(buf []byte, n mcp.JSONRPCNotification) []byte {
	if out, ok := appendURINotification(buf, n); ok {
		return append(out, '\n')
	}
	b, err := json.Marshal(n)
	if err != nil {
		c.log.Warn("encode notification", "err", err)
		return buf
	}
	return append(append(buf, b...), '\n')
}

// appendURINotification appends n as json.Marshal writes it when its
// only parameter is a uri, as in notifications/resources/updated; ok is
// false, and b unchanged, for any other.
func appendURINotification(b []byte, n mcp.JSONRPCNotification) (_ []byte, ok bool) {
	p := n.Params
	if p.Meta != nil || len(p.AdditionalFields) != 1 {
		return b, false
	}
	uri, ok := p.AdditionalFields["uri"].(string)
	if !ok {
		return b, false
	}
	b = append(b, `{"jsonrpc":`...)
	b = jsonenc.String(b, n.JSONRPC, true)
	b = append(b, `,"method":`...)
	b = jsonenc.String(b, n.Method, true)
	b = append(b, `,"params":{"uri":`...)
	b = jsonenc.String(b, uri, true)
	return append(b, `}}`...), true
}

// request sends a request of the server to the client and waits for its
// answer, or for ctx to end.
func (c *stdioConn) request(ctx context.Context, method mcp.MCPMethod, params any) (json.RawMessage, error) {
	id := c.nextID.Add(1)
	ch := make(chan rpcAnswer, 1)
	c.pendingMu.Lock()
	c.pending[id] = ch
	c.pendingMu.Unlock()
	defer func() {
		c.pendingMu.Lock()
		delete(c.pending, id)
		c.pendingMu.Unlock()
	}()
	req := struct {
		JSONRPC string `json:"jsonrpc"`
		ID      int64  `json:"id"`
		Method  string `json:"method"`
		Params  any    `json:"params,omitempty"`
	}{mcp.JSONRPC_VERSION, id, string(method), params}
	b, err := json.Marshal(req)
	if err != nil {
		return nil, fmt.Errorf("encode %s request: %w", method, err)
	}
	if err := c.wire.sendNotifications(append(b, '\n')); err != nil {
		return nil, fmt.Errorf("send %s request: %w", method, err)
	}
	select {
	case <-ctx.Done():
		return nil, ctx.Err()
	case a := <-ch:
		if a.err != nil {
			return nil, fmt.Errorf("%s request failed: %s", method, a.err.Message)
		}
		return a.result, nil
	}
}

// encodeMessage appends msg to b as json.Marshal writes it. A tool
// result, the most frequent answer, is written without reflection.
func encodeMessage(b []byte, msg mcp.JSONRPCMessage) ([]byte, error) {
	if r, ok := msg.(mcp.JSONRPCResponse); ok {
		if res, ok := r.Result.(*mcp.CallToolResult); ok {
			if out, ok := appendToolResponse(b, r.ID, res); ok {
				return out, nil
			}
		}
	}
	out, err := json.Marshal(msg)
	if err != nil {
		return nil, err
	}
	return append(b, out...), nil
}

// appendToolResponse appends the answer carrying res when it is a
// result as the tools give them (text, structured content given as
// JSON, no metadata); ok is false, and b unchanged, for any other.
func appendToolResponse(b []byte, id mcp.RequestId, res *mcp.CallToolResult) (_ []byte, ok bool) {
	if res.Meta != nil || res.ResultType != "" || len(res.InputRequests) > 0 || res.RequestState != "" ||
		len(res.RawStructuredContent) > 0 || len(res.Content) != 1 {
		return b, false
	}
	text, ok := res.Content[0].(mcp.TextContent)
	if !ok || text.Annotations != nil || text.Meta != nil {
		return b, false
	}
	var structured json.RawMessage
	switch sc := res.StructuredContent.(type) {
	case nil:
	case json.RawMessage:
		if sc == nil {
			return b, false // encoding/json writes null
		}
		structured = sc
	default:
		return b, false
	}
	idJSON, err := json.Marshal(id)
	if err != nil {
		return b, false
	}
	start := len(b)
	b = append(b, `{"jsonrpc":`...)
	b = jsonenc.String(b, mcp.JSONRPC_VERSION, true)
	b = append(b, `,"id":`...)
	b = append(b, idJSON...)
	b = append(b, `,"result":{"content":[{"type":`...)
	b = jsonenc.String(b, text.Type, true)
	b = append(b, `,"text":`...)
	b = jsonenc.String(b, text.Text, true)
	b = append(b, `}]`...)
	// The members in the order of their names, as CallToolResult's
	// MarshalJSON writes them (from a map).
	if res.IsError {
		b = append(b, `,"isError":true`...)
	}
	if structured != nil {
		b = append(b, `,"structuredContent":`...)
		var compact bytes.Buffer
		if json.Compact(&compact, structured) != nil {
			return b[:start], false
		}
		buf := bytes.NewBuffer(b)
		json.HTMLEscape(buf, compact.Bytes())
		b = buf.Bytes()
	}
	return append(b, `}}`...), true
}

// stdioSession is the client of a stdio connection as mcp-go sees it:
// the same interfaces as mcp-go's own stdio session.
type stdioSession struct {
	conn          *stdioConn
	notifications chan mcp.JSONRPCNotification
	initialized   atomic.Bool
	logLevel      atomic.Value // mcp.LoggingLevel
	clientInfo    atomic.Value // mcp.Implementation
	clientCaps    atomic.Value // mcp.ClientCapabilities
	protocol      atomic.Value // string
}

var (
	_ mcpserver.ClientSession          = (*stdioSession)(nil)
	_ mcpserver.SessionWithLogging     = (*stdioSession)(nil)
	_ mcpserver.SessionWithClientInfo  = (*stdioSession)(nil)
	_ mcpserver.SessionWithSampling    = (*stdioSession)(nil)
	_ mcpserver.SessionWithElicitation = (*stdioSession)(nil)
	_ mcpserver.SessionWithRoots       = (*stdioSession)(nil)
)

// SessionID is "stdio", as mcp-go names its stdio session.
func (s *stdioSession) SessionID() string { return "stdio" }

// NotificationChannel is where the server queues notifications.
func (s *stdioSession) NotificationChannel() chan<- mcp.JSONRPCNotification {
	return s.notifications
}

// Initialize marks the session initialized, logging errors only.
func (s *stdioSession) Initialize() {
	s.logLevel.Store(mcp.LoggingLevelError)
	s.initialized.Store(true)
}

// Initialized reports whether Initialize was called.
func (s *stdioSession) Initialized() bool { return s.initialized.Load() }

// SetLogLevel sets the lowest level of log notifications.
func (s *stdioSession) SetLogLevel(level mcp.LoggingLevel) { s.logLevel.Store(level) }

// GetLogLevel returns the lowest level of log notifications.
func (s *stdioSession) GetLogLevel() mcp.LoggingLevel {
	if l, ok := s.logLevel.Load().(mcp.LoggingLevel); ok {
		return l
	}
	return mcp.LoggingLevelError
}

// GetClientInfo returns what the client said of itself.
func (s *stdioSession) GetClientInfo() mcp.Implementation {
	v, _ := s.clientInfo.Load().(mcp.Implementation)
	return v
}

// SetClientInfo records what the client said of itself.
func (s *stdioSession) SetClientInfo(v mcp.Implementation) { s.clientInfo.Store(v) }

// GetClientCapabilities returns the client's capabilities.
func (s *stdioSession) GetClientCapabilities() mcp.ClientCapabilities {
	v, _ := s.clientCaps.Load().(mcp.ClientCapabilities)
	return v
}

// SetClientCapabilities records the client's capabilities.
func (s *stdioSession) SetClientCapabilities(v mcp.ClientCapabilities) { s.clientCaps.Store(v) }

// ProtocolVersion returns the protocol version in effect, "" before one is.
func (s *stdioSession) ProtocolVersion() string {
	v, _ := s.protocol.Load().(string)
	return v
}

// SetProtocolVersion records the protocol version in effect.
func (s *stdioSession) SetProtocolVersion(v string) { s.protocol.Store(v) }

// RequestSampling asks the client to sample a message.
func (s *stdioSession) RequestSampling(ctx context.Context, req mcp.CreateMessageRequest) (*mcp.CreateMessageResult, error) {
	raw, err := s.conn.request(ctx, mcp.MethodSamplingCreateMessage, req.CreateMessageParams)
	if err != nil {
		return nil, err
	}
	var res mcp.CreateMessageResult
	if err := json.Unmarshal(raw, &res); err != nil {
		return nil, fmt.Errorf("failed to unmarshal sampling response: %w", err)
	}
	content, err := mcp.ParseSamplingContent(res.Content)
	if err != nil {
		return nil, fmt.Errorf("failed to parse sampling response content: %w", err)
	}
	res.Content = content
	return &res, nil
}

// RequestElicitation asks the client to ask its user.
func (s *stdioSession) RequestElicitation(ctx context.Context, req mcp.ElicitationRequest) (*mcp.ElicitationResult, error) {
	raw, err := s.conn.request(ctx, mcp.MethodElicitationCreate, req.Params)
	if err != nil {
		return nil, err
	}
	var res mcp.ElicitationResult
	if err := json.Unmarshal(raw, &res); err != nil {
		return nil, fmt.Errorf("failed to unmarshal elicitation response: %w", err)
	}
	return &res, nil
}

// ListRoots asks the client for its roots.
func (s *stdioSession) ListRoots(ctx context.Context, _ mcp.ListRootsRequest) (*mcp.ListRootsResult, error) {
	raw, err := s.conn.request(ctx, mcp.MethodListRoots, nil)
	if err != nil {
		return nil, err
	}
	var res mcp.ListRootsResult
	if err := json.Unmarshal(raw, &res); err != nil {
		return nil, fmt.Errorf("failed to unmarshal list roots response: %w", err)
	}
	return &res, nil
}
