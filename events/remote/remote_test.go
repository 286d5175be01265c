package remote_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/filecast/filecast/events"
	"github.com/filecast/filecast/events/api"
	"github.com/filecast/filecast/events/feed"
	"github.com/filecast/filecast/events/feed/feedtest"
	"github.com/filecast/filecast/events/remote"
	"github.com/filecast/filecast/events/wire"
)

// hub is an API server over an in-memory source, listening on addr (a
// fresh loopback port when empty).
type hub struct {
	src  *feedtest.Source
	dir  string
	feed *feed.Feed
	srv  *httptest.Server
}

func startHub(t testing.TB, src *feedtest.Source, addr string, tokens ...api.Token) *hub {
	t.Helper()
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	h := &hub{src: src, feed: feed.New(src, feed.Options{})}
	h.srv = httptest.NewUnstartedServer(api.New(src, h.feed, api.Options{Tokens: tokens}))
	h.srv.Listener = ln
	h.srv.Start()
	t.Cleanup(h.stop)
	return h
}

// stop ends the hub like a process exit: open streams are cut.
func (h *hub) stop() {
	h.feed.Close()
	h.srv.CloseClientConnections()
	h.srv.Close()
}

func newSource(t testing.TB) (*feedtest.Source, string) {
	src := feedtest.New()
	dir := t.TempDir()
	src.AddWorkspace("docs", dir)
	return src, dir
}

func newClient(t *testing.T, url string, opts remote.Options) *remote.Client {
	t.Helper()
	c, err := remote.New(url, opts)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func created(paths ...string) []events.Event {
	var out []events.Event
	for _, p := range paths {
		out = append(out, events.Event{Type: events.FileCreated, Path: p, Size: 3, SHA256: "abc"})
	}
	return out
}

func createdN(n int) []events.Event {
	var paths []string
	for i := range n {
		paths = append(paths, fmt.Sprintf("f%d.md", i))
	}
	return created(paths...)
}

// subscription follows a workspace in the background (events.Follow
// over the client, as the MCP server and filecast tail do) and collects
// its events.
type subscription struct {
	events  chan events.Event
	done    chan error
	cancel  context.CancelFunc
	stopped chan struct{} // closed once the follower returned
}

func subscribe(t *testing.T, c *remote.Client, ws string, after uint64) *subscription {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	s := &subscription{events: make(chan events.Event, 10000), done: make(chan error, 1), cancel: cancel, stopped: make(chan struct{})}
	go func() {
		defer close(s.stopped)
		s.done <- events.Follow(ctx, c, ws, after, func(ev events.Event) error {
			s.events <- ev
			return nil
		}, events.FollowOptions{MinBackoff: 10 * time.Millisecond, MaxBackoff: 100 * time.Millisecond, Final: remote.Permanent})
	}()
	t.Cleanup(s.stop)
	return s
}

// stop ends the follower and waits for it.
func (s *subscription) stop() {
	s.cancel()
	<-s.stopped
}

// take receives n events within the deadline.
func (s *subscription) take(t *testing.T, n int) []events.Event {
	t.Helper()
	var out []events.Event
	timeout := time.After(10 * time.Second)
	for len(out) < n {
		select {
		case ev := <-s.events:
			out = append(out, ev)
		case err := <-s.done:
			t.Fatalf("Subscribe returned %v after %d of %d events", err, len(out), n)
		case <-timeout:
			t.Fatalf("got %d of %d events in 10s", len(out), n)
		}
	}
	return out
}

var cmpEvents = cmpopts.EquateApproxTime(time.Microsecond)

func TestClient_RoundTrip(t *testing.T) {
	src, dir := newSource(t)
	src.AddWorkspace("src", t.TempDir())
	h := startHub(t, src, "")
	name := "dir/a b#c?%.md"
	if err := os.MkdirAll(filepath.Join(dir, "dir"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, name), []byte("hello"), 0o644); err != nil {
		t.Fatal(err)
	}
	stored := src.Append("docs", created(name, "b.md", "c.md")...)
	ctx := context.Background()
	c := newClient(t, h.srv.URL+"/", remote.Options{})

	ws, err := c.Workspaces(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]events.WorkspaceInfo{{Name: "docs", Head: 3}, {Name: "src"}}, ws); diff != "" {
		t.Errorf("Workspaces (-want +got):\n%s", diff)
	}

	page, err := c.Changes(ctx, "docs", 1, 1, 0)
	if err != nil {
		t.Fatal(err)
	}
	want := events.Page{Events: stored[1:2], Next: 2, HasMore: true}
	if diff := cmp.Diff(want, page, cmpEvents); diff != "" {
		t.Errorf("Changes (-want +got):\n%s", diff)
	}

	wantList, _ := src.Files(ctx, "docs", "dir")
	list, err := c.Files(ctx, "docs", "dir")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(wantList, list, cmpEvents); diff != "" || len(list.Files) != 1 {
		t.Errorf("Files (-want +got):\n%s", diff)
	}

	wantData, wantInfo, _ := src.ReadFile(ctx, "docs", name, events.Range{})
	data, info, err := c.ReadFile(ctx, "docs", name, events.Range{})
	if err != nil {
		t.Fatal(err)
	}
	if string(data) != string(wantData) || !cmp.Equal(wantInfo, info, cmpEvents) {
		t.Errorf("ReadFile = %q %+v, want %q %+v", data, info, wantData, wantInfo)
	}

	sub := subscribe(t, c, "docs", 0)
	if diff := cmp.Diff(stored, sub.take(t, 3), cmpEvents); diff != "" {
		t.Errorf("Subscribe (-want +got):\n%s", diff)
	}
}

