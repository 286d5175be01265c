package bench

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/sourcegraph/conc"
)

// stopWait bounds how long a process may take to exit after SIGTERM
// before it is killed.
const stopWait = 10 * time.Second

// proc is a filecast process a run started. stop ends it; a proc must be
// stopped exactly once, by the goroutine that spawned it.
type proc struct {
	name    string
	cmd     *exec.Cmd
	stdin   *os.File // the write end of the child's stdin; nil unless stdio
	stdout  *os.File // the read end of the child's stdout; nil unless stdio
	started time.Time
	done    chan struct{} // closed when the process has exited
	wg      conc.WaitGroup
}

// spawn starts bin with args. With stdio, the child's stdin and stdout are
// pipes this process holds; stderr goes to stderr (nil discards it).
func spawn(name, bin string, args []string, stdio bool, stderr io.Writer) (*proc, error) {
	p := &proc{name: name, cmd: exec.Command(bin, args...), done: make(chan struct{})}
	if stderr != nil {
		p.cmd.Stderr = stderr
	}
	var childEnds []*os.File
	if stdio {
		inR, inW, err := os.Pipe()
		if err != nil {
			return nil, fmt.Errorf("make pipe: %w", err)
		}
		outR, outW, err := os.Pipe()
		if err != nil {
			inR.Close()
			inW.Close()
			return nil, fmt.Errorf("make pipe: %w", err)
		}
		p.cmd.Stdin, p.cmd.Stdout = inR, outW
		p.stdin, p.stdout = inW, outR
		childEnds = []*os.File{inR, outW}
	}
	p.started = time.Now()
	err := p.cmd.Start()
	for _, f := range childEnds {
		f.Close()
	}
	if err != nil {
		if stdio {
			p.stdin.Close()
			p.stdout.Close()
		}
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	p.wg.Go(func() {
		_ = p.cmd.Wait()
		close(p.done)
	})
	return p, nil
}

// stop ends the process: its stdin is closed (a stdio server ends with its
// input), then SIGTERM, then SIGKILL after stopWait. It returns when the
// process has exited and been reaped.
func (p *proc) stop() {
	if p.stdin != nil {
		p.stdin.Close()
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	t := time.NewTimer(stopWait)
	select {
	case <-p.done:
	case <-t.C:
		_ = p.cmd.Process.Kill()
		<-p.done
	}
	t.Stop()
	if p.stdout != nil {
		p.stdout.Close()
	}
	p.wg.Wait()
}

// exited reports whether the process has ended.
func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// cpu returns the user and system CPU time the process has used so far,
// or 0 where that cannot be read (it reads /proc, so Linux only).
func (p *proc) cpu() time.Duration {
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

// peakRSS returns the process's peak resident set size (VmHWM) in bytes,
// or 0 where it cannot be read.
func (p *proc) peakRSS() int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", p.cmd.Process.Pid))
	if err != nil {
		return 0
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			f := strings.Fields(v)
			if len(f) == 2 && f[1] == "kB" {
				kb, err := strconv.ParseInt(f[0], 10, 64)
				if err == nil {
					return kb << 10
				}
			}
		}
	}
	return 0
}

// procs is a set of processes measured together.
type procs []*proc

func (ps procs) cpu() time.Duration {
	var t time.Duration
	for _, p := range ps {
		t += p.cpu()
	}
	return t
}

// peakRSS returns the largest peak RSS of the processes and their sum.
func (ps procs) peakRSS() (largest, total int64) {
	for _, p := range ps {
		r := p.peakRSS()
		largest = max(largest, r)
		total += r
	}
	return largest, total
}

// stop ends every process, the last started first.
func (ps procs) stop() {
	for i := len(ps) - 1; i >= 0; i-- {
		ps[i].stop()
	}
}

// lineWriter calls fn with each complete line written to it (without the
// newline) and copies everything to next, if set. It is safe for
// concurrent use.
type lineWriter struct {
	mu   sync.Mutex
	buf  []byte
	fn   func(line string, at time.Time)
	next io.Writer
}

func (w *lineWriter) Write(b []byte) (int, error) {
	at := time.Now()
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.next != nil {
		_, _ = w.next.Write(b)
	}
	w.buf = append(w.buf, b...)
	for {
		i := bytes.IndexByte(w.buf, '\n')
		if i < 0 {
			break
		}
		w.fn(string(w.buf[:i]), at)
		w.buf = w.buf[i+1:]
	}
	return len(b), nil
}

// freeAddr returns a loopback address with a port nobody listens on now.
func freeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("find a free port: %w", err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr, nil
}

// errNotReady reports that a process did not become ready in time.
var errNotReady = errors.New("bench: filecast did not become ready")

// waitHealthy polls GET url (a /healthz route) through client until it
// answers 200, the process exits, or timeout passes; it returns when it
// first answered 200.
func waitHealthy(ctx context.Context, client *http.Client, url string, p *proc, every, timeout time.Duration) (time.Time, error) {
	deadline := time.Now().Add(timeout)
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return time.Time{}, err
		}
		res, err := client.Do(req)
		if err == nil {
			_, _ = io.Copy(io.Discard, res.Body)
			res.Body.Close()
			if res.StatusCode == http.StatusOK {
				return time.Now(), nil
			}
		}
		switch {
		case ctx.Err() != nil:
			return time.Time{}, ctx.Err()
		case p != nil && p.exited():
			return time.Time{}, fmt.Errorf("%w: %s exited", errNotReady, p.name)
		case time.Now().After(deadline):
			return time.Time{}, fmt.Errorf("%w: %s not healthy after %s", errNotReady, url, timeout)
		}
		time.Sleep(every)
	}
}

// unixClient is an HTTP client that reaches the hub a data folder's owner
// serves on its unix socket.
func unixClient(socket string) *http.Client {
	return &http.Client{
		Timeout: 5 * time.Second,
		Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", socket)
		}},
	}
}
