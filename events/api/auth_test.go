package api_test

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/filecast/filecast/events"
	"github.com/filecast/filecast/events/api"
	"github.com/filecast/filecast/events/feed"
	"github.com/filecast/filecast/events/feed/feedtest"
	"github.com/filecast/filecast/events/wire"
)

const secret = "0123456789abcdef" // 16 characters, the minimum

func TestParseToken(t *testing.T) {
	tests := []struct {
		spec string
		want api.Token
		err  string // a part of the error, "" when valid
	}{
		{spec: secret, want: api.Token{Secret: secret}},
		{spec: "  ci=" + secret + "\n", want: api.Token{Name: "ci", Secret: secret}},
		{spec: "ci=" + secret + ",ws=docs+src,ro,rate=2.5",
			want: api.Token{Name: "ci", Secret: secret, Workspaces: []string{"docs", "src"}, ReadOnly: true, Rate: 2.5}},
		{spec: "r=" + secret + ",readonly,ws=docs,ws=src+docs",
			want: api.Token{Name: "r", Secret: secret, Workspaces: []string{"docs", "src"}, ReadOnly: true}},
		// base64 secrets: '+' '/' and '=' padding are part of the secret.
		{spec: "abcdefghijklmnop+/Q==", want: api.Token{Secret: "abcdefghijklmnop+/Q=="}},
		{spec: "b64=abcdefghijklmnop+/Q==", want: api.Token{Name: "b64", Secret: "abcdefghijklmnop+/Q=="}},
		// Not a valid name before '=': all of it is the secret.
		{spec: "not a name=" + secret, err: "space"},
		{spec: "x:y=" + secret, want: api.Token{Secret: "x:y=" + secret}},
		{spec: "", err: "at least 16"},
		{spec: "ci=short", err: "at least 16"},
		{spec: "ci=", err: "at least 16"},
		{spec: "ci=" + strings.Repeat("x", api.MaxSecretLen+1), err: "longer than"},
		{spec: "ci=" + secret + "\x01", err: "control"},
		{spec: "ci=" + secret + ",write", err: `unknown option "write"`},
		{spec: "ci=" + secret + ",", err: `unknown option ""`},
		{spec: "ci=" + secret + ",ro=1", err: "unknown option"},
		{spec: "ci=" + secret + ",ws=", err: "not a workspace name"},
		{spec: "ci=" + secret + ",ws=docs+", err: "not a workspace name"},
		{spec: "ci=" + secret + ",ws=../x", err: "not a workspace name"},
		{spec: "ci=" + secret + ",rate=0", err: "rate=0"},
		{spec: "ci=" + secret + ",rate=-1", err: "rate=-1"},
		{spec: "ci=" + secret + ",rate=NaN", err: "rate=NaN"},
		{spec: "ci=" + secret + ",rate=1e9", err: "at most"},
		{spec: "ci=" + secret + ",rate=fast", err: "rate=fast"},
		{spec: secret + "=" + secret, err: "may not contain the secret"},
	}
	for _, tt := range tests {
		t.Run(tt.spec, func(t *testing.T) {
			got, err := api.ParseToken(tt.spec)
			if tt.err != "" {
				if err == nil || !errors.Is(err, api.ErrBadToken) || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("ParseToken = %+v, %v; want an ErrBadToken containing %q", got, err, tt.err)
				}
				if strings.Contains(err.Error(), secret) {
					t.Errorf("the error shows the secret: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if d := cmp.Diff(tt.want, got); d != "" {
				t.Errorf("(-want +got):\n%s", d)
			}
		})
	}
}

func TestToken_String(t *testing.T) {
	tok, err := api.ParseToken("ci=" + secret + ",ws=docs+src,ro,rate=5")
	if err != nil {
		t.Fatal(err)
	}
	if got, want := tok.String(), "ci,ws=docs+src,ro,rate=5"; got != want {
		t.Errorf("String = %q, want %q", got, want)
	}
	if !tok.Scoped() || (api.Token{Name: "x", Secret: secret, Rate: 5}).Scoped() {
		t.Error("Scoped is wrong")
	}
}

// FuzzParseToken: any input is a token or an ErrBadToken without the
// secret in it; a token's String never shows the secret and its spec
// reads back the same.
func FuzzParseToken(f *testing.F) {
	for _, s := range []string{secret, "ci=" + secret + ",ws=a+b,ro,rate=3", "a=b=c,ro", ",,,", "x=" + secret + ",rate=1e-300"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, spec string) {
		tok, err := api.ParseToken(spec)
		if err != nil {
			if !errors.Is(err, api.ErrBadToken) {
				t.Fatalf("error %v is not an ErrBadToken", err)
			}
			return
		}
		if len(tok.Secret) < api.MinSecretLen || strings.ContainsAny(tok.Secret, ", \t\n") {
			t.Fatalf("secret %q accepted", tok.Secret)
		}
		if strings.Contains(tok.String(), tok.Secret) {
			t.Fatalf("String %q shows the secret", tok.String())
		}
		again := tok.Secret
		if tok.Name != "" {
			again = tok.Name + "=" + again
		}
		if rest := strings.TrimPrefix(tok.String(), tok.Name); tok.Name != "" || !strings.HasPrefix(rest, "(unnamed)") {
			again += rest
		} else {
			again += strings.TrimPrefix(rest, "(unnamed)")
		}
		back, err := api.ParseToken(again)
		if err != nil {
			t.Fatalf("%q read back: %v", again, err)
		}
		if d := cmp.Diff(tok, back); d != "" {
			t.Fatalf("%q read back differently (-first +again):\n%s", again, d)
		}
	})
}

