//go:build darwin || dragonfly || freebsd || netbsd || openbsd

package watch

// NewBudget returns the Budget of this platform's notifications for a
// process whose open file limit is openFiles (0: read it now, after it
// was raised). fsnotify watches with kqueue here, a descriptor per watched
// folder and per file in it: see DescriptorBudget.
func NewBudget(openFiles uint64) *Budget {
	if openFiles == 0 {
		return fileLimitBudget()
	}
	return DescriptorBudget(openFiles)
}
