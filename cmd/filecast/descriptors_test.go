//go:build linux

package main_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/mcp"

	"github.com/filecast/filecast/events/eventstest"
)

// startLimited starts "filecast ARGS" with its open file limit (soft and
// hard) lowered to nofile, through a shell's ulimit.
func startLimited(t *testing.T, nofile int, args ...string) *proc {
	t.Helper()
	return startLimits(t, nofile, nofile, args...)
}

// startLimits starts "filecast ARGS" with the soft and hard open file
// limits given, and a standard input that stays open.
func startLimits(t *testing.T, soft, hard int, args ...string) *proc {
	t.Helper()
	cmd := exec.Command("/bin/sh", append([]string{"-c", `ulimit -S -n "$0" && ulimit -H -n "$1" && shift && exec "$@"`,
		strconv.Itoa(soft), strconv.Itoa(hard), binary}, args...)...)
	p := &proc{cmd: cmd, stderr: &lockedBuffer{}, done: make(chan struct{})}
	cmd.Stderr = p.stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { stdin.Close() })
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { _ = cmd.Wait(); close(p.done) }()
	t.Cleanup(func() {
		p.stop(t)
		if t.Failed() {
			t.Logf("filecast %s stderr:\n%s", args[0], p.stderr.String())
		}
	})
	return p
}

// TestFileLimit_Raised starts hub and mcp with a soft open file limit
// below the hard one: each runs with the hard limit, and says that it is
// low.
func TestFileLimit_Raised(t *testing.T) {
	for _, cmd := range []string{"hub", "mcp"} {
		t.Run(cmd, func(t *testing.T) {
			args := []string{cmd, "--root", "w=" + t.TempDir(), "--data", t.TempDir()}
			if cmd == "hub" {
				args = append(args, "--listen", freeAddr(t))
			}
			p := startLimits(t, 100, 1000, args...)
			limits := fmt.Sprintf("/proc/%d/limits", p.cmd.Process.Pid)
			eventstest.Eventually(t, "the limit raised and the warning", func() bool {
				b, err := os.ReadFile(limits)
				return err == nil && regexp.MustCompile(`Max open files\s+1000\s+1000`).Match(b) &&
					strings.Contains(p.stderr.String(), "the open file limit is low")
			})
		})
	}
}

// openFDs counts the open descriptors of process pid.
func openFDs(t *testing.T, pid int) int {
	t.Helper()
	ents, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		t.Fatalf("count descriptors: %v", err)
	}
	return len(ents)
}

