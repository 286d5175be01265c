//go:build linux || darwin || freebsd || dragonfly

package natsd

import "syscall"

// diskFree returns the bytes an unprivileged process may still write on
// the file system that holds dir.
func diskFree(dir string) (int64, bool) {
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		return 0, false
	}
	return int64(uint64(st.Bavail) * uint64(st.Bsize)), true //nolint:gosec,unconvert // widths differ by platform
}
