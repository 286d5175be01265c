package main_test

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/filecast/filecast/events/eventstest"
	"github.com/filecast/filecast/events/natsd/natstest"
)

// clusterHub is one "filecast hub" process on a shared NATS cluster.
type clusterHub struct {
	id   string
	base string
	proc *proc
	args []string
}

// startClusterHubs starts n hubs on the cluster at urls, all serving
// workspace w at root, each with its own data folder.
func startClusterHubs(t *testing.T, urls, root string, n int) []*clusterHub {
	t.Helper()
	hubs := make([]*clusterHub, n)
	for i := range hubs {
		addr := freeAddr(t)
		h := &clusterHub{id: fmt.Sprintf("hub-%c", 'a'+i), base: "http://" + addr}
		h.args = []string{"hub", "--nats", urls, "--replicas", "3", "--root", "w=" + root,
			"--data", t.TempDir(), "--listen", addr, "--hub-id", h.id, "--leader-ttl", "2s"}
		h.proc = startProc(t, h.args...)
		hubs[i] = h
		// One after the other: hubs that create the same streams at the
		// same moment on a fresh cluster wait seconds for the server
		// (retryOpen); that is tested by TestCluster_HubsStartTogether.
		waitHTTP(t, h.base+"/healthz")
	}
	return hubs
}

// watching returns the hub that watches workspace w now, waiting until
// exactly one of the running hubs says it does.
func watching(t *testing.T, hubs []*clusterHub) *clusterHub {
	t.Helper()
	var w *clusterHub
	eventstest.Eventually(t, "one hub to watch w", func() bool {
		w = nil
		n := 0
		for _, h := range hubs {
			select {
			case <-h.proc.done:
				continue
			default:
			}
			if watches(h) {
				w, n = h, n+1
			}
		}
		return n == 1
	})
	return w
}

// watches reports whether the hub's last word on workspace w is that it
// watches it.
func watches(h *clusterHub) bool {
	log := h.proc.stderr.String()
	on := strings.LastIndex(log, `msg="watching workspace"`)
	off := strings.LastIndex(log, `msg="stopped watching workspace"`)
	return on >= 0 && on > off
}

// logOf reads the whole log of workspace w through the hub at base.
func logOf(t *testing.T, base string) []wsEvent {
	t.Helper()
	var all []wsEvent
	var cursor uint64
	for {
		var page struct {
			Events  []wsEvent `json:"events"`
			Cursor  uint64    `json:"cursor"`
			HasMore bool      `json:"has_more"`
		}
		if code := getJSON(t, fmt.Sprintf("%s/v1/workspaces/w/changes?cursor=%d&limit=1000", base, cursor), &page); code != 200 {
			t.Fatalf("changes from %s: %d", base, code)
		}
		all = append(all, page.Events...)
		cursor = page.Cursor
		if !page.HasMore {
			return all
		}
	}
}

// converge waits until the last file event of every file in root, as the
// hub at base serves the log, describes the file's content, and returns
// how long that took.
func converge(t *testing.T, base, root string) time.Duration {
	t.Helper()
	start := time.Now()
	eventstest.Eventually(t, "the log to describe every file", func() bool {
		last, _ := lastContents(logOf(t, base))
		return len(stale(t, root, last)) == 0
	})
	return time.Since(start)
}

// eventsFor returns the file events of the log about path.
func eventsFor(evs []wsEvent, path string) []wsEvent {
	var out []wsEvent
	for _, e := range evs {
		if e.Path == path && strings.HasPrefix(e.Type, "file.") {
			out = append(out, e)
		}
	}
	return out
}

// sseTap records every event of one SSE stream of workspace w.
type sseTap struct {
	mu     sync.Mutex
	evs    []sseEvent
	closed chan struct{}
	resp   *http.Response
}

