package feed_test

import (
	"bufio"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/filecast/filecast/events"
	"github.com/filecast/filecast/events/feed"
	"github.com/filecast/filecast/events/feed/feedtest"
	"github.com/filecast/filecast/events/wire"
)

// fixture is a feed over an in-memory source with one workspace "docs".
type fixture struct {
	src  *feedtest.Source
	feed *feed.Feed
	srv  *httptest.Server
	dir  string
}

func newFixture(t testing.TB, opts feed.Options) *fixture {
	t.Helper()
	fx := &fixture{src: feedtest.New(), dir: t.TempDir()}
	fx.src.AddWorkspace("docs", fx.dir)
	fx.feed = feed.New(fx.src, opts)
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/workspaces", fx.feed.Workspaces)
	mux.HandleFunc("GET /v1/workspaces/{ws}/events", fx.feed.Events)
	mux.HandleFunc("GET /v1/workspaces/{ws}/changes", fx.feed.Changes)
	mux.HandleFunc("GET /v1/workspaces/{ws}/files", fx.feed.Files)
	mux.HandleFunc("GET /v1/workspaces/{ws}/files/{path...}", fx.feed.File)
	fx.srv = httptest.NewServer(mux)
	t.Cleanup(func() {
		fx.feed.Close()
		fx.srv.CloseClientConnections()
		fx.srv.Close()
	})
	return fx
}

// appendN appends n file.created events for paths p<seq>.md.
func (fx *fixture) appendN(n int) []events.Event {
	var evs []events.Event
	for range n {
		evs = append(evs, events.Event{Type: events.FileCreated, Path: "p.md", Size: 1, SHA256: "00"})
	}
	return fx.src.Append("docs", evs...)
}

// rawStream reads an SSE response line by line.
type rawStream struct {
	t   *testing.T
	res *http.Response
	br  *bufio.Reader
}

// open sends GET url with the given headers; the request ends with the test
// or after 10s.
func open(t *testing.T, url string, header map[string]string) *rawStream {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { res.Body.Close() })
	return &rawStream{t: t, res: res, br: bufio.NewReader(res.Body)}
}

// message returns the lines of the next message, without the blank line.
func (s *rawStream) message() []string {
	s.t.Helper()
	var lines []string
	for {
		line, err := s.br.ReadString('\n')
		if err != nil {
			s.t.Fatalf("read stream: %v (after %q)", err, lines)
		}
		line = strings.TrimSuffix(line, "\n")
		if line == "" {
			if len(lines) > 0 {
				return lines
			}
			continue
		}
		lines = append(lines, line)
	}
}

// sseMsg is a parsed message.
type sseMsg struct {
	ID, Event string
	Data      []string
	Comments  []string
	Retry     string
}

func parseMsg(lines []string) sseMsg {
	var m sseMsg
	for _, l := range lines {
		name, value, _ := strings.Cut(l, ":")
		value = strings.TrimPrefix(value, " ")
		switch name {
		case "":
			m.Comments = append(m.Comments, value)
		case "id":
			m.ID = value
		case "event":
			m.Event = value
		case "data":
			m.Data = append(m.Data, value)
		case "retry":
			m.Retry = value
		}
	}
	return m
}

// event returns the next message that carries data, decoded.
func (s *rawStream) event() (sseMsg, events.Event) {
	s.t.Helper()
	for {
		m := parseMsg(s.message())
		if len(m.Data) == 0 {
			continue
		}
		if len(m.Data) != 1 {
			s.t.Fatalf("event spans %d data lines: %q", len(m.Data), m.Data)
		}
		var ev events.Event
		if err := json.Unmarshal([]byte(m.Data[0]), &ev); err != nil {
			s.t.Fatalf("decode %q: %v", m.Data[0], err)
		}
		return m, ev
	}
}

// seqs reads n events and returns their seqs.
func (s *rawStream) seqs(n int) []uint64 {
	s.t.Helper()
	var out []uint64
	for range n {
		_, ev := s.event()
		out = append(out, ev.Seq)
	}
	return out
}

// errorBody decodes a JSON error answer and checks its status.
func errorBody(t *testing.T, res *http.Response, status int) wire.ErrorDetail {
	t.Helper()
	defer res.Body.Close()
	if res.StatusCode != status {
		t.Errorf("status = %d, want %d", res.StatusCode, status)
	}
	if ct := res.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type = %q, want application/json", ct)
	}
	var body wire.ErrorBody
	if err := json.NewDecoder(res.Body).Decode(&body); err != nil {
		t.Fatalf("decode error body: %v", err)
	}
	return body.Error
}

func seqRange(from, to uint64) []uint64 {
	var out []uint64
	for s := from; s <= to; s++ {
		out = append(out, s)
	}
	return out
}
