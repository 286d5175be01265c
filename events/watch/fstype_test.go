package watch_test

import (
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/filecast/filecast/events/watch"
)

// TestParseMountinfo reads mount points (octal escapes undone) and file
// system types past the optional fields, skipping lines that do not read.
func TestParseMountinfo(t *testing.T) {
	text := `22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw
36 22 0:45 / /home/me/share rw,relatime shared:20 master:3 - nfs4 srv:/export rw,vers=4.2
37 22 0:46 / /mnt/c rw,noatime - 9p drvfs rw,aname=drvfs
38 22 0:47 / /home/me/my\040docs rw - fuse.sshfs me@host:docs rw
garbage line
39 22 0:48 / relative rw - tmpfs tmpfs rw
40 22 0:49 / /no/type rw -
`
	got, err := watch.ParseMountinfo(text)
	if err != nil {
		t.Fatal(err)
	}
	want := []watch.FS{{Dir: "/", Type: "ext4"}, {Dir: "/home/me/share", Type: "nfs4"}, {Dir: "/mnt/c", Type: "9p"}, {Dir: "/home/me/my docs", Type: "fuse.sshfs"}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("ParseMountinfo (-want +got):\n%s", diff)
	}
}

// TestMountsUnder picks the file system holding the workspace (the last
// mount on its nearest ancestor) and those mounted under it, once each.
func TestMountsUnder(t *testing.T) {
	table := []watch.FS{
		{Dir: "/", Type: "ext4"},
		{Dir: "/home", Type: "xfs"},
		{Dir: "/home/me/ws/share", Type: "tmpfs"},
		{Dir: "/home/me/ws/share", Type: "nfs4"}, // mounted over the first
		{Dir: "/home/me/wsx", Type: "cifs"},      // a sibling, not under
		{Dir: "/home/me/ws/share/deep", Type: "fuse.sshfs"},
		{Dir: "/home", Type: "9p"}, // mounted over /home later
	}
	got, ok := watch.MountsUnder(table, "/home/me/ws")
	want := []watch.FS{{Dir: "/home/me/ws", Type: "9p"}, {Dir: "/home/me/ws/share", Type: "nfs4"}, {Dir: "/home/me/ws/share/deep", Type: "fuse.sshfs"}}
	if !ok || !cmp.Equal(got, want) {
		t.Errorf("MountsUnder = %v, %v; want %v", got, ok, want)
	}
	if _, ok := watch.MountsUnder([]watch.FS{{Dir: "/srv", Type: "ext4"}}, "/home/me"); ok {
		t.Error("MountsUnder found a file system for a folder no mount holds")
	}
}

// TestRemoteFS: network, VM-share and FUSE file systems are polled by
// auto; local ones (fuseblk is a local disk through ntfs-3g) are not. FUSE
// folder times are not trusted.
func TestRemoteFS(t *testing.T) {
	for _, fs := range []string{"nfs", "nfs4", "cifs", "smb3", "smbfs", "9p", "drvfs", "virtiofs", "fakeowner", "fuse", "fuse.sshfs", "fuse.grpcfuse", "macfuse", "vboxsf", "ceph", "afpfs", "webdav"} {
		if !watch.RemoteFS(fs) {
			t.Errorf("RemoteFS(%q) = false, want true", fs)
		}
	}
	for _, fs := range []string{"ext4", "xfs", "btrfs", "tmpfs", "apfs", "hfs", "overlay", "fuseblk", "zfs", ""} {
		if watch.RemoteFS(fs) {
			t.Errorf("RemoteFS(%q) = true, want false", fs)
		}
	}
	for fs, want := range map[string]bool{"ext4": true, "nfs4": true, "9p": true, "fuse.sshfs": false, "fuse": false, "macfuse": false} {
		if got := watch.KeepsDirTimes(fs); got != want {
			t.Errorf("KeepsDirTimes(%q) = %v, want %v", fs, got, want)
		}
	}
}
