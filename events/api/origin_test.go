package api_test

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/filecast/filecast/events/api"
	"github.com/filecast/filecast/events/feed"
	"github.com/filecast/filecast/events/hub/hubtest"
)

type guardCase struct {
	name    string
	method  string
	host    string            // Host header; "" keeps the server's address
	headers map[string]string // Origin, Sec-Fetch-*, …
	want    int
	code    string // the error code of a refusal
	cors    bool   // Access-Control-Allow-Origin names the Origin
}

// runGuard sends each case to srv and checks the status, the error code
// and the CORS headers.
func runGuard(t *testing.T, srv *httptest.Server, path string, cases []guardCase) {
	t.Helper()
	for _, tt := range cases {
		method := tt.method
		if method == "" {
			method = "GET"
		}
		req, err := http.NewRequest(method, srv.URL+path, nil)
		if err != nil {
			t.Fatal(err)
		}
		if tt.host != "" {
			req.Host = tt.host
		}
		for k, v := range tt.headers {
			req.Header.Set(k, v)
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if res.StatusCode != tt.want {
			t.Errorf("%s: status %d, want %d (%s)", tt.name, res.StatusCode, tt.want, body)
			continue
		}
		if tt.code != "" && !strings.Contains(string(body), `"code":"`+tt.code+`"`) {
			t.Errorf("%s: body %s, want code %s", tt.name, body, tt.code)
		}
		acao := res.Header.Get("Access-Control-Allow-Origin")
		if tt.cors != (acao != "" && acao == tt.headers["Origin"]) {
			t.Errorf("%s: Access-Control-Allow-Origin %q, want CORS %v", tt.name, acao, tt.cors)
		}
	}
}

// TestGuard_NoTokens: a server without tokens answers only to loopback
// Host names (421 for others: DNS rebinding) and refuses pages of other
// sites (403), before the handler runs.
func TestGuard_NoTokens(t *testing.T) {
	t.Parallel()
	var reached atomic.Int64
	srv := httptest.NewServer(api.Guard{AllowedOrigins: []string{"https://app.example.com", "tools.example:8443"}}.Wrap(
		http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { reached.Add(1) })))
	t.Cleanup(srv.Close)
	own := "http://" + srv.Listener.Addr().String()
	port := own[strings.LastIndex(own, ":"):]
	cases := []guardCase{
		{name: "a program", want: 200},
		{name: "localhost", host: "localhost" + port, want: 200},
		{name: "LOCALHOST.", host: "LOCALHOST.", want: 200},
		{name: "another loopback address", host: "127.7.7.7:80", want: 200},
		{name: "IPv6 loopback", host: "[::1]" + port, want: 200},
		{name: "rebound name", host: "evil.example" + port, want: 421, code: "misdirected_request"},
		{name: "rebound name without port", host: "evil.example", want: 421, code: "misdirected_request"},
		{name: "a name ending like loopback", host: "127.0.0.1.evil.example", want: 421},
		{name: "a name starting like localhost", host: "localhost.evil.example" + port, want: 421},
		{name: "the machine's LAN address", host: "192.168.1.20" + port, want: 421},
		{name: "same origin", headers: map[string]string{"Origin": own}, want: 200},
		{name: "a loopback page", headers: map[string]string{"Origin": "http://localhost:3000"}, want: 200},
		{name: "another site", method: "PUT", headers: map[string]string{"Origin": "https://evil.example"}, want: 403, code: "forbidden"},
		{name: "another site on the same host name", headers: map[string]string{"Origin": "http://evil.example" + port}, want: 403},
		{name: "the null origin", method: "POST", headers: map[string]string{"Origin": "null"}, want: 403},
		{name: "a file page", headers: map[string]string{"Origin": "file://"}, want: 403},
		{name: "an allowed site", method: "POST", headers: map[string]string{"Origin": "https://app.example.com"}, want: 200, cors: true},
		{name: "an allowed host and port", headers: map[string]string{"Origin": "https://tools.example:8443"}, want: 200, cors: true},
		{name: "the allowed host on another port", headers: map[string]string{"Origin": "https://tools.example:9000"}, want: 403},
		{name: "a preflight of an allowed site", method: "OPTIONS", headers: map[string]string{
			"Origin": "https://app.example.com", "Access-Control-Request-Method": "PUT", "Access-Control-Request-Headers": "authorization, content-type"},
			want: 204, cors: true},
		{name: "a preflight of another site", method: "OPTIONS", headers: map[string]string{
			"Origin": "https://evil.example", "Access-Control-Request-Method": "PUT"}, want: 403},
		{name: "a cross-site no-cors request", headers: map[string]string{"Sec-Fetch-Site": "cross-site", "Sec-Fetch-Mode": "no-cors"}, want: 403},
		{name: "a link followed from another site", headers: map[string]string{"Sec-Fetch-Site": "cross-site", "Sec-Fetch-Mode": "navigate"}, want: 200},
		{name: "the page's own request", headers: map[string]string{"Sec-Fetch-Site": "same-origin", "Sec-Fetch-Mode": "cors"}, want: 200},
		// Both checks: a rebound page sends its own name as Host and Origin.
		{name: "a rebound page", method: "PUT", host: "evil.example" + port, headers: map[string]string{"Origin": "http://evil.example" + port}, want: 421},
	}
	runGuard(t, srv, "/x", cases)
	var want int64
	for _, c := range cases {
		if c.want == 200 {
			want++
		}
	}
	if reached := reached.Load(); reached != want {
		t.Errorf("the handler ran %d times, want %d (only for the requests let through)", reached, want)
	}
}

