package feed_test

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sourcegraph/conc"

	"github.com/filecast/filecast/events"
	"github.com/filecast/filecast/events/eventstest"
	"github.com/filecast/filecast/events/feed"
)

// fanOutGlobs are the path filters that match the benchmark's events, one
// chosen per subscriber beside a glob of its own that matches nothing, so
// that no two subscribers have the same filter and every filter has to
// try more than one glob.
var fanOutGlobs = []string{"src/**", "src/**/*.go", "src/*/*.go", "src/m*/f*"}

// fanOutWindow is how far the producer may run ahead of the slowest
// subscriber, in events: less than the hub's live queue, so that the
// benchmark measures live fan-out rather than catching up from the log.
const fanOutWindow = 512

// BenchmarkFeed_FanOut measures the events a hub delivers per second in
// total (events × subscribers) to many SSE subscribers at once, each with
// its own path filter, over real HTTP connections on 127.0.0.1: a running
// hub.Hub over an in-memory log, the feed on an httptest server, and one
// net/http client per subscriber that reads and counts the events. b.N is
// the number of events appended; each reaches every subscriber. The
// producer stays within fanOutWindow events of the slowest subscriber.
// Client and server share the machine's cores, so the figure is a lower
// bound of what the server alone sustains.
func BenchmarkFeed_FanOut(b *testing.B) {
	for _, subs := range []int{1, 100, 1000} {
		b.Run("subscribers="+strconv.Itoa(subs), func(b *testing.B) {
			if limit := raiseFileLimit(); limit < 2*subs+200 {
				b.Skipf("RLIMIT_NOFILE %d is too low for %d subscribers", limit, subs)
			}
			log := newMemLog()
			h := startHub(b, log)
			f := feed.New(h, feed.Options{})
			mux := http.NewServeMux()
			mux.HandleFunc("GET /v1/workspaces/{ws}/events", f.Events)
			srv := httptest.NewServer(mux)
			defer srv.Close()
			defer f.Close()
			client := &http.Client{Transport: &http.Transport{MaxConnsPerHost: 0, MaxIdleConnsPerHost: subs}}
			defer client.CloseIdleConnections()

			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			counts := make([]atomic.Int64, subs)
			var opened, ready conc.WaitGroup
			bodies := make([]*bufio.Reader, subs)
			for i := range subs {
				q := url.Values{"path": {fmt.Sprintf("team-%d/**", i), fanOutGlobs[i%len(fanOutGlobs)]}}
				opened.Go(func() {
					req, err := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL+"/v1/workspaces/docs/events?"+q.Encode(), nil)
					if err != nil {
						b.Error(err)
						return
					}
					res, err := client.Do(req)
					if err != nil {
						b.Error(err)
						return
					}
					if res.StatusCode != http.StatusOK {
						b.Errorf("status %d", res.StatusCode)
						return
					}
					bodies[i] = bufio.NewReaderSize(res.Body, 32<<10)
				})
			}
			opened.Wait()
			if b.Failed() {
				b.FailNow()
			}
			eventstest.Within(b, time.Minute, fmt.Sprintf("%d subscribers", subs), func() bool { return h.Stats().Subscribers >= subs })
			batch := make([]events.Event, 64)
			for i := range batch {
				batch[i] = events.Event{ID: "01JDX5", Type: events.FileUpdated, Path: fmt.Sprintf("src/m%d/f%d.go", i%10, i),
					Size: 1834, SHA256: "5f2b4c0e9a7d3f1b8e6c2a4d0f9b7e5c3a1d8f6b4e2c0a9d7f5b3e1c8a6d4f2b", Actor: "fs"}
			}

			b.ReportAllocs()
			b.ResetTimer()
			start := time.Now()
			for i := range subs {
				ready.Go(func() {
					br := bodies[i]
					for counts[i].Load() < int64(b.N) {
						line, err := br.ReadSlice('\n')
						if err != nil {
							if ctx.Err() == nil {
								b.Errorf("subscriber %d after %d events: %v", i, counts[i].Load(), err)
							}
							return
						}
						if bytes.HasPrefix(line, dataField) {
							counts[i].Add(1)
						}
					}
				})
			}
			slowest := func() int64 {
				m := int64(b.N)
				for i := range counts {
					m = min(m, counts[i].Load())
				}
				return m
			}
			for appended := 0; appended < b.N; {
				if int64(appended)-slowest() > fanOutWindow {
					time.Sleep(50 * time.Microsecond)
					continue
				}
				n := min(len(batch), b.N-appended)
				log.add("docs", batch[:n]...)
				appended += n
			}
			waitDone := make(chan struct{})
			go func() { ready.Wait(); close(waitDone) }()
			select {
			case <-waitDone:
			case <-time.After(5 * time.Minute):
				b.Fatalf("slowest subscriber at %d of %d events", slowest(), b.N)
			}
			elapsed := time.Since(start)
			b.StopTimer()
			b.ReportMetric(float64(b.N)*float64(subs)/elapsed.Seconds(), "events/s")
			b.ReportMetric(float64(h.Stats().Overflows), "overflows")
			cancel()
		})
	}
}

var dataField = []byte("data: ")
