package main_test

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// burst writes n changes over files files in root, in the background.
func burst(t *testing.T, root string, n, files int) (done <-chan struct{}) {
	t.Helper()
	writes.Store(0)
	ch := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		defer close(ch)
		for i := range n {
			p := filepath.Join(root, fmt.Sprintf("d%d/f%03d.txt", i%7, i%files))
			if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
				t.Error(err)
				return
			}
			if err := os.WriteFile(p, []byte(fmt.Sprintf("change %d", i)), 0o644); err != nil {
				t.Error(err)
				return
			}
			writes.Add(1)
			if i%3 == 0 {
				time.Sleep(time.Millisecond)
			}
		}
	}()
	t.Cleanup(wg.Wait)
	return ch
}

// writes counts the changes burst made so far.
var writes atomic.Int64

// checkLog reads the whole log of workspace w and checks it against the
// folder: ids and seqs are unique, every file's last event matches its
// content, and no change is reported twice in a row.
func checkLog(t *testing.T, base, root string) int {
	t.Helper()
	all := logOf(t, base)
	ids := map[string]bool{}
	var prev uint64
	for _, e := range all {
		if ids[e.ID] || e.Seq <= prev {
			t.Fatalf("event %s seq %d repeated or out of order", e.ID, e.Seq)
		}
		ids[e.ID], prev = true, e.Seq
	}
	last, dups := lastContents(all)
	if dups > 0 {
		t.Errorf("%d changes reported twice", dups)
	}
	for _, rel := range stale(t, root, last) {
		t.Errorf("%s: the log's last event does not describe its content", rel)
	}
	return len(all)
}

// lastContents returns the sha256 the log's last file event gives each
// file that exists, and how many events repeat the content before them.
func lastContents(evs []wsEvent) (last map[string]string, dups int) {
	last = map[string]string{}
	for _, e := range evs {
		switch {
		case !strings.HasPrefix(e.Type, "file."):
			// lock events describe no content
		case e.Type == "file.deleted":
			delete(last, e.Path)
		default:
			if last[e.Path] == e.SHA256 {
				dups++
			}
			last[e.Path] = e.SHA256
		}
	}
	return last, dups
}

// stale lists the files under root whose content is not the one last
// gives them.
func stale(t *testing.T, root string, last map[string]string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		if sum := sha256.Sum256(b); last[filepath.ToSlash(rel)] != hex.EncodeToString(sum[:]) {
			out = append(out, rel)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestCrash_HubKilledMidBurst kills the hub with SIGKILL in the middle of a
// burst of file changes and restarts it: the log holds every change once.
func TestCrash_HubKilledMidBurst(t *testing.T) {
	root, data := t.TempDir(), t.TempDir()
	addr := freeAddr(t)
	base := "http://" + addr
	hub := startProc(t, "hub", "--root", "w="+root, "--listen", addr, "--data", data)
	waitHTTP(t, base+"/healthz")

	done := burst(t, root, 3000, 20)
	time.Sleep(300 * time.Millisecond) // mid-burst; the checks do not depend on the moment
	if err := hub.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-hub.done
	t.Logf("hub killed after %d writes", writes.Load())
	startProc(t, "hub", "--root", "w="+root, "--listen", addr, "--data", data)
	<-done
	waitHTTP(t, base+"/healthz")
	settle(t, base)
	n := checkLog(t, base, root)
	t.Logf("3000 writes over 20 files, hub killed mid-burst: %d events in the log, none repeated", n)
}

// TestCrash_MCPKilledMidBurst kills "filecast mcp" (which owns the embedded
// hub) mid-burst; an agent resuming by cursor in a new process sees every
// change once.
func TestCrash_MCPKilledMidBurst(t *testing.T) {
	root, data := t.TempDir(), t.TempDir()
	a := startStdio(t, legacyVersion, "--root", "w="+root, "--data", data)
	var first changes
	a.mustCall("list_changes", map[string]any{"wait_ms": 10}, &first)
	done := burst(t, root, 2000, 80)
	time.Sleep(200 * time.Millisecond)
	pid := readPID(t, data)
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-done
	b := startStdio(t, legacyVersion, "--root", "w="+root, "--data", data)
	// Read everything after the first cursor, page by page.
	seen := map[string]bool{}
	cursor := first.Cursor
	for quiet := 0; quiet < 2; {
		var r changes
		b.mustCall("list_changes", map[string]any{"cursor": cursor, "limit": 1000, "wait_ms": 500}, &r)
		if len(r.Events) == 0 {
			quiet++
		}
		for _, e := range r.Events {
			if seen[e.ID] {
				t.Fatalf("event %s seen twice", e.ID)
			}
			seen[e.ID] = true
		}
		cursor = r.Cursor
	}
	if len(seen) == 0 {
		t.Fatal("no events after the kill")
	}
	t.Logf("2000 writes, mcp killed mid-burst: %d events read by cursor, none twice", len(seen))
}

// settle waits until the log stops growing.
func settle(t *testing.T, base string) {
	t.Helper()
	var last uint64
	stable := 0
	waitCond(t, "the log to settle", func() bool {
		var page struct {
			Workspaces []struct {
				Head uint64 `json:"head"`
			} `json:"workspaces"`
		}
		getJSON(t, base+"/v1/workspaces", &page)
		head := page.Workspaces[0].Head
		if head == last {
			stable++
		} else {
			stable, last = 0, head
		}
		return stable >= 30 // 300 ms without a new event
	})
}
