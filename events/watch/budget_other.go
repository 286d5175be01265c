//go:build !linux && !darwin && !dragonfly && !freebsd && !netbsd && !openbsd

package watch

// NewBudget returns the Budget of this platform's notifications: none
// here. On Windows, fsnotify watches each folder with a handle of its own
// (ReadDirectoryChangesW), and a process may hold millions.
func NewBudget(openFiles uint64) *Budget { return Unlimited() }