// scopedServer serves docs and src with writes and locks (recorded, not
// real) and a webhook-like route outside the workspaces.
func scopedServer(t *testing.T, opts api.Options) (*httptest.Server, *recordingLocker) {
	t.Helper()
	src := feedtest.New()
	src.AddWorkspace("docs", t.TempDir())
	src.AddWorkspace("src", t.TempDir())
	lk := &recordingLocker{}
	opts.Locker = lk
	opts.Extra = func(mux *http.ServeMux) {
		mux.HandleFunc("GET /v1/webhooks", func(w http.ResponseWriter, r *http.Request) { _, _ = io.WriteString(w, "{}") })
		mux.HandleFunc("POST /v1/webhooks", func(w http.ResponseWriter, r *http.Request) { _, _ = io.WriteString(w, "{}") })
	}
	fd := feed.New(src, feed.Options{})
	srv := httptest.NewServer(api.New(src, fd, opts))
	t.Cleanup(func() {
		fd.Close()
		srv.CloseClientConnections()
		srv.Close()
	})
	return srv, lk
}

func TestNew_ScopedTokens(t *testing.T) {
	const (
		full    = "full-secret-0123456789"
		docs    = "docs-secret-0123456789"
		ro      = "ro-secret-0123456789"
		docsRO  = "docs-ro-secret-0123456789"
		lockBdy = `{"path":"a.md"}`
	)
	srv, _ := scopedServer(t, api.Options{Tokens: []api.Token{
		{Name: "full", Secret: full},
		{Name: "docs", Secret: docs, Workspaces: []string{"docs"}},
		{Name: "ro", Secret: ro, ReadOnly: true},
		{Name: "docs-ro", Secret: docsRO, Workspaces: []string{"docs"}, ReadOnly: true},
	}})
	tests := []struct {
		secret, method, path, body string
		status                     int
	}{
		{full, "GET", "/v1/workspaces/src/changes", "", 200},
		{full, "PUT", "/v1/workspaces/src/files/a.md", "x", 200},
		{full, "POST", "/v1/webhooks", "{}", 200},

		{docs, "GET", "/v1/workspaces/docs/changes", "", 200},
		{docs, "GET", "/v1/workspaces/docs/files", "", 200},
		{docs, "GET", "/v1/workspaces/docs/locks", "", 200},
		{docs, "PUT", "/v1/workspaces/docs/files/a.md", "x", 200},
		{docs, "POST", "/v1/workspaces/docs/locks", lockBdy, 201},
		{docs, "GET", "/v1/workspaces/src/changes", "", 403},
		{docs, "GET", "/v1/workspaces/src/events", "", 403},
		{docs, "GET", "/v1/workspaces/src/files/a.md", "", 403},
		{docs, "PUT", "/v1/workspaces/src/files/a.md", "x", 403},
		{docs, "DELETE", "/v1/workspaces/src/locks/lk_x", "", 403},
		{docs, "GET", "/v1/workspaces/%73rc/changes", "", 403},  // "src" escaped
		{docs, "GET", "/v1/workspaces/%64ocs/changes", "", 200}, // "docs" escaped
		{docs, "GET", "/v1/workspaces/nope/changes", "", 403},   // no hint that it does not exist
		{docs, "GET", "/v1/webhooks", "", 403},
		{docs, "POST", "/v1/webhooks", "{}", 403},
		{docs, "GET", "/v1/nothing", "", 404},

		{ro, "GET", "/v1/workspaces/src/changes", "", 200},
		{ro, "GET", "/v1/workspaces/src/locks", "", 200},
		{ro, "GET", "/v1/webhooks", "", 200},
		{ro, "PUT", "/v1/workspaces/src/files/a.md", "x", 403},
		{ro, "DELETE", "/v1/workspaces/src/files/a.md", "", 403},
		{ro, "POST", "/v1/workspaces/src/locks", lockBdy, 403},
		{ro, "PATCH", "/v1/workspaces/src/locks/lk_x", "{}", 403},
		{ro, "DELETE", "/v1/workspaces/src/locks/lk_x", "", 403},
		{ro, "POST", "/v1/webhooks", "{}", 403},

		{docsRO, "GET", "/v1/workspaces/docs/files", "", 200},
		{docsRO, "PUT", "/v1/workspaces/docs/files/a.md", "x", 403},
		{docsRO, "GET", "/v1/workspaces/src/files", "", 403},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%s %s %s", strings.Split(tt.secret, "-secret")[0], tt.method, tt.path), func(t *testing.T) {
			res := do(t, tt.method, srv.URL+tt.path, auth(tt.secret), strings.NewReader(tt.body))
			if res.StatusCode != tt.status {
				b, _ := io.ReadAll(res.Body)
				t.Fatalf("status %d, want %d: %s", res.StatusCode, tt.status, b)
			}
			if tt.status == 403 {
				if code := errorCode(t, res); code != api.CodeForbidden {
					t.Errorf("code %q", code)
				}
			}
		})
	}

	// The listing shows a limited token only its workspaces.
	for secret, want := range map[string][]string{full: {"docs", "src"}, ro: {"docs", "src"}, docs: {"docs"}, docsRO: {"docs"}} {
		res := do(t, "GET", srv.URL+"/v1/workspaces", auth(secret), nil)
		list := decode[wire.WorkspaceList](t, res)
		var got []string
		for _, ws := range list.Workspaces {
			got = append(got, ws.Name)
		}
		if d := cmp.Diff(want, got); d != "" {
			t.Errorf("workspaces for %s (-want +got):\n%s", secret, d)
		}
	}
}

