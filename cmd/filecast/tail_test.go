package main_test

import (
	"bufio"
	"encoding/json"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/filecast/filecast/events/eventstest"
)

// TestTail follows a hub as a process: --since replays, then live events,
// filtered by --path, as JSON Lines and as text.
func TestTail(t *testing.T) {
	root := t.TempDir()
	addr := freeAddr(t)
	startProc(t, "hub", "--root", "docs="+root, "--listen", addr, "--data", t.TempDir())
	base := "http://" + addr
	waitHTTP(t, base+"/healthz")
	writeFile(t, filepath.Join(root, "before.md"), "replayed")
	eventstest.Eventually(t, "before.md in the log", func() bool {
		var p struct {
			Events []wsEvent `json:"events"`
		}
		getJSON(t, base+"/v1/workspaces/docs/changes?cursor=0", &p)
		return len(p.Events) == 1
	})

	lines := startTail(t, "--hub", base, "--since", "docs:0", "--path", "*.md", "--json")
	writeFile(t, filepath.Join(root, "skip.txt"), "filtered out")
	writeFile(t, filepath.Join(root, "live.md"), "live")
	var got []string
	for len(got) < 2 {
		select {
		case l := <-lines:
			var ev wsEvent
			if err := json.Unmarshal([]byte(l), &ev); err != nil {
				t.Fatalf("not a JSON line: %q", l)
			}
			got = append(got, ev.String())
		case <-time.After(15 * time.Second):
			t.Fatalf("tail printed only %v", got)
		}
	}
	if strings.Join(got, ";") != "file.created before.md;file.created live.md" {
		t.Fatalf("tail --json printed %v", got)
	}

	text := startTail(t, "--hub", base, "--color", "never")
	writeFile(t, filepath.Join(root, "live.md"), "changed!")
	select {
	case l := <-text:
		for _, want := range []string{"file.updated", "docs:live.md", "8 B", "fs"} {
			if !strings.Contains(l, want) {
				t.Errorf("text line %q lacks %q", l, want)
			}
		}
		if strings.Contains(l, "\x1b[") {
			t.Errorf("--color never printed escapes: %q", l)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("tail printed nothing")
	}
}

// TestTail_HubRestart: tail follows a hub across its restart, printing
// what changed while it was down, once.
func TestTail_HubRestart(t *testing.T) {
	root, data := t.TempDir(), t.TempDir()
	addr := freeAddr(t)
	hub := startProc(t, "hub", "--root", "docs="+root, "--listen", addr, "--data", data)
	base := "http://" + addr
	waitHTTP(t, base+"/healthz")
	lines := startTail(t, "--hub", base, "--since", "docs:0", "--json")
	next := func() string {
		t.Helper()
		select {
		case l := <-lines:
			var ev wsEvent
			if err := json.Unmarshal([]byte(l), &ev); err != nil {
				t.Fatalf("not a JSON line: %q", l)
			}
			return ev.String()
		case <-time.After(eventstest.Timeout):
			t.Fatal("tail printed nothing")
			return ""
		}
	}
	writeFile(t, filepath.Join(root, "one.md"), "1")
	if got := next(); got != "file.created one.md" {
		t.Fatalf("before the restart: %s", got)
	}
	hub.stop(t)
	writeFile(t, filepath.Join(root, "two.md"), "2") // while the hub is down
	startProc(t, "hub", "--root", "docs="+root, "--listen", addr, "--data", data)
	waitHTTP(t, base+"/healthz")
	writeFile(t, filepath.Join(root, "three.md"), "3")
	got := []string{next(), next()}
	if strings.Join(got, ";") != "file.created two.md;file.created three.md" {
		t.Fatalf("after the restart tail printed %v", got)
	}
}

func TestTail_BadFlags(t *testing.T) {
	for _, args := range [][]string{
		{"tail", "--hub", "http://127.0.0.1:1", "--path", "[bad"},
		{"tail", "--hub", "http://127.0.0.1:1", "--since", "nonsense"},
		{"tail", "--hub", "http://127.0.0.1:1"},
	} {
		out, err := exec.Command(binary, args...).CombinedOutput()
		if err == nil {
			t.Errorf("%v succeeded", args)
		}
		if msg := strings.TrimSpace(string(out)); msg == "" || strings.Contains(msg, "goroutine ") || strings.Count(msg, "\n") > 2 {
			t.Errorf("%v: want one clear error line, got %q", args, msg)
		}
	}
}

// startTail runs "filecast tail ARGS" and returns its stdout lines.
// It returns once tail has read the heads it follows from.
func startTail(t *testing.T, args ...string) <-chan string {
	t.Helper()
	cmd := exec.Command(binary, append([]string{"tail"}, args...)...)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	stderr := &lockedBuffer{}
	cmd.Stderr = stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	lines := make(chan string, 100)
	done := make(chan struct{})
	go func() {
		defer close(done)
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			lines <- sc.Text()
		}
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-done
		_ = cmd.Wait()
		if t.Failed() {
			t.Logf("tail stderr: %s", stderr.String())
		}
	})
	eventstest.Eventually(t, "tail to start following", func() bool { return strings.Contains(stderr.String(), "following") })
	return lines
}
