// Package bench is filecast's own end-to-end benchmark: it starts the
// filecast binary on a fresh workspace, connects MCP sessions to it, writes
// files at a steady rate and measures how long each change takes to reach
// every session, beside a bare fsnotify watcher measured in the same run.
//
//	res, err := bench.Run(ctx, bench.Config{Binary: "filecast", Sessions: 10, Rate: 1000, Duration: 5*time.Second})
//	res.Print(os.Stdout)
package bench

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/fsnotify/fsnotify"
	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/client/transport"
	"github.com/mark3labs/mcp-go/mcp"
	"github.com/sourcegraph/conc"
)

// Config says what to measure.
type Config struct {
	Binary   string        // the filecast binary to start
	Dir      string        // where to make the workspace (e.g. a tmpfs); "" = os.TempDir()
	Sessions int           // MCP sessions, each long-polling list_changes
	Rate     int           // file writes per second
	Duration time.Duration // how long to write
	Files    int           // distinct files written round-robin
	Stdio    bool          // one session over stdio instead of HTTP sessions
	Log      io.Writer     // the binary's stderr; nil discards it
	Flags    []string      // extra flags for "filecast mcp", e.g. --cpuprofile FILE
}

// Result holds the measured latencies.
type Result struct {
	Config   Config
	Writes   int
	Baseline Stats         // write → bare fsnotify event in this process
	ToAgent  Stats         // write → event returned by list_changes, over all sessions
	ToStamp  Stats         // write → the event's timestamp: the watcher noticed, hashed and stamped it
	CPU      time.Duration // CPU time (user+system) of the filecast process while writing and draining; 0 where unknown
	Lost     int           // events written but never seen by a session
	Elapsed  time.Duration
}

// Stats summarises latencies.
type Stats struct {
	N                  int
	P50, P90, P99, Max time.Duration
}

func summarise(d []time.Duration) Stats {
	if len(d) == 0 {
		return Stats{}
	}
	slices.Sort(d)
	at := func(q float64) time.Duration { return d[min(len(d)-1, int(q*float64(len(d))))] }
	return Stats{N: len(d), P50: at(0.50), P90: at(0.90), P99: at(0.99), Max: d[len(d)-1]}
}

// Print writes the result as a small table.
func (r Result) Print(w io.Writer) {
	mode := "http"
	if r.Config.Stdio {
		mode = "stdio"
	}
	fmt.Fprintf(w, "filecast bench: %d writes at %d/s over %s, %d %s session(s), %d files\n",
		r.Writes, r.Config.Rate, r.Elapsed.Round(time.Millisecond), r.Config.Sessions, mode, r.Config.Files)
	fmt.Fprintf(w, "%-28s %8s %10s %10s %10s %10s\n", "path", "n", "p50", "p90", "p99", "max")
	row := func(name string, s Stats) {
		fmt.Fprintf(w, "%-28s %8d %10s %10s %10s %10s\n", name, s.N, us(s.P50), us(s.P90), us(s.P99), us(s.Max))
	}
	row("write → fsnotify (floor)", r.Baseline)
	row("write → event timestamp", r.ToStamp)
	row("write → list_changes", r.ToAgent)
	fmt.Fprintf(w, "added by filecast at p50: %s, at p99: %s; lost: %d\n",
		us(r.ToAgent.P50-r.Baseline.P50), us(r.ToAgent.P99-r.Baseline.P99), r.Lost)
	if r.CPU > 0 && r.Writes > 0 {
		fmt.Fprintf(w, "filecast CPU: %s per write (%s over the run)\n",
			us(r.CPU/time.Duration(r.Writes)), r.CPU.Round(time.Millisecond))
	}
}

func us(d time.Duration) string { return fmt.Sprintf("%.0fµs", float64(d)/float64(time.Microsecond)) }

