package feed_test

import (
	"bufio"
	"bytes"
	"context"
	"net/http"
	"testing"

	"github.com/filecast/filecast/events"
	"github.com/filecast/filecast/events/feed"
)

// BenchmarkFeed_Events measures the stream's hot path: encoding events and
// writing them to a client, over a real connection.
func BenchmarkFeed_Events(b *testing.B) {
	fx := newFixture(b, feed.Options{})
	batch := make([]events.Event, b.N)
	for i := range batch {
		batch[i] = events.Event{Type: events.FileUpdated, Path: "reports/q3.md", Size: 1834, SHA256: "5f2b"}
	}
	fx.src.Append("docs", batch...)

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, fx.srv.URL+"/v1/workspaces/docs/events", nil)
	req.Header.Set("Last-Event-ID", "0")
	b.ReportAllocs()
	b.ResetTimer()
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		b.Fatal(err)
	}
	defer res.Body.Close()
	sc := bufio.NewScanner(res.Body)
	n := 0
	for n < b.N && sc.Scan() {
		if bytes.HasPrefix(sc.Bytes(), []byte("data: ")) {
			n++
		}
	}
	if n < b.N {
		b.Fatalf("read %d events of %d: %v", n, b.N, sc.Err())
	}
}
