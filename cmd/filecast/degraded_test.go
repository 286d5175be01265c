package main_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/filecast/filecast/events/eventstest"
	"github.com/filecast/filecast/events/hub"
)

// errorCodeOf returns the code of a JSON error body.
func errorCodeOf(body string) string {
	var e struct {
		Error struct {
			Code string `json:"code"`
		} `json:"error"`
	}
	_ = json.Unmarshal([]byte(body), &e)
	return e.Error.Code
}

// health returns the status of /healthz and its problems' codes and
// workspaces ("code" or "code:workspace").
func health(t *testing.T, base string) (int, []string) {
	t.Helper()
	status, body := do(t, "GET", base+"/healthz", "")
	var h struct {
		Problems []struct {
			Code      string `json:"code"`
			Workspace string `json:"workspace"`
		} `json:"problems"`
	}
	_ = json.Unmarshal([]byte(body), &h)
	var out []string
	for _, p := range h.Problems {
		if p.Workspace != "" {
			out = append(out, p.Code+":"+p.Workspace)
		} else {
			out = append(out, p.Code)
		}
	}
	return status, out
}

func hasMetric(t *testing.T, base, line string) bool {
	t.Helper()
	_, body := do(t, "GET", base+"/metrics", "")
	return strings.Contains(body, line)
}

// changesAfter returns the file events of ws after seq.
func changesAfter(t *testing.T, base, ws string, after uint64) []wsEvent {
	t.Helper()
	var page struct {
		Events []wsEvent `json:"events"`
	}
	getJSON(t, fmt.Sprintf("%s/v1/workspaces/%s/changes?cursor=%d&limit=1000", base, ws, after), &page)
	return page.Events
}

// TestHub_WorkspaceFolderRemoved removes a workspace's folder under a
// running hub: /healthz says so, file routes answer 503
// workspace_unavailable while the log is still served, and once the
// folder is made again with other files the hub watches it and reports
// what changed.
func TestHub_WorkspaceFolderRemoved(t *testing.T) {
	base := t.TempDir()
	root := filepath.Join(base, "docs")
	writeFile(t, filepath.Join(root, "a.txt"), "a")
	writeFile(t, filepath.Join(root, "b.txt"), "b")
	addr := freeAddr(t)
	startProc(t, "hub", "--root", "docs="+root, "--listen", addr, "--data", t.TempDir())
	url := "http://" + addr
	waitHTTP(t, url+"/healthz")
	agent := startStdio(t, legacyVersion, "--hub", url)
	resp, err := http.Get(url + "/v1/workspaces/docs/events")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	sse := &sseReader{r: bufio.NewReader(resp.Body)}

	if err := os.RemoveAll(root); err != nil {
		t.Fatal(err)
	}
	eventstest.Eventually(t, "healthz to name the workspace", func() bool {
		status, probs := health(t, url)
		return status == 503 && slices.Equal(probs, []string{"workspace_unavailable:docs"})
	})
	for _, r := range []struct{ method, path, body string }{
		{"GET", "/v1/workspaces/docs/files/a.txt", ""},
		{"PUT", "/v1/workspaces/docs/files/a.txt", "new"},
		{"DELETE", "/v1/workspaces/docs/files/a.txt", ""},
		{"GET", "/v1/workspaces/docs/files", ""},
		{"POST", "/v1/workspaces/docs/locks", `{"path": "a.txt"}`},
	} {
		status, body := do(t, r.method, url+r.path, r.body)
		if status != 503 || errorCodeOf(body) != "workspace_unavailable" || !strings.Contains(body, `\"docs\"`) {
			t.Errorf("%s %s = %d %s, want 503 workspace_unavailable naming docs", r.method, r.path, status, body)
		}
	}
	if msg := agent.call("write_file", map[string]any{"path": "a.txt", "content": "x"}, nil); !strings.Contains(msg, "workspace unavailable") {
		t.Errorf("write_file while the folder is missing: %q, want a tool error saying the workspace is unavailable", msg)
	}
	if _, err := os.Stat(root); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("a refused write made the folder again: %v", err)
	}
	if status, _ := do(t, "GET", url+"/v1/workspaces/docs/changes?cursor=0", ""); status != 200 {
		t.Errorf("changes while the folder is missing: %d", status)
	}
	if !hasMetric(t, url, `filecast_workspace_available{workspace="docs"} 0`) {
		t.Error("/metrics does not say the workspace is unavailable")
	}

	// The folder is made again, with other files (made elsewhere and
	// moved into place, so that none is seen half-written).
	staging := filepath.Join(base, "staging")
	writeFile(t, filepath.Join(staging, "a.txt"), "a again")
	writeFile(t, filepath.Join(staging, "c.txt"), "c")
	if err := os.Rename(staging, root); err != nil {
		t.Fatal(err)
	}
	eventstest.Eventually(t, "healthz 200", func() bool { status, _ := health(t, url); return status == 200 })
	want := []string{"file.deleted a.txt", "file.deleted b.txt", "file.created a.txt", "file.created c.txt"}
	var got []string
	for len(got) < len(want) {
		ev, err := sse.next()
		if err != nil {
			t.Fatalf("SSE after %v: %v", got, err)
		}
		var e wsEvent
		if err := json.Unmarshal([]byte(ev.data), &e); err != nil {
			t.Fatal(err)
		}
		got = append(got, e.Type+" "+e.Path)
	}
	// The removals come first (rm -rf reports each file as it goes), in
	// whatever order rm took them; then the new folder's files.
	slices.Sort(got[:2])
	slices.Sort(got[2:])
	if !slices.Equal(got, want) {
		t.Errorf("events %v, want %v", got, want)
	}
	if status, body := do(t, "PUT", url+"/v1/workspaces/docs/files/a.txt", "written"); status != 200 {
		t.Errorf("PUT once the folder is back: %d %s", status, body)
	}
	if !hasMetric(t, url, `filecast_workspace_available{workspace="docs"} 1`) {
		t.Error("/metrics does not say the workspace is available again")
	}
}

