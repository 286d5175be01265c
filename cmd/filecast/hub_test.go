package main_test

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/filecast/filecast/events/eventstest"
)

func getJSON(t *testing.T, url string, out any) int {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if out != nil && resp.StatusCode == 200 {
		if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
			t.Fatalf("decode %s: %v", url, err)
		}
	}
	return resp.StatusCode
}

// TestHub_HTTPAPI serves SSE, /changes and /files from a hub process.
func TestHub_HTTPAPI(t *testing.T) {
	root := t.TempDir()
	writeFile(t, filepath.Join(root, "old.txt"), "indexed silently")
	addr := freeAddr(t)
	startProc(t, "hub", "--root", "docs="+root, "--listen", addr, "--data", t.TempDir())
	base := "http://" + addr
	waitHTTP(t, base+"/healthz")

	var wss struct {
		Workspaces []struct {
			Name string `json:"name"`
		} `json:"workspaces"`
	}
	getJSON(t, base+"/v1/workspaces", &wss)
	if len(wss.Workspaces) != 1 || wss.Workspaces[0].Name != "docs" {
		t.Fatalf("workspaces = %+v", wss)
	}

	resp, err := http.Get(base + "/v1/workspaces/docs/events?path=*.md")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/event-stream") {
		t.Fatalf("content type %q", ct)
	}
	writeFile(t, filepath.Join(root, "skip.txt"), "x")
	eventstest.Eventually(t, "skip.txt in the log", func() bool {
		var p struct {
			Events []wsEvent `json:"events"`
		}
		getJSON(t, base+"/v1/workspaces/docs/changes?cursor=0", &p)
		return len(p.Events) == 1
	})
	writeFile(t, filepath.Join(root, "a.md"), "hello")
	sse := &sseReader{r: bufio.NewReader(resp.Body)}
	ev, err := sse.next()
	if err != nil {
		t.Fatal(err)
	}
	var got wsEvent
	if err := json.Unmarshal([]byte(ev.data), &got); err != nil {
		t.Fatal(err)
	}
	if ev.event != "file.created" || got.Path != "a.md" || ev.id != strconv.FormatUint(got.Seq, 10) {
		t.Fatalf("sse event = %+v", ev)
	}

	var page struct {
		Events  []wsEvent `json:"events"`
		Cursor  uint64    `json:"cursor"`
		HasMore bool      `json:"has_more"`
	}
	if code := getJSON(t, base+"/v1/workspaces/docs/changes?cursor=0&limit=1", &page); code != 200 {
		t.Fatalf("changes status %d", code)
	}
	if len(page.Events) != 1 || page.Events[0].Path != "skip.txt" || !page.HasMore {
		t.Fatalf("changes page = %+v", page)
	}
	getJSON(t, fmt.Sprintf("%s/v1/workspaces/docs/changes?cursor=%d", base, page.Cursor), &page)
	if diff := cmp.Diff([]string{"file.created a.md"}, kinds(page.Events)); diff != "" {
		t.Fatalf("second page (-want +got):\n%s", diff)
	}

	var listing struct {
		Files []struct {
			Path   string `json:"path"`
			Size   int64  `json:"size"`
			SHA256 string `json:"sha256"`
		} `json:"files"`
		Cursor uint64 `json:"cursor"`
	}
	// The listing is consistent with its cursor; once that cursor covers
	// a.md's event (seq 2), a.md must be listed.
	eventstest.Eventually(t, "a listing at cursor 2", func() bool {
		getJSON(t, base+"/v1/workspaces/docs/files", &listing)
		return listing.Cursor >= 2
	})
	var paths []string
	for _, f := range listing.Files {
		paths = append(paths, f.Path)
	}
	if diff := cmp.Diff([]string{"a.md", "old.txt", "skip.txt"}, paths); diff != "" {
		t.Fatalf("listing (-want +got):\n%s", diff)
	}

	for url, want := range map[string]int{
		base + "/v1/workspaces/nope/changes":                404,
		base + "/v1/workspaces/docs/changes?cursor=banana":  400,
		base + "/v1/workspaces/docs/events?path=%5Bbad":     400,
		base + "/v1/workspaces/docs/files/..%2F..%2Fetc":    400,
		base + "/v1/workspaces/docs/files/missing.txt":      404,
		base + "/v1/workspaces/docs/files/old.txt":          200,
		base + "/v1/workspaces/docs/changes?limit=notanint": 400,
	} {
		if code := getJSON(t, url, nil); code != want {
			t.Errorf("GET %s = %d, want %d", url, code, want)
		}
	}
}

