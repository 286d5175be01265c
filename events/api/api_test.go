package api_test

import (
	"bufio"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/filecast/filecast/events"
	"github.com/filecast/filecast/events/api"
	"github.com/filecast/filecast/events/feed"
	"github.com/filecast/filecast/events/feed/feedtest"
	"github.com/filecast/filecast/events/wire"
)

func newServer(t *testing.T, opts api.Options) (*httptest.Server, *feedtest.Source) {
	t.Helper()
	src := feedtest.New()
	src.AddWorkspace("docs", t.TempDir())
	fd := feed.New(src, feed.Options{})
	srv := httptest.NewServer(api.New(src, fd, opts))
	t.Cleanup(func() {
		fd.Close()
		srv.CloseClientConnections()
		srv.Close()
	})
	return srv, src
}

func do(t *testing.T, method, url string, header map[string]string, body io.Reader) *http.Response {
	t.Helper()
	req, err := http.NewRequest(method, url, body)
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
	return res
}

func errorCode(t *testing.T, res *http.Response) string {
	t.Helper()
	if ct := res.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type %q, want application/json", ct)
	}
	var body wire.ErrorBody
	if err := json.NewDecoder(res.Body).Decode(&body); err != nil {
		t.Fatalf("decode error body: %v", err)
	}
	if body.Error.Message == "" {
		t.Error("error without a message")
	}
	return body.Error.Code
}

func TestNew_Auth(t *testing.T) {
	var sawName string
	srv, _ := newServer(t, api.Options{
		Tokens: []api.Token{{Name: "ci", Secret: "s3cret"}, {Name: "alice", Secret: "other"}, {Name: "empty"}},
		Extra: func(mux *http.ServeMux) {
			mux.HandleFunc("GET /v1/whoami", func(w http.ResponseWriter, r *http.Request) {
				sawName = api.TokenName(r.Context())
			})
		},
	})
	tests := []struct {
		name   string
		method string
		path   string
		header map[string]string
		status int
		who    string
	}{
		{"no token", "GET", "/v1/workspaces", nil, 401, ""},
		{"wrong token", "GET", "/v1/workspaces", map[string]string{"Authorization": "Bearer nope"}, 401, ""},
		{"prefix of a token", "GET", "/v1/workspaces", map[string]string{"Authorization": "Bearer s3cre"}, 401, ""},
		{"empty bearer", "GET", "/v1/workspaces", map[string]string{"Authorization": "Bearer "}, 401, ""},
		{"basic scheme", "GET", "/v1/workspaces", map[string]string{"Authorization": "Basic czNjcmV0"}, 401, ""},
		{"right token", "GET", "/v1/workspaces", map[string]string{"Authorization": "Bearer s3cret"}, 200, ""},
		{"scheme is case-insensitive", "GET", "/v1/whoami", map[string]string{"Authorization": "bearer other"}, 200, "alice"},
		{"token name reaches handlers", "GET", "/v1/whoami", map[string]string{"Authorization": "Bearer s3cret"}, 200, "ci"},
		{"access_token only on the event stream", "GET", "/v1/whoami?access_token=s3cret", nil, 401, ""},
		{"wrong access_token", "GET", "/v1/workspaces?access_token=x", nil, 401, ""},
		{"access_token not on POST", "POST", "/v1/whoami?access_token=s3cret", nil, 401, ""},
		{"unknown route needs a token too", "GET", "/v1/nothing", nil, 401, ""},
		{"healthz is open", "GET", "/healthz", nil, 200, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sawName = ""
			res := do(t, tt.method, srv.URL+tt.path, tt.header, nil)
			if res.StatusCode != tt.status {
				t.Fatalf("status %d, want %d", res.StatusCode, tt.status)
			}
			if tt.status == 401 {
				if got := res.Header.Get("WWW-Authenticate"); !strings.HasPrefix(got, "Bearer") {
					t.Errorf("WWW-Authenticate %q", got)
				}
				if code := errorCode(t, res); code != "unauthorized" {
					t.Errorf("code %q", code)
				}
			}
			if sawName != tt.who {
				t.Errorf("TokenName = %q, want %q", sawName, tt.who)
			}
		})
	}
}