func TestClient_Errors(t *testing.T) {
	src, dir := newSource(t)
	h := startHub(t, src, "")
	src.Append("docs", createdN(10)...)
	src.Trim("docs", 5)
	if err := os.WriteFile(filepath.Join(dir, "big"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(filepath.Join(dir, "big"), events.MaxReadSize+1); err != nil {
		t.Fatal(err)
	}
	c := newClient(t, h.srv.URL, remote.Options{})
	ctx := context.Background()
	ignore := func(events.Event) error { return nil }
	tests := []struct {
		name string
		call func() error
		want error
	}{
		{"Changes unknown workspace", func() error { _, err := c.Changes(ctx, "nope", 0, 0, 0); return err }, events.ErrUnknownWorkspace},
		{"Changes expired", func() error { _, err := c.Changes(ctx, "docs", 1, 0, 0); return err }, events.ErrCursorExpired},
		{"Files unknown workspace", func() error { _, err := c.Files(ctx, "nope", ""); return err }, events.ErrUnknownWorkspace},
		{"Files bad prefix", func() error { _, err := c.Files(ctx, "docs", "../x"); return err }, events.ErrBadPath},
		{"ReadFile missing", func() error { _, _, err := c.ReadFile(ctx, "docs", "missing.md", events.Range{}); return err }, events.ErrNotFound},
		{"ReadFile too large", func() error { _, _, err := c.ReadFile(ctx, "docs", "big", events.Range{}); return err }, events.ErrTooLarge},
		{"ReadFile traversal", func() error { _, _, err := c.ReadFile(ctx, "docs", "../etc/passwd", events.Range{}); return err }, events.ErrBadPath},
		{"ReadFile absolute", func() error { _, _, err := c.ReadFile(ctx, "docs", "/etc/passwd", events.Range{}); return err }, events.ErrBadPath},
		{"Subscribe expired", func() error { return c.Subscribe(ctx, "docs", 2, ignore) }, events.ErrCursorExpired},
		{"Subscribe unknown workspace", func() error { return c.Subscribe(ctx, "nope", 0, ignore) }, events.ErrUnknownWorkspace},
		{"Subscribe past the head", func() error { return c.Subscribe(ctx, "docs", 99, ignore) }, events.ErrCursorExpired},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.call()
			if !errors.Is(err, tt.want) {
				t.Errorf("got %v, want %v", err, tt.want)
			}
		})
	}
}

func TestClient_Token(t *testing.T) {
	src, _ := newSource(t)
	h := startHub(t, src, "", api.Token{Name: "ci", Secret: "right"})
	ctx := context.Background()
	bad := newClient(t, h.srv.URL, remote.Options{Token: "wrong"})
	if _, err := bad.Workspaces(ctx); !errors.Is(err, remote.ErrUnauthorized) {
		t.Errorf("Workspaces with a wrong token: %v", err)
	}
	if err := bad.Subscribe(ctx, "docs", 0, func(events.Event) error { return nil }); !errors.Is(err, remote.ErrUnauthorized) {
		t.Errorf("Subscribe with a wrong token: %v", err)
	}
	good := newClient(t, h.srv.URL, remote.Options{Token: "right"})
	if _, err := good.Workspaces(ctx); err != nil {
		t.Errorf("Workspaces with the token: %v", err)
	}
}

