//go:build darwin

package watch

import (
	"fmt"
	"path/filepath"
	"syscall"
)

// mountsOf returns the file system that holds root (first, with root as
// its folder) and those mounted on folders under it, as statfs(2) and
// getfsstat(2) name them (apfs, nfs, smbfs, macfuse, …).
func mountsOf(root string) ([]mount, error) {
	var sfs syscall.Statfs_t
	if err := syscall.Statfs(root, &sfs); err != nil {
		return nil, fmt.Errorf("statfs %s: %w", root, err)
	}
	out := []mount{{dir: root, fsType: cstr(sfs.Fstypename[:])}}
	n, err := syscall.Getfsstat(nil, 2) // MNT_NOWAIT
	if err != nil || n <= 0 {
		return out, nil
	}
	all := make([]syscall.Statfs_t, n)
	if n, err = syscall.Getfsstat(all, 2); err != nil {
		return out, nil
	}
	for _, m := range all[:n] {
		dir := filepath.Clean(cstr(m.Mntonname[:]))
		if dir != root && within(dir, root) {
			out = append(out, mount{dir: dir, fsType: cstr(m.Fstypename[:])})
		}
	}
	return out, nil
}

// cstr reads a NUL-terminated C string.
func cstr(b []int8) string {
	s := make([]byte, 0, len(b))
	for _, c := range b {
		if c == 0 {
			break
		}
		s = append(s, byte(c))
	}
	return string(s)
}
