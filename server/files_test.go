package server_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/mark3labs/mcp-go/client"

	"github.com/filecast/filecast/events"
	"github.com/filecast/filecast/events/eventstest"
	"github.com/filecast/filecast/events/hub"
	"github.com/filecast/filecast/events/hub/hubtest"
	"github.com/filecast/filecast/server"
	"github.com/filecast/filecast/tools"
)

// transports runs f once with a session over stdio and once with one
// over streamable HTTP, both on srv.
func transports(t *testing.T, srv *server.Server, f func(t *testing.T, c *client.Client)) {
	t.Run("stdio", func(t *testing.T) {
		c, _ := (&harness{srv: srv}).stdioClient(t, clientOpts{})
		f(t, c)
	})
	t.Run("http", func(t *testing.T) {
		ts := httptest.NewServer(srv.HTTPHandler())
		t.Cleanup(ts.Close)
		c, _ := httpClient(t, ts, clientOpts{})
		f(t, c)
	})
}

// writeDisk writes a file in the stack's workspace on disk and waits for
// its event; it returns the event.
func writeDisk(t *testing.T, st *hubtest.Stack, rel string, data []byte) events.Event {
	t.Helper()
	before := st.Head(t, "docs")
	abs := st.Path("docs", rel)
	must(t, os.MkdirAll(filepath.Dir(abs), 0o755))
	must(t, os.WriteFile(abs, data, 0o644))
	return st.Next(t, "docs", before)
}

