package server_test

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/mcp"

	"github.com/filecast/filecast/events"
	"github.com/filecast/filecast/events/eventstest"
	"github.com/filecast/filecast/events/workspace"
	"github.com/filecast/filecast/server"
	"github.com/filecast/filecast/tools"
)

var testHolder = regexp.MustCompile(`^test-client#[0-9a-f]{4}$`)

// toolSchemas returns, per tool, its sorted input properties, "->" and its
// sorted output properties, checking that every input property and the
// tool itself are described, and with outDescribed every output property
// but those of list_changes.
func toolSchemas(t *testing.T, c *client.Client, outDescribed bool) map[string][]string {
	t.Helper()
	res, err := c.ListTools(context.Background(), mcp.ListToolsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string][]string{}
	for _, tool := range res.Tools {
		b, err := json.Marshal(tool)
		if err != nil {
			t.Fatal(err)
		}
		var raw struct {
			Description  string                              `json:"description"`
			InputSchema  struct{ Properties map[string]any } `json:"inputSchema"`
			OutputSchema struct{ Properties map[string]any } `json:"outputSchema"`
		}
		if err := json.Unmarshal(b, &raw); err != nil {
			t.Fatal(err)
		}
		if raw.Description == "" {
			t.Errorf("%s has no description", tool.Name)
		}
		var in, out []string
		for k, v := range raw.InputSchema.Properties {
			if d, _ := v.(map[string]any)["description"].(string); d == "" {
				t.Errorf("%s.%s has no description", tool.Name, k)
			}
			in = append(in, k)
		}
		for k, v := range raw.OutputSchema.Properties {
			if !outDescribed {
				out = append(out, k)
				continue
			}
			if d, _ := v.(map[string]any)["description"].(string); d == "" && tool.Name != "list_changes" {
				t.Errorf("%s result %s has no description", tool.Name, k)
			}
			out = append(out, k)
		}
		slices.Sort(in)
		slices.Sort(out)
		got[tool.Name] = append(in, append([]string{"->"}, out...)...)
	}
	return got
}

func TestServer_LockToolsListed(t *testing.T) {
	lockTools := map[string][]string{
		"lock":       {"lock_token", "mode", "path", "ttl_seconds", "wait_ms", "workspace", "->", "expires_at", "fencing_token", "holder", "lock_token", "mode", "path", "workspace"},
		"unlock":     {"lock_token", "path", "workspace", "->", "released"},
		"write_file": {"content", "encoding", "lock_token", "path", "workspace", "->", "path", "seq", "sha256", "size", "unchanged", "workspace"},
		"list_locks": {"paths", "workspace", "->", "locks"},
	}
	t.Run("source that can lock", func(t *testing.T) {
		h, _ := startLocking(t, server.Options{}, "docs")
		c, _ := h.stdioClient(t, clientOpts{})
		got := toolSchemas(t, c, true)
		for name, want := range lockTools {
			if d := cmp.Diff(want, got[name]); d != "" {
				t.Errorf("%s (-want +got):\n%s", name, d)
			}
		}
		if len(got) != 9 {
			t.Errorf("tools: %v", got)
		}
	})
	t.Run("source that cannot lock", func(t *testing.T) {
		h := start(t, server.Options{}, "docs")
		ts := httptest.NewServer(h.srv.HTTPHandler())
		t.Cleanup(ts.Close)
		c, _ := httpClient(t, ts, clientOpts{})
		got := toolSchemas(t, c, true)
		for name := range lockTools {
			if _, ok := got[name]; ok {
				t.Errorf("%s is listed for a source that cannot lock", name)
			}
		}
		if len(got) != 5 {
			t.Errorf("tools: %v", got)
		}
	})
}

// callAsync calls a tool on its own goroutine.
func callAsync(c *client.Client, name string, args map[string]any) <-chan *mcp.CallToolResult {
	out := make(chan *mcp.CallToolResult, 1)
	go func() {
		req := mcp.CallToolRequest{}
		req.Params.Name = name
		req.Params.Arguments = args
		res, err := c.CallTool(context.Background(), req)
		if err != nil {
			res = mcp.NewToolResultError("protocol error: " + err.Error())
		}
		out <- res
	}()
	return out
}

