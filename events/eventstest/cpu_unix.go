//go:build unix

package eventstest

import (
	"syscall"
	"testing"
	"time"
)

// CPUTime returns the CPU time this process has used, in user and system
// mode: on a shared machine a steadier measure of a benchmark's cost than
// elapsed time.
func CPUTime(tb testing.TB) time.Duration {
	tb.Helper()
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		tb.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
