//go:build unix

package main_test

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/filecast/filecast/events/eventstest"
)

// TestCrash_HubKilledMidBurst kills the hub with SIGKILL in the middle of a
// burst of file changes and restarts it: the log holds every change once.
func TestCrash_HubKilledMidBurst(t *testing.T) {
	root, data := t.TempDir(), t.TempDir()
	addr := freeAddr(t)
	base := "http://" + addr
	hub := startProc(t, "hub", "--root", "w="+root, "--listen", addr, "--data", data)
	waitHTTP(t, base+"/healthz")

	done := burst(t, root, 3000, 20)
	eventstest.Eventually(t, "the burst under way", func() bool { return writes.Load() >= 300 })
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
	eventstest.Eventually(t, "the burst under way", func() bool { return writes.Load() >= 200 })
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
		b.mustCall("list_changes", map[string]any{"cursor": cursor, "limit": 1000, "wait_ms": 500, "detail": "full"}, &r)
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

// TestLocks_OwnerKilled kills the process that owns the shared hub: the
// other takes over, keeps receiving events, and the dead agent's lock ends
// with its TTL.
func TestLocks_OwnerKilled(t *testing.T) {
	root, data := t.TempDir(), t.TempDir()
	a := startStdio(t, legacyVersion, "--root", "w="+root, "--data", data)
	b := startStdio(t, legacyVersion, "--root", "w="+root, "--data", data)
	var la lockResult
	a.mustCall("lock", map[string]any{"path": "x.txt", "ttl_seconds": 2}, &la)
	writeFile(t, filepath.Join(root, "before.txt"), "1")
	got, _ := b.collect(nil, 1)
	if len(got) != 1 || got[0].Path != "before.txt" {
		t.Fatalf("before the kill: %v", kinds(got))
	}

	pid := readPID(t, data)
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatalf("kill owner %d: %v", pid, err)
	}
	writeFile(t, filepath.Join(root, "after.txt"), "2")
	got, _ = b.collect(nil, 1)
	if len(got) != 1 || got[0].Path != "after.txt" {
		t.Fatalf("after the owner was killed: %v", kinds(got))
	}
	if readPID(t, data) == pid {
		t.Fatal("nobody took over the hub")
	}
	// The dead agent's lock is held until its 2s TTL runs out, well
	// within the 10s b waits for it.
	var lb lockResult
	b.mustCall("lock", map[string]any{"path": "x.txt", "wait_ms": 10000}, &lb)
	if lb.FencingToken <= la.FencingToken {
		t.Fatalf("fencing token %d after %d", lb.FencingToken, la.FencingToken)
	}
}

func readPID(t *testing.T, data string) int {
	t.Helper()
	var pid int
	eventstest.Eventually(t, "an owner's PID file", func() bool {
		b, err := os.ReadFile(filepath.Join(data, "PID"))
		if err != nil {
			return false
		}
		pid, err = strconv.Atoi(strings.TrimSpace(string(b)))
		return err == nil && syscall.Kill(pid, 0) == nil
	})
	return pid
}
