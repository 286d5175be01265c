//go:build !linux

package watch

// openKernel returns fsnotify's watcher: without inotify, the Watcher
// reads kqueue or ReadDirectoryChangesW through it.
func openKernel() (notifier, error) { return openFsnotify() }
