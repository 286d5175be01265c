package server_test

import (
	"context"
	"encoding/base64"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/mcp"

	"github.com/filecast/filecast/events"
	"github.com/filecast/filecast/events/eventstest"
	"github.com/filecast/filecast/server"
	"github.com/filecast/filecast/tools"
)

func TestServer_ToolsListSchemas(t *testing.T) {
	h := start(t, server.Options{}, "docs")
	c, _ := h.stdioClient(t, clientOpts{})
	got := toolSchemas(t, c, false)
	want := map[string][]string{
		"subscribe":    {"events", "exclude_own", "paths", "workspace", "->", "cursor", "subscription_id"},
		"unsubscribe":  {"subscription_id", "->", "removed"},
		"list_changes": {"cursor", "detail", "diff", "limit", "subscription_id", "wait_ms", "->", "cursor", "events", "has_more", "overflowed"},
		"read_file":    {"length", "offset", "path", "since", "workspace", "->", "content", "cursor", "diff", "diff_unavailable", "encoding", "length", "offset", "sha256", "size"},
		"list_files":   {"limit", "page", "paths", "workspace", "->", "cursor", "files", "next_page"},
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("tools (-want +got):\n%s", d)
	}
}

func TestServer_SubscribeAndListChanges(t *testing.T) {
	h := start(t, server.Options{}, "docs", "src")
	c, _ := h.stdioClient(t, clientOpts{})

	sub := decode[tools.SubscribeResult](t, call(t, c, "subscribe", map[string]any{
		"paths": []string{"reports/**/*.md"}, "events": []string{"created", "updated"}, "workspace": "docs",
	}))
	if sub.SubscriptionID == "" || sub.Cursor != "docs:0" {
		t.Fatalf("subscribe = %+v", sub)
	}
	h.src.Append("docs", events.FileCreated, "reports/q3.md")
	h.src.Append("docs", events.FileCreated, "reports/q3.txt")     // path does not match
	h.src.Append("docs", events.FileDeleted, "reports/old.md")     // type does not match
	h.src.Append("src", events.FileUpdated, "reports/a.md")        // workspace does not match
	h.src.Append("docs", events.FileUpdated, "reports/2024/q4.md") // matches
	eventstest.Eventually(t, "routing", func() bool { return h.srv.Heads().For("docs") == 4 && h.srv.Heads().For("src") == 1 })

	got := listChanges(t, c, map[string]any{"subscription_id": sub.SubscriptionID})
	want := []string{"file.created reports/q3.md", "file.updated reports/2024/q4.md"}
	if d := cmp.Diff(want, paths(got.Events)); d != "" {
		t.Errorf("list_changes (-want +got):\n%s", d)
	}
	if got.HasMore || got.Overflowed {
		t.Errorf("has_more=%v overflowed=%v", got.HasMore, got.Overflowed)
	}

	t.Run("cursor from subscribe reads the log", func(t *testing.T) {
		// The same cursor returns the same events whatever the session
		// read before: the buffer handed these out already, the log still
		// has them.
		for range 2 {
			got := listChanges(t, c, map[string]any{"cursor": sub.Cursor, "subscription_id": sub.SubscriptionID})
			if d := cmp.Diff(want, paths(got.Events)); d != "" {
				t.Errorf("read by cursor (-want +got):\n%s", d)
			}
			if got.Cursor != "docs:4" {
				t.Errorf("cursor = %q, want docs:4", got.Cursor)
			}
		}
	})

	polling := reached(h.srv, "list_changes")
	t.Run("long poll returns when an event arrives", func(t *testing.T) {
		go func() {
			<-polling
			h.src.Append("docs", events.FileUpdated, "reports/q3.md")
		}()
		began := time.Now()
		got := listChanges(t, c, map[string]any{"wait_ms": 10000, "subscription_id": sub.SubscriptionID})
		if d := cmp.Diff([]string{"file.updated reports/q3.md"}, paths(got.Events)); d != "" {
			t.Errorf("(-want +got):\n%s", d)
		}
		if took := time.Since(began); took > 5*time.Second {
			t.Errorf("long poll took %v", took)
		}
	})

	t.Run("long poll by cursor returns when an event arrives", func(t *testing.T) {
		head := listChanges(t, c, map[string]any{"subscription_id": sub.SubscriptionID}).Cursor
		<-polling // that call's
		go func() {
			<-polling
			h.src.Append("docs", events.FileCreated, "notes.txt") // not matching
			h.src.Append("docs", events.FileCreated, "reports/new.md")
		}()
		got := listChanges(t, c, map[string]any{"cursor": head, "wait_ms": 10000, "subscription_id": sub.SubscriptionID})
		if d := cmp.Diff([]string{"file.created reports/new.md"}, paths(got.Events)); d != "" {
			t.Errorf("(-want +got):\n%s", d)
		}
	})

	t.Run("empty result returns the head", func(t *testing.T) {
		eventstest.Eventually(t, "routing", func() bool { return h.srv.Heads().For("docs") == 7 })
		listChanges(t, c, nil) // drain
		got := listChanges(t, c, nil)
		if len(got.Events) != 0 || got.Cursor != "docs:7,src:1" {
			t.Errorf("got %v cursor %q", paths(got.Events), got.Cursor)
		}
	})

	t.Run("unsubscribe", func(t *testing.T) {
		if r := decode[tools.UnsubscribeResult](t, call(t, c, "unsubscribe", map[string]any{"subscription_id": sub.SubscriptionID})); !r.Removed {
			t.Error("removed = false")
		}
		if r := decode[tools.UnsubscribeResult](t, call(t, c, "unsubscribe", map[string]any{"subscription_id": sub.SubscriptionID})); r.Removed {
			t.Error("second unsubscribe removed = true")
		}
	})
}

