package webhook_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/filecast/filecast/events/natsd/natstest"
	"github.com/filecast/filecast/events/webhook"
)

// TestRegister_RefusesForbiddenAddresses registers with AllowPrivate off.
func TestRegister_RefusesForbiddenAddresses(t *testing.T) {
	srv := natstest.Start(t)
	opts := fastOpts()
	opts.AllowPrivate = false
	opts.Resolver = &fakeResolver{hosts: map[string]func(int) []string{
		"loopback.test": always("127.0.0.1"),
		"mixed.test":    always("93.184.216.34", "10.0.0.7"),
		"v6local.test":  always("fe80::1"),
		"public.test":   always("93.184.216.34", "2606:2800:220:1:248:1893:25c8:1946"),
		"metadata.test": always("169.254.169.254"),
	}}
	h := openHub(t, srv.Conn(), opts, false)
	tests := []struct {
		url  string
		code string // wire code; "" means accepted
		kind string // in the message
	}{
		{"http://127.0.0.1/hook", "url_not_allowed", "loopback"},
		{"http://127.1.2.3:8080/", "url_not_allowed", "loopback"},
		{"http://localhost:8080/", "url_not_allowed", "loopback"},
		{"http://LOCALHOST./", "url_not_allowed", "loopback"},
		{"http://api.localhost/", "url_not_allowed", "loopback"},
		{"http://10.1.2.3/", "url_not_allowed", "private"},
		{"http://172.16.0.1/", "url_not_allowed", "private"},
		{"https://192.168.1.1/", "url_not_allowed", "private"},
		{"http://169.254.169.254/latest/meta-data/", "url_not_allowed", "cloud metadata"},
		{"http://169.254.1.1/", "url_not_allowed", "link-local"},
		{"http://100.64.0.1/", "url_not_allowed", "CGNAT"},
		{"http://[::1]/", "url_not_allowed", "loopback"},
		{"http://[fd00::1]/", "url_not_allowed", "unique-local"},
		{"http://[fd00:ec2::254]/", "url_not_allowed", "cloud metadata"},
		{"http://[fe80::1%25eth0]/", "url_not_allowed", "link-local"},
		{"http://[::ffff:127.0.0.1]/", "url_not_allowed", "loopback"},
		{"http://[64:ff9b::a00:1]/", "url_not_allowed", "private"},
		{"http://0.0.0.0/", "url_not_allowed", "unspecified"},
		{"http://[::]/", "url_not_allowed", "unspecified"},
		{"http://224.0.0.1/", "url_not_allowed", "multicast"},
		{"http://255.255.255.255/", "url_not_allowed", "reserved"},
		{"http://loopback.test/", "url_not_allowed", "loopback"},
		{"http://mixed.test/", "url_not_allowed", "private"},
		{"http://v6local.test/", "url_not_allowed", "link-local"},
		{"http://metadata.test/", "url_not_allowed", "cloud metadata"},
		{"http://nxdomain.test/", "bad_url", "cannot be resolved"},
		{"ftp://public.test/", "bad_url", "only http and https"},
		{"file:///etc/passwd", "bad_url", "only http and https"},
		{"http://user:pw@public.test/", "bad_url", "credentials"},
		{"http://public.test/#frag", "bad_url", "fragment"},
		{"public.test/hook", "bad_url", ""},
		{"http:///nohost", "bad_url", "no host"},
		{"https://public.test/hook?token=1", "", ""},
		{"http://93.184.216.34:8080/", "", ""},
	}
	for _, tt := range tests {
		var w webhook.Webhook
		code, eb := h.call(t, http.MethodPost, "/v1/webhooks", webhook.Registration{URL: tt.url, Workspace: "docs"}, &w)
		if tt.code == "" {
			if code != http.StatusCreated {
				t.Errorf("%s: %d %+v, want 201", tt.url, code, eb)
			}
			continue
		}
		if code != http.StatusBadRequest || eb.Error.Code != tt.code || !strings.Contains(eb.Error.Message, tt.kind) {
			t.Errorf("%s: %d %+v, want 400 %s mentioning %q", tt.url, code, eb, tt.code, tt.kind)
		}
	}
}

