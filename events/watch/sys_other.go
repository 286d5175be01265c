//go:build !unix

package watch

import (
	"errors"
	"io/fs"
	"os"
	"syscall"
)

// idOf returns no identity where the platform gives no inode: a rename is
// then reported as file.deleted and file.created (a rescan or restart still
// pairs them by content).
func idOf(fs.FileInfo) fileID { return fileID{} }

func openNoFollow(path string) (*os.File, error) { return os.Open(path) }

func openDir(path string) (*os.File, error) { return os.Open(path) }

// shortOfDescriptors reports whether err means the process or the system
// has no file handle to spare.
func shortOfDescriptors(err error) bool {
	return errors.Is(err, syscall.EMFILE) || errors.Is(err, syscall.ENFILE)
}
