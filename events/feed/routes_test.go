package feed_test

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/filecast/filecast/events"
	"github.com/filecast/filecast/events/feed"
	"github.com/filecast/filecast/events/wire"
)

func getJSON(t *testing.T, url string, v any) *http.Response {
	t.Helper()
	res, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	if res.StatusCode != http.StatusOK {
		return res
	}
	defer res.Body.Close()
	if err := json.NewDecoder(res.Body).Decode(v); err != nil {
		t.Fatalf("decode %s: %v", url, err)
	}
	return res
}

func TestFeed_Changes_Paging(t *testing.T) {
	fx := newFixture(t, feed.Options{})
	stored := fx.appendN(250)
	base := fx.srv.URL + "/v1/workspaces/docs/changes"

	var got []events.Event
	cursor := "0"
	for range 10 {
		var page events.Page
		if res := getJSON(t, base+"?cursor="+cursor, &page); res.StatusCode != 200 {
			t.Fatalf("status %d", res.StatusCode)
		}
		if len(page.Events) > feed.DefaultLimit {
			t.Fatalf("page of %d events, default limit is %d", len(page.Events), feed.DefaultLimit)
		}
		got = append(got, page.Events...)
		cursor = strconv.FormatUint(page.Next, 10)
		if !page.HasMore {
			break
		}
	}
	if diff := cmp.Diff(stored, got, cmpopts.EquateApproxTime(time.Microsecond)); diff != "" {
		t.Errorf("paged events (-want +got):\n%s", diff)
	}
	if cursor != "250" {
		t.Errorf("final cursor %s, want 250", cursor)
	}

	tests := []struct {
		query   string
		n       int
		next    uint64
		hasMore bool
	}{
		{"cursor=docs:240", 10, 250, false},
		{"cursor=240&limit=3", 3, 243, true},
		{"limit=5000", 250, 250, false}, // clamped to 1000
		{"cursor=250", 0, 250, false},   // at the head: empty, cursor is the head
		{"cursor=other:7", 100, 100, true},
	}
	for _, tt := range tests {
		var page events.Page
		if res := getJSON(t, base+"?"+tt.query, &page); res.StatusCode != 200 {
			t.Fatalf("%s: status %d", tt.query, res.StatusCode)
		}
		if len(page.Events) != tt.n || page.Next != tt.next || page.HasMore != tt.hasMore {
			t.Errorf("%s: %d events, next %d, has_more %v; want %d, %d, %v",
				tt.query, len(page.Events), page.Next, page.HasMore, tt.n, tt.next, tt.hasMore)
		}
		if page.Events == nil {
			t.Errorf("%s: events is null, want []", tt.query)
		}
	}
}

func TestFeed_Changes_Errors(t *testing.T) {
	fx := newFixture(t, feed.Options{})
	fx.appendN(10)
	fx.src.Trim("docs", 5)
	tests := []struct {
		path   string
		status int
		code   string
	}{
		{"docs/changes?limit=abc", 400, "bad_request"},
		{"docs/changes?limit=0", 400, "bad_request"},
		{"docs/changes?limit=-3", 400, "bad_request"},
		{"docs/changes?wait=soon", 400, "bad_request"},
		{"docs/changes?wait=-1s", 400, "bad_request"},
		{"docs/changes?cursor=x:y:z", 400, "bad_cursor"},
		{"docs/changes?cursor=2", 410, "cursor_expired"},
		{"nope/changes", 404, "unknown_workspace"},
	}
	for _, tt := range tests {
		res, err := http.Get(fx.srv.URL + "/v1/workspaces/" + tt.path)
		if err != nil {
			t.Fatal(err)
		}
		if e := errorBody(t, res, tt.status); e.Code != tt.code {
			t.Errorf("%s: code %q, want %q (%s)", tt.path, e.Code, tt.code, e.Message)
		}
	}
}