func wantToolError(t *testing.T, res *mcp.CallToolResult, parts ...string) {
	t.Helper()
	if !res.IsError {
		t.Fatalf("want isError, got %s", text(res))
	}
	for _, p := range parts {
		if !strings.Contains(text(res), p) {
			t.Errorf("message %q does not contain %q", text(res), p)
		}
	}
}

func TestServer_LockContention(t *testing.T) {
	h, lk := startLocking(t, server.Options{}, "docs")
	ts := httptest.NewServer(h.srv.HTTPHandler())
	t.Cleanup(ts.Close)
	a, _ := h.stdioClient(t, clientOpts{name: "test-client"})
	b, _ := httpClient(t, ts, clientOpts{name: "other-client"})

	began := time.Now()
	la := decode[tools.LockResult](t, call(t, a, "lock", map[string]any{"path": "notes/./new.md"}))
	if !testHolder.MatchString(la.Holder) {
		t.Errorf("holder = %q, want test-client#xxxx", la.Holder)
	}
	if la.LockToken == "" || la.FencingToken == 0 || la.Mode != "exclusive" || la.Workspace != "docs" || la.Path != "notes/new.md" {
		t.Errorf("lock = %+v", la)
	}
	exp, err := time.Parse(time.RFC3339, la.ExpiresAt)
	if err != nil || !strings.HasSuffix(la.ExpiresAt, "Z") {
		t.Fatalf("expires_at %q: %v", la.ExpiresAt, err)
	}
	if d := exp.Sub(began); d < 58*time.Second || d > 61*time.Second {
		t.Errorf("expires_at is %v after the call, want about 60s", d)
	}

	res := call(t, b, "lock", map[string]any{"path": "notes/new.md"})
	wantToolError(t, res, la.Holder, la.ExpiresAt, "exclusive", "wait_ms")
	res = call(t, a, "lock", map[string]any{"path": "notes/new.md"})
	wantToolError(t, res, "this session", "lock_token")

	// b waits; a unlocks; b gets it.
	waiting := callAsync(b, "lock", map[string]any{"path": "notes/new.md", "wait_ms": 20000})
	eventstest.Eventually(t, "b waiting", func() bool { return lk.Waiters() == 1 })
	if r := decode[tools.UnlockResult](t, call(t, a, "unlock", map[string]any{"path": "notes/new.md", "lock_token": la.LockToken})); !r.Released {
		t.Error("released = false")
	}
	var lb tools.LockResult
	select {
	case res := <-waiting:
		lb = decode[tools.LockResult](t, res)
	case <-time.After(10 * time.Second):
		t.Fatal("waiting lock did not return after unlock")
	}
	if !strings.HasPrefix(lb.Holder, "other-client#") || lb.FencingToken <= la.FencingToken || lb.LockToken == la.LockToken {
		t.Errorf("b's lock = %+v after a's %+v", lb, la)
	}

	t.Run("refresh keeps the fencing token", func(t *testing.T) {
		r := decode[tools.LockResult](t, call(t, b, "lock", map[string]any{"path": "notes/new.md", "lock_token": lb.LockToken, "ttl_seconds": 600}))
		if r.FencingToken != lb.FencingToken || r.LockToken != lb.LockToken || r.Holder != lb.Holder {
			t.Errorf("refresh = %+v, was %+v", r, lb)
		}
		if r.ExpiresAt <= lb.ExpiresAt {
			t.Errorf("refresh did not move expires_at: %s, was %s", r.ExpiresAt, lb.ExpiresAt)
		}
		wantToolError(t, call(t, b, "lock", map[string]any{"path": "notes/new.md", "lock_token": "lk_bogus"}), "holds no lock", "without lock_token")
	})

	t.Run("unlock with a wrong token", func(t *testing.T) {
		wantToolError(t, call(t, a, "unlock", map[string]any{"path": "notes/new.md", "lock_token": la.LockToken}), "does not hold the lock", "notes/new.md")
		wantToolError(t, call(t, b, "unlock", map[string]any{"path": "other.md", "lock_token": lb.LockToken}), "does not hold the lock", "other.md")
		if len(lk.Held("docs", "notes/new.md")) != 1 {
			t.Error("a failed unlock released the lock")
		}
	})

	t.Run("shared locks coexist", func(t *testing.T) {
		s1 := decode[tools.LockResult](t, call(t, a, "lock", map[string]any{"path": "s.md", "mode": "shared"}))
		s2 := decode[tools.LockResult](t, call(t, b, "lock", map[string]any{"path": "s.md", "mode": "shared"}))
		if s1.Mode != "shared" || s2.Mode != "shared" || s1.FencingToken == s2.FencingToken {
			t.Errorf("shared locks: %+v %+v", s1, s2)
		}
		wantToolError(t, call(t, b, "lock", map[string]any{"path": "s.md"}), "locked (shared) by "+s1.Holder)
	})
}