// TestGuard_Tokens: with tokens any Host is served (a hub behind a name),
// but pages of other sites are still refused unless allowed.
func TestGuard_Tokens(t *testing.T) {
	t.Parallel()
	g := api.NewGuard([]api.Token{{Name: "ci", Secret: aliceSecret}}, []string{"https://app.example.com"})
	if !g.AnyHost {
		t.Fatal("NewGuard with a token: AnyHost false")
	}
	if api.NewGuard([]api.Token{{Name: "empty"}}, nil).AnyHost {
		t.Fatal("NewGuard with a token without secret: AnyHost true")
	}
	srv := httptest.NewServer(g.Wrap(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {})))
	t.Cleanup(srv.Close)
	runGuard(t, srv, "/x", []guardCase{
		{name: "a hub behind a name", host: "hub.example", want: 200},
		{name: "its own dashboard", host: "hub.example", headers: map[string]string{"Origin": "https://hub.example"}, want: 200},
		{name: "its own dashboard on port 443", host: "hub.example:443", headers: map[string]string{"Origin": "https://hub.example"}, want: 200},
		{name: "another site", method: "POST", host: "hub.example", headers: map[string]string{"Origin": "https://evil.example"}, want: 403},
		{name: "another port of the same host", host: "hub.example", headers: map[string]string{"Origin": "https://hub.example:8443"}, want: 403},
		{name: "an allowed site", host: "hub.example", headers: map[string]string{"Origin": "https://app.example.com"}, want: 200, cors: true},
	})
}

// TestGuard_UnixSocket: requests over a unix socket (the data folder's
// hub socket, whose clients send "Host: filecast") are not Host-checked.
func TestGuard_UnixSocket(t *testing.T) {
	t.Parallel()
	srv := httptest.NewUnstartedServer(api.Guard{}.Wrap(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {})))
	sock := t.TempDir() + "/s.sock"
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	srv.Listener = ln
	srv.Start()
	t.Cleanup(srv.Close)
	c := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "unix", sock)
	}}}
	res, err := c.Get("http://filecast/x")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != 200 {
		t.Errorf("over a unix socket with Host filecast: %d, want 200", res.StatusCode)
	}
}

