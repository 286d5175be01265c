package hub_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/filecast/filecast/events"
	"github.com/filecast/filecast/events/eventstest"
	"github.com/filecast/filecast/events/hub"
	"github.com/filecast/filecast/events/hub/hubtest"
	"github.com/filecast/filecast/events/natsd/natstest"
	"github.com/filecast/filecast/events/watch"
	"github.com/filecast/filecast/events/workspace"
)

// refusingLog is a memLog that refuses every append for want of room
// while refuse is set, though nothing told the hub beforehand: the log
// filled up between the hub's check and its append.
type refusingLog struct {
	*memLog
	refuse atomic.Bool
}

func (r *refusingLog) AppendStored(ctx context.Context, ev events.Event) (events.Event, bool, error) {
	if r.refuse.Load() {
		return events.Event{}, false, fmt.Errorf("append event: %w: the server refused to store it", events.ErrInsufficientStorage)
	}
	return r.memLog.AppendStored(ctx, ev)
}

// tempFiles lists the hub's temporary files under dir.
func tempFiles(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err == nil && hub.IsTempName(d.Name()) {
			out = append(out, p)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func stat(t *testing.T, p string) os.FileInfo {
	t.Helper()
	fi, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	return fi
}

// TestHub_WriteRefusedByTheLogIsUndone has the log refuse the event of a
// write that is already on disk: the file is put back as it was (the same
// file, content and mode), a new file is removed, a deleted one restored,
// and no temporary file is left.
func TestHub_WriteRefusedByTheLogIsUndone(t *testing.T) {
	dir := t.TempDir()
	ws := workspace.Workspace{Name: "docs", Dir: dir}
	log := &refusingLog{memLog: newMemLog()}
	h, err := hub.New(hub.Options{Workspaces: []workspace.Workspace{ws}, Log: log})
	if err != nil {
		t.Fatal(err)
	}
	runHub(t, h)
	ctx := context.Background()
	write := func(path, content string, del bool) error {
		_, err := h.WriteFile(ctx, events.WriteRequest{Workspace: "docs", Path: path, Content: []byte(content), Delete: del})
		return err
	}
	if err := write("a.txt", "one", false); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(filepath.Join(dir, "a.txt"), 0o600); err != nil {
		t.Fatal(err)
	}
	before := stat(t, filepath.Join(dir, "a.txt"))

	log.refuse.Store(true)
	for _, tc := range []struct {
		name, path, content string
		del                 bool
	}{
		{"replace", "a.txt", "two", false},
		{"create", "sub/new.txt", "new", false},
		{"delete", "a.txt", "", true},
	} {
		err := write(tc.path, tc.content, tc.del)
		if !errors.Is(err, events.ErrInsufficientStorage) {
			t.Errorf("%s: err = %v, want ErrInsufficientStorage", tc.name, err)
		}
	}
	got, err := os.ReadFile(filepath.Join(dir, "a.txt"))
	if err != nil || string(got) != "one" {
		t.Errorf("a.txt = %q, %v; want it put back to %q", got, err, "one")
	}
	if fi, err := os.Stat(filepath.Join(dir, "a.txt")); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("a.txt mode %v, %v; want 0600", fi.Mode(), err)
	}
	if !os.SameFile(stat(t, filepath.Join(dir, "a.txt")), before) {
		t.Errorf("a.txt is another file after the undo")
	}
	if _, err := os.Stat(filepath.Join(dir, "sub", "new.txt")); !os.IsNotExist(err) {
		t.Errorf("sub/new.txt: %v; want it removed again", err)
	}
	if left := tempFiles(t, dir); len(left) > 0 {
		t.Errorf("temporary files left: %v", left)
	}
	if head, _ := log.Head(ctx, "docs"); head != 1 {
		t.Errorf("log head %d, want 1 (only the first write)", head)
	}

	log.refuse.Store(false)
	if err := write("a.txt", "two", false); err != nil {
		t.Fatalf("write once the log has room: %v", err)
	}
	if left := tempFiles(t, dir); len(left) > 0 {
		t.Errorf("temporary files left after a write: %v", left)
	}
}

// TestHub_FullLog fills the embedded JetStream store to its limit: the hub
// keeps serving reads, listings, the log and the locks held, refuses
// writes and new locks with ErrInsufficientStorage before touching
// anything, holds the changes made on disk, and reports them once there
// is room again.
func TestHub_FullLog(t *testing.T) {
	st := hubtest.Start(t, hubtest.Options{MaxStore: 2 << 20, MinFree: -1})
	ctx := context.Background()
	if _, err := st.Hub.WriteFile(ctx, events.WriteRequest{Workspace: "docs", Path: "a.md", Content: []byte("before")}); err != nil {
		t.Fatal(err)
	}
	held := lockFor(t, st, "alice#1", "held.md", events.LockExclusive, time.Minute)

	// Something else fills the store.
	js, err := jetstream.New(st.NATS.Conn())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "FILLER", Subjects: []string{"filler"}}); err != nil {
		t.Fatal(err)
	}
	chunk := make([]byte, 64<<10)
	for i := 0; ; i++ {
		if _, err := js.Publish(ctx, "filler", chunk); err != nil {
			break
		}
		if i > 100 {
			t.Fatal("the store took 6 MiB with a 2 MiB limit")
		}
	}
	eventstest.Eventually(t, "the hub to see the log full", func() bool { return st.Hub.Room() != nil })
	if err := st.Hub.Room(); !errors.Is(err, events.ErrInsufficientStorage) {
		t.Fatalf("Room() = %v, want ErrInsufficientStorage", err)
	}

	_, err = st.Hub.WriteFile(ctx, events.WriteRequest{Workspace: "docs", Path: "a.md", Content: []byte("after")})
	if !errors.Is(err, events.ErrInsufficientStorage) {
		t.Errorf("WriteFile while full: %v, want ErrInsufficientStorage", err)
	}
	_, err = st.Hub.WriteFile(ctx, events.WriteRequest{Workspace: "docs", Path: "a.md", Delete: true})
	if !errors.Is(err, events.ErrInsufficientStorage) {
		t.Errorf("delete while full: %v, want ErrInsufficientStorage", err)
	}
	if got := readDisk(t, st, "a.md"); got != "before" {
		t.Errorf("a.md = %q after refused writes, want %q", got, "before")
	}
	if left := tempFiles(t, st.Dirs["docs"]); len(left) > 0 {
		t.Errorf("temporary files left: %v", left)
	}
	if _, err := st.Hub.Lock(ctx, events.LockRequest{Workspace: "docs", Path: "b.md", Holder: "bob#2"}); !errors.Is(err, events.ErrInsufficientStorage) {
		t.Errorf("Lock while full: %v, want ErrInsufficientStorage", err)
	}
	// The locks live in the same store, whose limit is reached: a refresh
	// cannot be stored either, and says why.
	if _, err := st.Hub.Lock(ctx, events.LockRequest{Workspace: "docs", Path: "held.md", Holder: "alice#1", Token: held.Token, TTL: time.Minute}); !errors.Is(err, events.ErrInsufficientStorage) {
		t.Errorf("refreshing a held lock while the store is at its limit: %v, want ErrInsufficientStorage", err)
	}
	if locks, err := st.Hub.Locks(ctx, "docs"); err != nil || len(locks) != 1 {
		t.Errorf("Locks while full = %v, %v; want the held one", locks, err)
	}
	if data, _, err := st.Hub.ReadFile(ctx, "docs", "a.md", events.Range{}); err != nil || string(data) != "before" {
		t.Errorf("ReadFile while full = %q, %v", data, err)
	}
	if l, err := st.Hub.Files(ctx, "docs", ""); err != nil || len(l.Files) != 1 {
		t.Errorf("Files while full = %+v, %v", l, err)
	}
	if page, err := st.Hub.Changes(ctx, "docs", 0, 100, 0); err != nil || len(page.Events) == 0 {
		t.Errorf("Changes while full = %+v, %v", page, err)
	}
	probs := st.Hub.Problems()
	if len(probs) != 1 || probs[0].Code != events.ProblemInsufficientStorage || !strings.Contains(probs[0].Message, "storage limit") {
		t.Errorf("Problems() = %+v, want the full log", probs)
	}

	// Changes on disk meanwhile are held, each path once.
	head := st.Head(t, "docs")
	for i := range 50 {
		writeDisk(t, st, "disk.md", fmt.Sprint("version ", i))
	}
	writeDisk(t, st, "other.md", "x")
	w := st.Watchers["docs"]
	eventstest.Eventually(t, "the changes to be held", func() bool { n, _ := w.HeldChanges(); return n == 2 })
	if got := st.Head(t, "docs"); got != head {
		t.Errorf("the log grew from %d to %d while full", head, got)
	}

	// Room again.
	if err := js.DeleteStream(ctx, "FILLER"); err != nil {
		t.Fatal(err)
	}
	first := st.Next(t, "docs", head)
	second := st.Next(t, "docs", first.Seq)
	got := map[string]events.Event{first.Path: first, second.Path: second}
	if e := got["disk.md"]; e.Type != events.FileCreated || e.SHA256 != sha("version 49") {
		t.Errorf("disk.md reported as %+v, want created with its last content", e)
	}
	if e := got["other.md"]; e.Type != events.FileCreated {
		t.Errorf("other.md reported as %+v, want created", e)
	}
	if len(st.Hub.Problems()) != 0 {
		t.Errorf("Problems() = %+v once the log has room", st.Hub.Problems())
	}
	if _, err := st.Hub.WriteFile(ctx, events.WriteRequest{Workspace: "docs", Path: "a.md", Content: []byte("after")}); err != nil {
		t.Errorf("WriteFile once the log has room: %v", err)
	}
}