// Run performs one benchmark run; it ends every process it starts.
func Run(ctx context.Context, c Config) (Result, error) {
	if c.Sessions <= 0 {
		c.Sessions = 1
	}
	if c.Stdio {
		c.Sessions = 1
	}
	if c.Rate <= 0 || c.Duration <= 0 {
		return Result{}, errors.New("bench: rate and duration must be positive")
	}
	if c.Files <= 0 {
		c.Files = 100
	}
	base, err := os.MkdirTemp(c.Dir, "filecast-bench-")
	if err != nil {
		return Result{}, fmt.Errorf("make workspace: %w", err)
	}
	defer os.RemoveAll(base)
	root, data := filepath.Join(base, "ws"), filepath.Join(base, "data")
	if err := os.MkdirAll(root, 0o755); err != nil {
		return Result{}, err
	}
	names := make([]string, c.Files)
	for i := range names {
		names[i] = fmt.Sprintf("f%05d.txt", i)
		if err := os.WriteFile(filepath.Join(root, names[i]), []byte("init"), 0o644); err != nil {
			return Result{}, err
		}
	}

	sessions, proc, stop, err := connect(ctx, c, root, data)
	if err != nil {
		return Result{}, err
	}
	defer stop()

	fw, err := fsnotify.NewBufferedWatcher(65536)
	if err != nil {
		return Result{}, fmt.Errorf("bare fsnotify: %w", err)
	}
	defer fw.Close()
	if err := fw.Add(root); err != nil {
		return Result{}, fmt.Errorf("bare fsnotify: %w", err)
	}

	for _, s := range sessions {
		var r struct{}
		if err := callTool(ctx, s, "subscribe", map[string]any{"paths": []string{"*.txt"}, "events": []string{"updated"}}, &r); err != nil {
			return Result{}, err
		}
	}

	contentBySum := sums(c.Rate*int(c.Duration/time.Second+1) + 1)
	type key struct{ path, content string }
	var mu sync.Mutex
	written := map[key]time.Time{}
	var baseline, toAgent, toStamp []time.Duration
	seen := make([]map[key]bool, len(sessions))

	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg conc.WaitGroup
	wg.Go(func() {
		for {
			select {
			case <-runCtx.Done():
				return
			case ev, ok := <-fw.Events:
				if !ok {
					return
				}
				now := time.Now()
				if !ev.Has(fsnotify.Write) {
					continue
				}
				b, err := os.ReadFile(ev.Name)
				if err != nil {
					continue
				}
				mu.Lock()
				if t, ok := written[key{filepath.Base(ev.Name), string(b)}]; ok {
					baseline = append(baseline, now.Sub(t))
				}
				mu.Unlock()
			}
		}
	})
	for i, s := range sessions {
		seen[i] = map[key]bool{}
		wg.Go(func() {
			for runCtx.Err() == nil {
				var r struct {
					Events []struct {
						Path   string    `json:"path"`
						SHA256 string    `json:"sha256"`
						Size   int64     `json:"size"`
						Time   time.Time `json:"timestamp"`
					} `json:"events"`
				}
				if err := callTool(runCtx, s, "list_changes", map[string]any{"wait_ms": 500, "limit": 1000}, &r); err != nil {
					return
				}
				now := time.Now()
				mu.Lock()
				for _, e := range r.Events {
					k := key{e.Path, contentBySum[e.SHA256]}
					if t, ok := written[k]; ok && !seen[i][k] {
						seen[i][k] = true
						toAgent = append(toAgent, now.Sub(t))
						if i == 0 {
							toStamp = append(toStamp, e.Time.Sub(t))
						}
					}
				}
				mu.Unlock()
			}
		})
	}

	cpu0 := proc.cpu()
	start := time.Now()
	interval := time.Second / time.Duration(c.Rate)
	writes := 0
	next := start
	for time.Since(start) < c.Duration && ctx.Err() == nil {
		name := names[writes%len(names)]
		content := strconv.Itoa(writes)
		mu.Lock()
		written[key{name, content}] = time.Now()
		mu.Unlock()
		if err := os.WriteFile(filepath.Join(root, name), []byte(content), 0o644); err != nil {
			cancel()
			wg.Wait()
			return Result{}, fmt.Errorf("write: %w", err)
		}
		writes++
		next = next.Add(interval)
		if d := time.Until(next); d > 0 {
			time.Sleep(d)
		}
	}
	elapsed := time.Since(start)
	// Let the last events arrive, then stop.
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		mu.Lock()
		done := len(toAgent) >= writes*len(sessions)
		mu.Unlock()
		if done {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	var cpu time.Duration
	if cpu0 > 0 {
		cpu = proc.cpu() - cpu0
	}
	cancel()
	wg.Wait()
	mu.Lock()
	defer mu.Unlock()
	// Coalescing may fold a fast rewrite of the same file into its next
	// write; a write counts as lost only if a later write of that file was
	// not seen either.
	lost := 0
	for i := range sessions {
		for w := 0; w < writes; w++ {
			name := names[w%len(names)]
			if seen[i][key{name, strconv.Itoa(w)}] {
				continue
			}
			later := false
			for n := w + len(names); n < writes; n += len(names) {
				if seen[i][key{name, strconv.Itoa(n)}] {
					later = true
					break
				}
			}
			if !later {
				lost++
			}
		}
	}
	return Result{Config: c, Writes: writes, Baseline: summarise(baseline), ToAgent: summarise(toAgent),
		ToStamp: summarise(toStamp), CPU: cpu, Lost: lost, Elapsed: elapsed}, nil
}

// sums maps the sha256 of the contents the benchmark writes back to the
// content, so an event names the write it reports.
func sums(n int) map[string]string {
	m := make(map[string]string, n)
	for i := range n {
		s := strconv.Itoa(i)
		m[sha256hex(s)] = s
	}
	return m
}

// process is the filecast process a run started.
type process struct{ cmd *exec.Cmd }

// cpu returns the user and system CPU time the process has used so far,
// or 0 where that cannot be read (it reads /proc, so Linux only).
func (p *process) cpu() time.Duration {
	if p == nil || p.cmd == nil || p.cmd.Process == nil {
		return 0
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", p.cmd.Process.Pid))
	if err != nil {
		return 0
	}
	// The command name (field 2) is in parentheses and may hold spaces;
	// utime and stime are fields 14 and 15, in clock ticks.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return 0
	}
	utime, err1 := strconv.ParseInt(f[11], 10, 64)
	stime, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0
	}
	const ticks = 100 // USER_HZ, 100 on every Linux platform Go supports
	return time.Duration(utime+stime) * time.Second / ticks
}