func TestServer_WriteFile(t *testing.T) {
	h, lk := startLocking(t, server.Options{MaxWriteSize: 1 << 10}, "docs")
	ts := httptest.NewServer(h.srv.HTTPHandler())
	t.Cleanup(ts.Close)
	a, _ := h.stdioClient(t, clientOpts{name: "test-client"})
	b, _ := httpClient(t, ts, clientOpts{name: "other-client"})
	sum := func(b []byte) string { s := sha256.Sum256(b); return hex.EncodeToString(s[:]) }
	onDisk := func(rel string) string {
		t.Helper()
		data, err := os.ReadFile(filepath.Join(h.src.Dir("docs"), rel))
		if err != nil {
			return "<" + err.Error() + ">"
		}
		return string(data)
	}

	w := decode[tools.WriteFileResult](t, call(t, a, "write_file", map[string]any{"path": "sub/readme.md", "content": "hello\n"}))
	want := tools.WriteFileResult{Size: 6, SHA256: sum([]byte("hello\n")), Seq: 1, Workspace: "docs", Path: "sub/readme.md"}
	if d := cmp.Diff(want, w); d != "" {
		t.Errorf("write text (-want +got):\n%s", d)
	}
	if got := onDisk("sub/readme.md"); got != "hello\n" {
		t.Errorf("on disk: %q", got)
	}
	page, err := h.src.Changes(context.Background(), "docs", 0, 10, 0)
	if err != nil || len(page.Events) != 1 || !regexp.MustCompile(`^mcp:test-client#[0-9a-f]{4}$`).MatchString(page.Events[0].Actor) || page.Events[0].Type != events.FileCreated {
		t.Errorf("log: %+v %v", page.Events, err)
	}

	w = decode[tools.WriteFileResult](t, call(t, a, "write_file", map[string]any{"path": "sub/readme.md", "content": "hello\n", "encoding": "text"}))
	if !w.Unchanged || w.Seq != 0 || w.Size != 6 {
		t.Errorf("identical write = %+v", w)
	}

	bin := []byte{0, 1, 2, 0xff, 'x'}
	w = decode[tools.WriteFileResult](t, call(t, b, "write_file", map[string]any{"path": "img.bin", "content": base64.StdEncoding.EncodeToString(bin), "encoding": "base64"}))
	if w.Size != 5 || w.SHA256 != sum(bin) || w.Seq != 2 || w.Unchanged || onDisk("img.bin") != string(bin) {
		t.Errorf("write base64 = %+v, on disk %q", w, onDisk("img.bin"))
	}

	full := strings.Repeat("a", 1<<10)
	if w := decode[tools.WriteFileResult](t, call(t, a, "write_file", map[string]any{"path": "full.txt", "content": full})); w.Size != 1<<10 {
		t.Errorf("write of exactly the limit = %+v", w)
	}
	full64 := base64.StdEncoding.EncodeToString(make([]byte, 1<<10))
	if w := decode[tools.WriteFileResult](t, call(t, a, "write_file", map[string]any{"path": "full.bin", "content": full64, "encoding": "base64"})); w.Size != 1<<10 {
		t.Errorf("base64 write of exactly the limit = %+v", w)
	}

	for _, tt := range []struct {
		name string
		args map[string]any
		want string
	}{
		{"bad base64", map[string]any{"path": "x.bin", "content": "!!not base64", "encoding": "base64"}, "not valid base64"},
		{"bad encoding", map[string]any{"path": "x.bin", "content": "00", "encoding": "hex"}, `encoding must be "text" or "base64", not "hex"`},
		{"escaping path", map[string]any{"path": "../x.md", "content": "x"}, "leaves the workspace"},
		{"absolute path", map[string]any{"path": "/etc/passwd", "content": "x"}, "relative to the workspace root"},
		{"missing path", map[string]any{"content": "x"}, "path is required"},
		{"too large", map[string]any{"path": "big.txt", "content": strings.Repeat("a", 1<<10+1)}, "at most 1024 bytes"},
		{"too large base64", map[string]any{"path": "big.bin", "content": base64.StdEncoding.EncodeToString(make([]byte, 1<<10+1)), "encoding": "base64"}, "at most 1024 bytes"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			wantToolError(t, call(t, a, "write_file", tt.args), tt.want)
		})
	}
	if _, err := os.Stat(filepath.Join(h.src.Dir("docs"), "big.txt")); err == nil {
		t.Error("an oversize write reached the disk")
	}

	t.Run("locked by another session", func(t *testing.T) {
		la := decode[tools.LockResult](t, call(t, a, "lock", map[string]any{"path": "x.md"}))
		wantToolError(t, call(t, b, "write_file", map[string]any{"path": "x.md", "content": "b's"}), la.Holder, la.ExpiresAt, "wait_ms", "nothing changed")
		if got := onDisk("x.md"); !strings.Contains(got, "no such file") {
			t.Errorf("refused write reached the disk: %q", got)
		}
		w := decode[tools.WriteFileResult](t, call(t, a, "write_file", map[string]any{"path": "x.md", "content": "a's", "lock_token": la.LockToken}))
		page, err := h.src.Changes(context.Background(), "docs", w.Seq-1, 1, 0)
		if err != nil || len(page.Events) != 1 || page.Events[0].Lock == nil || page.Events[0].Lock.Holder != la.Holder {
			t.Errorf("event of the locked write: %+v %v", page.Events, err)
		}
	})

	t.Run("stale token", func(t *testing.T) {
		la := decode[tools.LockResult](t, call(t, a, "lock", map[string]any{"path": "y.md", "ttl_seconds": 5}))
		lk.Advance(6 * time.Second) // a's lock expires
		wantToolError(t, call(t, a, "write_file", map[string]any{"path": "y.md", "content": "late", "lock_token": la.LockToken}),
			"no longer current", "lock again", "read the file again")
		lb := decode[tools.LockResult](t, call(t, b, "lock", map[string]any{"path": "y.md"}))
		wantToolError(t, call(t, a, "write_file", map[string]any{"path": "y.md", "content": "late", "lock_token": la.LockToken}),
			"now held (exclusive) by "+lb.Holder, "lock again")
		if got := onDisk("y.md"); !strings.Contains(got, "no such file") {
			t.Errorf("stale write reached the disk: %q", got)
		}
	})
}