func TestServer_ToolErrors(t *testing.T) {
	h := start(t, server.Options{}, "docs")
	c, _ := h.stdioClient(t, clientOpts{})
	h.src.Append("docs", events.FileCreated, "a.md")
	h.src.Append("docs", events.FileCreated, "b.md")
	h.src.Trim("docs", 1)
	tests := []struct {
		name string
		tool string
		args map[string]any
		want string // in the message
	}{
		{"bad glob", "subscribe", map[string]any{"paths": []string{"src/[a-"}}, "invalid glob"},
		{"absolute glob", "subscribe", map[string]any{"paths": []string{"/etc/*"}}, "drop the leading /"},
		{"bad event kind", "subscribe", map[string]any{"events": []string{"exploded"}}, `"created", "updated", "deleted", "moved", "locked" or "unlocked"`},
		{"unknown workspace", "subscribe", map[string]any{"workspace": "nope"}, "use one of docs"},
		{"bad cursor", "list_changes", map[string]any{"cursor": "docs:abc"}, "invalid cursor"},
		{"expired cursor", "list_changes", map[string]any{"cursor": "docs:0"}, "Call list_files for the files you follow"},
		{"expired cursor, where to continue", "list_changes", map[string]any{"cursor": "docs:0"}, "continue list_changes from the cursor list_files returned"},
		{"cursor beyond the head", "list_changes", map[string]any{"cursor": "docs:999999"}, "which is at docs:2"},
		{"unknown subscription", "list_changes", map[string]any{"subscription_id": "sub-404"}, "subscribe again"},
		{"unknown subscription by cursor", "list_changes", map[string]any{"cursor": "docs:1", "subscription_id": "sub-404"}, "subscribe again"},
		{"missing subscription id", "unsubscribe", map[string]any{}, "subscription_id is required"},
		{"wrong argument type", "list_changes", map[string]any{"limit": "many"}, `limit must be a whole number from 1 to 1000, not "many"`},
		{"limit zero", "list_changes", map[string]any{"limit": 0}, "not 0"},
		{"negative wait", "list_changes", map[string]any{"wait_ms": -100}, "wait_ms must be a whole number from 0 to 30000, not -100"},
		{"unknown argument", "list_changes", map[string]any{"limt": 2}, `unknown argument "limt" (did you mean limit?)`},
		{"typo of paths", "subscribe", map[string]any{"path": []string{"*.md"}}, `unknown argument "path" (did you mean paths?)`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := call(t, c, tt.tool, tt.args)
			if !res.IsError {
				t.Fatalf("want isError, got %s", text(res))
			}
			if !strings.Contains(text(res), tt.want) {
				t.Errorf("message %q does not contain %q", text(res), tt.want)
			}
		})
	}
}