// metric returns the value of one sample line of /metrics (name with its
// labels), or -1 when there is none.
func metric(t *testing.T, base, sample string, header map[string]string) float64 {
	t.Helper()
	req, err := http.NewRequest("GET", base+"/metrics", nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	m := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(sample) + ` (\S+)$`).FindSubmatch(b)
	if m == nil {
		return -1
	}
	v, err := strconv.ParseFloat(string(m[1]), 64)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// sseTail reads a hub's event stream in the background.
type sseTail struct{ evs chan sseEvent }

func tailEvents(t *testing.T, url string, header map[string]string) *sseTail {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	req, err := http.NewRequestWithContext(ctx, "GET", url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	if res.StatusCode != 200 {
		cancel()
		t.Fatalf("event stream: status %d", res.StatusCode)
	}
	s := &sseTail{evs: make(chan sseEvent, 64)}
	done := make(chan struct{})
	go func() {
		defer close(done)
		r := &sseReader{r: bufio.NewReader(res.Body)}
		for {
			ev, err := r.next()
			if err != nil {
				return
			}
			s.evs <- ev
		}
	}()
	t.Cleanup(func() { cancel(); res.Body.Close(); <-done })
	return s
}

// next returns the next event, failing the test after d.
func (s *sseTail) next(t *testing.T, d time.Duration) sseEvent {
	t.Helper()
	select {
	case ev := <-s.evs:
		return ev
	case <-time.After(d):
		t.Fatalf("no event within %s", d)
		return sseEvent{}
	}
}

// TestHub_DescriptorsRunOut runs a hub whose open file limit is 128: it
// says the limit is low and caps event streams to fit it; with every
// descriptor then taken by idle connections, a file written in the
// workspace cannot be read — the hub says so once — and is reported as
// soon as descriptors free up, not lost.
func TestHub_DescriptorsRunOut(t *testing.T) {
	const limit = 128
	root, data := t.TempDir(), t.TempDir()
	addr := freeAddr(t)
	p := startLimited(t, limit, "hub", "--root", "w="+root, "--listen", addr, "--data", data)
	base := "http://" + addr
	waitHTTP(t, base+"/healthz")
	pid := p.cmd.Process.Pid
	if got := metric(t, base, "process_max_fds", nil); got != limit {
		t.Fatalf("process_max_fds = %v, want %d", got, limit)
	}
	if got := metric(t, base, "filecast_sse_streams_max", nil); got != 16 {
		t.Fatalf("filecast_sse_streams_max = %v, want 16 for a limit of %d", got, limit)
	}
	if !strings.Contains(p.stderr.String(), "the open file limit is low") {
		t.Fatal("no warning about the low open file limit")
	}
	stream := tailEvents(t, base+"/v1/workspaces/w/events", nil)

	// Idle connections take every descriptor the hub has left (those the
	// hub cannot accept wait in the listen backlog).
	var conns []net.Conn
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	for range limit + 32 {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
	}
	eventstest.Eventually(t, "the hub out of descriptors", func() bool { return openFDs(t, pid) >= limit })
	writeFile(t, filepath.Join(root, "probe.txt"), "written while out of descriptors")
	eventstest.Eventually(t, "the hub to say it is out of descriptors", func() bool {
		return strings.Contains(p.stderr.String(), "out of file descriptors")
	})
	select {
	case ev := <-stream.evs:
		t.Fatalf("an event while the file could not be read: %+v", ev)
	default:
	}
	for _, c := range conns {
		c.Close()
	}
	conns = nil

	ev := stream.next(t, 20*time.Second)
	var got wsEvent
	if err := json.Unmarshal([]byte(ev.data), &got); err != nil {
		t.Fatal(err)
	}
	if got.Type != "file.created" || got.Path != "probe.txt" || got.SHA256 != sha256Hex("written while out of descriptors") {
		t.Fatalf("event %+v", got)
	}
	if n := metric(t, base, `filecast_watch_read_retries_total{reason="descriptors"}`, nil); n < 1 {
		t.Fatalf("read retries for want of descriptors = %v", n)
	}
	eventstest.Eventually(t, "the hub to say descriptors are back", func() bool {
		return strings.Contains(p.stderr.String(), "file descriptors are available again")
	})
	if n := strings.Count(p.stderr.String(), "out of file descriptors"); n != 1 {
		t.Fatalf("%d lines about running out of descriptors, want 1", n)
	}
	select {
	case <-p.done:
		t.Fatal("the hub exited")
	default:
	}
}

// TestHub_StreamCaps refuses event streams beyond a token's cap with 429
// and beyond the hub's with 503, as JSON errors with Retry-After, and
// counts them.
func TestHub_StreamCaps(t *testing.T) {
	root := t.TempDir()
	addr := freeAddr(t)
	startProc(t, "hub", "--root", "w="+root, "--listen", addr, "--data", t.TempDir(),
		"--token", "a=aaaaaaaaaaaaaaaaaaaa", "--token", "b=bbbbbbbbbbbbbbbbbbbb",
		"--max-streams", "3", "--max-streams-per-client", "2")
	base := "http://" + addr
	waitHTTP(t, base+"/healthz")
	a, b := bearer("aaaaaaaaaaaaaaaaaaaa"), bearer("bbbbbbbbbbbbbbbbbbbb")
	url := base + "/v1/workspaces/w/events"
	tailEvents(t, url, a)
	tailEvents(t, url, a)
	refusedStream(t, url, a, http.StatusTooManyRequests)
	tailEvents(t, url, b)
	refusedStream(t, url, b, http.StatusServiceUnavailable)
	if n := metric(t, base, `filecast_sse_streams_refused_total{cap="client"}`, a); n != 1 {
		t.Fatalf("streams refused by the client cap: %v", n)
	}
	if n := metric(t, base, `filecast_sse_streams_refused_total{cap="hub"}`, a); n != 1 {
		t.Fatalf("streams refused by the hub cap: %v", n)
	}
}

// refusedStream checks that a stream is refused with status, a JSON
// too_many_streams error and Retry-After.
func refusedStream(t *testing.T, url string, header map[string]string, status int) {
	t.Helper()
	req, err := http.NewRequest("GET", url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var body struct {
		Error struct{ Code, Message string } `json:"error"`
	}
	if err := json.NewDecoder(res.Body).Decode(&body); err != nil {
		t.Fatalf("status %d: decode: %v", res.StatusCode, err)
	}
	if res.StatusCode != status || body.Error.Code != "too_many_streams" || body.Error.Message == "" || res.Header.Get("Retry-After") == "" {
		t.Fatalf("status %d, body %+v, Retry-After %q; want %d too_many_streams", res.StatusCode, body, res.Header.Get("Retry-After"), status)
	}
}

// TestHub_FIFO answers a read of a fifo in a workspace at once with 404
// "named pipe", as often as it is asked, without holding a descriptor,
// neither lists nor reports it, and goes on reporting files.
func TestHub_FIFO(t *testing.T) {
	root := t.TempDir()
	addr := freeAddr(t)
	p := startProc(t, "hub", "--root", "w="+root, "--listen", addr, "--data", t.TempDir())
	base := "http://" + addr
	waitHTTP(t, base+"/healthz")
	stream := tailEvents(t, base+"/v1/workspaces/w/events", nil)
	if err := syscall.Mkfifo(filepath.Join(root, "pipe"), 0o644); err != nil {
		t.Fatal(err)
	}
	client := &http.Client{Timeout: 300 * time.Millisecond, Transport: &http.Transport{DisableKeepAlives: true}}
	pid := p.cmd.Process.Pid
	before := openFDs(t, pid)
	for i := range 50 {
		res, err := client.Get(base + "/v1/workspaces/w/files/pipe")
		if err != nil {
			t.Fatalf("read %d: %v", i, err)
		}
		var body struct {
			Error struct{ Code, Message string } `json:"error"`
		}
		err = json.NewDecoder(res.Body).Decode(&body)
		res.Body.Close()
		if err != nil || res.StatusCode != 404 || body.Error.Code != "not_found" || !strings.Contains(body.Error.Message, "named pipe") {
			t.Fatalf("read %d: status %d, body %+v, %v", i, res.StatusCode, body, err)
		}
	}
	// The hub closes each connection once it has answered.
	eventstest.Eventually(t, "the hub's descriptors back to where they were", func() bool { return openFDs(t, pid) <= before })

	writeFile(t, filepath.Join(root, "after.txt"), "x")
	ev := stream.next(t, 10*time.Second)
	if !strings.Contains(ev.data, `"path":"after.txt"`) {
		t.Fatalf("first event %+v", ev)
	}
	var listing struct {
		Files []struct{ Path string } `json:"files"`
	}
	getJSON(t, base+"/v1/workspaces/w/files", &listing)
	if len(listing.Files) != 1 || listing.Files[0].Path != "after.txt" {
		t.Fatalf("listing %+v", listing)
	}
}

// TestMCP_FIFO answers resources/read of a fifo at once with an error
// that says what it is.
func TestMCP_FIFO(t *testing.T) {
	root := t.TempDir()
	if err := syscall.Mkfifo(filepath.Join(root, "pipe"), 0o644); err != nil {
		t.Fatal(err)
	}
	a := startStdio(t, legacyVersion, "--root", "w="+root, "--data", t.TempDir())
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	req := mcp.ReadResourceRequest{}
	req.Params.URI = "filecast://w/pipe"
	res, err := a.c.ReadResource(ctx, req)
	switch {
	case ctx.Err() != nil:
		t.Fatalf("resources/read of a fifo did not answer: %v", err)
	case err == nil:
		t.Fatalf("resources/read of a fifo = %+v", res)
	case !strings.Contains(err.Error(), "named pipe"):
		t.Fatalf("resources/read of a fifo: %v", err)
	}
}