// TestRouter_Guard checks the hub's router applies the guard before any
// route runs: a rebound or cross-site write changes nothing.
func TestRouter_Guard(t *testing.T) {
	t.Parallel()
	st := hubtest.Start(t, hubtest.Options{})
	fd := feed.New(st.Hub, feed.Options{})
	srv := httptest.NewServer(api.New(st.Hub, fd, api.Options{AllowedOrigins: []string{"https://app.example.com"}}))
	t.Cleanup(func() { fd.Close(); srv.CloseClientConnections(); srv.Close() })
	mustWriteFile(t, st.Path("docs", "s.txt"), "secret")
	port := srv.URL[strings.LastIndex(srv.URL, ":"):]
	evilHost := map[string]string{"Host": "evil.example" + port}
	evilPage := map[string]string{"Origin": "http://evil.example", "Content-Type": "text/plain"}
	base := srv.URL + "/v1/workspaces/docs"
	// An event stream let through would never end: bound each request.
	client := &http.Client{Timeout: 5 * time.Second}
	for _, tt := range []struct {
		method, url, body string
		header            map[string]string
		want              int
	}{
		{"GET", base + "/files/s.txt", "", evilHost, 421},
		{"GET", base + "/events", "", evilHost, 421},
		{"GET", base + "/changes", "", evilHost, 421},
		{"PUT", base + "/files/s.txt", "pwned", evilHost, 421},
		{"PUT", base + "/files/s.txt", "pwned", evilPage, 403},
		{"DELETE", base + "/files/s.txt", "", evilPage, 403},
		{"POST", base + "/locks", `{"path":"s.txt"}`, evilPage, 403},
		{"GET", base + "/files/s.txt", "", evilPage, 403},
		{"GET", base + "/events", "", evilPage, 403},
		{"GET", srv.URL + "/healthz", "", evilHost, 421},
	} {
		req, err := http.NewRequest(tt.method, tt.url, strings.NewReader(tt.body))
		if err != nil {
			t.Fatal(err)
		}
		for k, v := range tt.header {
			if k == "Host" {
				req.Host = v
			} else {
				req.Header.Set(k, v)
			}
		}
		res, err := client.Do(req)
		if err != nil {
			t.Errorf("%s %s %v: %v, want %d", tt.method, tt.url, tt.header, err, tt.want)
			continue
		}
		body, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if res.StatusCode != tt.want || strings.Contains(string(body), "secret") {
			t.Errorf("%s %s %v: %d %s, want %d", tt.method, tt.url, tt.header, res.StatusCode, body, tt.want)
		}
	}
	if got, _ := os.ReadFile(st.Path("docs", "s.txt")); string(got) != "secret" {
		t.Errorf("s.txt holds %q", got)
	}
	res := do(t, "GET", base+"/locks", nil, nil)
	if l := decode[api.LockList](t, res); len(l.Locks) != 0 {
		t.Errorf("a lock was taken: %+v", l.Locks)
	}
	// An allowed site's page may read, with CORS headers.
	res = do(t, "GET", base+"/files/s.txt", map[string]string{"Origin": "https://app.example.com"}, nil)
	if res.StatusCode != 200 || res.Header.Get("Access-Control-Allow-Origin") != "https://app.example.com" {
		t.Errorf("allowed site: %d, CORS %q", res.StatusCode, res.Header.Get("Access-Control-Allow-Origin"))
	}
}

func TestParseOrigin(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"https://app.example":       "https://app.example",
		"https://app.example/":      "https://app.example",
		"http://10.0.0.5:3000":      "http://10.0.0.5:3000",
		"app.example":               "app.example",
		"app.example:8443":          "app.example:8443",
		" https://app.example.com ": "https://app.example.com",
	} {
		got, err := api.ParseOrigin(in)
		if err != nil || got != want {
			t.Errorf("ParseOrigin(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, in := range []string{"", "*", "null", "ftp://app.example", "https://", "https://app.example/path", "https://u:p@app.example", "https://app.example?x", "app.example/x", "a b"} {
		if _, err := api.ParseOrigin(in); !errors.Is(err, api.ErrBadOrigin) {
			t.Errorf("ParseOrigin(%q) error = %v, want ErrBadOrigin", in, err)
		}
	}
}
