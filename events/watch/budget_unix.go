//go:build unix

package watch

import "syscall"

// fileLimitBudget returns DescriptorBudget of this process's open file
// limit (the soft RLIMIT_NOFILE) as it is now: kqueue's Budget. No limit
// when the limit cannot be read.
func fileLimitBudget() *Budget {
	var r syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &r); err != nil {
		return Unlimited()
	}
	return DescriptorBudget(uint64(r.Cur)) //nolint:unconvert // widths differ by platform
}
