//go:build linux

package watch

import (
	"fmt"
	"os"
	"strings"
	"syscall"
)

// fsMagic names the file systems that statfs(2) tells by their magic
// number and that remoteFS cares about (see linux/magic.h).
var fsMagic = map[uint32]string{
	0x6969:     "nfs",
	0x517b:     "smbfs",
	0xff534d42: "cifs",
	0xfe534d42: "smb3",
	0x01021997: "9p",
	0x65735546: "fuse", // virtiofs too
	0x00c36400: "ceph",
	0x5346414f: "afs",
	0x6b414653: "afs",
	0x73757245: "coda",
	0x0bd00bd0: "lustre",
	0x47504653: "gpfs",
	0x7461636f: "ocfs2",
	0x01161970: "gfs2",
	0x786f4256: "vboxsf",
}

// mountsOf returns the file system that holds root (first, with root as
// its folder) and those mounted on folders under it. The type of root's
// is statfs's; /proc/self/mountinfo names it more precisely (nfs4,
// fuse.sshfs, fuseblk) and lists the mounts under root. Without
// mountinfo, only root's file system is known.
func mountsOf(root string) ([]mount, error) {
	var sfs syscall.Statfs_t
	if err := syscall.Statfs(root, &sfs); err != nil {
		return nil, fmt.Errorf("statfs %s: %w", root, err)
	}
	byMagic := fsMagic[uint32(sfs.Type)] //nolint:gosec // magic numbers are 32 bits, the field's width differs by platform
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return []mount{{dir: root, fsType: byMagic}}, nil
	}
	defer f.Close()
	table, err := parseMountinfo(f)
	if err != nil {
		return []mount{{dir: root, fsType: byMagic}}, nil
	}
	ms, ok := mountsUnder(table, root)
	if !ok {
		return []mount{{dir: root, fsType: byMagic}}, nil
	}
	name := ms[0].fsType
	if byMagic != "" && remoteFS(byMagic) != remoteFS(name) && !(byMagic == "fuse" && strings.HasPrefix(name, "fuse")) {
		ms[0].fsType = byMagic // statfs speaks for the folder itself
	}
	return ms, nil
}
