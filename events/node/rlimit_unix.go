//go:build unix

package node

import (
	"fmt"
	"syscall"
)

// raiseFileLimit raises this process's soft limit of open files
// (RLIMIT_NOFILE) to its hard limit, so that event streams, the event
// log's files and the watchers' reads do not run out of descriptors at
// the usual soft limit of 1024. It returns the limit in force (0 when it
// cannot be read) and whether it raised it.
func raiseFileLimit() (limit uint64, raised bool, err error) {
	var r syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &r); err != nil {
		return 0, false, fmt.Errorf("read the open file limit: %w", err)
	}
	if r.Cur >= r.Max {
		return uint64(r.Cur), false, nil //nolint:unconvert // widths differ by platform
	}
	want := r
	want.Cur = r.Max
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &want); err != nil {
		return uint64(r.Cur), false, fmt.Errorf("raise the open file limit to %d: %w", r.Max, err) //nolint:unconvert // widths differ by platform
	}
	return uint64(want.Cur), true, nil //nolint:unconvert // widths differ by platform
}