func TestServer_Resources(t *testing.T) {
	h := start(t, server.Options{PageSize: 2}, "docs")
	h.src.Write(t, "docs", "notes.md", []byte("# Notes\n"))
	h.src.Write(t, "docs", "img/logo.png", []byte{0x89, 'P', 'N', 'G', 0, 1, 2})
	h.src.Write(t, "docs", "sub/a.txt", []byte("a"))
	c, _ := h.stdioClient(t, clientOpts{})
	ctx := context.Background()

	var uris []string
	req := mcp.ListResourcesRequest{}
	for pages := 0; ; pages++ {
		if pages > 10 {
			t.Fatal("pagination does not end")
		}
		res, err := c.ListResourcesByPage(ctx, req)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range res.Resources {
			uris = append(uris, r.URI+" "+r.MIMEType)
		}
		if res.NextCursor == "" {
			break
		}
		req.Params.Cursor = res.NextCursor
	}
	want := []string{
		"filecast://docs/ inode/directory",
		"filecast://docs/img/logo.png image/png",
		"filecast://docs/notes.md text/markdown",
		"filecast://docs/sub/a.txt text/plain",
	}
	if d := cmp.Diff(want, uris); d != "" {
		t.Errorf("resources/list (-want +got):\n%s", d)
	}

	read := func(uri string) (*mcp.ReadResourceResult, error) {
		r := mcp.ReadResourceRequest{}
		r.Params.URI = uri
		return c.ReadResource(ctx, r)
	}
	res, err := read("filecast://docs/notes.md")
	if err != nil {
		t.Fatal(err)
	}
	if tc, ok := res.Contents[0].(mcp.TextResourceContents); !ok || tc.Text != "# Notes\n" || tc.MIMEType != "text/markdown" {
		t.Errorf("text read = %#v", res.Contents[0])
	}
	res, err = read("filecast://docs/img/logo.png")
	if err != nil {
		t.Fatal(err)
	}
	bc, ok := res.Contents[0].(mcp.BlobResourceContents)
	if !ok || bc.MIMEType != "image/png" || bc.Blob != base64.StdEncoding.EncodeToString([]byte{0x89, 'P', 'N', 'G', 0, 1, 2}) {
		t.Errorf("binary read = %#v", res.Contents[0])
	}
	res, err = read("filecast://docs/")
	if err != nil {
		t.Fatal(err)
	}
	if tc, ok := res.Contents[0].(mcp.TextResourceContents); !ok || !strings.Contains(tc.Text, `"sub/a.txt"`) {
		t.Errorf("folder read = %#v", res.Contents[0])
	}
	for _, tt := range []struct{ uri, want string }{
		{"filecast://docs/../etc/passwd", "leaves the workspace"},
		{"filecast://docs/sub/../notes.md", "not in its clean form"},
		{"filecast://docs/sub/../../x", "leaves the workspace"},
		{"filecast://docs/missing.md", "not found"},
		{"filecast://nope/a.md", "unknown workspace"},
		{"http://docs/a.md", ""},
	} {
		if _, err := read(tt.uri); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("read %s: err = %v, want one containing %q", tt.uri, err, tt.want)
		}
	}
	if _, err := c.ListResourcesByPage(ctx, mcp.ListResourcesRequest{PaginatedRequest: mcp.PaginatedRequest{Params: mcp.PaginatedParams{Cursor: "!!"}}}); err == nil {
		t.Error("bad list cursor accepted")
	}
}

func subscribeURI(t testing.TB, c *client.Client, uri string) error {
	t.Helper()
	r := mcp.SubscribeRequest{}
	r.Params.URI = uri
	return c.Subscribe(context.Background(), r)
}

func TestServer_ResourceNotifications(t *testing.T) {
	h := start(t, server.Options{}, "docs", "src")
	c, n := h.stdioClient(t, clientOpts{})
	if err := subscribeURI(t, c, "filecast://docs/a.md"); err != nil {
		t.Fatal(err)
	}
	if err := subscribeURI(t, c, "filecast://src/"); err != nil {
		t.Fatal(err)
	}
	for _, bad := range []string{"filecast://nope/", "file:///etc/passwd", "filecast://docs/../x"} {
		if err := subscribeURI(t, c, bad); err == nil {
			t.Errorf("subscribe %s accepted", bad)
		}
	}
	h.src.Append("docs", events.FileUpdated, "a.md")
	h.src.Append("docs", events.FileUpdated, "b.md") // not subscribed
	h.src.Append("src", events.FileUpdated, "x/y.go")
	h.src.Append("src", events.FileMoved, "z.go", "x/old.go")
	eventstest.Eventually(t, "notifications", func() bool { return len(n.updated()) >= 4 && n.count(mcp.MethodNotificationResourcesListChanged) >= 1 })
	got := n.updated()
	slices.Sort(got)
	want := []string{"filecast://docs/a.md", "filecast://src/x/old.go", "filecast://src/x/y.go", "filecast://src/z.go"}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("resources/updated (-want +got):\n%s", d)
	}
	r := mcp.UnsubscribeRequest{}
	r.Params.URI = "filecast://src/"
	if err := c.Unsubscribe(context.Background(), r); err != nil {
		t.Fatal(err)
	}
	h.src.Append("src", events.FileUpdated, "x/y.go")
	h.src.Append("docs", events.FileUpdated, "a.md")
	eventstest.Eventually(t, "notification", func() bool { return len(n.updated()) >= 5 })
	if last := n.updated()[4]; last != "filecast://docs/a.md" {
		t.Errorf("after unsubscribe got %s", last)
	}
}

