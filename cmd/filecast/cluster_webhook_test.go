package main_test

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/filecast/filecast/events/eventstest"
	"github.com/filecast/filecast/events/natsd/natstest"
)

// startClusterHubsWith starts n hubs like startClusterHubs, each with the
// extra flags.
func startClusterHubsWith(t *testing.T, urls, root string, n int, extra ...string) []*clusterHub {
	t.Helper()
	hubs := make([]*clusterHub, n)
	for i := range hubs {
		addr := freeAddr(t)
		h := &clusterHub{id: fmt.Sprintf("hub-%c", 'a'+i), base: "http://" + addr}
		h.args = append([]string{"hub", "--nats", urls, "--replicas", "3", "--root", "w=" + root,
			"--data", t.TempDir(), "--listen", addr, "--hub-id", h.id, "--leader-ttl", "2s"}, extra...)
		h.proc = startProc(t, h.args...)
		hubs[i] = h
		waitHTTP(t, h.base+"/healthz") // one after the other, as startClusterHubs
	}
	return hubs
}

// hookDelivery is one event a webhook endpoint accepted.
type hookDelivery struct {
	id  string
	seq uint64
	at  time.Time
}

// hookSink is the endpoint of one webhook: the receiver of
// webhook_test.go checks each request's signature and answers it; the sink
// records, in arrival order, every delivery the receiver accepted.
type hookSink struct {
	rc *receiver

	mu       sync.Mutex
	got      []hookDelivery
	mismatch int // deliveries whose webhook-id is not the body's event_id
}

func newHookSink(t *testing.T) *hookSink {
	return &hookSink{rc: &receiver{t: t, ids: map[string]int{}}}
}

// hookStatusWriter remembers the status code of an answer.
type hookStatusWriter struct {
	http.ResponseWriter
	code int
}

func (w *hookStatusWriter) WriteHeader(code int) {
	w.code = code
	w.ResponseWriter.WriteHeader(code)
}

func (s *hookSink) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	sw := &hookStatusWriter{ResponseWriter: w, code: http.StatusOK}
	s.rc.ServeHTTP(sw, r)
	if sw.code != http.StatusNoContent {
		return // a verification, or a bad signature (counted by the receiver)
	}
	var e struct {
		ID  string `json:"event_id"`
		Seq uint64 `json:"seq"`
	}
	_ = json.Unmarshal(body, &e)
	s.mu.Lock()
	defer s.mu.Unlock()
	if e.ID == "" || e.ID != r.Header.Get("webhook-id") {
		s.mismatch++
	}
	s.got = append(s.got, hookDelivery{id: e.ID, seq: e.Seq, at: time.Now()})
}

func (s *hookSink) deliveries() []hookDelivery {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]hookDelivery(nil), s.got...)
}

func (s *hookSink) badSignatures() int {
	s.rc.mu.Lock()
	defer s.rc.mu.Unlock()
	return s.rc.bad
}

// covers reports whether every event of want was delivered at least once.
func (s *hookSink) covers(want []wsEvent) bool {
	seen := map[string]bool{}
	for _, d := range s.deliveries() {
		seen[d.id] = true
	}
	for _, e := range want {
		if !seen[e.ID] {
			return false
		}
	}
	return true
}

// registerHook registers a webhook for workspace w at url through the hub
// at base and hands its secret to the sink before the verification
// request can be checked.
func registerHook(t *testing.T, base, url string, s *hookSink) string {
	t.Helper()
	var hook struct {
		ID     string `json:"id"`
		Secret string `json:"secret"`
		Status string `json:"status"`
	}
	s.rc.mu.Lock()
	code := doJSON(t, "POST", base+"/v1/webhooks", map[string]any{"url": url, "workspace": "w"}, nil, &hook)
	if code != http.StatusCreated || !strings.HasPrefix(hook.Secret, "whsec_") {
		s.rc.mu.Unlock()
		t.Fatalf("register %s through %s = %d %+v", url, base, code, hook)
	}
	secret, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(hook.Secret, "whsec_"))
	s.rc.secret = secret
	s.rc.mu.Unlock()
	if err != nil {
		t.Fatal(err)
	}
	return hook.ID
}

// webhookDeliveries reads filecast_webhook_deliveries_total from the
// hub's /metrics: the events each webhook's endpoint accepted from this
// hub.
func webhookDeliveries(t *testing.T, base string) map[string]int {
	t.Helper()
	resp, err := http.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("metrics of %s: %d", base, resp.StatusCode)
	}
	out := map[string]int{}
	const prefix = `filecast_webhook_deliveries_total{webhook="`
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, prefix) {
			continue
		}
		id, value, ok := strings.Cut(line[len(prefix):], `"} `)
		if !ok {
			t.Fatalf("metrics line %q", line)
		}
		v, err := strconv.ParseFloat(value, 64)
		if err != nil {
			t.Fatalf("metrics line %q: %v", line, err)
		}
		out[id] = int(v)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// logHead returns the head of workspace w's log as the hub at base
