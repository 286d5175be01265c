package server_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/filecast/filecast/events"
	store "github.com/filecast/filecast/events/content"
	"github.com/filecast/filecast/events/eventstest"
	"github.com/filecast/filecast/events/hub/hubtest"
	"github.com/filecast/filecast/server"
)

var update = flag.Bool("update", false, "rewrite the golden MCP transcripts in testdata/mcp")

// goldenDir holds the transcripts, at the module root.
var goldenDir = filepath.Join("..", "testdata", "mcp")

// TestGolden_Transcripts replays the MCP transcripts in testdata/mcp, one
// fresh hub (with a content store of files up to 64 bytes, for diffs) and
// stdio session each, and compares every answer with the
// one recorded: a change of wording or shape is a visible diff. Run with
// -update to record the answers again.
//
// A transcript is a txtar archive. Its comment says what it shows; its
// files are, in order:
//
//	-- > TOOL --          the arguments (JSON) of a tools/call of TOOL
//	-- > rpc METHOD --    the params (JSON) of a request, e.g. resources/read
//	-- > raw --           a whole message as a Go string literal, sent as is
//	-- < … --             the answer recorded for the request before it
//	-- ! disk PATH --     write the body to PATH in the workspace, on disk
//	-- ! symlink PATH --  make PATH a symbolic link to the body (one line)
//	-- ! lock PATH HOLDER [shared]   another holder locks PATH for 60 s
//
// The session initializes with protocol 2025-06-18 as client "golden"
// before the first request (unless that request is an initialize), and
// each request waits until the session's buffer has been offered
// everything in the log. Answers are normalised so that they do not
// change from run to run: event IDs become <ulid>, timestamps <time>, and
// lock tokens, subscription IDs and the random suffix of session names
// become <lock_token:N>, <sub:N> and #<session:N>, numbered by first
// appearance; a request may use those placeholders to refer to a value an
// earlier answer gave. The answer shown is the JSON-RPC result or error,
// indented; a tool result's text content that is its structured content
// as JSON is shown as "(structuredContent as JSON text)".
func TestGolden_Transcripts(t *testing.T) {
	files, err := filepath.Glob(filepath.Join(goldenDir, "*.txtar"))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Fatal("no transcripts in testdata/mcp")
	}
	for _, file := range files {
		t.Run(strings.TrimSuffix(filepath.Base(file), ".txtar"), func(t *testing.T) { replay(t, file) })
	}
}

// txtar is a parsed archive.
type txtar struct {
	comment []byte
	files   []txtarFile
}

type txtarFile struct {
	name string
	data []byte
}

var txtarMarker = regexp.MustCompile(`(?m)^-- (.+) --$`)

func parseTxtar(data []byte) txtar {
	var a txtar
	locs := txtarMarker.FindAllSubmatchIndex(data, -1)
	if len(locs) == 0 {
		a.comment = data
		return a
	}
	a.comment = data[:locs[0][0]]
	for i, l := range locs {
		end := len(data)
		if i+1 < len(locs) {
			end = locs[i+1][0]
		}
		body := data[l[1]:end]
		body = bytes.TrimPrefix(body, []byte("\n"))
		a.files = append(a.files, txtarFile{name: string(data[l[2]:l[3]]), data: body})
	}
	return a
}

func (a txtar) format() []byte {
	var b bytes.Buffer
	b.Write(a.comment)
	for _, f := range a.files {
		fmt.Fprintf(&b, "-- %s --\n", f.name)
		b.Write(f.data)
		if len(f.data) > 0 && !bytes.HasSuffix(f.data, []byte("\n")) {
			b.WriteByte('\n')
		}
	}
	return b.Bytes()
}

// rawSession is a JSON-RPC client over a stdio session's pipes.
type rawSession struct {
	t      *testing.T
	w      io.Writer
	mu     sync.Mutex
	waits  map[string]chan []byte
	nextID int
}

func openRaw(t *testing.T, srv *server.Server) *rawSession {
	inR, inW := io.Pipe()
	outR, outW := io.Pipe()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.ServeStdio(ctx, inR, outW) }()
	s := &rawSession{t: t, w: inW, waits: map[string]chan []byte{}}
	read := make(chan struct{})
	go func() {
		defer close(read)
		sc := bufio.NewScanner(outR)
		sc.Buffer(make([]byte, 1<<20), 64<<20)
		for sc.Scan() {
			var m struct {
				ID json.RawMessage `json:"id"`
			}
			line := append([]byte(nil), sc.Bytes()...)
			if json.Unmarshal(line, &m) != nil || len(m.ID) == 0 {
				continue // a notification
			}
			s.mu.Lock()
			ch := s.waits[string(m.ID)]
			delete(s.waits, string(m.ID))
			s.mu.Unlock()
			if ch != nil {
				ch <- line
			}
		}
	}()
	t.Cleanup(func() {
		cancel()
		_ = inR.Close()
		_ = outW.Close()
		<-read
		if err := <-done; err != nil {
			t.Errorf("ServeStdio: %v", err)
		}
	})
	return s
}