// mountTmpfs mounts a small tmpfs at dir for the test, or skips the test
// loudly when it cannot (not root, or no mount permission).
func mountTmpfs(t *testing.T, dir string, size string) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("\n!! full-disk test NOT RUN: mounting a small tmpfs needs root; run the tests as root (CI does).\n" +
			"!! TestHub_FullLog in events/hub covers the same with JetStream's own storage limit.")
	}
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size="+size, "tmpfs", dir).CombinedOutput(); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("mount tmpfs: %v: %s", err, out)
		}
		t.Skipf("\n!! full-disk test NOT RUN: cannot mount a tmpfs (%v: %s)", err, bytes.TrimSpace(out))
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", "-l", dir).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v: %s", dir, err, out)
		}
	})
}

// fill writes a file in dir until the disk is full and returns its path.
func fill(t *testing.T, dir string) string {
	t.Helper()
	p := filepath.Join(dir, "filler")
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	chunk := make([]byte, 64<<10)
	for {
		if _, err := f.Write(chunk); err != nil {
			if !errors.Is(err, syscall.ENOSPC) {
				t.Fatal(err)
			}
			break
		}
	}
	// The last bytes a partial write may have left.
	for {
		if _, err := f.Write(chunk[:512]); err != nil {
			return p
		}
	}
}