func hexSum(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

func content(t *testing.T, r tools.ReadFileResult) []byte {
	t.Helper()
	if r.Encoding == "base64" {
		b, err := base64.StdEncoding.DecodeString(r.Content)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	return []byte(r.Content)
}

// TestServer_ReadFile reads files of a real hub's workspace over stdio and
// streamable HTTP: text as text, binary as base64, big files in parts
// whose concatenation is the file, each with the sha256 of the whole file
// and a cursor no later than the file's last event; and every error a
// path can earn.
func TestServer_ReadFile(t *testing.T) {
	st := hubtest.Start(t, hubtest.Options{})
	srv := serve(t, st.Hub, server.Options{})
	text := []byte("héllo wörld\n")
	textEv := writeDisk(t, st, "notes/a.md", text)
	bin := []byte{0, 0xff, 1, 2, 3}
	writeDisk(t, st, "img.bin", bin)
	big := bytes.Repeat([]byte("0123456789abcdé\n"), 20000) // 340,000 bytes
	bigEv := writeDisk(t, st, "big.txt", big)
	must(t, os.Symlink("/etc/hostname", st.Path("docs", "out.txt")))
	must(t, os.MkdirAll(st.Path("docs", ".git"), 0o755))
	must(t, os.WriteFile(st.Path("docs", ".git/config"), []byte("[core]\n"), 0o644))

	transports(t, srv, func(t *testing.T, c *client.Client) {
		r := decode[tools.ReadFileResult](t, call(t, c, "read_file", map[string]any{"path": "notes/a.md"}))
		if r.Content != string(text) || r.Encoding != "text" || r.Size != int64(len(text)) || r.SHA256 != hexSum(text) || r.Offset != nil {
			t.Errorf("text file: %+v", r)
		}
		if cur, err := events.ParseCursor(r.Cursor); err != nil || cur.For("docs") < textEv.Seq {
			t.Errorf("cursor %q is before the file's event %d", r.Cursor, textEv.Seq)
		}

		r = decode[tools.ReadFileResult](t, call(t, c, "read_file", map[string]any{"path": "img.bin", "workspace": "docs"}))
		if r.Encoding != "base64" || !bytes.Equal(content(t, r), bin) || r.SHA256 != hexSum(bin) {
			t.Errorf("binary file: %+v", r)
		}

		res := call(t, c, "read_file", map[string]any{"path": "big.txt"})
		wantToolError(t, res, "big.txt", "340000 bytes", "offset and length")

		// In parts: each cut to whole characters, together the file.
		var got []byte
		for off := int64(0); off < int64(len(big)); {
			r := decode[tools.ReadFileResult](t, call(t, c, "read_file", map[string]any{"path": "big.txt", "offset": off, "length": 100000}))
			if r.Offset == nil || *r.Offset != off || r.Length == nil || r.Encoding != "text" {
				t.Fatalf("part at %d: offset %v length %v encoding %s", off, r.Offset, r.Length, r.Encoding)
			}
			if r.Size != int64(len(big)) || r.SHA256 != bigEv.SHA256 {
				t.Fatalf("part at %d: size %d sha256 %s, want those of the whole file", off, r.Size, r.SHA256)
			}
			got = append(got, r.Content...)
			off += *r.Length
		}
		if !bytes.Equal(got, big) {
			t.Errorf("the parts make %d bytes, not the file", len(got))
		}

		for _, tc := range []struct {
			args map[string]any
			want []string
		}{
			{map[string]any{"path": "missing.md"}, []string{"missing.md", "no such file", "list_files"}},
			{map[string]any{"path": "notes"}, []string{"a folder"}},
			{map[string]any{"path": "../etc/passwd"}, []string{"leaves the workspace"}},
			{map[string]any{"path": "/etc/passwd"}, []string{"relative"}},
			{map[string]any{"path": "out.txt"}, []string{"outside the workspace"}},
			{map[string]any{"path": ".git/config"}, []string{"version-control"}},
			{map[string]any{"path": "notes/a.md", "workspace": "nope"}, []string{`unknown workspace "nope"`, "docs"}},
			{map[string]any{"path": "notes/a.md", "length": 300000}, []string{"length", "262144"}},
			{map[string]any{"path": "notes/a.md", "offset": -1}, []string{"offset"}},
		} {
			wantToolError(t, call(t, c, "read_file", tc.args), tc.want...)
		}
	})
}

// TestServer_ListFiles lists a real hub's workspace over stdio and
// streamable HTTP: globs, pages that together hold every matching file
// once, the same cursor on every page, and a change made after the
// listing that list_changes from its cursor reports; and the errors.
func TestServer_ListFiles(t *testing.T) {
	st := hubtest.Start(t, hubtest.Options{})
	srv := serve(t, st.Hub, server.Options{})
	var all []string
	for i := range 7 {
		p := fmt.Sprintf("src/f%d.go", i)
		writeDisk(t, st, p, []byte(p))
		all = append(all, p)
	}
	writeDisk(t, st, "docs/readme.md", []byte("# readme\n"))

	transports(t, srv, func(t *testing.T, c *client.Client) {
		r := decode[tools.ListFilesResult](t, call(t, c, "list_files", map[string]any{"paths": []string{"*.md"}}))
		if len(r.Files) != 1 || r.Files[0].Path != "docs/readme.md" || r.Files[0].Size != 9 || r.Files[0].SHA256 != hexSum([]byte("# readme\n")) || r.NextPage != "" {
			t.Errorf("*.md: %+v", r)
		}
		if _, err := time.Parse(tools.TimeFormat, r.Files[0].Modified); err != nil {
			t.Errorf("modified %q: %v", r.Files[0].Modified, err)
		}

		// Pages of 3: every file once, in order, one cursor.
		var paths []string
		args := map[string]any{"paths": []string{"src/**/*.go"}, "limit": 3}
		var cursor string
		for n := 0; ; n++ {
			r := decode[tools.ListFilesResult](t, call(t, c, "list_files", args))
			if cursor != "" && r.Cursor != cursor {
				t.Errorf("page %d has cursor %s, the first had %s", n, r.Cursor, cursor)
			}
			cursor = r.Cursor
			for _, f := range r.Files {
				paths = append(paths, f.Path)
			}
			if r.NextPage == "" {
				break
			}
			if n > 5 {
				t.Fatal("paging does not end")
			}
			// A file changed between pages: the cursor stays that of the
			// first page, so list_changes from it will tell.
			if n == 0 {
				writeDisk(t, st, "src/f0.go", []byte("changed between pages in "+t.Name()))
			}
			args["page"] = r.NextPage
		}
		if d := cmp.Diff(all, paths); d != "" {
			t.Errorf("pages (-want +got):\n%s", d)
		}

		// List, change a file, list_changes from the listing's cursor:
		// the change is there, and nothing from before the listing.
		r = decode[tools.ListFilesResult](t, call(t, c, "list_files", nil))
		ev := writeDisk(t, st, "src/f3.go", []byte("after the listing in "+t.Name()))
		ch := listChanges(t, c, map[string]any{"cursor": r.Cursor})
		if d := cmp.Diff([]string{"file.updated src/f3.go"}, pathsOf(ch.Events)); d != "" {
			t.Errorf("list_changes after the listing (-want +got):\n%s", d)
		}
		if len(ch.Events) == 1 && ch.Events[0].Seq != ev.Seq {
			t.Errorf("seq %d, want %d", ch.Events[0].Seq, ev.Seq)
		}

		for _, tc := range []struct {
			args map[string]any
			want []string
		}{
			{map[string]any{"paths": []string{"src/[a-"}}, []string{"invalid glob", "src/[a-"}},
			{map[string]any{"page": "not a page"}, []string{"invalid page", "next_page"}},
			{map[string]any{"page": base64RawURL("other\x003\x00a.md")}, []string{"invalid page", "workspace other"}},
			{map[string]any{"paths": []string{".git/**"}}, []string{"version-control"}},
			{map[string]any{"workspace": "nope"}, []string{`unknown workspace "nope"`}},
			{map[string]any{"limit": 1001}, []string{"limit", "1000"}},
		} {
			wantToolError(t, call(t, c, "list_files", tc.args), tc.want...)
		}
	})
}

func base64RawURL(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }

// pathsOf lists "type path" of events.
func pathsOf(evs []events.Event) []string { return paths(evs) }

// TestServer_ListLocks lists the locks of a real hub over stdio and
// streamable HTTP: this session's and another holder's, filtered by
// globs, never with a token.
func TestServer_ListLocks(t *testing.T) {
	st := hubtest.Start(t, hubtest.Options{})
	srv := serve(t, st.Hub, server.Options{})
	other, err := st.Hub.Lock(context.Background(), events.LockRequest{Workspace: "docs", Path: "reports/q3.md", Holder: "other", TTL: time.Minute})
	must(t, err)
	transports(t, srv, func(t *testing.T, c *client.Client) {
		mine := decode[tools.LockResult](t, call(t, c, "lock", map[string]any{"path": "a.md", "mode": "shared"}))
		t.Cleanup(func() { call(t, c, "unlock", map[string]any{"path": "a.md", "lock_token": mine.LockToken}) })
		res := call(t, c, "list_locks", nil)
		r := decode[tools.ListLocksResult](t, res)
		want := []tools.LockEntry{
			{Path: "a.md", Holder: mine.Holder, Mode: "shared", FencingToken: mine.FencingToken, ExpiresAt: mine.ExpiresAt},
			{Path: "reports/q3.md", Holder: "other", Mode: "exclusive", FencingToken: other.FencingToken, ExpiresAt: other.ExpiresAt.UTC().Format(time.RFC3339)},
		}
		if d := cmp.Diff(want, r.Locks); d != "" {
			t.Errorf("locks (-want +got):\n%s", d)
		}
		if strings.Contains(text(res), mine.LockToken) || strings.Contains(text(res), other.Token) {
			t.Errorf("list_locks shows a lock token: %s", text(res))
		}
		r = decode[tools.ListLocksResult](t, call(t, c, "list_locks", map[string]any{"paths": []string{"reports/"}}))
		if len(r.Locks) != 1 || r.Locks[0].Path != "reports/q3.md" {
			t.Errorf("reports/: %+v", r.Locks)
		}
		wantToolError(t, call(t, c, "list_locks", map[string]any{"paths": []string{"{a"}}), "invalid glob")
		wantToolError(t, call(t, c, "list_locks", map[string]any{"workspace": "nope"}), "unknown workspace")
	})
}

// racing is a hub whose reads and listings are overtaken by a change: the
// moment a file has been read or the files listed, another file is
// written and its event has reached the hub's head. A tool that took its
// cursor after reading would then hand out a cursor past a change its
// answer does not show.
type racing struct {
	*hub.Hub
	t    *testing.T
	n    int
	last uint64 // the seq of the last change
}

func (r *racing) change(ctx context.Context) {
	r.n++
	ev, err := r.Hub.WriteFile(ctx, events.WriteRequest{Workspace: "docs", Path: "race.txt", Content: fmt.Appendf(nil, "change %d", r.n), Actor: "api:race"})
	if err != nil {
		r.t.Errorf("write: %v", err)
		return
	}
	r.last = ev.Seq
	eventstest.Eventually(r.t, "the hub's head", func() bool {
		wss, err := r.Hub.Workspaces(ctx)
		return err == nil && wss[0].Head >= ev.Seq
	})
}

func (r *racing) ReadFile(ctx context.Context, ws, path string, rg events.Range) ([]byte, events.FileInfo, error) {
	data, info, err := r.Hub.ReadFile(ctx, ws, path, rg)
	if path == "race.txt" {
		r.change(ctx)
	}
	return data, info, err
}

func (r *racing) Files(ctx context.Context, ws, prefix string) (events.Listing, error) {
	l, err := r.Hub.Files(ctx, ws, prefix)
	r.change(ctx)
	return l, err
}

// TestServer_CursorsNeverRunAhead checks that read_file and list_files
// hand out a cursor their answer is at least as new as: a change that
// lands while they answer comes from list_changes with that cursor.
func TestServer_CursorsNeverRunAhead(t *testing.T) {
	st := hubtest.Start(t, hubtest.Options{})
	writeDisk(t, st, "race.txt", []byte("change 0"))
	src := &racing{Hub: st.Hub, t: t}
	srv := serve(t, src, server.Options{})
	c, _ := (&harness{srv: srv}).stdioClient(t, clientOpts{})

	r := decode[tools.ReadFileResult](t, call(t, c, "read_file", map[string]any{"path": "race.txt"}))
	if r.Content != "change 0" {
		t.Fatalf("read %q", r.Content)
	}
	if !reported(t, c, r.Cursor, src.last) {
		t.Errorf("read_file's cursor %s runs ahead of its content: list_changes from it misses the change at seq %d", r.Cursor, src.last)
	}
	l := decode[tools.ListFilesResult](t, call(t, c, "list_files", nil))
	if !slices.ContainsFunc(l.Files, func(f tools.FileEntry) bool { return f.Path == "race.txt" }) {
		t.Fatalf("listing: %+v", l.Files)
	}
	if !reported(t, c, l.Cursor, src.last) {
		t.Errorf("list_files' cursor %s runs ahead of its listing: list_changes from it misses the change at seq %d", l.Cursor, src.last)
	}
}

// reported reports whether list_changes from cursor returns the event at
// seq.
func reported(t *testing.T, c *client.Client, cursor string, seq uint64) bool {
	t.Helper()
	ch := listChanges(t, c, map[string]any{"cursor": cursor, "limit": 1000})
	return slices.ContainsFunc(ch.Events, func(ev events.Event) bool { return ev.Seq == seq && ev.Path == "race.txt" })
}

// TestServer_ListChangesDetail checks that list_changes gives compact
// events by default, over a real hub, and the whole event with detail
// full, the same as the hub's log holds.
func TestServer_ListChangesDetail(t *testing.T) {
	st := hubtest.Start(t, hubtest.Options{})
	srv := serve(t, st.Hub, server.Options{})
	ev := writeDisk(t, st, "src/main.go", []byte("package main\n"))
	c, _ := (&harness{srv: srv}).stdioClient(t, clientOpts{})

	res := call(t, c, "list_changes", map[string]any{"cursor": "docs:0"})
	got := decode[tools.ListChangesResult](t, res)
	if len(got.Events) != 1 {
		t.Fatalf("events: %v", got.Events)
	}
	want := fmt.Sprintf(`{"events":[{"seq":%d,"type":"file.created","path":"src/main.go","size":13,"actor":"fs","timestamp":"%s"}],"cursor":"docs:%d"}`,
		ev.Seq, ev.Time.UTC().Format(tools.TimeFormat), ev.Seq)
	if text(res) != want {
		t.Errorf("compact result\n got %s\nwant %s", text(res), want)
	}
	got = decode[tools.ListChangesResult](t, call(t, c, "list_changes", map[string]any{"cursor": "docs:0", "detail": "full"}))
	if d := cmp.Diff([]events.Event{ev}, got.Events); d != "" {
		t.Errorf("full events (-log +result):\n%s", d)
	}
}
