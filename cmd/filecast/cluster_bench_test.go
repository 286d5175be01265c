package main_test

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/filecast/filecast/events/eventstest"
	"github.com/filecast/filecast/events/natsd/natstest"
)

// Load of BenchmarkCluster_Hubs.
const (
	benchRate        = 1000 // steady writes per second
	benchSteady      = 2 * time.Second
	benchSteadyFiles = 200  // files the steady writes update in turn
	benchBurst       = 5000 // writes as fast as possible
	benchPutRate     = 250  // steady PUTs per second, through the hubs that do not watch
	benchPuts        = 500
	benchDrainWait   = 30 * time.Second // how long a phase waits for its last events
)

// BenchmarkCluster_Hubs runs 1, 2 and 3 hubs on a three-node NATS cluster
// (--replicas 3) serving one folder, with one SSE stream per hub, and
// measures write → SSE arrival latency at a steady 1,000 writes/s
// updating 200 files (p50-ms, p99-ms, over every stream), events/s
// delivered per stream and in total for a burst of 5,000 new files
// written as fast as possible (events/s, events/s/sub; burst-lag-ms is how
// long after the last write the last event arrived, so the rate is the
// writer's while it stays small), and PUT → SSE arrival latency for
// writes through the hubs that do not watch the folder, relayed to the one
// that does (put-p50-ms, put-p99-ms). The hub processes, the SSE streams
// and the cluster end with the sub-benchmark.
func BenchmarkCluster_Hubs(b *testing.B) {
	for _, n := range []int{1, 2, 3} {
		b.Run(fmt.Sprintf("hubs=%d", n), func(b *testing.B) { benchHubs(b, n) })
	}
}