// send writes one message and returns the answer with id; id null, or a
// message that is not valid JSON, gets the answer with id null.
func (s *rawSession) send(msg []byte, id string) []byte {
	ch := make(chan []byte, 1)
	s.mu.Lock()
	s.waits[id] = ch
	s.mu.Unlock()
	if _, err := s.w.Write(append(msg, '\n')); err != nil {
		s.t.Fatal(err)
	}
	select {
	case ans := <-ch:
		return ans
	case <-time.After(10 * time.Second):
		s.t.Fatalf("no answer to %s", msg)
		return nil
	}
}

func (s *rawSession) request(method string, params json.RawMessage) []byte {
	s.nextID++
	id := strconv.Itoa(s.nextID)
	msg, err := json.Marshal(map[string]any{"jsonrpc": "2.0", "id": s.nextID, "method": method, "params": params})
	if err != nil {
		s.t.Fatal(err)
	}
	return s.send(msg, id)
}

func (s *rawSession) notify(method string) {
	if _, err := s.w.Write([]byte(`{"jsonrpc":"2.0","method":"` + method + `"}` + "\n")); err != nil {
		s.t.Fatal(err)
	}
}

// normaliser replaces what changes from run to run.
type normaliser struct {
	seen map[string]string // actual → placeholder
	back map[string]string // placeholder → actual
	n    map[string]int
}

var (
	ulidRE    = regexp.MustCompile(`\b[0-9A-HJKMNP-TV-Z]{26}\b`)
	timeRE    = regexp.MustCompile(`\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z`)
	tokenRE   = regexp.MustCompile(`\blk_[A-Za-z0-9_-]+`)
	subRE     = regexp.MustCompile(`\bsub_[a-z0-9]{12}\b`)
	sessionRE = regexp.MustCompile(`#[0-9a-f]{4}\b`)
	placeRE   = regexp.MustCompile(`<(lock_token|sub):\d+>|#<session:\d+>`)
)

func newNormaliser() *normaliser {
	return &normaliser{seen: map[string]string{}, back: map[string]string{}, n: map[string]int{}}
}

func (n *normaliser) number(kind, v, format string) string {
	if p, ok := n.seen[v]; ok {
		return p
	}
	n.n[kind]++
	p := fmt.Sprintf(format, n.n[kind])
	n.seen[v], n.back[p] = p, v
	return p
}

func (n *normaliser) apply(s string) string {
	s = tokenRE.ReplaceAllStringFunc(s, func(v string) string { return n.number("lock_token", v, "<lock_token:%d>") })
	s = subRE.ReplaceAllStringFunc(s, func(v string) string { return n.number("sub", v, "<sub:%d>") })
	s = sessionRE.ReplaceAllStringFunc(s, func(v string) string { return n.number("session", v, "#<session:%d>") })
	s = ulidRE.ReplaceAllString(s, "<ulid>")
	return timeRE.ReplaceAllString(s, "<time>")
}

// fill puts the actual values back into a request.
func (n *normaliser) fill(s string) string {
	return placeRE.ReplaceAllStringFunc(s, func(p string) string {
		if v, ok := n.back[p]; ok {
			return v
		}
		return p
	})
}

// answer is what a transcript shows of an answer: its result or error.
func (n *normaliser) answer(t *testing.T, line []byte) []byte {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(line, &m); err != nil {
		t.Fatalf("answer %s: %v", line, err)
	}
	delete(m, "jsonrpc")
	delete(m, "id")
	if r, ok := m["result"]; ok {
		m["result"] = sameAsText(r)
	}
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if err := json.Indent(&out, []byte(n.apply(string(b))), "", "  "); err != nil {
		t.Fatal(err)
	}
	out.WriteByte('\n')
	return out.Bytes()
}

