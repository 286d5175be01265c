package main_test

import (
	"bufio"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/filecast/filecast/events/eventstest"
)

// sseLog reads an SSE stream in the background and keeps its events.
type sseLog struct {
	mu  sync.Mutex
	evs []wsEvent
	err error
}

func (l *sseLog) read(resp *http.Response) {
	defer resp.Body.Close()
	r := &sseReader{r: bufio.NewReader(resp.Body)}
	for {
		ev, err := r.next()
		l.mu.Lock()
		if err != nil {
			l.err = err
			l.mu.Unlock()
			return
		}
		var e wsEvent
		if err := json.Unmarshal([]byte(ev.data), &e); err == nil {
			l.evs = append(l.evs, e)
		}
		l.mu.Unlock()
	}
}

func (l *sseLog) events() []wsEvent {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.evs)
}

// fileEvents keeps the file events of evs.
func fileEvents(evs []wsEvent) []wsEvent {
	var out []wsEvent
	for _, e := range evs {
		if strings.HasPrefix(e.Type, "file.") {
			out = append(out, e)
		}
	}
	return out
}

// TestHub_FullDiskWithoutReserve fills the disk of the data folder (a
// small tmpfs) under a hub that keeps no reserve (--min-free 0), so that
// the embedded store really fails a write, and then refuses every later
// one. The hub keeps running and holds the changes made in the workspace
// (on another disk). Once space is freed, with no restart, the store is
// opened again: every change arrives once, in order, in the log, on an SSE
// stream opened before and to a webhook; a cursor of 0 still reads the
// whole log; writes and locks work again.
func TestHub_FullDiskWithoutReserve(t *testing.T) {
	data := t.TempDir()
	mountTmpfs(t, data, "16m")
	root := t.TempDir()
	writeFile(t, filepath.Join(root, "a.txt"), "a")
	writeFile(t, filepath.Join(root, "b.txt"), "b")
	addr := freeAddr(t)
	p := startProc(t, "hub", "--root", "docs="+root, "--listen", addr, "--data", data, "--min-free", "0",
		"--allow-private-webhooks", "--webhook-schedule", "100ms,200ms,400ms,800ms,1s,1s,1s,1s,1s,1s,1s,1s,1s,1s,1s,1s,1s,1s,1s,1s")
	url := "http://" + addr
	waitHTTP(t, url+"/healthz")

	// A webhook on every file event.
	rc := &receiver{t: t, ids: map[string]int{}}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: rc}
	go srv.Serve(ln)
	t.Cleanup(func() { _ = srv.Close() })
	var hook struct {
		ID     string `json:"id"`
		Secret string `json:"secret"`
	}
	rc.mu.Lock()
	code := doJSON(t, "POST", url+"/v1/webhooks", map[string]any{"url": "http://" + ln.Addr().String() + "/hook", "workspace": "docs"}, nil, &hook)
	if code != http.StatusCreated {
		rc.mu.Unlock()
		t.Fatalf("register webhook = %d", code)
	}
	rc.secret, err = base64.StdEncoding.DecodeString(strings.TrimPrefix(hook.Secret, "whsec_"))
	rc.mu.Unlock()
	if err != nil {
		t.Fatal(err)
	}
	eventstest.Eventually(t, "the webhook to be verified", func() bool {
		var h struct {
			Status string `json:"status"`
		}
		getJSON(t, url+"/v1/webhooks/"+hook.ID, &h)
		return h.Status == "active"
	})

	var held struct {
		Token string `json:"lock_token"`
	}
	if code := doJSON(t, "POST", url+"/v1/workspaces/docs/locks", map[string]any{"path": "held.txt", "ttl_seconds": 600}, nil, &held); code != 201 {
		t.Fatalf("lock = %d", code)
	}
	resp, err := http.Get(url + "/v1/workspaces/docs/events")
	if err != nil {
		t.Fatal(err)
	}
	stream := &sseLog{}
	go stream.read(resp)
	if status, body := do(t, "PUT", url+"/v1/workspaces/docs/files/c.txt", "c"); status != 200 {
		t.Fatalf("PUT: %d %s", status, body)
	}
	eventstest.Eventually(t, "the SSE stream to be live", func() bool { return len(stream.events()) == 1 })

	// The disk fills. The store knows nothing of it until a write fails:
	// files are made in the workspace, one at a time, until one's event
	// cannot be stored.
	filler := fill(t, data)
	var probes []string
	for !slices.Equal(func() []string { _, probs := health(t, url); return probs }(), []string{"insufficient_storage"}) {
		if len(probes) == 200 {
			t.Fatal("the store took 200 events on a full disk")
		}
		name := fmt.Sprintf("probe-%03d.txt", len(probes))
		writeFile(t, filepath.Join(root, name), name)
		probes = append(probes, name)
		eventstest.Eventually(t, name+" stored or the log full", func() bool {
			for _, e := range changesAfter(t, url, "docs", 0) {
				if e.Path == name {
					return true
				}
			}
			_, probs := health(t, url)
			return slices.Equal(probs, []string{"insufficient_storage"})
		})
	}
	_, body := do(t, "GET", url+"/healthz", "")
	if !strings.Contains(body, "failed a write") {
		t.Errorf("healthz while the store refuses writes: %s, want it to say the store failed a write", body)
	}
	if status, body := do(t, "PUT", url+"/v1/workspaces/docs/files/refused.txt", "x"); status != 507 || errorCodeOf(body) != "insufficient_storage" {
		t.Errorf("PUT while full = %d %s, want 507", status, body)
	}
	if _, err := os.Stat(filepath.Join(root, "refused.txt")); err == nil {
		t.Error("a refused PUT made its file")
	}
	before := changesAfter(t, url, "docs", 0)
	for i := range 20 {
		writeFile(t, filepath.Join(root, "hot.txt"), fmt.Sprint("version ", i))
	}
	writeFile(t, filepath.Join(root, "d.txt"), "d")
	if err := os.Remove(filepath.Join(root, "b.txt")); err != nil {
		t.Fatal(err)
	}
	eventstest.Eventually(t, "the changes to be held", func() bool {
		return hasMetric(t, url, `filecast_held_changes{workspace="docs"} 3`) || hasMetric(t, url, `filecast_held_changes{workspace="docs"} 4`)
	})
	if n := len(changesAfter(t, url, "docs", 0)); n != len(before) {
		t.Errorf("the log went from %d to %d events while full", len(before), n)
	}

	// Space comes back; the hub was not restarted.
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	eventstest.Eventually(t, "healthz 200", func() bool { status, _ := health(t, url); return status == 200 })
	want := append(slices.Clone(probes), "hot.txt", "d.txt", "b.txt")
	var all []wsEvent
	eventstest.Eventually(t, "every change in the log", func() bool {
		all = fileEvents(changesAfter(t, url, "docs", 0))
		for _, p := range want {
			if !slices.ContainsFunc(all, func(e wsEvent) bool { return e.Path == p }) {
				return false
			}
		}
		return true
	})
	if status, body := do(t, "PUT", url+"/v1/workspaces/docs/files/e.txt", "e"); status != 200 {
		t.Fatalf("PUT once there is room: %d %s", status, body)
	}
	eventstest.Eventually(t, "the PUT in the log", func() bool {
		all = fileEvents(changesAfter(t, url, "docs", 0))
		return all[len(all)-1].Path == "e.txt"
	})

	// The log, read from cursor 0: every change once, in order.
	t.Logf("the store failed a write after %d changes on the full disk; the log: %v", len(probes), func() (s []string) {
		for _, e := range all {
			s = append(s, fmt.Sprint(e.Seq, " ", e.Type, " ", e.Path))
		}
		return s
	}())
	seen := map[string]wsEvent{}
	ids := map[string]bool{}
	var prev uint64
	for _, e := range all {
		if e.Seq <= prev {
			t.Errorf("seq %d after %d", e.Seq, prev)
		}
		prev = e.Seq
		if ids[e.ID] {
			t.Errorf("event %s twice", e.ID)
		}
		ids[e.ID] = true
		if _, dup := seen[e.Path]; dup {
			t.Errorf("%s reported twice: %v", e.Path, all)
		}
		seen[e.Path] = e
	}
	for i, p := range probes {
		if e := seen[p]; e.Type != "file.created" {
			t.Errorf("%s: %+v, want created", p, e)
		} else if i > 0 && e.Seq < seen[probes[i-1]].Seq {
			t.Errorf("%s before %s", p, probes[i-1])
		}
	}
	if e := seen["hot.txt"]; e.Type != "file.created" || e.SHA256 != sha("version 19") {
		t.Errorf("hot.txt: %+v, want created with its last content", e)
	}
	if e := seen["d.txt"]; e.Type != "file.created" {
		t.Errorf("d.txt: %+v, want created", e)
	}
	if e := seen["b.txt"]; e.Type != "file.deleted" {
		t.Errorf("b.txt: %+v, want deleted", e)
	}

	// The stream opened before the disk filled got the same, live.
	eventstest.Eventually(t, "the SSE stream to catch up", func() bool {
		evs := fileEvents(stream.events())
		return len(evs) > 0 && evs[len(evs)-1].Path == "e.txt"
	})
	var got []string
	for _, e := range fileEvents(stream.events()) {
		got = append(got, e.ID)
	}
	var logged []string
	for _, e := range all {
		logged = append(logged, e.ID)
	}
	if !slices.Equal(got, logged) {
		t.Errorf("the SSE stream got %d events, the log holds %d: not the same, in the same order", len(got), len(logged))
	}

	// Locks and webhooks work on the store opened again.
	if status, body := do(t, "DELETE", url+"/v1/workspaces/docs/locks/"+held.Token, ""); status != 200 && status != 204 {
		t.Errorf("unlock once there is room: %d %s", status, body)
	}
	if status, body := do(t, "POST", url+"/v1/workspaces/docs/locks", `{"path": "new.txt"}`); status != 201 {
		t.Errorf("lock once there is room: %d %s", status, body)
	}
	var paths []string
	for _, e := range all {
		paths = append(paths, e.Path)
	}
	eventstest.Eventually(t, "every change delivered to the webhook", func() bool { return len(rc.got()) >= len(paths) })
	if got := rc.got(); !slices.Equal(got, paths) {
		t.Errorf("the webhook got %v, want %v", got, paths)
	}
	select {
	case <-p.done:
		t.Fatalf("the hub exited:\n%s", p.stderr.String())
	default:
	}
	if !strings.Contains(p.stderr.String(), "is open again") {
		t.Errorf("the hub did not say it opened the store again:\n%s", p.stderr.String())
	}
}