// TestNew_TokenNameIsHolder: a lock taken without a holder is the token's.
func TestNew_TokenNameIsHolder(t *testing.T) {
	srv, lk := scopedServer(t, api.Options{Tokens: []api.Token{{Name: "reviewer", Secret: secret, Workspaces: []string{"docs"}}}})
	res := do(t, "POST", srv.URL+"/v1/workspaces/docs/locks", auth(secret), strings.NewReader(`{"path":"a.md"}`))
	if res.StatusCode != http.StatusCreated {
		t.Fatalf("status %d", res.StatusCode)
	}
	lk.mu.Lock()
	defer lk.mu.Unlock()
	if lk.last.Holder != "reviewer" {
		t.Errorf("holder %q, want the token's name", lk.last.Holder)
	}
}

// rateLimited checks a 429 answer.
func rateLimited(t *testing.T, res *http.Response) {
	t.Helper()
	if res.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("status %d, want 429", res.StatusCode)
	}
	secs, err := strconv.Atoi(res.Header.Get("Retry-After"))
	if err != nil || secs < 1 || secs > 2 {
		t.Errorf("Retry-After %q, want 1 or 2 seconds", res.Header.Get("Retry-After"))
	}
	if code := errorCode(t, res); code != api.CodeRateLimited {
		t.Errorf("code %q", code)
	}
}

func TestNew_RateLimit(t *testing.T) {
	const slow, other = "slow-secret-0123456789", "other-secret-0123456789"
	srv, _ := scopedServer(t, api.Options{
		ClientRate: 1,
		Tokens:     []api.Token{{Name: "slow", Secret: slow, Rate: 1}, {Name: "other", Secret: other}},
	})
	// Rate 1 has a burst of 2: the third request in a row is refused.
	for i := range 2 {
		if res := do(t, "GET", srv.URL+"/v1/workspaces", auth(slow), nil); res.StatusCode != 200 {
			t.Fatalf("request %d: status %d", i+1, res.StatusCode)
		}
	}
	rateLimited(t, do(t, "GET", srv.URL+"/v1/workspaces", auth(slow), nil))
	// Another token is not affected, nor is /healthz.
	for range 5 {
		if res := do(t, "GET", srv.URL+"/v1/workspaces", auth(other), nil); res.StatusCode != 200 {
			t.Fatalf("other token: status %d", res.StatusCode)
		}
	}
	if res := do(t, "GET", srv.URL+"/healthz", nil, nil); res.StatusCode != 200 {
		t.Fatalf("healthz: status %d", res.StatusCode)
	}
	// Guessing counts against the address: 401, 401, then 429.
	for i := range 2 {
		if res := do(t, "GET", srv.URL+"/v1/workspaces", auth("wrong-secret-0123456789"), nil); res.StatusCode != 401 {
			t.Fatalf("guess %d: status %d", i+1, res.StatusCode)
		}
	}
	rateLimited(t, do(t, "GET", srv.URL+"/v1/workspaces", nil, nil))
	// The tokens still work from that address.
	if res := do(t, "GET", srv.URL+"/v1/workspaces", auth(other), nil); res.StatusCode != 200 {
		t.Fatalf("other token after guesses: status %d", res.StatusCode)
	}
}