// TestHub_RemoteMCPSurvivesHubRestart runs "filecast mcp --hub": events
// come over the hub's SSE stream, and a hub restart loses nothing.
func TestHub_RemoteMCPSurvivesHubRestart(t *testing.T) {
	root, data := t.TempDir(), t.TempDir()
	addr := freeAddr(t)
	hub := startProc(t, "hub", "--root", "w="+root, "--listen", addr, "--data", data)
	base := "http://" + addr
	waitHTTP(t, base+"/healthz")

	a := startStdio(t, legacyVersion, "--hub", base)
	writeFile(t, filepath.Join(root, "one.txt"), "1")
	got, _ := a.collect(nil, 1)
	if diff := cmp.Diff([]string{"file.created one.txt"}, kinds(got)); diff != "" {
		t.Fatalf("(-want +got):\n%s", diff)
	}

	hub.stop(t)
	writeFile(t, filepath.Join(root, "two.txt"), "2") // while the hub is down
	startProc(t, "hub", "--root", "w="+root, "--listen", addr, "--data", data)
	waitHTTP(t, base+"/healthz")
	writeFile(t, filepath.Join(root, "three.txt"), "3")

	got, _ = a.collect(nil, 2)
	if diff := cmp.Diff([]string{"file.created two.txt", "file.created three.txt"}, kinds(got)); diff != "" {
		t.Fatalf("after hub restart (-want +got):\n%s", diff)
	}
	var r changes
	a.mustCall("list_changes", map[string]any{"wait_ms": 200}, &r)
	if len(r.Events) != 0 {
		t.Fatalf("duplicates after restart: %v", kinds(r.Events))
	}
}

// TestHub_RefusesOpenListenWithoutToken: a non-loopback address needs a token.
func TestHub_RefusesOpenListenWithoutToken(t *testing.T) {
	p := startProc(t, "hub", "--root", t.TempDir(), "--listen", "0.0.0.0:0", "--data", t.TempDir())
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		t.Fatal("hub kept running on 0.0.0.0 without a token")
	}
	if p.cmd.ProcessState.ExitCode() == 0 || !strings.Contains(p.stderr.String(), "token") {
		t.Fatalf("exit %d, stderr %q", p.cmd.ProcessState.ExitCode(), p.stderr.String())
	}
}

// TestDataFolderHasOneOwner: a second hub on the same data folder exits at
// once naming the owner's PID.
func TestDataFolderHasOneOwner(t *testing.T) {
	data := t.TempDir()
	addr := freeAddr(t)
	first := startProc(t, "hub", "--root", t.TempDir(), "--listen", addr, "--data", data)
	waitHTTP(t, "http://"+addr+"/healthz")
	second := startProc(t, "hub", "--root", t.TempDir(), "--listen", freeAddr(t), "--data", data)
	select {
	case <-second.done:
	case <-time.After(10 * time.Second):
		t.Fatal("second owner kept running")
	}
	if !strings.Contains(second.stderr.String(), strconv.Itoa(first.cmd.Process.Pid)) {
		t.Fatalf("message does not name pid %d: %q", first.cmd.Process.Pid, second.stderr.String())
	}
}

// TestHub_Metrics serves Prometheus metrics that count what happened.
func TestHub_Metrics(t *testing.T) {
	root := t.TempDir()
	addr := freeAddr(t)
	startProc(t, "hub", "--root", "w="+root, "--listen", addr, "--data", t.TempDir())
	waitHTTP(t, "http://"+addr+"/healthz")
	writeFile(t, filepath.Join(root, "a.txt"), "x")
	eventstest.Eventually(t, "a metric for the created file", func() bool {
		resp, err := http.Get("http://" + addr + "/metrics")
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return strings.Contains(string(b), `filecast_events_appended_total{type="file.created"} 1`) &&
			strings.Contains(string(b), `filecast_log_head{workspace="w"} 1`) &&
			strings.Contains(string(b), `filecast_watcher_info{watcher="notify",workspace="w"} 1`) &&
			strings.Contains(string(b), "go_goroutines")
	})
}
