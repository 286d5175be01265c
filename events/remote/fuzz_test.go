package remote_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/filecast/filecast/events"
	"github.com/filecast/filecast/events/remote"
)

// roundTripper answers the first request with a stream of the given bytes
// and every later one with unknown_workspace (Subscribe makes only one).
type roundTripper struct {
	mu    sync.Mutex
	body  []byte
	calls int
}

func (rt *roundTripper) RoundTrip(r *http.Request) (*http.Response, error) {
	rt.mu.Lock()
	defer rt.mu.Unlock()
	rt.calls++
	res := &http.Response{StatusCode: 200, Header: http.Header{}, Request: r, ProtoMajor: 1, ProtoMinor: 1}
	if rt.calls == 1 {
		res.Header.Set("Content-Type", "text/event-stream")
		res.Body = io.NopCloser(bytes.NewReader(rt.body))
		return res, nil
	}
	res.StatusCode = 404
	res.Header.Set("Content-Type", "application/json")
	res.Body = io.NopCloser(strings.NewReader(`{"error":{"code":"unknown_workspace","message":"gone"}}`))
	return res, nil
}

// FuzzSubscribeStream feeds arbitrary bytes to the client as a hub's event
// stream: it must not panic or hang, must deliver only events with
// increasing seqs after the start, and must end with an error.
func FuzzSubscribeStream(f *testing.F) {
	f.Add([]byte(sseEvent(1) + sseEvent(2)))
	f.Add([]byte(": hi\nretry: 5\nid: 0\n\n" + sseEvent(3) + sseEvent(1) + sseEvent(4)))
	f.Add([]byte("id: 7\ndata: {\"seq\":7,\"type\":\"file.created\",\"path\":\"a\\nb\"}\n\n"))
	f.Add([]byte("id: 1\r\nevent: file.created\r\ndata: {\"seq\":1}\r\n\r\n"))
	f.Add([]byte("data: {}\n\nid:\n\nid: 18446744073709551615\ndata: {}\n\n"))
	f.Add([]byte("\xef\xbb\xbfid: 2\ndata: {\"seq\":2,\n"))
	f.Fuzz(func(t *testing.T, body []byte) {
		rt := &roundTripper{body: body}
		c, err := remote.New("http://hub.invalid", remote.Options{
			HTTPClient: &http.Client{Transport: rt},
		})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		const after = 1
		last := uint64(after)
		err = c.Subscribe(ctx, "docs", after, func(ev events.Event) error {
			if ev.Seq <= last {
				t.Fatalf("delivered seq %d after %d", ev.Seq, last)
			}
			last = ev.Seq
			return nil
		})
		switch {
		case err == nil:
			t.Fatal("Subscribe returned nil")
		case errors.Is(err, context.DeadlineExceeded):
			t.Fatalf("Subscribe hung: %v", err)
		case !errors.Is(err, remote.ErrProtocol) && !errors.Is(err, remote.ErrStreamLost):
			t.Fatalf("unexpected error %v", err)
		}
	})
}