// TestHub_FullLogHoldsLockEvents lets a lease run out while JetStream's
// storage limit is reached: its lock.expired cannot be appended then, and
// is held (not dropped) until the log has room; then it is appended, once,
// in order with the lock events held with it.
func TestHub_FullLogHoldsLockEvents(t *testing.T) {
	st := hubtest.Start(t, hubtest.Options{MaxStore: 2 << 20, MinFree: -1})
	ctx := context.Background()
	short := lockFor(t, st, "alice#1", "short.md", events.LockExclusive, time.Second)
	lockFor(t, st, "bob#2", "long.md", events.LockExclusive, time.Minute)
	head := st.Head(t, "docs")

	js, err := jetstream.New(st.NATS.Conn())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "FILLER", Subjects: []string{"filler"}}); err != nil {
		t.Fatal(err)
	}
	chunk := make([]byte, 64<<10)
	for i := 0; ; i++ {
		if _, err := js.Publish(ctx, "filler", chunk); err != nil {
			break
		}
		if i > 100 {
			t.Fatal("the store took 6 MiB with a 2 MiB limit")
		}
	}
	eventstest.Eventually(t, "the hub to see the log full", func() bool { return st.Hub.Room() != nil })
	eventstest.Eventually(t, "the expiry to be held", func() bool { return st.Locks.HeldEvents() > 0 })
	if got := st.Head(t, "docs"); got != head {
		t.Fatalf("the log grew from %d to %d while full", head, got)
	}

	if err := js.DeleteStream(ctx, "FILLER"); err != nil {
		t.Fatal(err)
	}
	expired := st.Next(t, "docs", head, events.LockExpired)
	if expired.Path != "short.md" || expired.Lock == nil || expired.Lock.FencingToken != short.FencingToken {
		t.Errorf("lock.expired = %+v, want the lease on short.md", expired)
	}
	eventstest.Eventually(t, "nothing to be held", func() bool { return st.Locks.HeldEvents() == 0 })
	page, err := st.Hub.Changes(ctx, "docs", head, 100, 0)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, ev := range page.Events {
		if ev.Type == events.LockExpired {
			n++
		}
		if ev.Path == "long.md" {
			t.Errorf("an event of the lock still held: %+v", ev)
		}
	}
	if n != 1 {
		t.Errorf("%d lock.expired events, want 1: %+v", n, page.Events)
	}
	if _, err := st.Hub.Lock(ctx, events.LockRequest{Workspace: "docs", Path: "new.md", Holder: "carol#3"}); err != nil {
		t.Errorf("Lock once the log has room: %v", err)
	}
}