// serves it.
func logHead(t *testing.T, base string) uint64 {
	t.Helper()
	var page struct {
		Workspaces []struct {
			Name string `json:"name"`
			Head uint64 `json:"head"`
		} `json:"workspaces"`
	}
	if code := getJSON(t, base+"/v1/workspaces", &page); code != 200 {
		t.Fatalf("workspaces of %s: %d", base, code)
	}
	for _, w := range page.Workspaces {
		if w.Name == "w" {
			return w.Head
		}
	}
	t.Fatalf("%s does not serve workspace w: %+v", base, page)
	return 0
}

// eventsAfter returns the events of log with a seq above head.
func eventsAfter(log []wsEvent, head uint64) []wsEvent {
	var out []wsEvent
	for _, e := range log {
		if e.Seq > head {
			out = append(out, e)
		}
	}
	return out
}

// writeMany creates n new files dir/0000.txt… in root, each with its own
// content.
func writeMany(t *testing.T, root, dir string, n int) {
	t.Helper()
	if err := os.MkdirAll(filepath.Join(root, dir), 0o755); err != nil {
		t.Fatal(err)
	}
	for i := range n {
		p := filepath.Join(root, dir, fmt.Sprintf("%04d.txt", i))
		if err := os.WriteFile(p, []byte(fmt.Sprintf("%s %d", dir, i)), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// createdUnder counts the file.created events of log under dir/.
func createdUnder(log []wsEvent, dir string) int {
	n := 0
	for _, e := range log {
		if e.Type == "file.created" && strings.HasPrefix(e.Path, dir+"/") {
			n++
		}
	}
	return n
}

// hookReport is what one webhook's endpoint received, checked against
// the log's events it should have received.
type hookReport struct {
	dups    int // deliveries of an event delivered before
	rewinds int // deliveries whose seq is below the previous delivery's
}

// checkDeliveries checks a webhook's deliveries against want (the log's
// events after the webhook's start, in log order): every event delivered,
// first deliveries in log order with nothing else, every delivery a
// known event; it returns the repeats and the rewinds of the order (a
// redelivery starting over from an unacknowledged event).
func checkDeliveries(t *testing.T, name string, got []hookDelivery, want []wsEvent) hookReport {
	t.Helper()
	var r hookReport
	seen := map[string]bool{}
	var first []hookDelivery
	var prev uint64
	for _, d := range got {
		if d.seq < prev {
			r.rewinds++
		}
		prev = d.seq
		if seen[d.id] {
			r.dups++
			continue
		}
		seen[d.id] = true
		first = append(first, d)
	}
	if len(first) != len(want) {
		t.Errorf("%s: %d distinct events delivered, want %d", name, len(first), len(want))
	}
	for i := range min(len(first), len(want)) {
		if first[i].id != want[i].ID || first[i].seq != want[i].Seq {
			t.Errorf("%s: delivery %d is %s/%d, the log has %s/%d there (order or content)", name, i, first[i].id, first[i].seq, want[i].ID, want[i].Seq)
			break
		}
	}
	return r
}

// TestCluster_WebhooksOnceAcrossHubs registers three webhooks through two
// hubs on a three-node NATS cluster: every event reaches every webhook
// exactly once, signed and in log order, whichever hub delivers it. The
// hub that delivered most is then killed with SIGKILL: the survivor
// delivers the rest, still in order, at least once.
func TestCluster_WebhooksOnceAcrossHubs(t *testing.T) {
	const firstWrites, laterWrites = 300, 100
	cl := natstest.Cluster(t, 3)
	root := t.TempDir()
	hubs := startClusterHubsWith(t, cl.URLs(), root, 2, "--allow-private-webhooks",
		"--webhook-schedule", "100ms,200ms,400ms,800ms,1s,1s,1s,1s,1s,1s")
	watcher := watching(t, hubs)

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	sinks := []*hookSink{newHookSink(t), newHookSink(t), newHookSink(t)}
	mux := http.NewServeMux()
	for i, s := range sinks {
		mux.Handle(fmt.Sprintf("/hook/%d", i), s)
	}
	srv := &http.Server{Handler: mux}
	served := make(chan struct{})
	go func() { defer close(served); _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close(); <-served })

	head := logHead(t, hubs[0].base)
	ids := make([]string, len(sinks))
	for i, s := range sinks {
		ids[i] = registerHook(t, hubs[i%len(hubs)].base, fmt.Sprintf("http://%s/hook/%d", ln.Addr(), i), s)
	}
	for i, id := range ids {
		// Registered through one hub, the webhook is active on the other.
		other := hubs[(i+1)%len(hubs)]
		eventstest.Eventually(t, id+" to be active", func() bool {
			var h struct {
				Status string `json:"status"`
			}
			getJSON(t, other.base+"/v1/webhooks/"+id, &h)
			return h.Status == "active"
		})
	}
	if h := logHead(t, hubs[0].base); h != head {
		t.Fatalf("the log grew from %d to %d while the webhooks were registered", head, h)
	}

	// Phase 1: both hubs alive.
	start := time.Now()
	writeMany(t, root, "one", firstWrites)
	eventstest.Eventually(t, "the first writes in the log", func() bool { return createdUnder(logOf(t, hubs[0].base), "one") == firstWrites })
	want := eventsAfter(logOf(t, hubs[0].base), head)
	for i, s := range sinks {
		eventstest.Within(t, 30*time.Second, fmt.Sprintf("webhook %d to receive %d events", i, len(want)), func() bool { return s.covers(want) })
	}
	t.Logf("%d writes: %d events delivered to each of 3 webhooks in %s", firstWrites, len(want), time.Since(start).Round(time.Millisecond))
	for i, s := range sinks {
		r := checkDeliveries(t, fmt.Sprintf("webhook %d (%s)", i, ids[i]), s.deliveries(), want)
		if r.dups != 0 || r.rewinds != 0 {
			t.Errorf("webhook %d: %d events delivered twice, %d rewinds, with no hub killed", i, r.dups, r.rewinds)
		}
	}
	// A hub counts a delivery once the endpoint's answer is in: wait for
	// the counters to catch up with the endpoints.
	byHub := make([]map[string]int, len(hubs))
	total := make([]int, len(hubs))
	counted := func() bool {
		for i, h := range hubs {
			byHub[i] = webhookDeliveries(t, h.base)
		}
		for _, id := range ids {
			if byHub[0][id]+byHub[1][id] != len(want) {
				return false
			}
		}
		return true
	}
	eventstest.Poll(5*time.Second, counted)
	for i := range hubs {
		for _, id := range ids {
			total[i] += byHub[i][id]
		}
	}
	for j, id := range ids {
		var parts []string
		sum := 0
		for i, h := range hubs {
			parts = append(parts, fmt.Sprintf("%s %d", h.id, byHub[i][id]))
			sum += byHub[i][id]
		}
		t.Logf("webhook %d (%s) delivered by: %s", j, id, strings.Join(parts, ", "))
		if sum != len(want) {
			t.Errorf("webhook %d: the hubs' metrics count %d deliveries, the endpoint accepted %d", j, sum, len(want))
		}
	}
	t.Logf("deliveries per hub: %s %d, %s %d (the watcher is %s)", hubs[0].id, total[0], hubs[1].id, total[1], watcher.id)

	// Phase 2: kill the hub that delivered most.
	victim, survivor := hubs[0], hubs[1]
	if total[1] > total[0] {
		victim, survivor = hubs[1], hubs[0]
	}
	marks := make([]int, len(sinks))
	for i, s := range sinks {
		marks[i] = len(s.deliveries())
	}
	if err := victim.proc.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-victim.proc.done
	killed := time.Now()
	writeMany(t, root, "two", laterWrites)
	eventstest.Eventually(t, "the later writes in the survivor's log", func() bool {
		return createdUnder(logOf(t, survivor.base), "two") == laterWrites
	})
	want = eventsAfter(logOf(t, survivor.base), head)
	for i, s := range sinks {
		// A webhook the killed hub was delivering moves to the survivor
		// when the consumer's pin times out.
		eventstest.Within(t, 90*time.Second, fmt.Sprintf("webhook %d to receive %d events from %s", i, len(want), survivor.id), func() bool { return s.covers(want) })
	}
	t.Logf("%s (%d deliveries) killed; %d more writes: every webhook complete %s after the kill",
		victim.id, total[hubIndex(hubs, victim)], laterWrites, time.Since(killed).Round(time.Millisecond))
	end := webhookDeliveries(t, survivor.base)
	for i, s := range sinks {
		got := s.deliveries()
		r := checkDeliveries(t, fmt.Sprintf("webhook %d (%s)", i, ids[i]), got, want)
		if r.rewinds > 1 {
			t.Errorf("webhook %d: the order went back %d times after one kill", i, r.rewinds)
		}
		resumed := "no delivery after the kill"
		if marks[i] < len(got) {
			resumed = fmt.Sprintf("first delivery %s after the kill", got[marks[i]].at.Sub(killed).Round(time.Millisecond))
		}
		t.Logf("webhook %d: %d deliveries for %d events (%d repeated, %d rewinds); %s; %s's metrics %d → %d",
			i, len(got), len(want), r.dups, r.rewinds, resumed, survivor.id, byHub[hubIndex(hubs, survivor)][ids[i]], end[ids[i]])
	}
	for i, s := range sinks {
		if bad := s.badSignatures(); bad != 0 {
			t.Errorf("webhook %d: %d requests with a bad signature", i, bad)
		}
		s.mu.Lock()
		if s.mismatch != 0 {
			t.Errorf("webhook %d: %d deliveries whose webhook-id is not their event_id", i, s.mismatch)
		}
		s.mu.Unlock()
	}
	var survivors []string
	for id, n := range end {
		survivors = append(survivors, fmt.Sprintf("%s=%d", id, n))
	}
	sort.Strings(survivors)
	t.Logf("%s's delivery counters at the end: %s", survivor.id, strings.Join(survivors, " "))
}

func hubIndex(hubs []*clusterHub, h *clusterHub) int {
	for i := range hubs {
		if hubs[i] == h {
			return i
		}
	}
	return -1
}