func TestServer_LockArgumentErrors(t *testing.T) {
	h, _ := startLocking(t, server.Options{}, "docs", "src")
	c, _ := h.stdioClient(t, clientOpts{name: "test-client"})
	tests := []struct {
		name string
		tool string
		args map[string]any
		want []string
	}{
		{"lock without workspace", "lock", map[string]any{"path": "a.md"}, []string{"workspace is required", "docs and src"}},
		{"unlock without workspace", "unlock", map[string]any{"path": "a.md", "lock_token": "lk_x"}, []string{"workspace is required", "docs and src"}},
		{"write without workspace", "write_file", map[string]any{"path": "a.md", "content": "x"}, []string{"workspace is required", "docs and src"}},
		{"unknown workspace", "lock", map[string]any{"path": "a.md", "workspace": "nope"}, []string{"unknown workspace", "docs, src"}},
		{"ttl too long", "lock", map[string]any{"path": "a.md", "workspace": "docs", "ttl_seconds": 86401}, []string{"ttl_seconds must be a whole number from 1 to 86400, not 86401"}},
		{"ttl negative", "lock", map[string]any{"path": "a.md", "workspace": "docs", "ttl_seconds": -1}, []string{"from 1 to 86400, not -1"}},
		{"ttl zero", "lock", map[string]any{"path": "a.md", "workspace": "docs", "ttl_seconds": 0}, []string{"from 1 to 86400, not 0"}},
		{"bad mode", "lock", map[string]any{"path": "a.md", "workspace": "docs", "mode": "weird"}, []string{`mode must be "exclusive" or "shared", not "weird"`}},
		{"negative wait", "lock", map[string]any{"path": "a.md", "workspace": "docs", "wait_ms": -5}, []string{"wait_ms must be a whole number from 0 to 300000, not -5"}},
		{"wait too long", "lock", map[string]any{"path": "a.md", "workspace": "docs", "wait_ms": 999999999}, []string{"from 0 to 300000, not 999999999"}},
		{"escaping path", "lock", map[string]any{"path": "a/../../b", "workspace": "docs"}, []string{"leaves the workspace"}},
		{"root path", "lock", map[string]any{"path": ".", "workspace": "docs"}, []string{"workspace root"}},
		{"missing lock_token", "unlock", map[string]any{"path": "a.md", "workspace": "docs"}, []string{"lock_token is required", "unlock takes lock_token (required), path (required) and workspace"}},
		{"empty path", "lock", map[string]any{"path": "", "workspace": "docs"}, []string{"path must not be empty"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			wantToolError(t, call(t, c, tt.tool, tt.args), tt.want...)
		})
	}
	l := decode[tools.LockResult](t, call(t, c, "lock", map[string]any{"path": "a.md", "workspace": "src", "ttl_seconds": 86400, "wait_ms": 300000}))
	if l.Workspace != "src" {
		t.Errorf("lock in src = %+v", l)
	}
}

