//go:build unix

package server_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/mcp"
	"github.com/sourcegraph/conc"

	"github.com/filecast/filecast/events/eventstest"
	"github.com/filecast/filecast/events/hub/hubtest"
	"github.com/filecast/filecast/server"
)

// The end-to-end benchmarks run the stack of "filecast mcp --root" in one
// process — embedded NATS, journal, hub, lock manager and watcher
// (hubtest), the MCP server over them and one stdio client — so that
// -cpuprofile, -memprofile and -trace see all of it:
//
//	FILECAST_BENCH_DIR=/dev/shm go test -run '^$' -bench E2E -benchtime 3000x -cpuprofile cpu.out ./server/
//
// FILECAST_BENCH_DIR (a tmpfs, for example) is where the workspace lives;
// the default is the test's temp folder. The CPU figures are the whole
// process's, the writer and the client included.

// e2eStack is a running stack with a stdio client subscribed to updates
// of *.txt.
type e2eStack struct {
	c     *client.Client
	dir   string
	names []string
}

func benchDir(b *testing.B) string {
	if d := os.Getenv("FILECAST_BENCH_DIR"); d != "" {
		dir, err := os.MkdirTemp(d, "filecast-e2e-")
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { os.RemoveAll(dir) })
		return dir
	}
	return b.TempDir()
}

// startE2E indexes files files silently and starts the stack on them.
func startE2E(b *testing.B, files int) *e2eStack {
	b.Helper()
	dir := benchDir(b)
	names := make([]string, files)
	for i := range names {
		names[i] = fmt.Sprintf("f%05d.txt", i)
		if err := os.WriteFile(filepath.Join(dir, names[i]), []byte("init"), 0o644); err != nil {
			b.Fatal(err)
		}
	}
	st := hubtest.Start(b, hubtest.Options{Dirs: []string{dir}})
	h := &harness{srv: serve(b, st.Hub, server.Options{})}
	c, _ := h.stdioClient(b, clientOpts{name: "bench"})
	call(b, c, "subscribe", map[string]any{"paths": []string{"*.txt"}, "events": []string{"updated"}})
	return &e2eStack{c: c, dir: st.Dirs["docs"], names: names}
}

// benchEvent is the part of an event the benchmarks look at.
type benchEvent struct {
	Seq  uint64    `json:"seq"`
	Path string    `json:"path"`
	Size int64     `json:"size"`
	Time time.Time `json:"timestamp"`
}

// take long-polls list_changes; it returns nil once ctx is done.
func (e *e2eStack) take(ctx context.Context, b *testing.B) []benchEvent {
	req := mcp.CallToolRequest{}
	req.Params.Name = "list_changes"
	req.Params.Arguments = map[string]any{"wait_ms": 2000, "limit": 1000}
	res, err := e.c.CallTool(ctx, req)
	if ctx.Err() != nil {
		return nil
	}
	if err != nil {
		b.Errorf("list_changes: %v", err)
		return nil
	}
	var out struct {
		Events []benchEvent `json:"events"`
	}
	if err := json.Unmarshal([]byte(text(res)), &out); err != nil {
		b.Errorf("list_changes: %v", err)
	}
	return out.Events
}

func percentile(d []time.Duration, q float64) float64 {
	return float64(d[min(len(d)-1, int(q*float64(len(d))))].Microseconds())
}

// BenchmarkE2E_WriteToListChanges writes files at 1,000 a second (one per
// op) while a stdio session long-polls list_changes, like "filecast bench
// --stdio". It reports write → list_changes and write → event timestamp
// (the watcher's share) at p50 and p99, and the CPU per event.
func BenchmarkE2E_WriteToListChanges(b *testing.B) {
	e := startE2E(b, 100)
	ctx, cancel := context.WithCancel(context.Background())
	type key struct {
		path string
		size int64
	}
	var mu sync.Mutex
	written := map[key]time.Time{}
	var lat, stamp []time.Duration
	var wg conc.WaitGroup
	defer wg.Wait()
	defer cancel()
	wg.Go(func() {
		for ctx.Err() == nil {
			evs := e.take(ctx, b)
			now := time.Now()
			mu.Lock()
			for _, ev := range evs {
				k := key{ev.Path, ev.Size}
				if t, ok := written[k]; ok {
					lat = append(lat, now.Sub(t))
					stamp = append(stamp, ev.Time.Sub(t))
					delete(written, k)
				}
			}
			mu.Unlock()
		}
	})
	const interval = time.Millisecond
	cpu0 := eventstest.CPUTime(b)
	n := 0
	next := time.Now()
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		name := e.names[i%len(e.names)]
		content := []byte(strconv.Itoa(1_000_000 + i)) // each round over the files has a size of its own
		mu.Lock()
		written[key{name, int64(len(content))}] = time.Now()
		mu.Unlock()
		if err := os.WriteFile(filepath.Join(e.dir, name), content, 0o644); err != nil {
			b.Fatal(err)
		}
		n++
		next = next.Add(interval)
		if d := time.Until(next); d > 0 {
			time.Sleep(d)
		}
	}
	for deadline := time.Now().Add(5 * time.Second); ; {
		mu.Lock()
		left := len(written)
		mu.Unlock()
		if left == 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(time.Millisecond)
	}
	cpu := eventstest.CPUTime(b) - cpu0
	b.StopTimer()
	mu.Lock()
	defer mu.Unlock()
	if len(lat) == 0 {
		b.Fatal("no event arrived")
	}
	slices.Sort(lat)
	slices.Sort(stamp)
	b.ReportMetric(percentile(lat, 0.5), "p50-µs")
	b.ReportMetric(percentile(lat, 0.99), "p99-µs")
	b.ReportMetric(percentile(stamp, 0.5), "stamp-p50-µs")
	b.ReportMetric(float64(cpu.Microseconds())/float64(n), "cpu-µs/event")
}

// BenchmarkE2E_Throughput writes a batch of 1,000 distinct files per op
// as fast as it can and waits until list_changes has returned every
// change, checking that seqs only increase; it reports changes per second.
func BenchmarkE2E_Throughput(b *testing.B) {
	const batch = 1000
	e := startE2E(b, batch)
	ctx := context.Background()
	n := 0
	start := time.Now()
	cpu0 := eventstest.CPUTime(b)
	for i := 0; b.Loop(); i++ {
		for j, name := range e.names {
			if err := os.WriteFile(filepath.Join(e.dir, name), []byte(strconv.Itoa(i*batch+j)), 0o644); err != nil {
				b.Fatal(err)
			}
		}
		seen := map[string]bool{}
		var last uint64
		for len(seen) < batch {
			for _, ev := range e.take(ctx, b) {
				if ev.Seq <= last {
					b.Fatalf("seq %d after %d", ev.Seq, last)
				}
				last = ev.Seq
				seen[ev.Path] = true
			}
		}
		n += batch
	}
	el := time.Since(start)
	b.ReportMetric(float64(n)/el.Seconds(), "changes/s")
	b.ReportMetric(float64((eventstest.CPUTime(b)-cpu0).Microseconds())/float64(n), "cpu-µs/event")
}
