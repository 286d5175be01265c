//go:build darwin || dragonfly || freebsd || netbsd || openbsd

package watch

import "syscall"

// NewBudget returns the Budget of this platform's notifications for a
// process whose open file limit is openFiles (0: read it here). fsnotify
// watches with kqueue here, a descriptor per watched folder and per file
// in it: see DescriptorBudget.
func NewBudget(openFiles uint64) *Budget {
	if openFiles == 0 {
		var r syscall.Rlimit
		if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &r); err == nil {
			openFiles = uint64(r.Cur) //nolint:unconvert // widths differ by platform
		}
	}
	return DescriptorBudget(openFiles)
}
