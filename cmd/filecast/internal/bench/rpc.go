package bench

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/sourcegraph/conc"
)

// protocolVersion is the MCP revision the benchmark speaks: the one with
// resources/subscribe.
const protocolVersion = "2025-11-25"

// errClosed reports a call on a client whose connection has ended.
var errClosed = errors.New("bench: MCP connection closed")

// rpcClient is a minimal MCP client: JSON-RPC over a stdio child's
// stdin/stdout (one JSON message a line) or over streamable HTTP. Each
// message is timestamped the moment it has been read, before it is
// decoded, so the client's own decoding is not billed to the server.
// Notifications go to onNote, called on the goroutine that read them (so
// onNote must be quick and safe for concurrent use). Calls are safe for
// concurrent use; close ends the client's goroutines.
type rpcClient struct {
	onNote func(method string, params json.RawMessage, at time.Time)

	// stdio
	w   io.Writer
	wmu sync.Mutex

	// streamable HTTP
	url     string
	hc      *http.Client
	session string // Mcp-Session-Id, set by the answer to initialize

	mu      sync.Mutex
	next    int64
	pending map[int64]chan reply
	err     error // set when the connection has ended

	cancel context.CancelFunc
	wg     conc.WaitGroup
}

type reply struct {
	result json.RawMessage
	err    error
	at     time.Time
}

type rpcError struct {
	Code    int    `json:"code"`
	Message string `json:"message"`
}

func (e *rpcError) Error() string { return fmt.Sprintf("JSON-RPC error %d: %s", e.Code, e.Message) }

type envelope struct {
	ID     json.RawMessage `json:"id"`
	Method string          `json:"method"`
	Params json.RawMessage `json:"params"`
	Result json.RawMessage `json:"result"`
	Error  *rpcError       `json:"error"`
}

// newStdioClient speaks to the stdio server of p.
// startStdioMCP spawns "filecast mcp" with args, speaking MCP over its
// stdin and stdout; stop ends the process and the client.
func startStdioMCP(bin string, args []string, stderr io.Writer, onNote func(string, json.RawMessage, time.Time)) (p *proc, c *rpcClient, stop func(), err error) {
	p, err = spawn("filecast mcp", bin, args, true, stderr)
	if err != nil {
		return nil, nil, nil, err
	}
	c = newStdioClient(p, onNote)
	return p, c, func() { p.stop(); c.close() }, nil
}

func newStdioClient(p *proc, onNote func(string, json.RawMessage, time.Time)) *rpcClient {
	c := &rpcClient{onNote: onNote, w: p.stdin, pending: map[int64]chan reply{}, cancel: func() {}}
	c.wg.Go(func() { c.fail(c.readLines(p.stdout)) })
	return c
}

// newHTTPClient speaks to the streamable HTTP endpoint url (…/mcp).
func newHTTPClient(url string, hc *http.Client, onNote func(string, json.RawMessage, time.Time)) *rpcClient {
	return &rpcClient{onNote: onNote, url: url, hc: hc, pending: map[int64]chan reply{}, cancel: func() {}}
}

// close ends the client: an HTTP session is deleted and its stream
// closed; a stdio client's reader ends when the process's stdout closes
// (the proc's stop), so close must come after it.
func (c *rpcClient) close() {
	if c.url != "" && c.session != "" {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		req, err := http.NewRequestWithContext(ctx, http.MethodDelete, c.url, nil)
		if err == nil {
			req.Header.Set("Mcp-Session-Id", c.session)
			if res, err := c.hc.Do(req); err == nil {
				_, _ = io.Copy(io.Discard, res.Body)
				res.Body.Close()
			}
		}
		cancel()
	}
	c.cancel()
	c.wg.Wait()
	c.fail(errClosed)
}

