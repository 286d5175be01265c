package dashboard_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/filecast/filecast/events"
	"github.com/filecast/filecast/events/dashboard"
)

func newServer(t *testing.T, opts dashboard.Options) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(dashboard.Handler(opts))
	t.Cleanup(srv.Close)
	return srv
}

func get(t *testing.T, url string, header http.Header) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header[k] = v
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatalf("read %s: %v", url, err)
	}
	return res, string(b)
}

func TestHandler_Files(t *testing.T) {
	srv := newServer(t, dashboard.Options{})
	tests := []struct {
		path     string
		ctype    string
		contains string
	}{
		{"/", "text/html; charset=utf-8", `id="events"`},
		{"/dashboard/app.js", "text/javascript; charset=utf-8", "new EventSource("},
		{"/dashboard/app.css", "text/css; charset=utf-8", ".pill"},
		{"/dashboard/icon.svg", "image/svg+xml", "<svg"},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			res, body := get(t, srv.URL+tt.path, nil)
			if res.StatusCode != http.StatusOK {
				t.Fatalf("status %d, want 200; body %q", res.StatusCode, body)
			}
			got := map[string]string{
				"Content-Type":            res.Header.Get("Content-Type"),
				"Content-Security-Policy": res.Header.Get("Content-Security-Policy"),
				"X-Content-Type-Options":  res.Header.Get("X-Content-Type-Options"),
				"Referrer-Policy":         res.Header.Get("Referrer-Policy"),
				"Cache-Control":           res.Header.Get("Cache-Control"),
			}
			want := map[string]string{
				"Content-Type":            tt.ctype,
				"Content-Security-Policy": dashboard.ContentSecurityPolicy,
				"X-Content-Type-Options":  "nosniff",
				"Referrer-Policy":         "no-referrer",
				"Cache-Control":           "no-cache",
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("headers (-want +got):\n%s", diff)
			}
			if !strings.HasPrefix(dashboard.ContentSecurityPolicy, "default-src 'self'") {
				t.Errorf("CSP %q does not start with default-src 'self'", dashboard.ContentSecurityPolicy)
			}
			if !strings.Contains(body, tt.contains) {
				t.Errorf("body does not contain %q", tt.contains)
			}
			if res.Header.Get("ETag") == "" {
				t.Error("no ETag")
			}
		})
	}
}

// TestHandler_Offline checks that the page loads nothing from other sites
// and never builds HTML from strings.
func TestHandler_Offline(t *testing.T) {
	srv := newServer(t, dashboard.Options{})
	_, page := get(t, srv.URL+"/", nil)
	_, js := get(t, srv.URL+"/dashboard/app.js", nil)
	_, css := get(t, srv.URL+"/dashboard/app.css", nil)
	external := regexp.MustCompile(`(?i)https?://|["'(]//[a-z0-9-]`)
	for name, body := range map[string]string{"index.html": page, "app.js": js, "app.css": css} {
		if m := external.FindString(body); m != "" {
			t.Errorf("%s refers to %q; the page must work offline", name, m)
		}
	}
	if m := regexp.MustCompile(`@import|url\(|@font-face`).FindString(css); m != "" {
		t.Errorf("app.css uses %q; the page loads no other files", m)
	}
	for _, bad := range []string{"innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval("} {
		if strings.Contains(js, bad) {
			t.Errorf("app.js uses %s; insert server values with textContent", bad)
		}
	}
}

// TestHandler_VersionedAssets checks that the page names its assets with
// their content hash and that those URLs may be cached for good.
func TestHandler_VersionedAssets(t *testing.T) {
	srv := newServer(t, dashboard.Options{})
	_, page := get(t, srv.URL+"/", nil)
	for _, name := range []string{"app.js", "app.css", "icon.svg"} {
		m := regexp.MustCompile(`"dashboard/` + regexp.QuoteMeta(name) + `\?v=([0-9a-f]{16})"`).FindStringSubmatch(page)
		if m == nil {
			t.Errorf("the page does not refer to dashboard/%s?v=<hash>", name)
			continue
		}
		res, _ := get(t, srv.URL+"/dashboard/"+name+"?v="+m[1], nil)
		if got, want := res.Header.Get("Cache-Control"), "public, max-age=31536000, immutable"; got != want {
			t.Errorf("%s?v=%s: Cache-Control %q, want %q", name, m[1], got, want)
		}
		res, _ = get(t, srv.URL+"/dashboard/"+name+"?v=0000000000000000", nil)
		if got, want := res.Header.Get("Cache-Control"), "no-cache"; got != want {
			t.Errorf("%s with a stale hash: Cache-Control %q, want %q", name, got, want)
		}
	}
}

func TestHandler_NotModified(t *testing.T) {
	srv := newServer(t, dashboard.Options{})
	res, _ := get(t, srv.URL+"/dashboard/app.js", nil)
	etag := res.Header.Get("ETag")
	res, body := get(t, srv.URL+"/dashboard/app.js", http.Header{"If-None-Match": {etag}})
	if res.StatusCode != http.StatusNotModified || body != "" {
		t.Errorf("If-None-Match %s: status %d with %d bytes, want 304 and none", etag, res.StatusCode, len(body))
	}
}

