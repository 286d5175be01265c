//go:build unix

package watch

import (
	"errors"
	"io/fs"
	"os"
	"syscall"
)

// idOf returns the device and inode of a file.
func idOf(fi fs.FileInfo) fileID {
	if sys, ok := fi.Sys().(*syscall.Stat_t); ok {
		return fileID{dev: uint64(sys.Dev), ino: uint64(sys.Ino)} //nolint:unconvert // widths differ by platform
	}
	return fileID{}
}

// openNoFollow opens a file for reading without following a symlink at its
// last component and without blocking on a fifo swapped in for it.
func openNoFollow(path string) (*os.File, error) {
	return os.OpenFile(path, os.O_RDONLY|syscall.O_NOFOLLOW|syscall.O_NONBLOCK, 0)
}

// openDir opens a folder for listing without following a symlink at its
// last component, and fails at once (ENOTDIR) instead of blocking when
// something else — a fifo, say — has taken its place.
func openDir(path string) (*os.File, error) {
	return os.OpenFile(path, os.O_RDONLY|syscall.O_NOFOLLOW|syscall.O_NONBLOCK|syscall.O_DIRECTORY, 0)
}

// shortOfDescriptors reports whether err means the process (EMFILE) or
// the system (ENFILE) has no file descriptor to spare.
func shortOfDescriptors(err error) bool {
	return errors.Is(err, syscall.EMFILE) || errors.Is(err, syscall.ENFILE)
}