// TestNew_TokenInURL: only the event stream takes its token from the URL
// (access_token); every other route wants the Authorization header and
// says so.
func TestNew_TokenInURL(t *testing.T) {
	srv, _ := newServer(t, api.Options{
		Tokens: []api.Token{{Name: "ci", Secret: "s3cret"}},
		Extra: func(mux *http.ServeMux) {
			mux.HandleFunc("GET /dashboard/stats", func(http.ResponseWriter, *http.Request) {})
			mux.HandleFunc("GET /metrics", func(http.ResponseWriter, *http.Request) {})
		},
	})
	for _, p := range []string{
		"/v1/workspaces?access_token=s3cret",
		"/v1/workspaces/docs/files?access_token=s3cret",
		"/v1/workspaces/docs/files/a.md?access_token=s3cret",
		"/v1/workspaces/docs/changes?access_token=s3cret",
		"/dashboard/stats?access_token=s3cret",
		"/metrics?token=s3cret",
	} {
		res := do(t, "GET", srv.URL+p, nil, nil)
		if res.StatusCode != 401 {
			t.Errorf("GET %s: status %d, want 401", p, res.StatusCode)
			continue
		}
		var body wire.ErrorBody
		if err := json.NewDecoder(res.Body).Decode(&body); err != nil {
			t.Fatal(err)
		}
		if m := body.Error.Message; !strings.Contains(m, "Authorization: Bearer") || !strings.Contains(m, "event stream") {
			t.Errorf("GET %s: message %q does not say where the token goes", p, m)
		}
	}
	res := do(t, "GET", srv.URL+"/v1/workspaces/docs/events?access_token=s3cret", map[string]string{"Last-Event-ID": "0"}, nil)
	if res.StatusCode != 200 {
		t.Errorf("the event stream with access_token: %d", res.StatusCode)
	}
	res = do(t, "GET", srv.URL+"/v1/workspaces/docs/events?token=s3cret", nil, nil)
	if res.StatusCode != 401 {
		t.Errorf("the event stream with token=: %d, want 401 (the parameter is access_token)", res.StatusCode)
	}
}

func TestNew_EventStreamWithAccessToken(t *testing.T) {
	srv, src := newServer(t, api.Options{Tokens: []api.Token{{Name: "web", Secret: "tok"}}})
	src.Append("docs", events.Event{Type: events.FileCreated, Path: "a.md"})
	res := do(t, "GET", srv.URL+"/v1/workspaces/docs/events?access_token=tok", map[string]string{"Last-Event-ID": "0"}, nil)
	if res.StatusCode != 200 || res.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("status %d, type %q", res.StatusCode, res.Header.Get("Content-Type"))
	}
	br := bufio.NewReader(res.Body)
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			t.Fatal(err)
		}
		if strings.HasPrefix(line, "data: ") {
			if !strings.Contains(line, `"path":"a.md"`) {
				t.Errorf("data line %q", line)
			}
			return
		}
	}
}

func TestNew_Healthz(t *testing.T) {
	srv, _ := newServer(t, api.Options{})
	res := do(t, "GET", srv.URL+"/healthz", nil, nil)
	body, _ := io.ReadAll(res.Body)
	if res.StatusCode != 200 || strings.TrimSpace(string(body)) != `{"status":"ok"}` {
		t.Errorf("healthz: %d %s", res.StatusCode, body)
	}
}

