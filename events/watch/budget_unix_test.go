//go:build unix

package watch_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/filecast/filecast/events"
	"github.com/filecast/filecast/events/watch"
)

// lowFileLimitEnv tells TestBudget_LowFileLimit it runs as the child.
const lowFileLimitEnv = "FILECAST_TEST_LOW_FILE_LIMIT"

// childFileLimit is the open file limit of the child: kqueue's Budget is
// then (400 - DescriptorReserve) / 2 = 72 descriptors.
const childFileLimit = 400

// TestBudget_LowFileLimit runs itself again in a child process whose open
// file limit (RLIMIT_NOFILE) is lowered to 400. There, kqueue's Budget,
// read from that limit, is 72 descriptors, shared by the process's
// Watchers: a workspace of 100 files, which kqueue would take more than
// that for, is polled, with one warning that says why and how to raise the
// limit; one of 10 files is notified.
func TestBudget_LowFileLimit(t *testing.T) {
	if os.Getenv(lowFileLimitEnv) != "" {
		lowFileLimitChild(t)
		return
	}
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^TestBudget_LowFileLimit$", "-test.count=1")
	cmd.Env = append(os.Environ(), lowFileLimitEnv+"=1")
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "low file limit: checked") {
		t.Fatalf("the child with an open file limit of %d failed (%v):\n%s", childFileLimit, err, out)
	}
}

func lowFileLimitChild(t *testing.T) {
	var r syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &r); err != nil {
		t.Fatal(err)
	}
	r.Cur = childFileLimit
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &r); err != nil {
		t.Fatalf("lower the open file limit to %d: %v", childFileLimit, err)
	}
	b := watch.FileLimitBudget()
	if got, want := b.Left(), (childFileLimit-watch.DescriptorReserve)/2; got != want {
		t.Fatalf("kqueue's Budget with an open file limit of %d: %d descriptors, want %d", childFileLimit, got, want)
	}

	small, big := newEnv(t), newEnv(t)
	for i := range 10 {
		small.write(fmt.Sprintf("f%03d.txt", i), "small")
	}
	for i := range 100 {
		big.write(fmt.Sprintf("f%03d.txt", i), "big")
	}
	var smallLogs, bigLogs logBuffer
	ws := small.start(watch.Options{Budget: b, PollInterval: time.Hour, Logger: smallLogs.logger()})
	wb := big.start(watch.Options{Budget: b, PollInterval: time.Hour, Logger: bigLogs.logger()})
	if x, _ := ws.Watching(); x.Kind != watch.Notify {
		t.Errorf("10 files: Watching() = %+v, want notify", x)
	}
	if got := b.Left(); got != 72-11 {
		t.Errorf("Budget left = %d with 10 files watched, want %d", got, 72-11)
	}
	x, _ := wb.Watching()
	if x.Kind != watch.Poll || !strings.Contains(x.Reason, "needs over 61 descriptors, more than the 61 left") {
		t.Errorf("100 files: Watching() = %+v, want poll for want of descriptors", x)
	}
	warns := bigLogs.lines("level=WARN")
	if len(warns) != 1 || !strings.Contains(warns[0], "the open file limit of 400") || !strings.Contains(warns[0], "ulimit -n") {
		t.Errorf("warnings: %q, want one naming the open file limit and how to raise it", warns)
	}
	if got := smallLogs.lines("level=WARN"); len(got) != 0 {
		t.Errorf("warnings of the small workspace: %q, want none", got)
	}
	big.write("new.txt", "new")
	big.round()
	big.waitEvents("new.txt created", func(evs []events.Event) bool { return len(evs) == 1 && evs[0].Path == "new.txt" })
	small.write("new.txt", "new")
	small.waitEvents("new.txt created", func(evs []events.Event) bool { return len(evs) == 1 && evs[0].Path == "new.txt" })
	if !t.Failed() {
		fmt.Println("low file limit: checked")
	}
}
