package watch

import (
	"bufio"
	"fmt"
	"io"
	"path/filepath"
	"strconv"
	"strings"
)

// Which file systems Auto polls. Kernel notifications (inotify, kqueue)
// tell of the changes made through this machine's kernel, and nothing
// else: a file another machine writes on an NFS or SMB share, Windows
// writes on a drive WSL 2 reaches over 9p, the host writes into a VM's
// shared folder, or an sshfs server changes behind a FUSE mount is never
// notified. So Auto polls a workspace — or a folder under it — on such a
// file system. The list errs on the side of polling: a file system that
// sometimes forwards notifications (virtiofs, some FUSE daemons) is
// polled too, which costs a little CPU and is always right; --watch
// notify overrides it.

// mount is one file system a workspace lies on: the folder it is mounted
// on (the workspace folder itself for the one holding it) and its type as
// the system names it ("ext4", "nfs4", "fuse.sshfs", "9p", "smbfs", …).
type mount struct {
	dir    string
	fsType string
}

// remoteFS reports whether notifications on a file system of this type
// may miss changes made by other writers than this machine's kernel.
func remoteFS(fsType string) bool {
	t := strings.ToLower(fsType)
	switch {
	case t == "fuseblk":
		return false // ntfs-3g, exfat-fuse: a local disk, every write goes through this kernel
	case t == "fuse" || strings.HasPrefix(t, "fuse.") || strings.HasPrefix(t, "fuse-") || t == "fusefs" || t == "macfuse" || t == "osxfuse":
		return true // sshfs, rclone, s3fs, gcsfuse, Docker Desktop's grpcfuse, …
	}
	switch t {
	case "nfs", "nfs4", // NFS
		"cifs", "smb3", "smb2", "smbfs", // SMB shares (smbfs: macOS)
		"9p", "drvfs", // WSL 2 reaching Windows drives (9p), WSL 1 (drvfs), VM shares over 9p
		"virtiofs", "fakeowner", // VM shared folders (Docker Desktop's bind mounts from a Mac)
		"vboxsf", "vmhgfs", "prl_fs", // VirtualBox, VMware and Parallels shared folders
		"ceph", "afs", "coda", "glusterfs", "lustre", "gpfs", "beegfs", "ocfs2", "gfs2", // cluster and network file systems
		"afpfs", "webdav", "davfs": // macOS AFP and WebDAV mounts, davfs2
		return true
	}
	return false
}

// keepsDirTimes reports whether a folder's mtime can be trusted to change
// whenever an entry is added to it, removed or renamed, so that the poll
// watcher need not list it again while it has not changed. A FUSE daemon
// says what it likes (some report no times at all), so there every folder
// is listed in every round.
func keepsDirTimes(fsType string) bool {
	t := strings.ToLower(fsType)
	return !(t == "fuse" || strings.HasPrefix(t, "fuse.") || strings.HasPrefix(t, "fuse-") || t == "fusefs" || t == "macfuse" || t == "osxfuse")
}

// mountEntry is one line of /proc/self/mountinfo: where a file system is
// mounted, and its type.
type mountEntry struct {
	dir    string
	fsType string
}

// parseMountinfo reads the lines of a /proc/PID/mountinfo file (see
// proc_pid_mountinfo(5)), such as
//
//	36 35 98:0 /mnt1 /mnt/parent rw,noatime master:1 - ext3 /dev/root rw,errors=continue
//
// The fifth field is the mount point, with space, tab, newline and
// backslash escaped in octal (\040); after the optional fields, a lone
// "-" separates the file system's type. A line that does not read so is
// skipped; only a failure to read is an error.
func parseMountinfo(r io.Reader) ([]mountEntry, error) {
	var out []mountEntry
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 7 {
			continue
		}
		sep := -1
		for i := 6; i < len(f); i++ {
			if f[i] == "-" {
				sep = i
				break
			}
		}
		if sep < 0 || sep+1 >= len(f) {
			continue
		}
		dir, ok := unescapeMount(f[4])
		if !ok || !strings.HasPrefix(dir, "/") {
			continue
		}
		out = append(out, mountEntry{dir: dir, fsType: f[sep+1]})
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read mountinfo: %w", err)
	}
	return out, nil
}

// unescapeMount undoes the octal escapes (\040, \011, \012, \134) of a
// mountinfo path; ok is false for a malformed escape.
func unescapeMount(s string) (string, bool) {
	if !strings.Contains(s, `\`) {
		return s, true
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '\\' {
			b.WriteByte(s[i])
			continue
		}
		if i+4 > len(s) {
			return "", false
		}
		n, err := strconv.ParseUint(s[i+1:i+4], 8, 8)
		if err != nil {
			return "", false
		}
		b.WriteByte(byte(n))
		i += 3
	}
	return b.String(), true
}

// mountsUnder picks from the mount table the file system that holds root
// (the last mount on root or on its nearest ancestor: a later mount hides
// an earlier one on the same folder) and those mounted on folders under
// root, each once, in the order of the table; root's comes first, with
// root as its folder. ok is false when no entry holds root.
func mountsUnder(table []mountEntry, root string) (out []mount, ok bool) {
	root = filepath.Clean(root)
	best := -1
	for i, m := range table {
		if within(root, m.dir) && (best < 0 || len(m.dir) >= len(table[best].dir)) {
			best = i
		}
	}
	if best < 0 {
		return nil, false
	}
	out = append(out, mount{dir: root, fsType: table[best].fsType})
	last := map[string]int{}
	for i, m := range table {
		if m.dir != root && within(m.dir, root) {
			last[filepath.Clean(m.dir)] = i
		}
	}
	for i, m := range table {
		d := filepath.Clean(m.dir)
		if j, ok := last[d]; ok && j == i {
			out = append(out, mount{dir: d, fsType: m.fsType})
		}
	}
	return out, true
}

// within reports whether the absolute path p is dir or lies under it.
func within(p, dir string) bool {
	if dir == "/" || p == dir {
		return true
	}
	return strings.HasPrefix(p, dir) && len(p) > len(dir) && p[len(dir)] == '/'
}