// TestHub_LowDiskHoldsLockRelease leaves less than the reserve free on the
// disk of the store (a small tmpfs): the log refuses events, but the lock
// bucket still takes writes, so a lock is released; its lock.released is
// held and appended once space is freed.
func TestHub_LowDiskHoldsLockRelease(t *testing.T) {
	disk := natstest.SmallDisk(t, "32m")
	st := hubtest.Start(t, hubtest.Options{Data: disk, MinFree: 4 << 20})
	ctx := context.Background()
	l := lockFor(t, st, "alice#1", "a.md", events.LockExclusive, time.Minute)
	head := st.Head(t, "docs")

	spare := filepath.Join(disk, "spare")
	if err := os.WriteFile(spare, make([]byte, 1<<20), 0o600); err != nil {
		t.Fatal(err)
	}
	filler := natstest.Fill(t, disk)
	if err := os.Remove(spare); err != nil {
		t.Fatal(err)
	}
	eventstest.Eventually(t, "the hub to see the log full", func() bool { return st.Hub.Room() != nil })
	if err := st.Hub.Unlock(ctx, "docs", "a.md", l.Token); err != nil {
		t.Fatalf("Unlock with 1 MiB free: %v", err)
	}
	if n := st.Locks.HeldEvents(); n != 1 {
		t.Errorf("HeldEvents() = %d after the release, want 1", n)
	}
	if got := st.Head(t, "docs"); got != head {
		t.Errorf("the log grew from %d to %d while full", head, got)
	}

	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	released := st.Next(t, "docs", head, events.LockReleased)
	if released.Path != "a.md" || released.Lock == nil || released.Lock.FencingToken != l.FencingToken {
		t.Errorf("lock.released = %+v, want the lease on a.md", released)
	}
	eventstest.Eventually(t, "nothing to be held", func() bool { return st.Locks.HeldEvents() == 0 })
}

