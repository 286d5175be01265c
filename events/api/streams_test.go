package api_test

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"testing"

	"github.com/filecast/filecast/events/api"
	"github.com/filecast/filecast/events/eventstest"
)

// openStream opens an event stream and reads until the hub has sent its
// first message; cancel closes it. A refusal is returned as it is.
func openStream(t *testing.T, url string, header map[string]string) (res *http.Response, cancel func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	req, err := http.NewRequestWithContext(ctx, "GET", url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	res, err = http.DefaultClient.Do(req)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	t.Cleanup(func() { cancel(); res.Body.Close() })
	if res.StatusCode == http.StatusOK {
		line, err := bufio.NewReader(res.Body).ReadString('\n')
		if err != nil || line == "" {
			t.Fatalf("read the stream's first line: %q, %v", line, err)
		}
	}
	return res, cancel
}

// refused checks that res is a refused stream with status, Retry-After
// and the too_many_streams code.
func refused(t *testing.T, res *http.Response, status int) {
	t.Helper()
	if res.StatusCode != status {
		t.Fatalf("status %d, want %d", res.StatusCode, status)
	}
	if res.Header.Get("Retry-After") == "" {
		t.Error("no Retry-After")
	}
	if code := errorCode(t, res); code != api.CodeTooManyStreams {
		t.Errorf("code %q, want %s", code, api.CodeTooManyStreams)
	}
}

// waitOpen waits until lim counts n open streams.
func waitOpen(t *testing.T, lim *api.StreamLimits, n int) {
	t.Helper()
	eventstest.Eventually(t, fmt.Sprintf("%d open streams", n), func() bool { return lim.Stats().Open == n })
}

// TestStreamLimits_PerAddress caps the streams of one client address
// without tokens with 429, and frees the slot when a stream ends; other
// routes are not capped.
func TestStreamLimits_PerAddress(t *testing.T) {
	lim := api.NewStreamLimits(10, 2)
	srv, _ := newServer(t, api.Options{Streams: lim})
	url := srv.URL + "/v1/workspaces/docs/events"
	_, close1 := openStream(t, url, nil)
	openStream(t, url, nil)
	res, _ := openStream(t, url, nil)
	refused(t, res, http.StatusTooManyRequests)
	if res := do(t, "GET", srv.URL+"/v1/workspaces/docs/changes", nil, nil); res.StatusCode != 200 {
		t.Fatalf("changes at the cap: status %d", res.StatusCode)
	}
	close1()
	waitOpen(t, lim, 1)
	if res, _ := openStream(t, url, nil); res.StatusCode != 200 {
		t.Fatalf("a stream after one closed: status %d", res.StatusCode)
	}
	if st := lim.Stats(); st.RefusedClient != 1 || st.RefusedTotal != 0 {
		t.Fatalf("stats %+v", st)
	}
}

// TestStreamLimits_TokensAndTotal caps each token's streams with 429 and
// all streams with 503.
func TestStreamLimits_TokensAndTotal(t *testing.T) {
	lim := api.NewStreamLimits(3, 2)
	srv, _ := newServer(t, api.Options{Streams: lim, Tokens: []api.Token{{Name: "a", Secret: "secret-a"}, {Name: "b", Secret: "secret-b"}}})
	url := srv.URL + "/v1/workspaces/docs/events"
	a := map[string]string{"Authorization": "Bearer secret-a"}
	b := map[string]string{"Authorization": "Bearer secret-b"}
	openStream(t, url, a)
	openStream(t, url, a)
	res, _ := openStream(t, url, a)
	refused(t, res, http.StatusTooManyRequests)
	openStream(t, url, b)
	res, _ = openStream(t, url, b)
	refused(t, res, http.StatusServiceUnavailable)
	if body := res.Header.Get("Retry-After"); body != "5" {
		t.Errorf("Retry-After %q", body)
	}
	if st := lim.Stats(); st.Open != 3 || st.RefusedClient != 1 || st.RefusedTotal != 1 {
		t.Fatalf("stats %+v", st)
	}
}

func TestFitStreams(t *testing.T) {
	for _, tt := range []struct {
		want int
		fds  uint64
		out  int
	}{
		{4096, 0, 4096},
		{4096, 1 << 20, 4096},
		{4096, 1024, 384},
		{4096, 256, 16},
		{100, 1024, 100},
	} {
		if got := api.FitStreams(tt.want, tt.fds); got != tt.out {
			t.Errorf("FitStreams(%d, %d) = %d, want %d", tt.want, tt.fds, got, tt.out)
		}
	}
}
