package server_test

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mark3labs/mcp-go/mcp"

	"github.com/filecast/filecast/events"
	"github.com/filecast/filecast/events/eventstest"
	"github.com/filecast/filecast/events/hub/hubtest"
	"github.com/filecast/filecast/server"
	"github.com/filecast/filecast/tools"
)

// postRPC posts one JSON-RPC message to the HTTP endpoint, with the
// session's id when there is one, and returns the status and the first
// JSON-RPC message of the answer (from JSON or an event stream).
func postRPC(t *testing.T, url, session string, body []byte, header ...string) (int, map[string]any) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	if session != "" {
		req.Header.Set("Mcp-Session-Id", session)
		req.Header.Set("Mcp-Protocol-Version", "2025-06-18")
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	if len(b) == 0 {
		return res.StatusCode, nil
	}
	if strings.HasPrefix(res.Header.Get("Content-Type"), "text/event-stream") {
		for line := range strings.SplitSeq(string(b), "\n") {
			if data, ok := strings.CutPrefix(line, "data: "); ok {
				var m map[string]any
				if json.Unmarshal([]byte(data), &m) == nil && m["id"] != nil {
					return res.StatusCode, m
				}
			}
		}
		t.Fatalf("no answer in the stream: %s", b)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("answer %d %q: %v", res.StatusCode, b, err)
	}
	if s := res.Header.Get("Mcp-Session-Id"); s != "" {
		m["_session"] = s
	}
	return res.StatusCode, m
}

func rpcError(m map[string]any) (int, string) {
	e, _ := m["error"].(map[string]any)
	code, _ := e["code"].(float64)
	msg, _ := e["message"].(string)
	return int(code), msg
}

// legacySession initializes a 2025-06-18 session over HTTP.
func legacySession(t *testing.T, url string) string {
	t.Helper()
	_, m := postRPC(t, url, "", []byte(`{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"raw","version":"1"}}}`))
	id, _ := m["_session"].(string)
	if id == "" {
		t.Fatalf("initialize: no session id: %v", m)
	}
	postRPC(t, url, id, []byte(`{"jsonrpc":"2.0","method":"notifications/initialized"}`))
	return id
}

// TestWire_InvalidUTF8OverHTTP: a body that is not valid UTF-8 is answered
// 400 with a parse error naming the problem and the request's id, and the
// tool never runs: no file named with U+FFFD appears.
func TestWire_InvalidUTF8OverHTTP(t *testing.T) {
	st := hubtest.Start(t, hubtest.Options{})
	srv := serve(t, st.Hub, server.Options{})
	ts := httptest.NewServer(srv.HTTPHandler())
	t.Cleanup(ts.Close)
	url := ts.URL + "/mcp"
	sess := legacySession(t, url)
	for _, body := range []string{
		"{\"jsonrpc\":\"2.0\",\"id\":7,\"method\":\"tools/call\",\"params\":{\"name\":\"write_file\",\"arguments\":{\"path\":\"\xff.txt\",\"content\":\"x\"}}}",
		`{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"write_file","arguments":{"path":"\udfff.txt","content":"x"}}}`,
		`{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"write_file","arguments":{"path":"\ud800\u0041.txt","content":"x"}}}`,
	} {
		status, m := postRPC(t, url, sess, []byte(body))
		code, msg := rpcError(m)
		if status != http.StatusBadRequest || code != mcp.PARSE_ERROR || m["id"] != float64(7) || !strings.Contains(msg, "not valid UTF-8") {
			t.Errorf("%q: %d %v", body, status, m)
		}
	}
	entries, err := os.ReadDir(st.Dirs["docs"])
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		t.Errorf("a file was written: %q", e.Name())
	}
	// A valid surrogate pair is a character like any other.
	status, m := postRPC(t, url, sess, []byte(`{"jsonrpc":"2.0","id":8,"method":"tools/call","params":{"name":"write_file","arguments":{"path":"\ud83d\ude00.txt","content":"x"}}}`))
	if r, _ := m["result"].(map[string]any); status != http.StatusOK || r["isError"] == true {
		t.Errorf("an emoji path: %d %v", status, m)
	}
	if _, err := os.Stat(filepath.Join(st.Dirs["docs"], "😀.txt")); err != nil {
		t.Error(err)
	}
}