func tapSSE(t *testing.T, base, lastID string) *sseTap {
	t.Helper()
	req, err := http.NewRequest("GET", base+"/v1/workspaces/w/events", nil)
	if err != nil {
		t.Fatal(err)
	}
	if lastID != "" {
		req.Header.Set("Last-Event-ID", lastID)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 200 {
		t.Fatalf("events from %s: %d", base, resp.StatusCode)
	}
	s := &sseTap{closed: make(chan struct{}), resp: resp}
	go func() {
		defer close(s.closed)
		r := &sseReader{r: bufio.NewReader(resp.Body)}
		for {
			ev, err := r.next()
			if err != nil {
				return
			}
			s.mu.Lock()
			s.evs = append(s.evs, ev)
			s.mu.Unlock()
		}
	}()
	t.Cleanup(func() { resp.Body.Close(); <-s.closed })
	return s
}

func (s *sseTap) events() []sseEvent {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]sseEvent(nil), s.evs...)
}

// parseSSE decodes an SSE event's data: its event_id and seq.
func parseSSE(t *testing.T, ev sseEvent) (id string, seq uint64) {
	t.Helper()
	var e struct {
		ID  string `json:"event_id"`
		Seq uint64 `json:"seq"`
	}
	if err := json.Unmarshal([]byte(ev.data), &e); err != nil {
		t.Fatalf("event data %q: %v", ev.data, err)
	}
	if ev.id != fmt.Sprint(e.Seq) {
		t.Fatalf("SSE id %q of an event with seq %d", ev.id, e.Seq)
	}
	return e.ID, e.Seq
}

func seqOf(t *testing.T, ev sseEvent) uint64 { _, seq := parseSSE(t, ev); return seq }

// checkStream checks that an SSE stream delivered the log's events from
// its first seq on, each once, in order and with no gap.
func checkStream(t *testing.T, name string, got []sseEvent, log []wsEvent) {
	t.Helper()
	if len(got) == 0 {
		t.Fatalf("%s: no events", name)
	}
	bySeq := map[uint64]string{}
	for _, e := range log {
		bySeq[e.Seq] = e.ID
	}
	prev := seqOf(t, got[0]) - 1
	for _, ev := range got {
		id, seq := parseSSE(t, ev)
		if seq != prev+1 {
			t.Fatalf("%s: seq %d after %d (gap or repeat)", name, seq, prev)
		}
		if bySeq[seq] != id {
			t.Fatalf("%s: seq %d has id %s, the log says %s", name, seq, id, bySeq[seq])
		}
		prev = seq
	}
}

