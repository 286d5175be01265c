package daemon_test

import (
	"errors"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/filecast/filecast/events/daemon"
)

func TestAcquire_SecondOwnerRefused(t *testing.T) {
	if os.Getenv("FILECAST_LOCK_CHILD") != "" {
		l, err := daemon.Acquire(os.Getenv("FILECAST_LOCK_CHILD"))
		if err != nil {
			os.Exit(3)
		}
		os.Stdout.WriteString("locked\n")
		time.Sleep(time.Minute) // held until the parent kills this process
		_ = l.Release()
		return
	}
	dir := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run=TestAcquire_SecondOwnerRefused$")
	cmd.Env = append(os.Environ(), "FILECAST_LOCK_CHILD="+dir)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	buf := make([]byte, 7)
	if _, err := out.Read(buf); err != nil || string(buf) != "locked\n" {
		t.Fatalf("child did not take the lock: %q %v", buf, err)
	}

	_, err = daemon.Acquire(dir)
	var busy *daemon.BusyError
	if !errors.As(err, &busy) || !errors.Is(err, daemon.ErrBusy) {
		t.Fatalf("Acquire while held = %v, want BusyError", err)
	}
	if busy.PID != cmd.Process.Pid {
		t.Fatalf("BusyError.PID = %d, want %d", busy.PID, cmd.Process.Pid)
	}
	if want := strconv.Itoa(cmd.Process.Pid); !strings.Contains(err.Error(), want) {
		t.Fatalf("message %q does not name pid %s", err, want)
	}

	// A killed owner leaves no stale lock.
	_ = cmd.Process.Kill()
	_ = cmd.Wait()
	l, err := daemon.Acquire(dir)
	if err != nil {
		t.Fatalf("Acquire after owner died: %v", err)
	}
	if err := l.Release(); err != nil {
		t.Fatal(err)
	}
	if err := l.Release(); err != nil {
		t.Fatal("second Release:", err)
	}
}
