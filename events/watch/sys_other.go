//go:build !unix

package watch

import (
	"io/fs"
	"os"
)

// idOf returns no identity where the platform gives no inode: a rename is
// then reported as file.deleted and file.created (a rescan or restart still
// pairs them by content).
func idOf(fs.FileInfo) fileID { return fileID{} }

func openNoFollow(path string) (*os.File, error) { return os.Open(path) }