func connect(ctx context.Context, c Config, root, data string) ([]*client.Client, *process, func(), error) {
	var stderr io.Writer = io.Discard
	if c.Log != nil {
		stderr = c.Log
	}
	if c.Stdio {
		proc := &process{}
		cl, err := client.NewStdioMCPClientWithOptions(c.Binary, nil, append([]string{"mcp", "--root", "bench=" + root, "--data", data}, c.Flags...),
			transport.WithCommandFunc(func(ctx context.Context, command string, env, args []string) (*exec.Cmd, error) {
				cmd := exec.CommandContext(ctx, command, args...)
				cmd.Env = append(os.Environ(), env...)
				cmd.Stderr = stderr
				proc.cmd = cmd
				return cmd, nil
			}))
		if err != nil {
			return nil, nil, nil, fmt.Errorf("start filecast mcp: %w", err)
		}
		if err := initialize(ctx, cl); err != nil {
			cl.Close()
			return nil, nil, nil, err
		}
		return []*client.Client{cl}, proc, func() { cl.Close() }, nil
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, nil, nil, err
	}
	addr := ln.Addr().String()
	ln.Close()
	cmd := exec.CommandContext(ctx, c.Binary, append([]string{"mcp", "--http", addr, "--root", "bench=" + root, "--data", data, "--log-level", "warn"}, c.Flags...)...)
	cmd.Stderr = stderr
	if err := cmd.Start(); err != nil {
		return nil, nil, nil, fmt.Errorf("start filecast mcp: %w", err)
	}
	stopProc := func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
	}
	var out []*client.Client
	stop := func() {
		for _, cl := range out {
			cl.Close()
		}
		stopProc()
	}
	deadline := time.Now().Add(20 * time.Second)
	for i := 0; i < c.Sessions; i++ {
		for {
			cl, err := client.NewStreamableHttpClient("http://" + addr + "/mcp")
			if err == nil {
				err = cl.Start(ctx)
			}
			if err == nil {
				err = initialize(ctx, cl)
			}
			if err == nil {
				out = append(out, cl)
				break
			}
			if time.Now().After(deadline) {
				stop()
				return nil, nil, nil, fmt.Errorf("connect session %d: %w", i, err)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	return out, &process{cmd: cmd}, stop, nil
}

func initialize(ctx context.Context, c *client.Client) error {
	req := mcp.InitializeRequest{}
	req.Params.ProtocolVersion = "2025-11-25"
	req.Params.ClientInfo = mcp.Implementation{Name: "filecast-bench", Version: "1"}
	_, err := c.Initialize(ctx, req)
	if err != nil {
		return fmt.Errorf("initialize: %w", err)
	}
	return nil
}
