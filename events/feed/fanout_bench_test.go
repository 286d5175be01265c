package feed_test

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sourcegraph/conc"

	"github.com/filecast/filecast/events"
	"github.com/filecast/filecast/events/feed"
	"github.com/filecast/filecast/events/feed/feedtest"
)

// staticSource serves a fixed backlog to every subscriber without locking,
// so that the benchmark measures the feed rather than the source.
type staticSource struct {
	*feedtest.Source
	evs []events.Event
}

func (s *staticSource) Subscribe(ctx context.Context, ws string, after uint64, fn func(events.Event) error) error {
	for _, ev := range s.evs {
		if ev.Seq <= after {
			continue
		}
		if err := fn(ev); err != nil {
			return err
		}
	}
	<-ctx.Done()
	return ctx.Err()
}

// discardWriter is a flushing ResponseWriter that counts the event frames
// written to it and signals once it has seen want of them. Only the
// stream's writer goroutine writes to it.
type discardWriter struct {
	h    http.Header
	n    int
	want int
	done func()
}

var dataField = []byte("data: ")

func (w *discardWriter) Header() http.Header { return w.h }
func (w *discardWriter) WriteHeader(int)     {}
func (w *discardWriter) Flush()              {}
func (w *discardWriter) Write(p []byte) (int, error) {
	if w.n < w.want {
		w.n += bytes.Count(p, dataField)
		if w.n >= w.want {
			w.done()
		}
	}
	return len(p), nil
}

// BenchmarkFeed_FanOut measures the events delivered per second in total
// when every event of a workspace goes to many open streams at once.
func BenchmarkFeed_FanOut(b *testing.B) {
	for _, subs := range []int{1, 100, 1000} {
		b.Run("subscribers="+strconv.Itoa(subs), func(b *testing.B) {
			src := &staticSource{Source: feedtest.New()}
			src.AddWorkspace("docs", b.TempDir())
			batch := make([]events.Event, b.N)
			for i := range batch {
				batch[i] = events.Event{Type: events.FileUpdated, Path: "reports/q3-" + strconv.Itoa(i%64) + ".md", Size: 1834, SHA256: "5f2b"}
			}
			src.evs = src.Append("docs", batch...)
			f := feed.New(src, feed.Options{})
			defer f.Close()

			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			var left atomic.Int64
			left.Add(int64(subs))
			allDone := make(chan struct{})
			done := func() {
				if left.Add(-1) == 0 {
					close(allDone)
				}
			}
			b.ReportAllocs()
			b.ResetTimer()
			start := time.Now()
			var wg conc.WaitGroup
			for range subs {
				req := httptest.NewRequestWithContext(ctx, http.MethodGet, "/v1/workspaces/docs/events", nil)
				req.SetPathValue("ws", "docs")
				req.Header.Set("Last-Event-ID", "0")
				w := &discardWriter{h: http.Header{}, want: b.N, done: done}
				wg.Go(func() { f.Events(w, req) })
			}
			select {
			case <-allDone:
			case <-time.After(5 * time.Minute):
				b.Fatalf("%d streams still short of %d events", left.Load(), b.N)
			}
			elapsed := time.Since(start)
			b.StopTimer()
			cancel()
			wg.Wait()
			b.ReportMetric(float64(b.N)*float64(subs)/elapsed.Seconds(), "events/s")
		})
	}
}
