package server_test

import (
	"bufio"
	"context"
	"io"
	"log/slog"
	"net/http/httptest"
	"os"
	"os/exec"
	"runtime"
	"runtime/pprof"
	"strconv"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/client/transport"
	"github.com/mark3labs/mcp-go/mcp"

	"github.com/filecast/filecast/server"
)

const (
	idleSessions = 1000
	// Environment of the client process of BenchmarkServer_IdleSessionMemory.
	envIdleURL    = "FILECAST_IDLE_CLIENT_URL"
	envIdleN      = "FILECAST_IDLE_CLIENT_N"
	envIdleListen = "FILECAST_IDLE_CLIENT_LISTEN"
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

// BenchmarkServer_IdleSessionMemory measures the memory that one idle MCP
// streamable HTTP session (protocol 2025-11-25, the last with sessions)
// costs the server, over real TCP on 127.0.0.1 against an httptest server.
//
// Method: the mcp-go clients run in a separate process (this test binary
// re-executed as TestIdleSessionClientProcess), so the figure is the
// server's alone: Δ(HeapAlloc+StackInuse) after GC, from before the
// clients connect to when all of them have initialized and sat idle for a
// moment, divided by the number of sessions; heap and stacks are also
// reported apart. "listening" clients keep the GET stream for server
// notifications open (as agents that subscribe to resources do); "plain"
// clients do not, so their sessions cost the session state and an idle
// keep-alive connection. Run with -benchtime 1x.
func BenchmarkServer_IdleSessionMemory(b *testing.B) {
	if os.Getenv(envIdleProfile) != "" {
		runtime.MemProfileRate = 1
	}
	for _, mode := range []struct {
		name   string
		listen bool
	}{{"listening", true}, {"plain", false}} {
		b.Run(mode.name, func(b *testing.B) {
			for b.Loop() {
				h := start(b, server.Options{}, "docs")
				ts := httptest.NewServer(h.srv.HTTPHandler())
				before := liveMemory()
				goroutines := runtime.NumGoroutine()

				cmd := exec.Command(os.Args[0], "-test.run=^TestIdleSessionClientProcess$", "-test.v")
				cmd.Env = append(os.Environ(), envIdleURL+"="+ts.URL+"/mcp", envIdleN+"="+strconv.Itoa(idleSessions), envIdleListen+"="+strconv.FormatBool(mode.listen))
				stdin, err := cmd.StdinPipe()
				if err != nil {
					b.Fatal(err)
				}
				stdout, err := cmd.StdoutPipe()
				if err != nil {
					b.Fatal(err)
				}
				cmd.Stderr = os.Stderr
				if err := cmd.Start(); err != nil {
					b.Fatal(err)
				}
				ready := make(chan bool, 1)
				go func() {
					sc := bufio.NewScanner(stdout)
					ok := false
					for sc.Scan() {
						if sc.Text() == "IDLE-CLIENTS-READY" {
							ok = true
							ready <- true
						}
					}
					if !ok {
						ready <- false
					}
				}()
				select {
				case ok := <-ready:
					if !ok {
						b.Fatal("client process ended before its sessions were ready")
					}
				case <-time.After(2 * time.Minute):
					b.Fatal("client sessions not ready after 2 minutes")
				}
				time.Sleep(300 * time.Millisecond) // let the sessions settle
				after := liveMemory()
				perSession := func(a, b uint64) float64 { return (float64(a) - float64(b)) / idleSessions }
				b.ReportMetric(perSession(after.heap+after.stack, before.heap+before.stack), "bytes/session")
				b.ReportMetric(perSession(after.heap, before.heap), "heap-bytes/session")
				b.ReportMetric(perSession(after.stack, before.stack), "stack-bytes/session")
				b.ReportMetric(float64(runtime.NumGoroutine()-goroutines)/idleSessions, "goroutines/session")
				b.ReportMetric(float64(h.srv.Sessions()), "registered-sessions")
				if p := os.Getenv(envIdleProfile); p != "" {
					writeProfiles(b, p+"."+mode.name)
				}

				_ = stdin.Close() // the client process closes its sessions and exits
				if err := cmd.Wait(); err != nil {
					b.Errorf("client process: %v", err)
				}
				ts.Close()
			}
		})
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

// TestIdleSessionClientProcess is the client side of
// BenchmarkServer_IdleSessionMemory, run in its own process; it skips
// unless that benchmark started it.
func TestIdleSessionClientProcess(t *testing.T) {
	url := os.Getenv(envIdleURL)
	if url == "" {
		// Not a test of its own: the client process that
		// BenchmarkServer_IdleSessionMemory starts. Nothing to do here.
		return
	}
	n, err := strconv.Atoi(os.Getenv(envIdleN))
	if err != nil {
		t.Fatal(err)
	}
	listen := os.Getenv(envIdleListen) == "true"
	ctx := context.Background()
	clients := make([]*client.Client, 0, n)
	defer func() {
		for _, c := range clients {
			_ = c.Close()
		}
	}()
	for i := range n {
		topts := []transport.StreamableHTTPCOption{transport.WithHTTPLogger(slog.New(slog.DiscardHandler))}
		copts := []client.ClientOption{client.WithProtocolVersion(mcp.LATEST_LEGACY_PROTOCOL_VERSION)}
		if listen {
			topts = append(topts, transport.WithContinuousListening())
		}
		tr, err := transport.NewStreamableHTTP(url, topts...)
		if err != nil {
			t.Fatal(err)
		}
		c := client.NewClient(tr, copts...)
		if err := c.Start(ctx); err != nil {
			t.Fatalf("start %d: %v", i, err)
		}
		clients = append(clients, c)
		initialize(t, c, "idle-"+strconv.Itoa(i))
	}
	if _, err := os.Stdout.WriteString("IDLE-CLIENTS-READY\n"); err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, os.Stdin) // until the benchmark closes stdin
}