func TestServer_HTTPSessions(t *testing.T) {
	h := start(t, server.Options{}, "docs")
	ts := httptest.NewServer(h.srv.HTTPHandler())
	t.Cleanup(ts.Close)
	a, an := httpClient(t, ts, clientOpts{name: "alice"})
	b, _ := httpClient(t, ts, clientOpts{name: "bob"})
	eventstest.Eventually(t, "two sessions", func() bool { return h.srv.Sessions() == 2 })

	subA := decode[tools.SubscribeResult](t, call(t, a, "subscribe", map[string]any{"paths": []string{"*.md"}}))
	decode[tools.SubscribeResult](t, call(t, b, "subscribe", map[string]any{"paths": []string{"*.go"}}))
	if err := subscribeURI(t, a, "filecast://docs/"); err != nil {
		t.Fatal(err)
	}
	h.src.Append("docs", events.FileCreated, "a.md")
	h.src.Append("docs", events.FileCreated, "b.go")
	eventstest.Eventually(t, "routing", func() bool { return h.srv.Heads().For("docs") == 2 })

	if d := cmp.Diff([]string{"file.created a.md"}, paths(listChanges(t, a, nil).Events)); d != "" {
		t.Errorf("alice (-want +got):\n%s", d)
	}
	if d := cmp.Diff([]string{"file.created b.go"}, paths(listChanges(t, b, nil).Events)); d != "" {
		t.Errorf("bob (-want +got):\n%s", d)
	}
	eventstest.Eventually(t, "alice's notifications", func() bool {
		return len(an.updated()) >= 2 && an.count(mcp.MethodNotificationResourcesListChanged) >= 1
	})

	// A cursor saved in one session resumes in a new one.
	h.src.Append("docs", events.FileUpdated, "a.md")
	c, _ := httpClient(t, ts, clientOpts{name: "carol"})
	got := listChanges(t, c, map[string]any{"cursor": subA.Cursor})
	want := []string{"file.created a.md", "file.created b.go", "file.updated a.md"}
	if d := cmp.Diff(want, paths(got.Events)); d != "" {
		t.Errorf("new session by cursor (-want +got):\n%s", d)
	}
	got = listChanges(t, c, map[string]any{"cursor": got.Cursor})
	if len(got.Events) != 0 || got.Cursor != "docs:3" {
		t.Errorf("second read: %v %q", paths(got.Events), got.Cursor)
	}
}

func TestServer_ListenStream(t *testing.T) {
	h := start(t, server.Options{}, "docs")
	ts := httptest.NewServer(h.srv.HTTPHandler())
	t.Cleanup(ts.Close)
	c, n := httpClient(t, ts, clientOpts{modern: true})
	if !mcp.IsModernProtocol(c.ProtocolVersion()) {
		t.Fatalf("client negotiated %s", c.ProtocolVersion())
	}
	errs := make(chan error, 1)
	stop, err := c.ListenAsync(context.Background(), mcp.SubscriptionFilter{
		ResourcesListChanged:  true,
		ResourceSubscriptions: []string{"filecast://docs/reports/"},
	}, func(err error) { errs <- err })
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(stop)
	eventstest.Eventually(t, "listen stream", func() bool { return h.srv.Stats().Listens == 1 })
	h.src.Append("docs", events.FileUpdated, "reports/a.md")
	h.src.Append("docs", events.FileUpdated, "other.md")
	h.src.Append("docs", events.FileCreated, "reports/b.md")
	eventstest.Eventually(t, "notifications", func() bool {
		return len(n.updated()) >= 2 && n.count(mcp.MethodNotificationResourcesListChanged) >= 1
	})
	if d := cmp.Diff([]string{"filecast://docs/reports/a.md", "filecast://docs/reports/b.md"}, n.updated()); d != "" {
		t.Errorf("(-want +got):\n%s", d)
	}
	for _, nt := range n.snapshot() {
		if nt.Method == mcp.MethodNotificationResourceUpdated && nt.Params.Meta[mcp.MetaKeySubscriptionID] == nil {
			t.Errorf("notification without subscription id: %+v", nt)
		}
	}
	// A stateless session reads by cursor.
	got := listChanges(t, c, map[string]any{"cursor": "docs:0"})
	if len(got.Events) != 3 {
		t.Errorf("stateless cursor read: %v", paths(got.Events))
	}
	stop()
	eventstest.Eventually(t, "listen stream closed", func() bool { return h.srv.Stats().Listens == 0 })
	select {
	case err := <-errs:
		t.Errorf("listen: %v", err)
	default:
	}
}