func TestFeed_Files(t *testing.T) {
	fx := newFixture(t, feed.Options{})
	write := func(rel, content string) {
		p := filepath.Join(fx.dir, filepath.FromSlash(rel))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("reports/q3.json", `{"q":3}`)
	write("reports/deep/x.txt", "hello")
	write("picture", "\x89PNG\r\n\x1a\n0000")
	write("notes.txt", "notes")
	outside := t.TempDir()
	if err := os.WriteFile(filepath.Join(outside, "secret"), []byte("s"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(outside, "secret"), filepath.Join(fx.dir, "link")); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(fx.dir, "huge.bin"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(filepath.Join(fx.dir, "huge.bin"), events.MaxReadSize+1); err != nil {
		t.Fatal(err)
	}
	fx.src.Append("docs", events.Event{Type: events.FileCreated, Path: "reports/q3.json"})

	var list events.Listing
	getJSON(t, fx.srv.URL+"/v1/workspaces/docs/files?prefix=reports/", &list)
	var paths []string
	for _, f := range list.Files {
		paths = append(paths, f.Path)
	}
	if diff := cmp.Diff([]string{"reports/deep/x.txt", "reports/q3.json"}, paths, cmpopts.SortSlices(func(a, b string) bool { return a < b })); diff != "" {
		t.Errorf("listing (-want +got):\n%s", diff)
	}
	if list.Cursor != 1 || list.Workspace != "docs" {
		t.Errorf("listing cursor %d workspace %q", list.Cursor, list.Workspace)
	}

	sum := sha256.Sum256([]byte(`{"q":3}`))
	res, err := http.Get(fx.srv.URL + "/v1/workspaces/docs/files/reports/q3.json")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	want := map[string]string{
		"Content-Type":       "application/json",
		"X-Filecast-Sha256":  hex.EncodeToString(sum[:]),
		"X-Filecast-Version": "1",
		"Etag":               `"` + hex.EncodeToString(sum[:]) + `"`,
	}
	for k, v := range want {
		if got := res.Header.Get(k); got != v {
			t.Errorf("header %s = %q, want %q", k, got, v)
		}
	}
	if res.StatusCode != 200 || string(body) != `{"q":3}` {
		t.Errorf("read: %d %q", res.StatusCode, body)
	}

	req, _ := http.NewRequest(http.MethodGet, fx.srv.URL+"/v1/workspaces/docs/files/reports/q3.json", nil)
	req.Header.Set("If-None-Match", want["Etag"])
	if res, err := http.DefaultClient.Do(req); err != nil || res.StatusCode != http.StatusNotModified {
		t.Errorf("conditional read: %v %v, want 304", res.StatusCode, err)
	}

	for _, tt := range []struct{ path, ct string }{
		{"picture", "image/png"},
		{"notes.txt", "text/plain; charset=utf-8"},
	} {
		res, err := http.Get(fx.srv.URL + "/v1/workspaces/docs/files/" + tt.path)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if got := res.Header.Get("Content-Type"); got != tt.ct {
			t.Errorf("%s: Content-Type %q, want %q", tt.path, got, tt.ct)
		}
	}

	errs := []struct {
		path   string
		status int
		code   string
	}{
		{"files/..%2f..%2fetc%2fpasswd", 400, "bad_path"},
		{"files/reports%2f..%2f..%2fsecret", 400, "bad_path"},
		{"files/%2fetc%2fpasswd", 400, "bad_path"},
		{"files/a%00b", 400, "bad_path"},
		{"files/link", 400, "bad_path"},
		{"files/missing.txt", 404, "not_found"},
		{"files/reports", 404, "not_found"},
		{"files/huge.bin", 413, "too_large"},
		{"files?prefix=../x", 400, "bad_path"},
		{"files?prefix=/abs", 400, "bad_path"},
	}
	for _, tt := range errs {
		res, err := http.Get(fx.srv.URL + "/v1/workspaces/docs/" + tt.path)
		if err != nil {
			t.Fatal(err)
		}
		if e := errorBody(t, res, tt.status); e.Code != tt.code {
			t.Errorf("%s: code %q, want %q (%s)", tt.path, e.Code, tt.code, e.Message)
		}
	}
}

func TestFeed_Workspaces(t *testing.T) {
	fx := newFixture(t, feed.Options{})
	fx.src.AddWorkspace("src", t.TempDir())
	fx.appendN(3)
	var list wire.WorkspaceList
	getJSON(t, fx.srv.URL+"/v1/workspaces", &list)
	want := []events.WorkspaceInfo{{Name: "docs", Head: 3}, {Name: "src", Head: 0}}
	if diff := cmp.Diff(want, list.Workspaces); diff != "" {
		t.Errorf("workspaces (-want +got):\n%s", diff)
	}
}
