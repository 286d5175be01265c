//go:build unix

package workspace_test

import (
	"errors"
	"net"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/filecast/filecast/events"
	"github.com/filecast/filecast/events/eventstest"
	"github.com/filecast/filecast/events/workspace"
)

// openFDs counts this process's open descriptors, or -1 where /proc does
// not tell.
func openFDs(t *testing.T) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return -1
	}
	return len(ents)
}

// TestWorkspace_ReadFile_Special refuses a fifo, a socket and a link to a
// fifo at once, with an error that says what they are, and holds no
// descriptor afterwards. Without the checks, opening the fifo would wait
// for a writer forever.
func TestWorkspace_ReadFile_Special(t *testing.T) {
	ws, err := workspace.Parse(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mkfifo(ws.Abs("pipe"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("pipe", ws.Abs("to-pipe")); err != nil {
		t.Fatal(err)
	}
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: ws.Abs("sock"), Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	mustWrite(t, ws.Abs("ok.txt"), "fine")

	before := openFDs(t)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for range 50 {
			for p, want := range map[string]string{"pipe": "named pipe", "to-pipe": "named pipe", "sock": "socket"} {
				data, _, err := ws.ReadFile(p, 1<<20)
				if !errors.Is(err, events.ErrNotFound) || !strings.Contains(err.Error(), want) || data != nil {
					t.Errorf("ReadFile(%s) = %q, %v; want ErrNotFound naming a %s", p, data, err, want)
					return
				}
			}
		}
	}()
	select {
	case <-done:
	case <-time.After(eventstest.Timeout):
		t.Fatal("ReadFile of a fifo blocked")
	}
	if data, _, err := ws.ReadFile("ok.txt", 1<<20); err != nil || string(data) != "fine" {
		t.Fatalf("ReadFile(ok.txt) = %q, %v", data, err)
	}
	if after := openFDs(t); after > before {
		t.Fatalf("open descriptors went from %d to %d", before, after)
	}
}
