package feed_test

import (
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"syscall"
	"testing"
	"time"

	"github.com/filecast/filecast/events/feed"
	"github.com/filecast/filecast/events/feed/feedtest"
)

// idleSubscribers is how many SSE streams BenchmarkFeed_IdleSubscriberMemory
// holds open; it is lowered to fit RLIMIT_NOFILE (two descriptors each).
const idleSubscribers = 2000

// liveBytes returns the heap in use plus goroutine stacks after a full GC.
func liveBytes() uint64 {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc + ms.StackInuse
}

// dialIdle opens n raw TCP connections to addr and writes req on each. The
// client side of each is a bare net.Conn: no goroutine, no reader.
func dialIdle(b *testing.B, addr string, n int, req string) []net.Conn {
	b.Helper()
	conns := make([]net.Conn, 0, n)
	for range n {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			b.Fatalf("dial after %d: %v", len(conns), err)
		}
		if req != "" {
			if _, err := c.Write([]byte(req)); err != nil {
				b.Fatal(err)
			}
		}
		conns = append(conns, c)
	}
	return conns
}

// BenchmarkFeed_IdleSubscriberMemory measures the memory that one idle SSE
// stream costs the server, over real TCP on 127.0.0.1 against an httptest
// server serving the feed of an in-memory source.
//
// Method: client and server share the process, so the client is kept to a
// bare net.Conn per stream (request written, never read, no goroutine).
// The client-only cost is measured first as a baseline: n raw connections to
// a listener that accepts and holds them, which costs two net.Conns per
// pair; half of it per connection is subtracted. "bytes/subscriber" is
// (Δ(HeapAlloc+StackInuse) over the streams − baseline/2) / n, after GC,
// so it includes the server's goroutine stacks, bufio buffers and the
// feed's per-stream state. "raw-bytes/subscriber" is without the
// subtraction. Run with -benchtime 1x.
func BenchmarkFeed_IdleSubscriberMemory(b *testing.B) {
	n := idleSubscribers
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err == nil && int(rl.Cur) < 2*n+200 {
		n = (int(rl.Cur) - 200) / 2
	}
	for b.Loop() {
		// Client-only baseline.
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			b.Fatal(err)
		}
		held := make(chan net.Conn, n)
		go func() {
			for {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				held <- c
			}
		}()
		before := liveBytes()
		base := dialIdle(b, ln.Addr().String(), n, "")
		accepted := make([]net.Conn, 0, n)
		for range n {
			accepted = append(accepted, <-held)
		}
		baseline := float64(liveBytes()) - float64(before)
		for _, c := range base {
			_ = c.Close()
		}
		for _, c := range accepted {
			_ = c.Close()
		}
		_ = ln.Close()

		src := feedtest.New()
		src.AddWorkspace("docs", b.TempDir())
		f := feed.New(src, feed.Options{})
		mux := http.NewServeMux()
		mux.HandleFunc("GET /v1/workspaces/{ws}/events", f.Events)
		srv := httptest.NewServer(mux)

		before = liveBytes()
		req := "GET /v1/workspaces/docs/events HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/event-stream\r\n\r\n"
		conns := dialIdle(b, srv.Listener.Addr().String(), n, req)
		deadline := time.Now().Add(30 * time.Second)
		for f.Subscribers() < n {
			if time.Now().After(deadline) {
				b.Fatalf("%d of %d streams open after 30s", f.Subscribers(), n)
			}
			time.Sleep(10 * time.Millisecond)
		}
		time.Sleep(200 * time.Millisecond) // let the first frames settle
		total := float64(liveBytes()) - float64(before)
		b.ReportMetric(float64(n), "subscribers")
		b.ReportMetric(total/float64(n), "raw-bytes/subscriber")
		b.ReportMetric((total-baseline/2)/float64(n), "bytes/subscriber")
		b.ReportMetric(baseline/2/float64(n), "client-bytes/conn")

		for _, c := range conns {
			_ = c.Close()
		}
		f.Close()
		srv.Close()
		src.Close()
	}
}