func TestServer_SessionEndReleasesLocks(t *testing.T) {
	h, lk := startLocking(t, server.Options{}, "docs")
	ts := httptest.NewServer(h.srv.HTTPHandler())
	t.Cleanup(ts.Close)
	b, _ := httpClient(t, ts, clientOpts{name: "other-client"})

	t.Run("HTTP session closed", func(t *testing.T) {
		a, _ := httpClient(t, ts, clientOpts{name: "test-client"})
		decode[tools.LockResult](t, call(t, a, "lock", map[string]any{"path": "a.md"}))
		decode[tools.LockResult](t, call(t, a, "lock", map[string]any{"path": "b.md", "mode": "shared"}))
		// A lock a released itself is not released again.
		lu := decode[tools.LockResult](t, call(t, a, "lock", map[string]any{"path": "c.md"}))
		decode[tools.UnlockResult](t, call(t, a, "unlock", map[string]any{"path": "c.md", "lock_token": lu.LockToken}))
		lc := decode[tools.LockResult](t, call(t, b, "lock", map[string]any{"path": "c.md"}))
		if err := a.Close(); err != nil { // DELETE ends the session before it returns
			t.Fatal(err)
		}
		decode[tools.LockResult](t, call(t, b, "lock", map[string]any{"path": "a.md"}))
		decode[tools.LockResult](t, call(t, b, "lock", map[string]any{"path": "b.md"}))
		if held := lk.Held("docs", "c.md"); len(held) != 1 || held[0].Token != lc.LockToken {
			t.Errorf("c.md: %+v", held)
		}
		if n := lk.Unlocks("not-holder"); n != 0 {
			t.Errorf("%d unlocks of tokens that held nothing", n)
		}
	})

	t.Run("stdio EOF", func(t *testing.T) {
		a, _ := h.stdioClient(t, clientOpts{name: "test-client"})
		decode[tools.LockResult](t, call(t, a, "lock", map[string]any{"path": "d.md", "ttl_seconds": 3600}))
		if err := a.Close(); err != nil {
			t.Fatal(err)
		}
		eventstest.Eventually(t, "stdio session's lock released", func() bool { return len(lk.Held("docs", "d.md")) == 0 })
		decode[tools.LockResult](t, call(t, b, "lock", map[string]any{"path": "d.md"}))
	})
}