func benchHubs(b *testing.B, n int) {
	cl := natstest.Cluster(b, 3)
	root := b.TempDir()
	hubs := make([]*clusterHub, n)
	for i := range hubs {
		hubs[i] = startBenchHub(b, cl.URLs(), root, fmt.Sprintf("hub-%c", 'a'+i))
	}
	var watcher *clusterHub
	eventstest.Within(b, 20*time.Second, "one hub to watch w", func() bool {
		watcher = nil
		for _, h := range hubs {
			if watches(h) {
				if watcher != nil {
					return false
				}
				watcher = h
			}
		}
		return watcher != nil
	})
	subs := make([]*benchSub, n)
	for i, h := range hubs {
		subs[i] = subscribeBench(b, h)
	}
	relays := hubs // PUT through the hubs that do not watch, or the only one
	if n > 1 {
		relays = slices.DeleteFunc(slices.Clone(hubs), func(h *clusterHub) bool { return h == watcher })
	}

	// Warm up: every folder watched, every stream live, and the files of
	// the steady writes created (a new file waits --settle before its
	// event; the steady writes update files, so that they measure the path
	// of an event and not that wait).
	for _, dir := range []string{"s", "b"} {
		n := 1
		if dir == "s" {
			n = benchSteadyFiles
		}
		ph := newBenchPhase("warm "+dir, n)
		setPhase(subs, ph)
		if err := os.MkdirAll(filepath.Join(root, dir), 0o755); err != nil {
			b.Fatal(err)
		}
		for i := range n {
			ph.times[i] = time.Now()
			if err := os.WriteFile(filepath.Join(root, dir, fmt.Sprintf("%03d.txt", i)), ph.content[i], 0o644); err != nil {
				b.Fatal(err)
			}
		}
		waitPhase(b, subs, ph, benchDrainWait)
	}
	ph := newBenchPhase("warm p", 1)
	setPhase(subs, ph)
	ph.times[0] = time.Now()
	if code := putBench(b, relays[0].base, "p/marker", ph.content[0]); code != 200 {
		b.Fatalf("PUT through %s: %d", relays[0].id, code)
	}
	waitPhase(b, subs, ph, benchDrainWait)

	b.ResetTimer()
	var lat, putLat []float64
	var total, lag float64
	for iter := range b.N {
		// Steady writes on disk.
		steady := newBenchPhase(fmt.Sprintf("steady %d", iter), int(benchRate*benchSteady/time.Second))
		setPhase(subs, steady)
		interval := time.Second / benchRate
		start := time.Now()
		for i := range steady.n {
			if d := time.Until(start.Add(time.Duration(i) * interval)); d > 0 {
				time.Sleep(d) // pacing the writes
			}
			steady.times[i] = time.Now()
			if err := os.WriteFile(filepath.Join(root, "s", fmt.Sprintf("%03d.txt", i%benchSteadyFiles)), steady.content[i], 0o644); err != nil {
				b.Fatal(err)
			}
		}
		rate := float64(steady.n) / time.Since(start).Seconds()
		waitPhase(b, subs, steady, benchDrainWait)
		all, perSub := steady.latencies(subs)
		lat = append(lat, all...)
		for i, s := range subs {
			b.Logf("steady %.0f writes/s: stream on %s (watcher: %v): p50 %.2f ms, p99 %.2f ms, %d of %d events",
				rate, s.hub.id, s.hub == watcher, quantile(perSub[i], 0.5), quantile(perSub[i], 0.99), len(perSub[i]), steady.n)
		}

		// A burst on disk.
		burst := newBenchPhase(fmt.Sprintf("burst %d", iter), benchBurst)
		setPhase(subs, burst)
		start = time.Now()
		for i := range burst.n {
			burst.times[i] = time.Now()
			if err := os.WriteFile(filepath.Join(root, "b", fmt.Sprintf("%d-%05d.txt", iter, i)), burst.content[i], 0o644); err != nil {
				b.Fatal(err)
			}
		}
		wrote := time.Since(start)
		waitPhase(b, subs, burst, benchDrainWait)
		total, lag = 0, 0
		for _, s := range subs {
			got, last := burst.received(s)
			r := float64(got) / last.Sub(start).Seconds()
			total += r
			lag = max(lag, float64(last.Sub(start)-wrote)/float64(time.Millisecond))
			b.Logf("burst of %d writes (written in %s): stream on %s got %d in %s: %.0f events/s",
				burst.n, wrote.Round(time.Millisecond), s.hub.id, got, last.Sub(start).Round(time.Millisecond), r)
		}

		// Steady writes through PUT, relayed by the hubs that do not watch.
		puts := newBenchPhase(fmt.Sprintf("put %d", iter), benchPuts)
		setPhase(subs, puts)
		interval = time.Second / benchPutRate
		start = time.Now()
		for i := range puts.n {
			if d := time.Until(start.Add(time.Duration(i) * interval)); d > 0 {
				time.Sleep(d) // pacing the writes
			}
			h := relays[i%len(relays)]
			puts.times[i] = time.Now()
			if code := putBench(b, h.base, fmt.Sprintf("p/%d-%05d.txt", iter, i), puts.content[i]); code != 200 {
				b.Fatalf("PUT through %s: %d", h.id, code)
			}
		}
		rate = float64(puts.n) / time.Since(start).Seconds()
		waitPhase(b, subs, puts, benchDrainWait)
		all, _ = puts.latencies(subs)
		putLat = append(putLat, all...)
		var through []string
		for _, h := range relays {
			through = append(through, h.id)
		}
		b.Logf("PUT at %.0f/s through %s (watcher %s): p50 %.2f ms, p99 %.2f ms over %d arrivals",
			rate, strings.Join(through, "+"), watcher.id, quantile(all, 0.5), quantile(all, 0.99), len(all))
	}
	b.StopTimer()
	b.ReportMetric(quantile(lat, 0.5), "p50-ms")
	b.ReportMetric(quantile(lat, 0.99), "p99-ms")
	b.ReportMetric(total, "events/s")
	b.ReportMetric(total/float64(n), "events/s/sub")
	b.ReportMetric(lag, "burst-lag-ms")
	b.ReportMetric(quantile(putLat, 0.5), "put-p50-ms")
	b.ReportMetric(quantile(putLat, 0.99), "put-p99-ms")
}

// startBenchHub starts a hub process on the cluster at urls serving
// workspace w at root; it is ended (SIGTERM, then SIGKILL) by tb.Cleanup.
func startBenchHub(tb testing.TB, urls, root, id string) *clusterHub {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	h := &clusterHub{id: id, base: "http://" + addr}
	h.args = []string{"hub", "--nats", urls, "--replicas", "3", "--root", "w=" + root,
		"--data", tb.TempDir(), "--listen", addr, "--hub-id", id, "--leader-ttl", "2s"}
	p := &proc{cmd: exec.Command(binary, h.args...), stderr: &lockedBuffer{}, done: make(chan struct{})}
	p.cmd.Stderr = p.stderr
	if err := p.cmd.Start(); err != nil {
		tb.Fatal(err)
	}
	go func() { _ = p.cmd.Wait(); close(p.done) }()
	h.proc = p
	tb.Cleanup(func() {
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-p.done:
		case <-time.After(10 * time.Second):
			_ = p.cmd.Process.Kill()
			<-p.done
			tb.Errorf("%s did not exit within 10s of SIGTERM", id)
		}
		if tb.Failed() {
			tb.Logf("%s stderr:\n%s", id, p.stderr.String())
		}
	})
	eventstest.Within(tb, 20*time.Second, id+" to be ready", func() bool {
		resp, err := http.Get(h.base + "/healthz")
		if err != nil {
			return false
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode == 200
	})
	return h
}