// TestHub_FullDisk fills the disk of the data folder (a small tmpfs) under
// a running hub: the hub keeps running and serving reads, listings, SSE
// replay and its lock list; writes are refused with 507 before the file
// is touched; changes made on disk meanwhile are held, and once space is
// freed they all arrive, each path once with its last content, in seq
// order. A hub started on the full disk serves reads too.
func TestHub_FullDisk(t *testing.T) {
	data := t.TempDir()
	mountTmpfs(t, data, "16m")
	root := t.TempDir()
	writeFile(t, filepath.Join(root, "a.txt"), "a")
	addr := freeAddr(t)
	args := []string{"hub", "--root", "docs=" + root, "--listen", addr, "--data", data, "--min-free", "2MiB"}
	p := startProc(t, args...)
	url := "http://" + addr
	waitHTTP(t, url+"/healthz")
	if status, body := do(t, "PUT", url+"/v1/workspaces/docs/files/b.txt", "b"); status != 200 {
		t.Fatalf("PUT: %d %s", status, body)
	}
	if status, body := do(t, "POST", url+"/v1/workspaces/docs/locks", `{"path": "held.txt", "ttl_seconds": 600}`); status != 201 {
		t.Fatalf("lock: %d %s", status, body)
	}
	head := uint64(len(changesAfter(t, url, "docs", 0)))

	filler := fill(t, data)
	eventstest.Eventually(t, "healthz to report the full log", func() bool {
		status, probs := health(t, url)
		return status == 503 && slices.Equal(probs, []string{"insufficient_storage"})
	})
	for _, r := range []struct{ method, path, body string }{
		{"PUT", "/v1/workspaces/docs/files/a.txt", "refused"},
		{"PUT", "/v1/workspaces/docs/files/new.txt", "refused"},
		{"DELETE", "/v1/workspaces/docs/files/b.txt", ""},
	} {
		status, body := do(t, r.method, url+r.path, r.body)
		if status != 507 || errorCodeOf(body) != "insufficient_storage" {
			t.Errorf("%s %s = %d %s, want 507 insufficient_storage", r.method, r.path, status, body)
		}
	}
	agent := startStdio(t, legacyVersion, "--hub", url)
	if msg := agent.call("write_file", map[string]any{"path": "a.txt", "content": "x"}, nil); !strings.Contains(msg, "insufficient storage") {
		t.Errorf("write_file while full: %q, want a tool error saying storage is insufficient", msg)
	}
	for p, want := range map[string]string{"a.txt": "a", "b.txt": "b"} {
		if got, err := os.ReadFile(filepath.Join(root, p)); err != nil || string(got) != want {
			t.Errorf("%s = %q, %v after refused writes; want %q", p, got, err, want)
		}
	}
	if _, err := os.Stat(filepath.Join(root, "new.txt")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("new.txt exists after a refused PUT: %v", err)
	}
	for _, r := range []string{"/v1/workspaces/docs/files/a.txt", "/v1/workspaces/docs/files", "/v1/workspaces/docs/locks", "/v1/workspaces/docs/changes?cursor=0", "/v1/workspaces"} {
		if status, body := do(t, "GET", url+r, ""); status != 200 {
			t.Errorf("GET %s while full = %d %s", r, status, body)
		}
	}
	// SSE replays the log.
	req, _ := http.NewRequest("GET", url+"/v1/workspaces/docs/events", nil)
	req.Header.Set("Last-Event-ID", "0")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	replay := &sseReader{r: bufio.NewReader(resp.Body)}
	if ev, err := replay.next(); err != nil || ev.id != "1" {
		t.Errorf("SSE replay while full: %+v, %v", ev, err)
	}
	resp.Body.Close()
	if !hasMetric(t, url, "filecast_log_full 1") {
		t.Error("/metrics does not say the log is full")
	}

	// Changes on disk meanwhile.
	for i := range 100 {
		writeFile(t, filepath.Join(root, "hot.txt"), fmt.Sprint("version ", i))
	}
	writeFile(t, filepath.Join(root, "c.txt"), "c")
	if err := os.Remove(filepath.Join(root, "b.txt")); err != nil {
		t.Fatal(err)
	}
	eventstest.Eventually(t, "the changes to be held", func() bool { return hasMetric(t, url, `filecast_held_changes{workspace="docs"} 3`) })
	if n := uint64(len(changesAfter(t, url, "docs", 0))); n != head {
		t.Errorf("the log went from %d to %d events while full", head, n)
	}
	select {
	case <-p.done:
		t.Fatalf("the hub exited while the disk was full:\n%s", p.stderr.String())
	default:
	}

	// Space comes back.
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	eventstest.Eventually(t, "the held changes", func() bool { return len(changesAfter(t, url, "docs", head)) >= 3 })
	evs := changesAfter(t, url, "docs", head)
	got := map[string]wsEvent{}
	var prev uint64
	for _, e := range evs {
		if e.Seq <= prev {
			t.Errorf("seq %d after %d", e.Seq, prev)
		}
		prev = e.Seq
		if _, dup := got[e.Path]; dup {
			t.Errorf("%s reported twice: %v", e.Path, evs)
		}
		got[e.Path] = e
	}
	if e := got["hot.txt"]; e.Type != "file.created" || e.SHA256 != sha("version 99") {
		t.Errorf("hot.txt: %+v, want created with its last content", e)
	}
	if e := got["c.txt"]; e.Type != "file.created" {
		t.Errorf("c.txt: %+v, want created", e)
	}
	if e := got["b.txt"]; e.Type != "file.deleted" {
		t.Errorf("b.txt: %+v, want deleted", e)
	}
	if len(evs) != 3 {
		t.Errorf("%d events, want 3: %v", len(evs), evs)
	}
	eventstest.Eventually(t, "healthz 200", func() bool { status, _ := health(t, url); return status == 200 })
	if status, body := do(t, "PUT", url+"/v1/workspaces/docs/files/a.txt", "written"); status != 200 {
		t.Errorf("PUT once there is room: %d %s", status, body)
	}

	// A hub started on a full disk serves reads, and says so.
	p.stop(t)
	filler = fill(t, data)
	writeFile(t, filepath.Join(root, "while-down.txt"), "x")
	startProc(t, args...)
	eventstest.Eventually(t, "the hub to serve on a full disk, and say so", func() bool {
		resp, err := http.Get(url + "/healthz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		status, probs := health(t, url)
		return status == 503 && slices.Equal(probs, []string{"insufficient_storage"})
	})
	if status, body := do(t, "GET", url+"/v1/workspaces/docs/files/a.txt", ""); status != 200 || body != "written" {
		t.Errorf("GET on a full disk = %d %q", status, body)
	}
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	eventstest.Eventually(t, "the change made while the hub was down", func() bool {
		for _, e := range changesAfter(t, url, "docs", 0) {
			if e.Path == "while-down.txt" {
				return true
			}
		}
		return false
	})
	eventstest.Eventually(t, "healthz 200", func() bool { status, _ := health(t, url); return status == 200 })
}

// TestHub_KilledMidWriteLeavesNoTempFile kills the hub (SIGKILL) while a
// large PUT is being written, until one kill leaves the write's temporary
// file behind, then starts the hub again: the file is gone once the hub
// is ready, and was never reported.
func TestHub_KilledMidWriteLeavesNoTempFile(t *testing.T) {
	root := t.TempDir()
	data := t.TempDir()
	big := bytes.Repeat([]byte("0123456789abcdef"), 1<<20) // 16 MiB, the largest write
	writeFile(t, filepath.Join(root, "big.bin"), "old")
	addr := freeAddr(t)
	args := []string{"hub", "--root", "docs=" + root, "--listen", addr, "--data", data}
	url := "http://" + addr
	var left []string
	for attempt := 1; attempt <= 20 && len(left) == 0; attempt++ {
		p := startProc(t, args...)
		waitHTTP(t, url+"/healthz")
		done := make(chan struct{})
		go func() {
			defer close(done)
			req, _ := http.NewRequest("PUT", url+"/v1/workspaces/docs/files/big.bin", bytes.NewReader(big))
			if resp, err := http.DefaultClient.Do(req); err == nil {
				resp.Body.Close()
			}
		}()
		deadline := time.Now().Add(10 * time.Second)
		for len(left) == 0 && time.Now().Before(deadline) {
			select {
			case <-done:
				deadline = time.Time{} // the write finished first: try again
				continue
			default:
			}
			left = tempsIn(t, root)
		}
		if len(left) > 0 {
			_ = p.cmd.Process.Kill()
		}
		p.stop(t)
		<-done
		left = tempsIn(t, root) // what the kill left, if anything
		if err := os.WriteFile(filepath.Join(root, "big.bin"), []byte("old"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if len(left) == 0 {
		t.Fatal("no kill in 20 caught a write between its temporary file and its rename")
	}
	t.Logf("the kill left %v", left)
	startProc(t, args...)
	waitHTTP(t, url+"/healthz")
	if now := tempsIn(t, root); len(now) > 0 {
		t.Errorf("temporary files left after a restart: %v", now)
	}
	for _, e := range changesAfter(t, url, "docs", 0) {
		if strings.Contains(e.Path, ".filecast-") {
			t.Errorf("a temporary file was reported: %+v", e)
		}
	}
}

// tempsIn lists the hub's temporary files in dir.
func tempsIn(t *testing.T, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range ents {
		if hub.IsTempName(e.Name()) {
			out = append(out, e.Name())
		}
	}
	return out
}