// TestHub_WorkspaceFolderMissing removes a workspace's folder: reads,
// writes, listings and new locks fail with ErrWorkspaceUnavailable while
// the log is still served, and all works again once the folder is back.
func TestHub_WorkspaceFolderMissing(t *testing.T) {
	st := hubtest.Start(t, hubtest.Options{})
	ctx := context.Background()
	writeDisk(t, st, "a.md", "a")
	st.Next(t, "docs", 0)
	dir := st.Dirs["docs"]
	away := dir + ".away"
	if err := os.Rename(dir, away); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.Rename(away, dir) })
	eventstest.Eventually(t, "the workspace to be unavailable", func() bool { return len(st.Hub.Problems()) == 1 })

	checks := map[string]error{}
	_, _, checks["ReadFile"] = st.Hub.ReadFile(ctx, "docs", "a.md", events.Range{})
	_, checks["WriteFile"] = st.Hub.WriteFile(ctx, events.WriteRequest{Workspace: "docs", Path: "a.md", Content: []byte("b")})
	_, checks["Files"] = st.Hub.Files(ctx, "docs", "")
	_, checks["Lock"] = st.Hub.Lock(ctx, events.LockRequest{Workspace: "docs", Path: "a.md", Holder: "x#1"})
	for name, err := range checks {
		if !errors.Is(err, events.ErrWorkspaceUnavailable) || !strings.Contains(err.Error(), `"docs"`) {
			t.Errorf("%s: %v, want ErrWorkspaceUnavailable naming docs", name, err)
		}
	}
	if _, err := st.Hub.Changes(ctx, "docs", 0, 10, 0); err != nil {
		t.Errorf("Changes while the folder is missing: %v", err)
	}
	p := st.Hub.Problems()[0]
	if p.Code != events.ProblemWorkspaceUnavailable || p.Workspace != "docs" || p.Since.IsZero() {
		t.Errorf("Problems()[0] = %+v", p)
	}
	if strings.Contains(p.Message, dir) {
		t.Errorf("the problem names the folder's path %s: %s", dir, p.Message)
	}

	if err := os.Rename(away, dir); err != nil {
		t.Fatal(err)
	}
	eventstest.Eventually(t, "the workspace to be back", func() bool { return len(st.Hub.Problems()) == 0 })
	if data, _, err := st.Hub.ReadFile(ctx, "docs", "a.md", events.Range{}); err != nil || string(data) != "a" {
		t.Errorf("ReadFile once back = %q, %v", data, err)
	}
	if _, err := st.Hub.WriteFile(ctx, events.WriteRequest{Workspace: "docs", Path: "a.md", Content: []byte("b")}); err != nil {
		t.Errorf("WriteFile once back: %v", err)
	}
}