func TestServer_LockHolderIsInboxHolder(t *testing.T) {
	h, _ := startLocking(t, server.Options{}, "docs")
	ts := httptest.NewServer(h.srv.HTTPHandler())
	t.Cleanup(ts.Close)
	a, _ := h.stdioClient(t, clientOpts{name: "test-client"})
	b, _ := httpClient(t, ts, clientOpts{name: "other-client"})

	decode[tools.SubscribeResult](t, call(t, a, "subscribe", map[string]any{"exclude_own": true}))
	decode[tools.SubscribeResult](t, call(t, b, "subscribe", map[string]any{"exclude_own": true}))
	la := decode[tools.LockResult](t, call(t, a, "lock", map[string]any{"path": "a.md"}))
	decode[tools.WriteFileResult](t, call(t, a, "write_file", map[string]any{"path": "a.md", "content": "mine", "lock_token": la.LockToken}))
	decode[tools.WriteFileResult](t, call(t, b, "write_file", map[string]any{"path": "b.md", "content": "theirs"}))
	// The lock manager warns the holder before its lock runs out.
	last := h.src.AppendEvent(events.Event{Type: events.LockExpiring, Workspace: "docs", Path: "a.md", Actor: la.Holder,
		Lock: &events.LockInfo{Holder: la.Holder, FencingToken: la.FencingToken, Mode: la.Mode}})
	eventstest.Eventually(t, "routing", func() bool { return h.srv.Heads().For("docs") == last.Seq })

	if d := cmp.Diff([]string{"file.created b.md", "lock.expiring a.md"}, paths(listChanges(t, a, nil).Events)); d != "" {
		t.Errorf("holder's session (-want +got):\n%s", d)
	}
	// exclude_own leaves out b's own write, not a's.
	got := listChanges(t, b, nil).Events
	if d := cmp.Diff([]string{"file.created a.md"}, paths(got)); d != "" {
		t.Errorf("other session (-want +got):\n%s", d)
	}
	if got[0].Lock == nil || got[0].Lock.Holder != la.Holder || got[0].Actor != "mcp:"+la.Holder {
		t.Errorf("a's write: %+v", got[0])
	}
}

// FuzzServer_LockAndWritePath checks that lock and write_file either refuse
// a path with a tool error or act on its clean form inside the workspace.
func FuzzServer_LockAndWritePath(f *testing.F) {
	for _, p := range []string{"a.md", "dir/./b.md", "../x", "/etc/passwd", "a/../../b", "", ".", "a\x00b", "a\nb", `a\b`, "\xb1s\xbe", "dir//c.md", "ü/é.txt"} {
		f.Add(p, "content")
	}
	h, _ := startLocking(f, server.Options{}, "docs")
	c, _ := h.stdioClient(f, clientOpts{name: "test-client"})
	root := h.src.Dir("docs")
	f.Fuzz(func(t *testing.T, path, content string) {
		// What the server sees: JSON turns invalid UTF-8 into U+FFFD.
		path, content = viaJSON(t, path), viaJSON(t, content)
		res := call(t, c, "lock", map[string]any{"path": path, "ttl_seconds": 1})
		if !res.IsError {
			l := decode[tools.LockResult](t, res)
			if want, err := workspace.Clean(path); err != nil || l.Path != want {
				t.Fatalf("lock %q: path %q (clean: %q, %v)", path, l.Path, want, err)
			}
			decode[tools.UnlockResult](t, call(t, c, "unlock", map[string]any{"path": path, "lock_token": l.LockToken}))
		}
		res = call(t, c, "write_file", map[string]any{"path": path, "content": content})
		if res.IsError {
			return
		}
		w := decode[tools.WriteFileResult](t, res)
		want, err := workspace.Clean(path)
		if err != nil || w.Path != want {
			t.Fatalf("write %q: path %q (clean: %q, %v)", path, w.Path, want, err)
		}
		abs := filepath.Join(root, filepath.FromSlash(w.Path))
		if rel, err := filepath.Rel(root, abs); err != nil || rel == ".." || strings.HasPrefix(rel, "../") {
			t.Fatalf("write %q landed outside the workspace: %s", path, abs)
		}
		if got, err := os.ReadFile(abs); err != nil || string(got) != content {
			t.Fatalf("write %q: on disk %q, %v", path, got, err)
		}
	})
}

func viaJSON(t *testing.T, s string) string {
	b, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	var out string
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	return out
}