func (c *rpcClient) fail(err error) {
	if err == nil || errors.Is(err, io.EOF) {
		err = errClosed
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.err == nil {
		c.err = err
	}
	for id, ch := range c.pending {
		ch <- reply{err: err}
		delete(c.pending, id)
	}
}

func (c *rpcClient) readLines(r io.Reader) error {
	br := bufio.NewReaderSize(r, 1<<16)
	for {
		line, err := br.ReadBytes('\n')
		at := time.Now()
		if len(bytes.TrimSpace(line)) > 0 {
			c.dispatch(line, at)
		}
		if err != nil {
			return err
		}
	}
}

// dispatch routes one message read at at.
func (c *rpcClient) dispatch(msg []byte, at time.Time) {
	var e envelope
	if err := json.Unmarshal(msg, &e); err != nil {
		return
	}
	switch {
	case e.Method != "" && len(e.ID) == 0:
		if c.onNote != nil {
			c.onNote(e.Method, e.Params, at)
		}
	case e.Method != "":
		// A request from the server: answer pings, refuse the rest.
		var ans any = map[string]any{"jsonrpc": "2.0", "id": e.ID, "result": map[string]any{}}
		if e.Method != "ping" {
			ans = map[string]any{"jsonrpc": "2.0", "id": e.ID, "error": rpcError{Code: -32601, Message: "not supported by the benchmark client"}}
		}
		b, _ := json.Marshal(ans)
		c.wg.Go(func() { _ = c.send(context.Background(), b) })
	default:
		id, err := strconv.ParseInt(string(e.ID), 10, 64)
		if err != nil {
			return
		}
		c.mu.Lock()
		ch, ok := c.pending[id]
		delete(c.pending, id)
		c.mu.Unlock()
		if !ok {
			return
		}
		r := reply{result: e.Result, at: at}
		if e.Error != nil {
			r.err = e.Error
		}
		ch <- r
	}
}

func (c *rpcClient) send(ctx context.Context, body []byte) error {
	if c.url != "" {
		return c.post(ctx, body)
	}
	c.wmu.Lock()
	defer c.wmu.Unlock()
	_, err := c.w.Write(append(body, '\n'))
	return err
}

// call sends a request and waits for its answer; it returns when the
// answer was read.
func (c *rpcClient) call(ctx context.Context, method string, params, out any) (time.Time, error) {
	ch := make(chan reply, 1)
	c.mu.Lock()
	if c.err != nil {
		c.mu.Unlock()
		return time.Time{}, c.err
	}
	c.next++
	id := c.next
	c.pending[id] = ch
	c.mu.Unlock()
	body, err := json.Marshal(map[string]any{"jsonrpc": "2.0", "id": id, "method": method, "params": params})
	if err != nil {
		return time.Time{}, err
	}
	forget := func() {
		c.mu.Lock()
		delete(c.pending, id)
		c.mu.Unlock()
	}
	if err := c.send(ctx, body); err != nil {
		forget()
		return time.Time{}, fmt.Errorf("%s: %w", method, err)
	}
	var r reply
	select {
	case r = <-ch:
	case <-ctx.Done():
		forget()
		return time.Time{}, ctx.Err()
	}
	if r.err != nil {
		return r.at, fmt.Errorf("%s: %w", method, r.err)
	}
	if out != nil {
		if err := json.Unmarshal(r.result, out); err != nil {
			return r.at, fmt.Errorf("decode %s answer: %w", method, err)
		}
	}
	return r.at, nil
}

// notify sends a notification.
func (c *rpcClient) notify(ctx context.Context, method string) error {
	b, _ := json.Marshal(map[string]any{"jsonrpc": "2.0", "method": method})
	return c.send(ctx, b)
}

// initialize performs the MCP handshake; it returns when the answer to
// initialize was read. An HTTP client then listens on the session's
// stream for notifications sent outside requests.
func (c *rpcClient) initialize(ctx context.Context) (time.Time, error) {
	at, err := c.call(ctx, "initialize", map[string]any{
		"protocolVersion": protocolVersion,
		"capabilities":    map[string]any{},
		"clientInfo":      map[string]any{"name": "filecast-bench", "version": "1"},
	}, nil)
	if err != nil {
		return at, err
	}
	if err := c.notify(ctx, "notifications/initialized"); err != nil {
		return at, fmt.Errorf("notifications/initialized: %w", err)
	}
	if c.url != "" {
		lctx, cancel := context.WithCancel(context.Background())
		c.cancel = cancel
		c.wg.Go(func() { c.listen(lctx) })
	}
	return at, nil
}

// callTool calls a tool and decodes its structured result into out.
func (c *rpcClient) callTool(ctx context.Context, name string, args map[string]any, out any) (time.Time, error) {
	var res struct {
		IsError           bool            `json:"isError"`
		StructuredContent json.RawMessage `json:"structuredContent"`
		Content           []struct {
			Text string `json:"text"`
		} `json:"content"`
	}
	at, err := c.call(ctx, "tools/call", map[string]any{"name": name, "arguments": args}, &res)
	if err != nil {
		return at, err
	}
	if res.IsError {
		var msg []string
		for _, t := range res.Content {
			msg = append(msg, t.Text)
		}
		return at, fmt.Errorf("%s: tool error: %s", name, strings.Join(msg, " "))
	}
	if out != nil {
		if err := json.Unmarshal(res.StructuredContent, out); err != nil {
			return at, fmt.Errorf("decode %s result: %w", name, err)
		}
	}
	return at, nil
}

// post sends one message over streamable HTTP and reads the whole answer:
// one JSON message, or an SSE stream of notifications ending with it.
func (c *rpcClient) post(ctx context.Context, body []byte) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.url, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	if c.session != "" {
		req.Header.Set("Mcp-Session-Id", c.session)
		req.Header.Set("MCP-Protocol-Version", protocolVersion)
	}
	res, err := c.hc.Do(req)
	if err != nil {
		return err
	}
	defer res.Body.Close()
	if sid := res.Header.Get("Mcp-Session-Id"); sid != "" && c.session == "" {
		c.session = sid // only initialize answers with it, before any other call
	}
	switch {
	case res.StatusCode == http.StatusAccepted:
		return nil
	case res.StatusCode != http.StatusOK:
		b, _ := io.ReadAll(io.LimitReader(res.Body, 512))
		return fmt.Errorf("POST %s: %s: %s", c.url, res.Status, bytes.TrimSpace(b))
	case strings.HasPrefix(res.Header.Get("Content-Type"), "text/event-stream"):
		return c.readSSE(res.Body)
	}
	b, err := io.ReadAll(res.Body)
	at := time.Now()
	if err != nil {
		return err
	}
	c.dispatch(b, at)
	return nil
}

// listen reads the session's GET stream until ctx is done.
func (c *rpcClient) listen(ctx context.Context) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.url, nil)
	if err != nil {
		return
	}
	req.Header.Set("Accept", "text/event-stream")
	req.Header.Set("Mcp-Session-Id", c.session)
	req.Header.Set("MCP-Protocol-Version", protocolVersion)
	res, err := c.hc.Do(req)
	if err != nil {
		return
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		return
	}
	_ = c.readSSE(res.Body)
}

// readSSE dispatches the data of each event of an SSE stream, timestamped
// when the blank line that ends the event was read.
func (c *rpcClient) readSSE(r io.Reader) error {
	br := bufio.NewReaderSize(r, 1<<16)
	var data []byte
	for {
		line, err := br.ReadBytes('\n')
		at := time.Now()
		line = bytes.TrimRight(line, "\r\n")
		switch {
		case len(line) == 0 && err == nil:
			if len(data) > 0 {
				c.dispatch(data, at)
				data = data[:0]
			}
		case bytes.HasPrefix(line, []byte("data:")):
			v := bytes.TrimPrefix(line[5:], []byte(" "))
			if len(data) > 0 {
				data = append(data, '\n')
			}
			data = append(data, v...)
		}
		if err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return err
		}
	}
}
