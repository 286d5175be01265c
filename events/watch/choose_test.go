package watch_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/filecast/filecast/events"
	"github.com/filecast/filecast/events/watch"
)

// onFileSystems makes every Watcher of e take its file systems from fss:
// the workspace folder on root, and the folders (relative) on theirs.
func (e *env) onFileSystems(root string, under map[string]string) {
	e.before = func(w *watch.Watcher) {
		w.SetFileSystems(func(dir string) []watch.FS {
			out := []watch.FS{{Dir: dir, Type: root}}
			for rel, typ := range under {
				out = append(out, watch.FS{Dir: filepath.Join(dir, filepath.FromSlash(rel)), Type: typ})
			}
			return out
		})
	}
}

// TestAuto_RemoteWorkspace: a workspace folder on NFS is polled, and the
// Watcher says so once, naming the file system and how to override it.
func TestAuto_RemoteWorkspace(t *testing.T) {
	for _, fsType := range []string{"nfs4", "cifs", "9p", "fuse.sshfs", "virtiofs"} {
		t.Run(fsType, func(t *testing.T) {
			e := newEnv(t)
			e.onFileSystems(fsType, nil)
			var logs logBuffer
			w := e.start(watch.Options{PollInterval: time.Hour, Logger: logs.logger()})
			x, _ := w.Watching()
			if x.Kind != watch.Poll || x.Label() != "poll" || !strings.Contains(x.Reason, "is on "+fsType) || !strings.Contains(x.Reason, "--watch notify overrides") {
				t.Errorf("Watching() = %+v, want poll because of %s", x, fsType)
			}
			if got := logs.lines("watching"); len(got) != 1 || !strings.Contains(got[0], "watching by polling") || !strings.Contains(got[0], "watcher=poll") {
				t.Errorf("log lines about the watcher: %q, want one saying it polls", got)
			}
			e.write("a.txt", "a")
			e.round()
			e.waitEvents("a.txt created", func(evs []events.Event) bool {
				return len(evs) == 1 && evs[0].Type == events.FileCreated && evs[0].Path == "a.txt"
			})
		})
	}
}

// TestAuto_LocalWorkspace: a workspace on a local file system (fuseblk is
// ntfs-3g on a local disk) is watched with notifications.
func TestAuto_LocalWorkspace(t *testing.T) {
	for _, fsType := range []string{"ext4", "apfs", "fuseblk", "tmpfs", ""} {
		t.Run(fsType, func(t *testing.T) {
			e := newEnv(t)
			e.onFileSystems(fsType, map[string]string{"sub": "ext4"})
			w := e.start(watch.Options{PollInterval: time.Hour})
			if x, _ := w.Watching(); !cmp.Equal(x, watch.Watching{Kind: watch.Notify, Interval: time.Hour}) || x.Label() != "notify" {
				t.Errorf("Watching() = %+v, want notify", x)
			}
			e.write("a.txt", "a")
			e.waitEvents("a.txt created", func(evs []events.Event) bool { return len(evs) == 1 && evs[0].Path == "a.txt" })
		})
	}
}

// TestAuto_RemoteMountUnder: a share mounted on a folder under a local
// workspace is polled, the rest notified; a share under an ignored folder
// is left alone.
func TestAuto_RemoteMountUnder(t *testing.T) {
	e := newEnv(t)
	for _, d := range []string{"share/deep", ".git/nfs", "src"} {
		if err := os.MkdirAll(e.path(d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	e.onFileSystems("ext4", map[string]string{"share": "nfs4", "share/deep": "nfs4", ".git/nfs": "nfs", "src": "ext4"})
	var logs logBuffer
	w := e.start(watch.Options{PollInterval: time.Hour, Logger: logs.logger()})
	x, _ := w.Watching()
	if x.Kind != watch.Notify || !cmp.Equal(x.Polled, []string{"share"}) || x.Label() != "notify+poll" || !strings.Contains(x.Reason, "share is on nfs4") {
		t.Errorf("Watching() = %+v, want notify with share polled", x)
	}
	if got := logs.lines("watching"); len(got) != 1 || !strings.Contains(got[0], "watcher=notify+poll") || !strings.Contains(got[0], "polled=share") {
		t.Errorf("log lines about the watcher: %q, want one saying share is polled", got)
	}
	// Notified: no round needed.
	e.write("src/a.txt", "a")
	e.waitEvents("src/a.txt created", func(evs []events.Event) bool { return len(evs) == 1 && evs[0].Path == "src/a.txt" })
	// Polled: found by a round.
	e.write("share/deep/b.txt", "b")
	e.round()
	e.waitEvents("share/deep/b.txt created", func(evs []events.Event) bool { return len(evs) == 2 && evs[1].Path == "share/deep/b.txt" })
	e.checkIndex()
}

// TestNotify_Overrides: --watch notify watches a workspace on NFS with
// notifications all the same, shares under it too.
func TestNotify_Overrides(t *testing.T) {
	e := newEnv(t)
	if err := os.Mkdir(e.path("share"), 0o755); err != nil {
		t.Fatal(err)
	}
	e.onFileSystems("nfs4", map[string]string{"share": "cifs"})
	w := e.start(watch.Options{Watch: watch.Notify, PollInterval: time.Hour})
	if x, _ := w.Watching(); !cmp.Equal(x, watch.Watching{Kind: watch.Notify, Interval: time.Hour}) {
		t.Errorf("Watching() = %+v, want notify", x)
	}
	e.write("share/a.txt", "a")
	e.waitEvents("share/a.txt created", func(evs []events.Event) bool { return len(evs) == 1 && evs[0].Path == "share/a.txt" })
}

// TestParseKind reads the values of --watch.
func TestParseKind(t *testing.T) {
	for in, want := range map[string]watch.Kind{"": watch.Auto, "auto": watch.Auto, "Notify": watch.Notify, " poll ": watch.Poll} {
		if got, err := watch.ParseKind(in); err != nil || got != want {
			t.Errorf("ParseKind(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	if _, err := watch.ParseKind("fsevents"); err == nil || !strings.Contains(err.Error(), "want auto, notify or poll") {
		t.Errorf("ParseKind(fsevents) error = %v, want one naming the choices", err)
	}
}