func TestNew_RoutingErrors(t *testing.T) {
	srv, _ := newServer(t, api.Options{
		Extra: func(mux *http.ServeMux) {
			mux.HandleFunc("GET /v1/boom", func(http.ResponseWriter, *http.Request) { panic("boom") })
		},
	})
	tests := []struct {
		method, path string
		status       int
		code         string
	}{
		{"GET", "/nope", 404, "no_route"},
		{"GET", "/v1/workspaces/docs/unknown", 404, "no_route"},
		{"POST", "/v1/workspaces", 405, "method_not_allowed"},
		{"DELETE", "/v1/workspaces/docs/events", 405, "method_not_allowed"},
		{"GET", "/v1/boom", 500, "internal"},
		{"GET", "/v1/workspaces/nope/changes", 404, "unknown_workspace"},
	}
	for _, tt := range tests {
		res := do(t, tt.method, srv.URL+tt.path, nil, nil)
		if res.StatusCode != tt.status {
			t.Errorf("%s %s: status %d, want %d", tt.method, tt.path, res.StatusCode, tt.status)
		}
		if code := errorCode(t, res); code != tt.code {
			t.Errorf("%s %s: code %q, want %q", tt.method, tt.path, code, tt.code)
		}
		if tt.status == 405 && !strings.Contains(res.Header.Get("Allow"), "GET") {
			t.Errorf("%s %s: Allow %q", tt.method, tt.path, res.Header.Get("Allow"))
		}
	}
}

func TestNew_MaxBody(t *testing.T) {
	srv, _ := newServer(t, api.Options{
		MaxBody: 1000,
		Extra: func(mux *http.ServeMux) {
			mux.HandleFunc("POST /v1/echo", func(w http.ResponseWriter, r *http.Request) {
				b, err := io.ReadAll(r.Body)
				if err != nil {
					wire.WriteError(w, err)
					return
				}
				_, _ = w.Write(b)
			})
		},
	})
	// A known length over the limit is refused before the handler runs;
	// a streamed body is cut when it passes the limit.
	for _, tt := range []struct {
		name string
		body io.Reader
		size int
		want int
	}{
		{"small", strings.NewReader(strings.Repeat("a", 1000)), 1000, 200},
		{"declared too large", strings.NewReader(strings.Repeat("a", 1001)), 1001, 413},
		{"streamed too large", io.MultiReader(strings.NewReader(strings.Repeat("a", 5000))), 5000, 413},
	} {
		t.Run(tt.name, func(t *testing.T) {
			res := do(t, "POST", srv.URL+"/v1/echo", nil, tt.body)
			if res.StatusCode != tt.want {
				t.Fatalf("status %d, want %d", res.StatusCode, tt.want)
			}
			if tt.want == 413 {
				if code := errorCode(t, res); code != "too_large" {
					t.Errorf("code %q", code)
				}
			}
		})
	}
}

func TestCheckListen(t *testing.T) {
	tok := []api.Token{{Name: "ci", Secret: "x"}}
	tests := []struct {
		addr   string
		tokens []api.Token
		ok     bool
	}{
		{"127.0.0.1:8080", nil, true},
		{"127.1.2.3:8080", nil, true},
		{"[::1]:8080", nil, true},
		{"localhost:8080", nil, true},
		{":8080", nil, false},
		{"0.0.0.0:80", nil, false},
		{"[::]:80", nil, false},
		{"192.168.1.2:80", nil, false},
		{"example.com:80", nil, false},
		{":8080", []api.Token{{Name: "blank"}}, false},
		{":8080", tok, true},
		{"192.168.1.2:80", tok, true},
		{"no-port", nil, false},
	}
	for _, tt := range tests {
		err := api.CheckListen(tt.addr, tt.tokens)
		if (err == nil) != tt.ok {
			t.Errorf("CheckListen(%q, %d tokens) = %v, want ok=%v", tt.addr, len(tt.tokens), err, tt.ok)
		}
		if err != nil && tt.addr != "no-port" {
			if !errors.Is(err, api.ErrOpenListen) || !strings.Contains(err.Error(), "--token") || !strings.Contains(err.Error(), "127.0.0.1") {
				t.Errorf("CheckListen(%q): unclear error %q", tt.addr, err)
			}
		}
	}
}