func TestNew_RateLimitPerClientWithoutTokens(t *testing.T) {
	srv, _ := scopedServer(t, api.Options{ClientRate: 1})
	for i := range 2 {
		if res := do(t, "GET", srv.URL+"/v1/workspaces/docs/files", nil, nil); res.StatusCode != 200 {
			t.Fatalf("request %d: status %d", i+1, res.StatusCode)
		}
	}
	rateLimited(t, do(t, "PUT", srv.URL+"/v1/workspaces/docs/files/a.md", nil, strings.NewReader("x")))

	// A negative rate turns the limit off.
	srv, _ = scopedServer(t, api.Options{ClientRate: -1})
	for i := range 50 {
		if res := do(t, "GET", srv.URL+"/v1/workspaces", nil, nil); res.StatusCode != 200 {
			t.Fatalf("request %d without a limit: status %d", i+1, res.StatusCode)
		}
	}
}

func TestNew_RequestLimits(t *testing.T) {
	srv, _ := scopedServer(t, api.Options{})
	base := srv.URL + "/v1/workspaces/docs"
	many := func(name string, n int, value string) string {
		q := url.Values{}
		for i := range n {
			q.Add(name, fmt.Sprintf("%s%d", value, i))
		}
		return q.Encode()
	}
	tests := []struct {
		name   string
		path   string
		header map[string]string
		status int
		code   string
		msg    string
	}{
		{"long URL", "/files/" + strings.Repeat("a/", api.MaxURLLen/2), nil, 414, api.CodeURITooLong, "limit is 16384"},
		{"big headers", "/files", map[string]string{"X-Big": strings.Repeat("h", api.MaxHeaderBytes)}, 431, api.CodeHeadersTooLarge, "limit is 65536"},
		{"too many parameters", "/events?" + many("x", api.MaxQueryValues+1, ""), nil, 400, "bad_request", "parameters"},
		{"too many path filters", "/events?" + many("path", events.MaxGlobs+1, "*.md"), nil, 400, "bad_glob", "256"},
		{"too long a glob", "/events?path=" + strings.Repeat("a", events.MaxGlobLen+1), nil, 400, "bad_glob", ""},
		{"too long a path", "/files/" + strings.Repeat("p", 4097), nil, 400, "bad_path", ""},
		{"long path within the URL limit", "/files/" + strings.Repeat(strings.Repeat("%C3%A9", 100)+"/", 13) + "x", nil, 404, "not_found", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := do(t, "GET", base+tt.path, tt.header, nil)
			if res.StatusCode != tt.status {
				b, _ := io.ReadAll(res.Body)
				t.Fatalf("status %d, want %d: %.300s", res.StatusCode, tt.status, b)
			}
			d := decode[wire.ErrorBody](t, res).Error
			if d.Code != tt.code || !strings.Contains(d.Message, tt.msg) {
				t.Errorf("error %+v, want code %q mentioning %q", d, tt.code, tt.msg)
			}
		})
	}
}

func TestRequireToken(t *testing.T) {
	next := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, "hello "+api.TokenName(r.Context()))
	})
	if h := api.RequireToken(nil, next); fmt.Sprint(h) != fmt.Sprint(next) {
		t.Error("without tokens RequireToken must return next")
	}
	srv := httptest.NewServer(api.RequireToken([]api.Token{{Name: "agent", Secret: secret, Rate: 1}}, next))
	t.Cleanup(srv.Close)
	tests := []struct {
		name   string
		header map[string]string
		query  string
		status int
		body   string
	}{
		{"no token", nil, "", 401, ""},
		{"wrong token", auth("x" + secret), "", 401, ""},
		{"no access_token query", nil, "?access_token=" + secret, 401, ""},
		{"token", auth(secret), "", 200, "hello agent"},
		{"token again", auth(secret), "", 200, "hello agent"},
		{"over the rate", auth(secret), "", 429, ""},
	}
	for _, tt := range tests {
		res := do(t, "POST", srv.URL+"/mcp"+tt.query, tt.header, nil)
		b, _ := io.ReadAll(res.Body)
		if res.StatusCode != tt.status || (tt.body != "" && string(b) != tt.body) {
			t.Errorf("%s: %d %q, want %d %q", tt.name, res.StatusCode, b, tt.status, tt.body)
		}
		if tt.status == 401 && !strings.HasPrefix(res.Header.Get("WWW-Authenticate"), "Bearer") {
			t.Errorf("%s: WWW-Authenticate %q", tt.name, res.Header.Get("WWW-Authenticate"))
		}
		if tt.status == 429 && res.Header.Get("Retry-After") == "" {
			t.Errorf("%s: no Retry-After", tt.name)
		}
	}
}