func do(t *testing.T, method, url, body string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestCluster_HubsShareWorkspaces runs two hubs on a three-node NATS
// cluster serving one folder: one watches it, both serve every event with
// the same seqs, locks and writes through either hold for both, and when
// the watching hub is killed mid-burst the other takes the watch over,
// reports what changed meanwhile, and loses and repeats nothing.
func TestCluster_HubsShareWorkspaces(t *testing.T) {
	cl := natstest.Cluster(t, 3)
	root := t.TempDir()
	writeFile(t, filepath.Join(root, "seed.txt"), "before")
	hubs := startClusterHubs(t, cl.URLs(), root, 2)
	w := watching(t, hubs)
	other := hubs[0]
	if other == w {
		other = hubs[1]
	}
	taps := []*sseTap{tapSSE(t, hubs[0].base, ""), tapSSE(t, hubs[1].base, "")}
	// An agent whose MCP server takes its events from the hub that does
	// not watch.
	agent := startStdio(t, legacyVersion, "--hub", other.base)

	// A change on disk is one event, served by both hubs with one seq.
	writeFile(t, filepath.Join(root, "a.txt"), "one")
	eventstest.Eventually(t, "a.txt on both hubs", func() bool {
		return len(eventsFor(logOf(t, hubs[0].base), "a.txt")) > 0 && len(eventsFor(logOf(t, hubs[1].base), "a.txt")) > 0
	})
	if got, _ := agent.collect(nil, 1); len(got) != 1 || got[0].Path != "a.txt" || got[0].Seq != eventsFor(logOf(t, w.base), "a.txt")[0].Seq {
		t.Fatalf("agent on %s got %v, want a.txt with the watching hub's seq", other.id, got)
	}

	// A lock taken through one hub is refused through the other.
	code, body := do(t, "POST", w.base+"/v1/workspaces/w/locks", `{"path":"a.txt","ttl_seconds":30,"holder":"agent-1"}`)
	if code != 201 {
		t.Fatalf("lock through the watching hub: %d %s", code, body)
	}
	code, body = do(t, "POST", other.base+"/v1/workspaces/w/locks", `{"path":"a.txt","ttl_seconds":30,"holder":"agent-2"}`)
	if code != 409 || !strings.Contains(body, "agent-1") {
		t.Fatalf("lock through the other hub: %d %s, want 409 naming agent-1", code, body)
	}
	// A write to the locked path through the other hub is refused.
	if code, body = do(t, "PUT", other.base+"/v1/workspaces/w/files/a.txt", "two"); code != 423 {
		t.Fatalf("write to a locked file through the other hub: %d %s, want 423", code, body)
	}
	// A write through the hub that does not watch is one event.
	if code, body = do(t, "PUT", other.base+"/v1/workspaces/w/files/b.txt", "written through the API"); code != 200 {
		t.Fatalf("write through the other hub: %d %s", code, body)
	}
	writeFile(t, filepath.Join(root, "marker.txt"), "after b.txt")
	eventstest.Eventually(t, "marker.txt", func() bool { return len(eventsFor(logOf(t, other.base), "marker.txt")) > 0 })
	log := logOf(t, other.base)
	if b := eventsFor(log, "b.txt"); len(b) != 1 || !strings.HasPrefix(b[0].Actor, "api") {
		t.Fatalf("b.txt events = %v, want one by the API", b)
	}
	if a := eventsFor(log, "a.txt"); len(a) != 1 {
		t.Fatalf("a.txt events = %v, want one (not one per hub)", a)
	}

	// Kill the watching hub in the middle of a burst.
	done := burst(t, root, 1500, 20)
	eventstest.Eventually(t, "the burst under way", func() bool { return writes.Load() >= 200 })
	killed := time.Now()
	if err := w.proc.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-w.proc.done
	before := writes.Load()
	next := watching(t, hubs)
	t.Logf("watching hub %s killed after %d writes; %s watches %s later", w.id, before, next.id, time.Since(killed).Round(time.Millisecond))
	<-done
	t.Logf("log complete %s after the burst ended", converge(t, next.base, root).Round(time.Millisecond))
	n := checkLog(t, next.base, root)
	log = logOf(t, next.base)

	// The survivor's stream saw every event once; the killed hub's stream
	// resumes on the survivor by Last-Event-ID with no gap.
	alive, dead := taps[0], taps[1]
	if next == hubs[1] {
		alive, dead = taps[1], taps[0]
	}
	eventstest.Eventually(t, "the survivor's stream to catch up", func() bool {
		evs := alive.events()
		return len(evs) > 0 && seqOf(t, evs[len(evs)-1]) == log[len(log)-1].Seq
	})
	checkStream(t, "survivor's stream", alive.events(), log)
	<-dead.closed
	got := dead.events()
	resumed := tapSSE(t, next.base, got[len(got)-1].id)
	eventstest.Eventually(t, "the resumed stream to catch up", func() bool {
		evs := resumed.events()
		return len(evs) > 0 && seqOf(t, evs[len(evs)-1]) == log[len(log)-1].Seq
	})
	checkStream(t, "killed hub's stream + its resumption", append(got, resumed.events()...), log)
	t.Logf("1500 writes over 20 files, watching hub killed: %d events, none lost or repeated; %d on the killed hub's stream, %d after resuming on %s",
		n, len(got), len(resumed.events()), next.id)
}

// TestCluster_NATSNodeKilled kills one of three NATS nodes during a burst:
// both hubs keep serving and the log holds every change once.
func TestCluster_NATSNodeKilled(t *testing.T) {
	cl := natstest.Cluster(t, 3)
	root := t.TempDir()
	hubs := startClusterHubs(t, cl.URLs(), root, 2)
	watching(t, hubs)
	done := burst(t, root, 1500, 20)
	eventstest.Eventually(t, "the burst under way", func() bool { return writes.Load() >= 200 })
	victim := cl.MetaLeader()
	cl.Kill(victim)
	t.Logf("NATS node %d (the meta leader) killed after %d writes", victim, writes.Load())
	<-done
	t.Logf("log complete %s after the burst ended", converge(t, hubs[0].base, root).Round(time.Millisecond))
	n := checkLog(t, hubs[0].base, root)
	// The other hub's follower may still be resuming on another node.
	t.Logf("the other hub complete %s later", converge(t, hubs[1].base, root).Round(time.Millisecond))
	a, b := logOf(t, hubs[0].base), logOf(t, hubs[1].base)
	if len(a) != len(b) {
		t.Fatalf("hubs disagree: %d and %d events", len(a), len(b))
	}
	for i := range a {
		if a[i].ID != b[i].ID || a[i].Seq != b[i].Seq {
			t.Fatalf("event %d: %s/%d on one hub, %s/%d on the other", i, a[i].ID, a[i].Seq, b[i].ID, b[i].Seq)
		}
	}
	cl.Restart(victim)
	writeFile(t, filepath.Join(root, "after.txt"), "node back")
	for i, h := range hubs {
		eventstest.Eventually(t, fmt.Sprintf("after.txt on hub %d (%s)", i, h.id), func() bool { return len(eventsFor(logOf(t, h.base), "after.txt")) == 1 })
	}
	t.Logf("1500 writes over 20 files, a NATS node killed: %d events on both hubs, the same seqs, none lost or repeated", n)
}

// TestCluster_HubsStartTogether starts three hubs at once on a fresh
// cluster: they all create the same streams and buckets, and all come up.
func TestCluster_HubsStartTogether(t *testing.T) {
	cl := natstest.Cluster(t, 3)
	root := t.TempDir()
	var bases []string
	for range 3 {
		addr := freeAddr(t)
		startProc(t, "hub", "--nats", cl.URLs(), "--replicas", "3", "--root", "w="+root, "--data", t.TempDir(), "--listen", addr, "--leader-ttl", "2s")
		bases = append(bases, "http://"+addr)
	}
	start := time.Now()
	for _, b := range bases {
		waitHTTP(t, b+"/healthz")
	}
	t.Logf("3 hubs started together, all ready in %s", time.Since(start).Round(time.Millisecond))
	writeFile(t, filepath.Join(root, "a.txt"), "one")
	for _, b := range bases {
		eventstest.Eventually(t, "a.txt on "+b, func() bool { return len(eventsFor(logOf(t, b), "a.txt")) == 1 })
	}
}

// TestHub_NATSFlagsChecked refuses bad cluster flags with a clear message
// before connecting anywhere.
func TestHub_NATSFlagsChecked(t *testing.T) {
	root := t.TempDir()
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--nats-creds", "hub.creds"}, "--nats"},
		{[]string{"--nats", "nats://127.0.0.1:1", "--replicas", "2"}, "replicas"},
		{[]string{"--replicas", "3"}, "replicas"},
		{[]string{"--nats", "http://127.0.0.1:1"}, "nats"},
		{[]string{"--nats", "nats://127.0.0.1:1", "--nats-tls-cert", "c.pem"}, "key"},
		{[]string{"--nats", "nats://127.0.0.1:1", "--leader-ttl", "100ms"}, "--leader-ttl"},
	} {
		args := append([]string{"hub", "--root", "w=" + root, "--data", t.TempDir(), "--listen", freeAddr(t)}, tc.args...)
		cmd := exec.Command(binary, args...)
		out, err := cmd.CombinedOutput()
		if err == nil || !strings.Contains(string(out), tc.want) {
			t.Errorf("filecast %s: err %v, output %q; want a failure naming %q", strings.Join(tc.args, " "), err, out, tc.want)
		}
	}
}