// sameAsText replaces, in a tool result, a text content that is the
// structured content as JSON by a note saying so.
func sameAsText(raw json.RawMessage) json.RawMessage {
	var r map[string]json.RawMessage
	if len(raw) == 0 || json.Unmarshal(raw, &r) != nil || r["structuredContent"] == nil {
		return raw
	}
	var content []map[string]any
	if json.Unmarshal(r["content"], &content) != nil || len(content) != 1 {
		return raw
	}
	text, _ := content[0]["text"].(string)
	var a, b any
	if json.Unmarshal([]byte(text), &a) != nil || json.Unmarshal(r["structuredContent"], &b) != nil || !cmp.Equal(a, b) {
		return raw
	}
	content[0]["text"] = "(structuredContent as JSON text)"
	r["content"], _ = json.Marshal(content)
	out, _ := json.Marshal(r)
	return out
}

func replay(t *testing.T, file string) {
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	a := parseTxtar(data)
	st := hubtest.Start(t, hubtest.Options{Contents: &store.Options{MaxFileSize: 64}})
	srv := serve(t, st.Hub, server.Options{})
	s := openRaw(t, srv)
	norm := newNormaliser()
	settle := func() {
		head := st.Head(t, "docs")
		eventstest.Eventually(t, "routing", func() bool { return srv.Heads().For("docs") >= head })
	}
	initialized := false
	initialize := func() {
		if !initialized {
			s.request("initialize", json.RawMessage(`{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"golden","version":"1"}}`))
			s.notify("notifications/initialized")
			initialized = true
		}
	}

	out := txtar{comment: a.comment}
	var answered []byte // the answer of the last request, to record
	flush := func() {
		if answered != nil {
			out.files = append(out.files, txtarFile{name: "<", data: answered})
			answered = nil
		}
	}
	for _, f := range a.files {
		verb, arg, _ := strings.Cut(f.name, " ")
		switch verb {
		case "<":
			if answered == nil {
				t.Fatalf("%s: an answer without a request", f.name)
			}
			if !*update {
				if d := cmp.Diff(string(f.data), string(answered)); d != "" {
					t.Errorf("answer after %q differs (-recorded +now):\n%s", out.files[len(out.files)-1].name, d)
				}
			}
			out.files = append(out.files, txtarFile{name: f.name, data: answered})
			answered = nil
			continue
		case "!":
			flush()
			out.files = append(out.files, f)
			act, rest, _ := strings.Cut(arg, " ")
			switch act {
			case "disk":
				before := st.Head(t, "docs")
				abs := st.Path("docs", rest)
				must(t, os.MkdirAll(filepath.Dir(abs), 0o755))
				must(t, os.WriteFile(abs, f.data, 0o644))
				eventstest.Eventually(t, "the watcher's event", func() bool { return st.Head(t, "docs") > before })
			case "symlink":
				must(t, os.Symlink(strings.TrimSpace(string(f.data)), st.Path("docs", rest)))
			case "lock":
				p, holder, _ := strings.Cut(rest, " ")
				holder, mode, _ := strings.Cut(holder, " ")
				if _, err := st.Hub.Lock(context.Background(), events.LockRequest{Workspace: "docs", Path: p, Holder: holder, Mode: mode, TTL: time.Minute}); err != nil {
					t.Fatalf("%s: %v", f.name, err)
				}
			default:
				t.Fatalf("unknown action %q", f.name)
			}
			continue
		case ">":
		default:
			t.Fatalf("unknown section %q", f.name)
		}
		flush()
		out.files = append(out.files, f)
		body := norm.fill(strings.TrimSpace(string(f.data)))
		method, rest, _ := strings.Cut(arg, " ")
		if method != "rpc" || rest != "initialize" {
			initialize()
		}
		settle()
		switch method {
		case "raw":
			msg, err := strconv.Unquote(body)
			if err != nil {
				t.Fatalf("%s: the body must be a Go string literal: %v", f.name, err)
			}
			var m struct {
				ID json.RawMessage `json:"id"`
			}
			_ = json.Unmarshal([]byte(msg), &m)
			id := string(m.ID)
			if id == "" {
				id = "null"
			}
			answered = norm.answer(t, s.send([]byte(msg), id))
		case "rpc":
			if rest == "initialize" {
				initialized = true
			}
			answered = norm.answer(t, s.request(rest, json.RawMessage(body)))
		default:
			call := map[string]any{"name": method}
			if body != "" {
				call["arguments"] = json.RawMessage(body)
			}
			params, err := json.Marshal(call)
			if err != nil {
				t.Fatalf("%s: %v", f.name, err)
			}
			answered = norm.answer(t, s.request("tools/call", params))
		}
	}
	flush()
	if *update {
		must(t, os.WriteFile(file, out.format(), 0o644))
	}
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