// putBench writes a file through the hub at base and returns the status.
func putBench(tb testing.TB, base, path string, content []byte) int {
	tb.Helper()
	req, err := http.NewRequest("PUT", base+"/v1/workspaces/w/files/"+path, strings.NewReader(string(content)))
	if err != nil {
		tb.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		tb.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

// benchPhase is a set of writes, each with its own content, and when each
// was made; a stream's event names its write by the content's sha256.
type benchPhase struct {
	name    string
	n       int
	content [][]byte
	index   map[string]int // sha256 → write
	times   []time.Time    // filled by the writer before the write
}

func newBenchPhase(name string, n int) *benchPhase {
	p := &benchPhase{name: name, n: n, content: make([][]byte, n), index: make(map[string]int, n), times: make([]time.Time, n)}
	for i := range n {
		p.content[i] = fmt.Appendf(nil, "%s write %d", name, i)
		sum := sha256.Sum256(p.content[i])
		p.index[hex.EncodeToString(sum[:])] = i
	}
	return p
}

// benchSub is one SSE stream of workspace w, read raw; it records when the
// event of each write of the current phase arrived.
type benchSub struct {
	hub *clusterHub

	mu      sync.Mutex
	phase   *benchPhase
	arrived []time.Time // per write of phase; zero until it arrived
	count   int
}

func subscribeBench(tb testing.TB, h *clusterHub) *benchSub {
	tb.Helper()
	resp, err := http.Get(h.base + "/v1/workspaces/w/events")
	if err != nil {
		tb.Fatal(err)
	}
	if resp.StatusCode != 200 {
		tb.Fatalf("events from %s: %d", h.id, resp.StatusCode)
	}
	s := &benchSub{hub: h}
	done := make(chan struct{})
	go func() {
		defer close(done)
		r := &sseReader{r: bufio.NewReaderSize(resp.Body, 64<<10)}
		for {
			ev, err := r.next()
			if err != nil {
				return
			}
			at := time.Now()
			var e struct {
				SHA256 string `json:"sha256"`
			}
			if json.Unmarshal([]byte(ev.data), &e) != nil || e.SHA256 == "" {
				continue
			}
			s.mu.Lock()
			if s.phase != nil {
				if i, ok := s.phase.index[e.SHA256]; ok && s.arrived[i].IsZero() {
					s.arrived[i] = at
					s.count++
				}
			}
			s.mu.Unlock()
		}
	}()
	tb.Cleanup(func() { resp.Body.Close(); <-done })
	return s
}

func setPhase(subs []*benchSub, p *benchPhase) {
	for _, s := range subs {
		s.mu.Lock()
		s.phase, s.arrived, s.count = p, make([]time.Time, p.n), 0
		s.mu.Unlock()
	}
}

// waitPhase waits until every stream has the event of every write of p,
// or fails after d.
func waitPhase(tb testing.TB, subs []*benchSub, p *benchPhase, d time.Duration) {
	tb.Helper()
	var counts []string
	complete := func() bool {
		counts = counts[:0]
		done := true
		for _, s := range subs {
			s.mu.Lock()
			c := s.count
			s.mu.Unlock()
			done = done && c == p.n
			counts = append(counts, fmt.Sprintf("%s %d", s.hub.id, c))
		}
		return done
	}
	if !eventstest.Poll(d, complete) {
		tb.Fatalf("%s: after %s the streams have %s of %d events", p.name, d, strings.Join(counts, ", "), p.n)
	}
}

// latencies returns write → arrival in milliseconds over every stream, and
// per stream.
func (p *benchPhase) latencies(subs []*benchSub) (all []float64, per [][]float64) {
	per = make([][]float64, len(subs))
	for j, s := range subs {
		s.mu.Lock()
		for i, at := range s.arrived {
			if !at.IsZero() {
				ms := float64(at.Sub(p.times[i])) / float64(time.Millisecond)
				per[j] = append(per[j], ms)
				all = append(all, ms)
			}
		}
		s.mu.Unlock()
	}
	return all, per
}

// received returns how many of p's events the stream got and when the
// last arrived.
func (p *benchPhase) received(s *benchSub) (int, time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var last time.Time
	for _, at := range s.arrived {
		if at.After(last) {
			last = at
		}
	}
	return s.count, last
}

// quantile returns the q-quantile of xs (nearest rank), 0 for none.
func quantile(xs []float64, q float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	i := int(q*float64(len(s))+0.5) - 1
	return s[max(0, min(i, len(s)-1))]
}
