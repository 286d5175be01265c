package webhook_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/filecast/filecast/events/webhook"
)

// fastReceiver accepts everything and reports each event ID it gets.
type fastReceiver struct {
	srv  *httptest.Server
	mu   sync.Mutex
	seen map[string]time.Time
	ch   chan struct{}
}

func newFastReceiver(b *testing.B) *fastReceiver {
	r := &fastReceiver{seen: map[string]time.Time{}, ch: make(chan struct{}, 1)}
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		var probe struct {
			Type      string `json:"type"`
			Challenge string `json:"challenge"`
		}
		_ = json.Unmarshal(body, &probe)
		if probe.Type == webhook.VerificationType {
			_, _ = io.WriteString(w, probe.Challenge)
			return
		}
		r.mu.Lock()
		r.seen[req.Header.Get("webhook-id")] = time.Now()
		r.mu.Unlock()
		select {
		case r.ch <- struct{}{}:
		default:
		}
	}))
	b.Cleanup(r.srv.Close)
	return r
}

func (r *fastReceiver) wait(b *testing.B, id string) time.Time {
	deadline := time.After(waitFor)
	for {
		r.mu.Lock()
		at, ok := r.seen[id]
		r.mu.Unlock()
		if ok {
			return at
		}
		select {
		case <-r.ch:
		case <-time.After(time.Millisecond):
		case <-deadline:
			b.Fatalf("event %s not delivered", id)
		}
	}
}

func benchSetup(b *testing.B) (*hub, *fastReceiver, func(paths ...string) []string) {
	srv := startNATS(b, b.TempDir())
	j := openJournal(b, srv.Conn())
	h := openHub(b, srv.Conn(), fastOpts(), true)
	rcv := newFastReceiver(b)
	w := h.register(b, webhook.Registration{URL: rcv.srv.URL}, nil)
	h.waitStatus(b, w.ID, webhook.StatusActive)
	appendIDs := func(paths ...string) []string {
		var ids []string
		for _, ev := range appendEvents(b, j, paths...) {
			ids = append(ids, ev.ID)
		}
		return ids
	}
	return h, rcv, appendIDs
}

// BenchmarkDispatcher_Deliveries measures deliveries per second to one
// fast local receiver, in order, one in flight at a time.
func BenchmarkDispatcher_Deliveries(b *testing.B) {
	_, rcv, appendIDs := benchSetup(b)
	paths := make([]string, b.N)
	for i := range paths {
		paths[i] = "bench.md"
	}
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	ids := appendIDs(paths...)
	rcv.wait(b, ids[len(ids)-1])
	b.StopTimer()
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "deliveries/s")
}

// BenchmarkDispatcher_Latency measures the time from a journal append
// returning to the receiver getting the POST.
func BenchmarkDispatcher_Latency(b *testing.B) {
	_, rcv, appendIDs := benchSetup(b)
	lat := make([]time.Duration, 0, b.N)
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		t0 := time.Now()
		id := appendIDs("lat.md")[0]
		lat = append(lat, rcv.wait(b, id).Sub(t0))
	}
	b.StopTimer()
	slices.Sort(lat)
	at := func(q float64) float64 { return float64(lat[int(q*float64(len(lat)-1))].Microseconds()) / 1000 }
	b.ReportMetric(at(0.50), "p50-ms")
	b.ReportMetric(at(0.99), "p99-ms")
}