func TestClient_ChangesWaitOutlastsClientTimeout(t *testing.T) {
	src, _ := newSource(t)
	h := startHub(t, src, "")
	c := newClient(t, h.srv.URL, remote.Options{HTTPClient: &http.Client{Timeout: 100 * time.Millisecond}})
	// The event comes after the client's timeout: a request cut by it
	// would fail, or return without the event.
	late := time.AfterFunc(300*time.Millisecond, func() { src.Append("docs", created("late.md")...) })
	defer late.Stop()
	page, err := c.Changes(context.Background(), "docs", 0, 10, 5*time.Second)
	if err != nil {
		t.Fatalf("Changes: %v", err)
	}
	if len(page.Events) != 1 || page.Events[0].Path != "late.md" {
		t.Errorf("got %+v, want late.md", page)
	}
}

func TestClient_Subscribe_CallbackErrorAndCancel(t *testing.T) {
	src, _ := newSource(t)
	h := startHub(t, src, "")
	src.Append("docs", createdN(3)...)
	c := newClient(t, h.srv.URL, remote.Options{})
	stop := errors.New("enough")
	var seen []uint64
	err := c.Subscribe(context.Background(), "docs", 0, func(ev events.Event) error {
		seen = append(seen, ev.Seq)
		if ev.Seq == 2 {
			return stop
		}
		return nil
	})
	if err != stop || !cmp.Equal(seen, []uint64{1, 2}) {
		t.Errorf("Subscribe = %v after %v, want the callback's error after [1 2]", err, seen)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if err := c.Subscribe(ctx, "docs", 3, func(events.Event) error { return nil }); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Subscribe after its context ended = %v", err)
	}
}

func TestClient_Subscribe_NewlineInPath(t *testing.T) {
	src, _ := newSource(t)
	h := startHub(t, src, "")
	evil := "a\n\nid: 7\ndata: {}\n\rb"
	stored := src.Append("docs", created(evil)...)
	sub := subscribe(t, newClient(t, h.srv.URL, remote.Options{}), "docs", 0)
	if diff := cmp.Diff(stored, sub.take(t, 1), cmpEvents); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}

// TestClient_Subscribe_SurvivesRestart stops the hub mid-stream and starts a
// new one on the same address; a follower (events.Follow over the client,
// resuming with Last-Event-ID) gets every event once, in order, including
// those appended while the hub was down.
func TestClient_Subscribe_SurvivesRestart(t *testing.T) {
	src, _ := newSource(t)
	h1 := startHub(t, src, "")
	addr := h1.srv.Listener.Addr().String()
	c := newClient(t, "http://"+addr, remote.Options{})
	sub := subscribe(t, c, "docs", 0)

	want := src.Append("docs", createdN(5)...)
	got := sub.take(t, 5)

	h1.stop()
	want = append(want, src.Append("docs", createdN(5)...)...)
	h2 := startHub(t, src, addr)
	want = append(want, src.Append("docs", createdN(5)...)...)
	got = append(got, sub.take(t, 10)...)

	// A second restart while events keep coming.
	h2.stop()
	want = append(want, src.Append("docs", createdN(3)...)...)
	startHub(t, src, addr)
	want = append(want, src.Append("docs", createdN(2)...)...)
	got = append(got, sub.take(t, 5)...)

	if diff := cmp.Diff(want, got, cmpEvents); diff != "" {
		t.Errorf("events across restarts (-want +got):\n%s", diff)
	}
	sub.stop()
	if len(sub.events) > 0 {
		t.Errorf("%d extra events", len(sub.events))
	}
}

// TestClient_Subscribe_EndsWithTheStream: Subscribe is one stream; when
// the hub ends it, Subscribe returns ErrStreamLost after the events it
// carried, without connecting again.
func TestClient_Subscribe_EndsWithTheStream(t *testing.T) {
	handler, lastIDs := sseHandler(sseEvent(3) + sseEvent(4))
	srv := httptest.NewServer(handler)
	defer srv.Close()
	var got []uint64
	err := newClient(t, srv.URL, remote.Options{}).Subscribe(context.Background(), "docs", 2, func(ev events.Event) error {
		got = append(got, ev.Seq)
		return nil
	})
	if !errors.Is(err, remote.ErrStreamLost) || remote.Permanent(err) {
		t.Errorf("Subscribe = %v, want ErrStreamLost, not permanent", err)
	}
	if !cmp.Equal(got, []uint64{3, 4}) || !cmp.Equal(*lastIDs, []string{"2"}) {
		t.Errorf("delivered %v over Last-Event-IDs %q, want [3 4] over one stream after 2", got, *lastIDs)
	}
}

// sseHandler serves a fixed stream per connection, then unknown_workspace.
func sseHandler(bodies ...string) (http.Handler, *[]string) {
	var (
		mu      sync.Mutex
		lastIDs []string
		n       int
	)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		lastIDs = append(lastIDs, r.Header.Get("Last-Event-ID"))
		if n >= len(bodies) {
			wire.WriteError(w, &events.Error{Kind: events.ErrUnknownWorkspace, Value: "docs"})
			return
		}
		w.Header().Set("Content-Type", "text/event-stream")
		fmt.Fprint(w, bodies[n])
		n++
	}), &lastIDs
}