// TestDispatcher_RefusesRebindingAtConnect: the name resolves to a public
// address at registration and to loopback when the dispatcher dials it.
func TestDispatcher_RefusesRebindingAtConnect(t *testing.T) {
	srv := natstest.Start(t)
	rcv := newReceiver(t)
	_, port, _ := strings.Cut(strings.TrimPrefix(rcv.srv.URL, "http://"), ":")
	opts := fastOpts()
	opts.AllowPrivate = false
	res := &fakeResolver{hosts: map[string]func(int) []string{
		"rebind.test": func(n int) []string {
			if n == 0 {
				return []string{"93.184.216.34"}
			}
			return []string{"127.0.0.1"}
		},
	}}
	opts.Resolver = res
	h := openHub(t, srv.Conn(), opts, true)
	w := h.register(t, webhook.Registration{URL: "http://rebind.test:" + port + "/hook"}, rcv)
	got := h.waitStatus(t, w.ID, webhook.StatusFailed)
	if !strings.Contains(got.Reason, "127.0.0.1 is a loopback address") {
		t.Errorf("reason %q does not name the refused address", got.Reason)
	}
	if n := len(rcv.requests()); n != 0 {
		t.Errorf("the loopback receiver got %d requests", n)
	}
	res.mu.Lock()
	calls := res.calls["rebind.test"]
	res.mu.Unlock()
	if calls < 2 {
		t.Errorf("resolved %d times; the dial did not resolve again", calls)
	}
}

// TestOpen_HTTPClientKeepsGuard: a caller's client gets the guard too.
func TestOpen_HTTPClientKeepsGuard(t *testing.T) {
	srv := natstest.Start(t)
	rcv := newReceiver(t)
	_, port, _ := strings.Cut(strings.TrimPrefix(rcv.srv.URL, "http://"), ":")
	opts := fastOpts()
	opts.AllowPrivate = false
	opts.HTTPClient = &http.Client{Transport: &http.Transport{}}
	opts.Resolver = &fakeResolver{hosts: map[string]func(int) []string{
		"rebind.test": func(n int) []string {
			if n == 0 {
				return []string{"93.184.216.34"}
			}
			return []string{"127.0.0.1"}
		},
	}}
	h := openHub(t, srv.Conn(), opts, true)
	w := h.register(t, webhook.Registration{URL: "http://rebind.test:" + port + "/"}, rcv)
	if got := h.waitStatus(t, w.ID, webhook.StatusFailed); !strings.Contains(got.Reason, "loopback") {
		t.Errorf("reason %q", got.Reason)
	}

	opts.HTTPClient = &http.Client{Transport: roundTripper(func(*http.Request) (*http.Response, error) { return nil, nil })}
	if _, err := webhook.Open(t.Context(), srv.Conn(), opts); err == nil {
		t.Errorf("Open accepted a transport the guard cannot wrap")
	}
}

type roundTripper func(*http.Request) (*http.Response, error)

func (f roundTripper) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

func TestClassify(t *testing.T) {
	tests := map[string]string{
		"8.8.8.8":                "",
		"93.184.216.34":          "",
		"2606:4700::1111":        "",
		"127.0.0.1":              "loopback",
		"::ffff:10.0.0.1":        "private",
		"100.100.100.200":        "cloud metadata",
		"169.254.170.2":          "cloud metadata",
		"fd00:ec2::254":          "cloud metadata",
		"2002:7f00:1::":          "loopback (embedded in 2002:7f00:1::)",
		"64:ff9b::808:808":       "",
		"64:ff9b::a9fe:a9fe":     "cloud metadata (embedded in 64:ff9b::a9fe:a9fe)",
		"ff02::1":                "multicast",
		"fc00::1":                "unique-local",
		"198.18.0.1":             "benchmarking",
		"::127.0.0.1":            "IPv4-compatible",
		"2001:db8::1":            "documentation",
		"192.0.0.192":            "IETF protocol assignment",
		"fe80::1%eth0":           "link-local",
		"100.127.255.255":        "CGNAT (shared address space)",
		"172.32.0.1":             "",
		"2001:4860:4860::8888":   "",
		"::ffff:169.254.169.254": "cloud metadata",
	}
	for in, want := range tests {
		if got := webhook.ClassifyAddr(in); got != want {
			t.Errorf("classify(%s) = %q, want %q", in, got, want)
		}
	}
}
