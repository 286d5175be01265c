//go:build unix

package bench

import (
	"syscall"
	"time"
)

// selfCPU returns the CPU time this process has used, 0 where unknown.
func selfCPU() time.Duration {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
