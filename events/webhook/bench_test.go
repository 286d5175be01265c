package webhook_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/filecast/filecast/events"
	"github.com/filecast/filecast/events/journal"
	"github.com/filecast/filecast/events/natsd/natstest"
	"github.com/filecast/filecast/events/webhook"
)

// fastReceiver accepts every correctly signed request (checked with
// webhook.Verify, as a receiver would) and notes when each event arrived
// and in which order.
type fastReceiver struct {
	srv   *httptest.Server
	ch    chan struct{}
	ready chan struct{} // closed once secrets is set

	mu      sync.Mutex
	secrets []string
	seen    map[string]time.Time
	order   []string
	invalid int
}

func newFastReceiver(b *testing.B) *fastReceiver {
	r := &fastReceiver{seen: map[string]time.Time{}, ch: make(chan struct{}, 1), ready: make(chan struct{})}
	r.srv = httptest.NewServer(http.HandlerFunc(r.serve))
	b.Cleanup(r.srv.Close)
	return r
}

func (r *fastReceiver) serve(w http.ResponseWriter, req *http.Request) {
	select {
	case <-r.ready:
	case <-req.Context().Done():
		return
	}
	body, _ := io.ReadAll(req.Body)
	r.mu.Lock()
	secrets := r.secrets
	r.mu.Unlock()
	if err := webhook.Verify(secrets, req.Header, body, 0); err != nil {
		r.mu.Lock()
		r.invalid++
		r.mu.Unlock()
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	id := req.Header.Get(webhook.HeaderID)
	if strings.HasPrefix(id, "verify_") {
		var probe struct{ Challenge string }
		_ = json.Unmarshal(body, &probe)
		_, _ = io.WriteString(w, probe.Challenge)
		return
	}
	now := time.Now()
	r.mu.Lock()
	if _, dup := r.seen[id]; !dup {
		r.seen[id] = now
		r.order = append(r.order, id)
	}
	r.mu.Unlock()
	select {
	case r.ch <- struct{}{}:
	default:
	}
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

// check fails the benchmark if a request was not correctly signed or the
// events did not arrive in the order of ids.
func (r *fastReceiver) check(b *testing.B, ids []string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.invalid > 0 {
		b.Fatalf("%d requests without a valid signature", r.invalid)
	}
	if !slices.Equal(r.order, ids) {
		b.Fatalf("events arrived out of order (%d received, %d sent)", len(r.order), len(ids))
	}
}

func benchSetup(b *testing.B) (*journal.Journal, *fastReceiver) {
	srv := natstest.Start(b)
	j := openJournal(b, srv.Conn())
	h := openHub(b, srv.Conn(), fastOpts(), true)
	rcv := newFastReceiver(b)
	w := h.register(b, webhook.Registration{URL: rcv.srv.URL}, nil)
	rcv.mu.Lock()
	rcv.secrets = []string{w.Secret}
	rcv.mu.Unlock()
	close(rcv.ready)
	h.waitStatus(b, w.ID, webhook.StatusActive)
	return j, rcv
}

// appendBatch appends one file.updated event per path in one batch and
// returns their IDs.
func appendBatch(b *testing.B, j *journal.Journal, paths ...string) []string {
	evs := make([]events.Event, len(paths))
	for i, p := range paths {
		evs[i] = newEvent("docs", p, events.FileUpdated)
	}
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	if _, _, err := j.AppendStoredBatch(ctx, evs); err != nil {
		b.Fatalf("append: %v", err)
	}
	ids := make([]string, len(evs))
	for i, ev := range evs {
		ids[i] = ev.ID
	}
	return ids
}

// reportLatency reports the median and 99th percentile of the time from
// each event's append to its POST arriving.
func reportLatency(b *testing.B, rcv *fastReceiver, sent map[string]time.Time) {
	rcv.mu.Lock()
	lat := make([]time.Duration, 0, len(sent))
	for id, t0 := range sent {
		lat = append(lat, rcv.seen[id].Sub(t0))
	}
	rcv.mu.Unlock()
	slices.Sort(lat)
	at := func(q float64) float64 { return float64(lat[int(q*float64(len(lat)-1))].Microseconds()) / 1000 }
	b.ReportMetric(at(0.50), "p50-ms")
	b.ReportMetric(at(0.99), "p99-ms")
}

// BenchmarkDispatcher_Deliveries measures deliveries per second to one
// fast local receiver that verifies every signature, in log order, one in
// flight at a time: b.N events of one path are appended as fast as the log
// takes them (batches of 256) while the webhook delivers. The latencies
// include the time the events queue behind each other.
func BenchmarkDispatcher_Deliveries(b *testing.B) {
	j, rcv := benchSetup(b)
	paths := make([]string, 256)
	for i := range paths {
		paths[i] = "bench.md"
	}
	sent := make(map[string]time.Time, b.N)
	ids := make([]string, 0, b.N)
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	for len(ids) < b.N {
		t0 := time.Now()
		for _, id := range appendBatch(b, j, paths[:min(len(paths), b.N-len(ids))]...) {
			sent[id] = t0
			ids = append(ids, id)
		}
	}
	rcv.wait(b, ids[len(ids)-1])
	elapsed := time.Since(start)
	b.StopTimer()
	rcv.check(b, ids)
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "deliveries/s")
	reportLatency(b, rcv, sent)
}

// BenchmarkDispatcher_Paced appends 5 events every millisecond (5,000/s,
// the webhook throughput target) and measures the time from each append
// to the receiver getting the POST.
func BenchmarkDispatcher_Paced(b *testing.B) {
	j, rcv := benchSetup(b)
	const perTick = 5
	sent := make(map[string]time.Time, b.N)
	ids := make([]string, 0, b.N)
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	for len(ids) < b.N {
		<-tick.C
		n := min(perTick, b.N-len(ids))
		paths := make([]string, n)
		for i := range paths {
			paths[i] = "paced.md"
		}
		t0 := time.Now()
		for _, id := range appendBatch(b, j, paths...) {
			sent[id] = t0
			ids = append(ids, id)
		}
	}
	rcv.wait(b, ids[len(ids)-1])
	elapsed := time.Since(start)
	b.StopTimer()
	rcv.check(b, ids)
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "deliveries/s")
	reportLatency(b, rcv, sent)
}

// BenchmarkDispatcher_Latency measures the time from a journal append
// starting to the receiver getting the POST, one event at a time on an
// idle webhook.
func BenchmarkDispatcher_Latency(b *testing.B) {
	j, rcv := benchSetup(b)
	sent := make(map[string]time.Time, b.N)
	ids := make([]string, 0, b.N)
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	for range b.N {
		t0 := time.Now()
		id := appendBatch(b, j, "lat.md")[0]
		sent[id] = t0
		ids = append(ids, id)
		rcv.wait(b, id)
	}
	elapsed := time.Since(start)
	b.StopTimer()
	rcv.check(b, ids)
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "deliveries/s")
	reportLatency(b, rcv, sent)
}
