package main_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/filecast/filecast/events/eventstest"
)

// TestMCPStdio_AnswersWhileIndexing starts "filecast mcp" on a workspace
// of 20,000 files: it answers initialize before the first index is
// complete, a change made right after the agent's first call is reported
// although the index had not reached it yet, and a listing asked for
// meanwhile waits for the index instead of answering with part of it.
func TestMCPStdio_AnswersWhileIndexing(t *testing.T) {
	root, data := t.TempDir(), t.TempDir()
	const dirs, subs, files = 20, 10, 100
	for d := range dirs {
		for s := range subs {
			dir := filepath.Join(root, fmt.Sprintf("d%02d", d), fmt.Sprintf("s%d", s))
			if err := os.MkdirAll(dir, 0o755); err != nil {
				t.Fatal(err)
			}
			for f := range files {
				if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("f%03d.txt", f)), []byte(dir+fmt.Sprint(f)), 0o644); err != nil {
					t.Fatal(err)
				}
			}
		}
	}

	began := time.Now()
	a := startStdio(t, legacyVersion, "--root", "docs="+root, "--data", data)
	t.Logf("initialize answered %v after the start", time.Since(began))
	hc := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "unix", filepath.Join(data, "hub.sock"))
	}}}
	// initialize waits a moment for the hub, not for its socket: on a busy
	// machine the answer can come first.
	eventstest.Eventually(t, "the hub's socket", func() bool {
		_, err := os.Stat(filepath.Join(data, "hub.sock"))
		return err == nil
	})
	if code := healthz(t, hc); code != http.StatusServiceUnavailable {
		t.Fatalf("/healthz = %d right after initialize; want 503 while the first index is built (is the workspace too small to test this?)", code)
	}

	var sub struct {
		ID string `json:"subscription_id"`
	}
	a.mustCall("subscribe", map[string]any{}, &sub)
	// The walk lists folders last in, first out: d00/s0 comes last.
	existing := filepath.Join(root, "d00", "s0", "f000.txt")
	writeFile(t, existing, "changed after the first call")
	writeFile(t, filepath.Join(root, "late", "new.md"), "created after the first call")
	if code := healthz(t, hc); code != http.StatusServiceUnavailable {
		t.Logf("the index was complete before the changes were made: they were reported by notification only")
	}

	// A listing waits for the index, and then holds every file.
	listing := make(chan int, 1)
	go func() {
		resp, err := hc.Get("http://filecast/v1/workspaces/docs/files")
		if err != nil {
			t.Errorf("list files: %v", err)
			listing <- -1
			return
		}
		defer resp.Body.Close()
		var l struct {
			Files []struct{} `json:"files"`
		}
		if err := json.NewDecoder(resp.Body).Decode(&l); err != nil {
			t.Errorf("list files: %v", err)
		}
		listing <- len(l.Files)
	}()

	got, _ := a.collect(nil, 2)
	byPath := map[string]wsEvent{}
	for _, ev := range got {
		byPath[ev.Path] = ev
	}
	if ev := byPath["late/new.md"]; ev.Type != "file.created" || ev.SHA256 != sha("created after the first call") {
		t.Errorf("late/new.md: got %v (sha256 %s); want file.created with its content; all events: %v", ev, ev.SHA256, kinds(got))
	}
	if ev := byPath["d00/s0/f000.txt"]; !slices.Contains([]string{"file.created", "file.updated"}, ev.Type) || ev.SHA256 != sha("changed after the first call") {
		t.Errorf("d00/s0/f000.txt: got %v (sha256 %s); want it reported with its new content; all events: %v", ev, ev.SHA256, kinds(got))
	}
	if len(got) != 2 {
		t.Errorf("got %d events, want 2: %v", len(got), kinds(got))
	}

	select {
	case n := <-listing:
		// late/new.md is in it or comes after its cursor, depending on
		// whether its notification was handled before the index was done.
		if want := dirs * subs * files; n != want && n != want+1 {
			t.Errorf("listing asked for while indexing holds %d files, want %d or %d", n, want, want+1)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("no listing 30 s after it was asked for")
	}
	if code := healthz(t, hc); code != http.StatusOK {
		t.Errorf("/healthz = %d once the listing answered; want 200", code)
	}
	// Nothing else: the files there before the start were indexed silently.
	var rest changes
	a.mustCall("list_changes", map[string]any{"wait_ms": 300}, &rest)
	if len(rest.Events) != 0 {
		t.Errorf("more events than the two changes: %v", kinds(rest.Events))
	}
}

func healthz(t *testing.T, hc *http.Client) int {
	t.Helper()
	resp, err := hc.Get("http://filecast/healthz")
	if err != nil {
		t.Fatalf("healthz: %v", err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

func sha(s string) string {
	h := sha256.Sum256([]byte(s))
	return hex.EncodeToString(h[:])
}