func sseEvent(seq uint64) string {
	b, _ := json.Marshal(events.Event{Seq: seq, Type: events.FileUpdated, Workspace: "docs", Path: fmt.Sprintf("f%d", seq)})
	return fmt.Sprintf("id: %d\nevent: file.updated\ndata: %s\n\n", seq, b)
}

func TestClient_Subscribe_SkipsReplayedEvents(t *testing.T) {
	// A hub that replays more than asked: each connection repeats earlier
	// events, one comes out of order, and the last one is cut mid-event.
	bodies := []string{
		": hi\nretry: 10\nid: 0\n\n" + sseEvent(1) + sseEvent(2),
		sseEvent(1) + sseEvent(2) + sseEvent(3) + sseEvent(2) + sseEvent(4),
		sseEvent(3) + sseEvent(5) + "id: 6\nevent: file.updated\ndata: {\"seq\":6",
	}
	handler, lastIDs := sseHandler(bodies...)
	srv := httptest.NewServer(handler)
	defer srv.Close()
	var got []uint64
	err := events.Follow(context.Background(), newClient(t, srv.URL, remote.Options{}), "docs", 0, func(ev events.Event) error {
		got = append(got, ev.Seq)
		return nil
	}, events.FollowOptions{MinBackoff: time.Millisecond, Final: remote.Permanent})
	if !errors.Is(err, events.ErrUnknownWorkspace) {
		t.Errorf("Subscribe = %v", err)
	}
	if !cmp.Equal(got, []uint64{1, 2, 3, 4, 5}) {
		t.Errorf("delivered %v, want 1..5 once each", got)
	}
	if !cmp.Equal(*lastIDs, []string{"0", "2", "4", "5"}) {
		t.Errorf("Last-Event-ID headers %q", *lastIDs)
	}
}

func TestClient_Subscribe_ProtocolErrors(t *testing.T) {
	tests := []struct{ name, body string }{
		{"id not a number", "id: abc\ndata: {}\n\n"},
		{"id and seq disagree", "id: 3\nevent: file.updated\ndata: {\"seq\":4,\"type\":\"file.updated\"}\n\n"},
		{"data not JSON", "id: 3\ndata: hello\n\n"},
		{"event type and JSON disagree", "id: 3\nevent: file.created\ndata: {\"seq\":3,\"type\":\"file.deleted\"}\n\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			handler, _ := sseHandler(tt.body)
			srv := httptest.NewServer(handler)
			defer srv.Close()
			err := newClient(t, srv.URL, remote.Options{}).Subscribe(context.Background(), "docs", 0, func(events.Event) error { return nil })
			if !errors.Is(err, remote.ErrProtocol) {
				t.Errorf("Subscribe = %v, want ErrProtocol", err)
			}
		})
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		fmt.Fprint(w, "<html>")
	}))
	defer srv.Close()
	if err := newClient(t, srv.URL, remote.Options{}).Subscribe(context.Background(), "docs", 0, func(events.Event) error { return nil }); !errors.Is(err, remote.ErrProtocol) {
		t.Errorf("Subscribe to an HTML page = %v", err)
	}
}

func TestNew_URL(t *testing.T) {
	for _, tt := range []struct {
		url string
		ok  bool
	}{
		{"http://127.0.0.1:8080", true},
		{"https://hub.example.com/filecast/", true},
		{"ftp://hub", false},
		{"hub:8080", false},
		{"http://", false},
		{"http://user:pw@hub", false},
		{"http://hub?x=1", false},
		{"://", false},
	} {
		_, err := remote.New(tt.url, remote.Options{})
		if (err == nil) != tt.ok {
			t.Errorf("New(%q) = %v, want ok=%v", tt.url, err, tt.ok)
		}
	}
}

func TestClient_BasePath(t *testing.T) {
	src, _ := newSource(t)
	src.Append("docs", created("a.md")...)
	mux := http.NewServeMux()
	mux.Handle("/filecast/", http.StripPrefix("/filecast", api.New(src, nil, api.Options{})))
	srv := httptest.NewServer(mux)
	defer srv.Close()
	c := newClient(t, srv.URL+"/filecast", remote.Options{})
	page, err := c.Changes(context.Background(), "docs", 0, 0, 0)
	if err != nil || len(page.Events) != 1 {
		t.Errorf("Changes through a path prefix: %+v %v", page, err)
	}
}