// TestWire_ResourceReadCodes: over stdio and HTTP, resources/read of a
// missing file answers -32002 (-32602 under 2026-07-28), an invalid URI or
// a path outside -32602, and a file over the limit -32602 with the limit
// in the message; none is an internal error.
func TestWire_ResourceReadCodes(t *testing.T) {
	st := hubtest.Start(t, hubtest.Options{})
	must(t, os.WriteFile(st.Path("docs", "big.bin"), make([]byte, events.MaxReadSize+1), 0o644))
	must(t, os.Symlink("/etc", st.Path("docs", "out")))
	srv := serve(t, st.Hub, server.Options{})
	ts := httptest.NewServer(srv.HTTPHandler())
	t.Cleanup(ts.Close)
	url := ts.URL + "/mcp"
	sess := legacySession(t, url)
	raw := openRaw(t, srv)
	raw.request("initialize", json.RawMessage(`{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"raw","version":"1"}}`))

	cases := []struct {
		uri  string
		code int
		msg  string
	}{
		{"filecast://docs/missing.md", -32002, "resource not found"},
		{"filecast://docs/../x", -32602, "invalid resource URI"},
		{"filecast://nope/a.md", -32602, "unknown workspace"},
		{"filecast://docs/out/hostname", -32602, "outside the workspace"},
		{"filecast://docs/big.bin", -32602, "16 MiB"},
	}
	for _, tc := range cases {
		params := `{"uri":"` + tc.uri + `"}`
		var stdio map[string]any
		if err := json.Unmarshal(raw.request("resources/read", json.RawMessage(params)), &stdio); err != nil {
			t.Fatal(err)
		}
		_, http := postRPC(t, url, sess, []byte(`{"jsonrpc":"2.0","id":3,"method":"resources/read","params":`+params+`}`))
		for via, m := range map[string]map[string]any{"stdio": stdio, "http": http} {
			if code, msg := rpcError(m); code != tc.code || !strings.Contains(msg, tc.msg) {
				t.Errorf("%s %s: %d %q, want %d and %q", via, tc.uri, code, msg, tc.code, tc.msg)
			}
		}
	}
	// Under 2026-07-28 a missing resource is invalid params.
	_, m := postRPC(t, url, "", []byte(`{"jsonrpc":"2.0","id":4,"method":"resources/read","params":{"uri":"filecast://docs/missing.md",`+
		`"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{},"io.modelcontextprotocol/clientInfo":{"name":"m","version":"1"}}}}`), "Mcp-Protocol-Version", "2026-07-28", "Mcp-Method", "resources/read", "Mcp-Name", "filecast://docs/missing.md")
	if code, msg := rpcError(m); code != mcp.INVALID_PARAMS || !strings.Contains(msg, "resource not found") {
		t.Errorf("2026-07-28: %d %q (%v)", code, msg, m)
	}
}

// TestWire_NoUntaggedListChangedUnder2026 checks that a session of
// protocol 2026-07-28 over stdio gets notifications/resources/list_changed
// only on a subscriptions/listen stream that asked for it.
func TestWire_NoUntaggedListChangedUnder2026(t *testing.T) {
	for _, modern := range []bool{true, false} {
		t.Run(map[bool]string{true: "2026-07-28", false: "2025-06-18"}[modern], func(t *testing.T) {
			h := start(t, server.Options{}, "docs")
			c, n := h.stdioClient(t, clientOpts{modern: modern})
			listChanges(t, c, nil) // the session is up
			h.src.Append("docs", events.FileCreated, "a.md")
			marker := h.src.Append("docs", events.FileCreated, "b.md")
			eventstest.Eventually(t, "routing", func() bool { return h.srv.Heads().For("docs") == marker.Seq })
			if !modern {
				eventstest.Eventually(t, "list_changed of a legacy session", func() bool {
					return n.count(mcp.MethodNotificationResourcesListChanged) > 0
				})
				return
			}
			// Routing decides synchronously what to notify: nothing was
			// queued for this session.
			if st := h.srv.Stats(); st.Notified != 0 || st.Coalesced != 0 || st.Dropped != 0 {
				t.Errorf("notifications for a 2026-07-28 session without a listen stream: %+v", st)
			}
		})
	}
}

// TestServer_WriteFileNeverEmptiesByMistake: write_file without content,
// or with content null, is refused and the file keeps its 900 bytes.
func TestServer_WriteFileNeverEmptiesByMistake(t *testing.T) {
	st := hubtest.Start(t, hubtest.Options{})
	h := &harness{srv: serve(t, st.Hub, server.Options{})}
	c, _ := h.stdioClient(t, clientOpts{})
	content := strings.Repeat("x", 900)
	decode[tools.WriteFileResult](t, call(t, c, "write_file", map[string]any{"path": "keep.txt", "content": content}))
	for _, args := range []map[string]any{
		{"path": "keep.txt"},
		{"path": "keep.txt", "content": nil},
		{"path": "keep.txt", "content": 0},
	} {
		res := call(t, c, "write_file", args)
		if !res.IsError || !strings.Contains(text(res), "content") {
			t.Errorf("write_file %v: %s, want a tool error about content", args, text(res))
		}
	}
	got, err := os.ReadFile(st.Path("docs", "keep.txt"))
	if err != nil || string(got) != content {
		t.Errorf("keep.txt now has %d bytes (%v), want 900", len(got), err)
	}
	// An empty file is written when asked for explicitly.
	decode[tools.WriteFileResult](t, call(t, c, "write_file", map[string]any{"path": "empty.txt", "content": ""}))
	if fi, err := os.Stat(st.Path("docs", "empty.txt")); err != nil || fi.Size() != 0 {
		t.Errorf("empty.txt: %v %v", fi, err)
	}
}