// TestHub_WorkspaceFolderMissingWithoutIndex is the same for a hub that
// has no watcher of the workspace: it finds the folder missing itself.
func TestHub_WorkspaceFolderMissingWithoutIndex(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "docs")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	h, err := hub.New(hub.Options{Workspaces: []workspace.Workspace{{Name: "docs", Dir: dir}}, Log: newMemLog()})
	if err != nil {
		t.Fatal(err)
	}
	runHub(t, h)
	ctx := context.Background()
	if err := os.Remove(dir); err != nil {
		t.Fatal(err)
	}
	_, _, rerr := h.ReadFile(ctx, "docs", "a.md", events.Range{})
	_, werr := h.WriteFile(ctx, events.WriteRequest{Workspace: "docs", Path: "a.md", Content: []byte("b")})
	for name, err := range map[string]error{"ReadFile": rerr, "WriteFile": werr} {
		if !errors.Is(err, events.ErrWorkspaceUnavailable) {
			t.Errorf("%s: %v, want ErrWorkspaceUnavailable", name, err)
		}
	}
	if p := h.Problems(); len(p) != 1 || p[0].Workspace != "docs" {
		t.Errorf("Problems() = %+v", p)
	}
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if _, err := h.WriteFile(ctx, events.WriteRequest{Workspace: "docs", Path: "a.md", Content: []byte("b")}); err != nil {
		t.Errorf("WriteFile once back: %v", err)
	}
}

func sha(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

// gatedRefusal is a memLog that, while refuse is set, waits until the
// watcher has taken the written content into its index and then refuses
// the event: the log filled up while the write was being made.
type gatedRefusal struct {
	*memLog
	refuse atomic.Bool
	seen   func(ev events.Event) bool
}

func (g *gatedRefusal) AppendStored(ctx context.Context, ev events.Event) (events.Event, bool, error) {
	if g.refuse.Load() {
		eventstest.Poll(hubtest.Timeout, func() bool { return g.seen(ev) })
		return events.Event{}, false, fmt.Errorf("append event: %w: the server refused to store it", events.ErrInsufficientStorage)
	}
	return g.memLog.AppendStored(ctx, ev)
}

// TestHub_UndoneWriteNotReported has the log refuse a write's event after
// the watcher saw the new content: the file is put back, and the watcher
// reports neither the write nor its undoing.
func TestHub_UndoneWriteNotReported(t *testing.T) {
	dir, err := filepath.EvalSymlinks(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "a.txt"), []byte("old"), 0o644); err != nil {
		t.Fatal(err)
	}
	ws := workspace.Workspace{Name: "docs", Dir: dir}
	log := &gatedRefusal{memLog: newMemLog()}
	h, err := hub.New(hub.Options{Workspaces: []workspace.Workspace{ws}, Log: log})
	if err != nil {
		t.Fatal(err)
	}
	runHub(t, h)
	w, err := watch.New(watch.Options{Workspace: ws, IndexPath: filepath.Join(t.TempDir(), "index.json"), Settle: hubtest.Settle}, h)
	if err != nil {
		t.Fatal(err)
	}
	h.SetIndex("docs", w)
	log.seen = func(ev events.Event) bool {
		fi, ok := w.Stat(ev.Path)
		return ev.Type == events.FileDeleted && !ok || ok && fi.SHA256 == ev.SHA256
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	<-w.Ready()

	log.refuse.Store(true)
	for _, r := range []events.WriteRequest{
		{Workspace: "docs", Path: "a.txt", Content: []byte("new")},
		{Workspace: "docs", Path: "b.txt", Content: []byte("b")},
		{Workspace: "docs", Path: "a.txt", Delete: true},
	} {
		if _, err := h.WriteFile(ctx, r); !errors.Is(err, events.ErrInsufficientStorage) {
			t.Errorf("WriteFile %s: %v, want ErrInsufficientStorage", r.Path, err)
		}
	}
	log.refuse.Store(false)
	if fi, ok := w.Stat("a.txt"); !ok || fi.SHA256 != sha("old") {
		t.Errorf("a.txt in the index: %+v, %v; want the old content", fi, ok)
	}
	if _, ok := w.Stat("b.txt"); ok {
		t.Error("b.txt is in the index after its write was undone")
	}
	if err := os.WriteFile(filepath.Join(dir, "marker.txt"), []byte("m"), 0o644); err != nil {
		t.Fatal(err)
	}
	eventstest.Eventually(t, "the marker", func() bool { head, _ := log.Head(ctx, "docs"); return head >= 1 })
	evs, _ := log.Read(ctx, "docs", 0, 100)
	if len(evs) != 1 || evs[0].Path != "marker.txt" {
		t.Errorf("events %+v, want only the marker's", evs)
	}
}
