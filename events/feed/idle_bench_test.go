//go:build unix

package feed_test

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"runtime"
	"runtime/pprof"
	"strconv"
	"testing"
	"time"

	"github.com/filecast/filecast/events/eventstest"
	"github.com/filecast/filecast/events/feed"
)

const (
	// idleSubscribers is how many SSE streams
	// BenchmarkFeed_IdleSubscriberMemory holds open; it is lowered to fit
	// RLIMIT_NOFILE when the hard limit is too low.
	idleSubscribers = 10_000
	// Environment of the client process of the benchmark.
	envIdleAddr = "FILECAST_IDLE_SSE_ADDR"
	envIdleN    = "FILECAST_IDLE_SSE_N"
	// envIdleProfile names a file to write the heap profile to at the
	// moment of measurement (and <name>.goroutines), for pprof.
	envIdleProfile = "IDLEHEAP"
)

// memory is the heap in use and the goroutine stacks, after a full GC.
type memory struct{ heap, stack uint64 }

func liveMemory() memory {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return memory{ms.HeapAlloc, ms.StackInuse}
}

// BenchmarkFeed_IdleSubscriberMemory measures the memory that one idle SSE
// stream costs a hub process, over real TCP on 127.0.0.1: an httptest
// server serving the feed of a running hub.Hub (over an in-memory log).
//
// Method: the clients run in a separate process (this test binary
// re-executed as TestIdleSSEClientProcess), each a bare net.Conn that sent
// its request and never reads, so the figure is the server's alone:
// Δ(HeapAlloc+StackInuse) after GC, from before the clients connect to
// when all streams are open and have been through a heartbeat, divided by
// the number of streams. It includes net/http's per-connection buffers and
// goroutines, the hub's subscription and the feed's stream. The soft
// RLIMIT_NOFILE is raised to the hard limit (both processes need one
// descriptor per stream). Run with -benchtime 1x.
func BenchmarkFeed_IdleSubscriberMemory(b *testing.B) {
	if os.Getenv(envIdleProfile) != "" {
		runtime.MemProfileRate = 1
	}
	n := idleSubscribers
	if limit := raiseFileLimit(); limit < n+200 {
		n = limit - 200
	}
	for b.Loop() {
		h := startHub(b, newMemLog())
		const heartbeat = 300 * time.Millisecond
		f := feed.New(h, feed.Options{Heartbeat: heartbeat})
		mux := http.NewServeMux()
		mux.HandleFunc("GET /v1/workspaces/{ws}/events", f.Events)
		srv := httptest.NewServer(mux)

		before := liveMemory()
		goroutines := runtime.NumGoroutine()
		cmd := exec.Command(os.Args[0], "-test.run=^TestIdleSSEClientProcess$")
		cmd.Env = append(os.Environ(), envIdleAddr+"="+srv.Listener.Addr().String(), envIdleN+"="+strconv.Itoa(n))
		stdin, err := cmd.StdinPipe()
		if err != nil {
			b.Fatal(err)
		}
		var out bytes.Buffer // the client's test output, shown if it fails
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Start(); err != nil {
			b.Fatal(err)
		}
		eventstest.Within(b, 2*time.Minute, fmt.Sprintf("%d streams open", n), func() bool {
			return f.Subscribers() >= n && h.Stats().Subscribers >= n
		})
		time.Sleep(3 * heartbeat) // every stream has sent heartbeats and is idle again
		after := liveMemory()
		perSub := func(a, b uint64) float64 { return (float64(a) - float64(b)) / float64(n) }
		b.ReportMetric(float64(n), "subscribers")
		b.ReportMetric(perSub(after.heap+after.stack, before.heap+before.stack), "bytes/subscriber")
		b.ReportMetric(perSub(after.heap, before.heap), "heap-bytes/subscriber")
		b.ReportMetric(perSub(after.stack, before.stack), "stack-bytes/subscriber")
		b.ReportMetric(float64(runtime.NumGoroutine()-goroutines)/float64(n), "goroutines/subscriber")
		if p := os.Getenv(envIdleProfile); p != "" {
			writeProfiles(b, p)
		}

		_ = stdin.Close() // the client process closes its connections and exits
		if err := cmd.Wait(); err != nil {
			b.Errorf("client process: %v\n%s", err, out.Bytes())
		}
		f.Close()
		srv.Close()
	}
}

// writeProfiles writes the heap profile to path and the goroutine profile
// to path.goroutines.
func writeProfiles(b *testing.B, path string) {
	b.Helper()
	for name, file := range map[string]string{"heap": path, "goroutine": path + ".goroutines"} {
		fh, err := os.Create(file)
		if err != nil {
			b.Fatal(err)
		}
		debug := 0
		if name == "goroutine" {
			debug = 1
		}
		if err := pprof.Lookup(name).WriteTo(fh, debug); err != nil {
			b.Fatal(err)
		}
		if err := fh.Close(); err != nil {
			b.Fatal(err)
		}
	}
}

// TestIdleSSEClientProcess is the client side of
// BenchmarkFeed_IdleSubscriberMemory, run in its own process: it opens the
// streams, then holds them without reading until stdin closes. It does
// nothing unless that benchmark started it.
func TestIdleSSEClientProcess(t *testing.T) {
	addr := os.Getenv(envIdleAddr)
	if addr == "" {
		return // not a test of its own
	}
	n, err := strconv.Atoi(os.Getenv(envIdleN))
	if err != nil {
		t.Fatal(err)
	}
	raiseFileLimit()
	req := []byte("GET /v1/workspaces/docs/events HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/event-stream\r\n\r\n")
	conns := make([]net.Conn, 0, n)
	defer func() {
		for _, c := range conns {
			_ = c.Close()
		}
	}()
	for range n {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatalf("dial after %d: %v", len(conns), err)
		}
		conns = append(conns, c)
		if _, err := c.Write(req); err != nil {
			t.Fatal(err)
		}
	}
	_, _ = io.Copy(io.Discard, bufio.NewReader(os.Stdin)) // until the benchmark closes stdin
}