func TestHandler_Stats(t *testing.T) {
	want := dashboard.Stats{MCPSessions: 3, SSESubscribers: 5, Workspaces: []string{"docs", "src"}, Version: "1.2.3",
		Problems: []events.Problem{{Code: events.ProblemWorkspaceUnavailable, Workspace: "src", Message: "its folder is missing",
			Since: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}},
		Watchers: []dashboard.Watcher{{Workspace: "docs", Kind: "poll", PollIntervalMS: 1000, Reason: "the workspace folder is on nfs4"}, {Workspace: "src", Kind: "notify"}}}
	srv := newServer(t, dashboard.Options{Stats: func() dashboard.Stats { return want }})
	before := time.Now().Add(-time.Second)
	res, body := get(t, srv.URL+dashboard.PathStats, nil)
	if res.StatusCode != http.StatusOK {
		t.Fatalf("status %d: %s", res.StatusCode, body)
	}
	if ct := res.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type %q, want application/json", ct)
	}
	if cc := res.Header.Get("Cache-Control"); cc != "no-store" {
		t.Errorf("Cache-Control %q, want no-store", cc)
	}
	var raw map[string]any
	if err := json.Unmarshal([]byte(body), &raw); err != nil {
		t.Fatalf("decode %q: %v", body, err)
	}
	for _, key := range []string{"mcp_sessions", "sse_subscribers", "workspaces", "version", "server_time", "problems", "watchers"} {
		if _, ok := raw[key]; !ok {
			t.Errorf("stats JSON %s has no %q", body, key)
		}
	}
	var got struct {
		dashboard.Stats
		ServerTime time.Time `json:"server_time"`
	}
	if err := json.Unmarshal([]byte(body), &got); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want, got.Stats); diff != "" {
		t.Errorf("stats (-want +got):\n%s", diff)
	}
	if got.ServerTime.Before(before) || got.ServerTime.After(time.Now().Add(time.Second)) {
		t.Errorf("server_time %v is not now", got.ServerTime)
	}
}

func TestHandler_StatsNil(t *testing.T) {
	srv := newServer(t, dashboard.Options{})
	_, body := get(t, srv.URL+dashboard.PathStats, nil)
	var got map[string]any
	if err := json.Unmarshal([]byte(body), &got); err != nil {
		t.Fatalf("decode %q: %v", body, err)
	}
	if diff := cmp.Diff([]any{}, got["workspaces"]); diff != "" {
		t.Errorf("workspaces without Stats (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]any{}, got["problems"]); diff != "" {
		t.Errorf("problems without Stats (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]any{}, got["watchers"]); diff != "" {
		t.Errorf("watchers without Stats (-want +got):\n%s", diff)
	}
	if got["mcp_sessions"] != 0.0 {
		t.Errorf("mcp_sessions = %v, want 0", got["mcp_sessions"])
	}
}

func TestHandler_Errors(t *testing.T) {
	srv := newServer(t, dashboard.Options{})
	tests := []struct {
		method, path string
		status       int
		code         string
	}{
		{http.MethodGet, "/dashboard/nope.js", http.StatusNotFound, "no_route"},
		{http.MethodGet, "/dashboard/", http.StatusNotFound, "no_route"},
		{http.MethodGet, "/dashboard/assets/app.js", http.StatusNotFound, "no_route"},
		{http.MethodGet, "/index.html", http.StatusNotFound, "no_route"},
		{http.MethodGet, "/v1/workspaces/docs/locks", http.StatusNotFound, "no_route"},
		{http.MethodPost, "/", http.StatusMethodNotAllowed, "method_not_allowed"},
		{http.MethodDelete, "/dashboard/stats", http.StatusMethodNotAllowed, "method_not_allowed"},
	}
	for _, tt := range tests {
		t.Run(tt.method+" "+tt.path, func(t *testing.T) {
			req, err := http.NewRequest(tt.method, srv.URL+tt.path, nil)
			if err != nil {
				t.Fatal(err)
			}
			res, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer res.Body.Close()
			var body struct {
				Error struct{ Code, Message string }
			}
			if err := json.NewDecoder(res.Body).Decode(&body); err != nil {
				t.Fatalf("decode error body: %v", err)
			}
			if res.StatusCode != tt.status || body.Error.Code != tt.code {
				t.Errorf("got %d %q, want %d %q", res.StatusCode, body.Error.Code, tt.status, tt.code)
			}
			if res.Header.Get("Content-Security-Policy") == "" {
				t.Error("no CSP on an error")
			}
			if tt.status == http.StatusMethodNotAllowed && res.Header.Get("Allow") != "GET, HEAD" {
				t.Errorf("Allow %q, want GET, HEAD", res.Header.Get("Allow"))
			}
		})
	}
}

func TestHandler_Head(t *testing.T) {
	srv := newServer(t, dashboard.Options{})
	res, err := http.Head(srv.URL + "/dashboard/app.css")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusOK || res.Header.Get("Content-Type") != "text/css; charset=utf-8" {
		t.Errorf("HEAD: %d %q", res.StatusCode, res.Header.Get("Content-Type"))
	}
}

func TestIsAsset(t *testing.T) {
	tests := map[string]bool{
		"/":                   true,
		"/dashboard/app.js":   true,
		"/dashboard/app.css":  true,
		"/dashboard/icon.svg": true,
		"/dashboard/stats":    false,
		"/dashboard/":         false,
		"/v1/workspaces":      false,
		"/app.js":             false,
	}
	for p, want := range tests {
		if got := dashboard.IsAsset(p); got != want {
			t.Errorf("IsAsset(%q) = %v, want %v", p, got, want)
		}
	}
}

func BenchmarkHandler_Index(b *testing.B) {
	h := dashboard.Handler(dashboard.Options{})
	req := httptest.NewRequest(http.MethodGet, "/", nil)
	b.ReportAllocs()
	for b.Loop() {
		h.ServeHTTP(httptest.NewRecorder(), req)
	}
}
