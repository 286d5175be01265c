package hub_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/filecast/filecast/events"
	"github.com/filecast/filecast/events/eventstest"
	"github.com/filecast/filecast/events/hub"
	"github.com/filecast/filecast/events/hub/hubtest"
	"github.com/filecast/filecast/events/lock"
)

var _ hub.LockManager = (*lock.Manager)(nil)

func lockFor(t *testing.T, st *hubtest.Stack, holder, path, mode string, ttl time.Duration) events.Lease {
	t.Helper()
	l, err := st.Hub.Lock(context.Background(), events.LockRequest{Workspace: "docs", Path: path, Holder: holder, Mode: mode, TTL: ttl})
	if err != nil {
		t.Fatalf("Lock(%s, %s): %v", holder, path, err)
	}
	return l
}

func writeDisk(t *testing.T, st *hubtest.Stack, rel, content string) {
	t.Helper()
	p := st.Path("docs", rel)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func readDisk(t *testing.T, st *hubtest.Stack, rel string) string {
	t.Helper()
	b, err := os.ReadFile(st.Path("docs", rel))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// ignoreVolatile leaves out what differs between runs.
var ignoreVolatile = cmpopts.IgnoreFields(events.Event{}, "ID", "Seq", "Time", "SHA256", "PrevSHA256")

func TestHub_FileEventsCarryLocks(t *testing.T) {
	t.Parallel()
	st := hubtest.Start(t, hubtest.Options{})
	writeDisk(t, st, "free.md", "0")
	free := st.Next(t, "docs", 0)

	alice := lockFor(t, st, "alice#1", "ex.md", events.LockExclusive, time.Minute)
	bob := lockFor(t, st, "bob#2", "sh.md", events.LockShared, time.Minute)
	if bob.FencingToken <= alice.FencingToken {
		t.Errorf("fencing tokens %d then %d: want increasing", alice.FencingToken, bob.FencingToken)
	}

	writeDisk(t, st, "ex.md", "by hand")
	ex := st.Next(t, "docs", free.Seq)
	writeDisk(t, st, "sh.md", "by hand")
	sh := st.Next(t, "docs", ex.Seq)
	writeDisk(t, st, "free.md", "1")
	fr := st.Next(t, "docs", sh.Seq)

	want := []events.Event{
		{Type: events.FileCreated, Workspace: "docs", Path: "ex.md", Size: 7, Actor: events.ActorFS,
			Lock: &events.LockInfo{Holder: "alice#1", FencingToken: alice.FencingToken, Mode: "exclusive"}, Conflict: true},
		{Type: events.FileCreated, Workspace: "docs", Path: "sh.md", Size: 7, Actor: events.ActorFS,
			Lock: &events.LockInfo{Holder: "bob#2", FencingToken: bob.FencingToken, Mode: "shared"}},
		{Type: events.FileUpdated, Workspace: "docs", Path: "free.md", Size: 1, Actor: events.ActorFS},
	}
	if diff := cmp.Diff(want, []events.Event{ex, sh, fr}, ignoreVolatile); diff != "" {
		t.Errorf("file events (-want +got):\n%s", diff)
	}

	// The lock changes themselves are events, and Locks lists them.
	acq := st.Next(t, "docs", 0, events.LockAcquired)
	if acq.Path != "ex.md" || acq.Lock == nil || acq.Lock.Holder != "alice#1" {
		t.Errorf("first lock.acquired = %+v", acq)
	}
	ls, err := st.Hub.Locks(context.Background(), "docs")
	if err != nil {
		t.Fatal(err)
	}
	wantLs := []events.Lease{
		{Workspace: "docs", Path: "ex.md", Holder: "alice#1", Mode: "exclusive", FencingToken: alice.FencingToken, ExpiresAt: alice.ExpiresAt},
		{Workspace: "docs", Path: "sh.md", Holder: "bob#2", Mode: "shared", FencingToken: bob.FencingToken, ExpiresAt: bob.ExpiresAt},
	}
	if diff := cmp.Diff(wantLs, ls, cmpopts.EquateApproxTime(time.Millisecond)); diff != "" {
		t.Errorf("Locks (-want +got):\n%s", diff)
	}
}

func TestHub_WriteFileByHolder(t *testing.T) {
	t.Parallel()
	st := hubtest.Start(t, hubtest.Options{})
	ctx := context.Background()
	writeDisk(t, st, "dir/a.md", "old")
	eventstest.Eventually(t, "the first version in the index", func() bool {
		fi, ok := st.Watchers["docs"].Stat("dir/a.md")
		return ok && fi.Size == 3
	})
	first := events.Event{Seq: st.Head(t, "docs")}

	l := lockFor(t, st, "alice#1", "dir/a.md", "", time.Minute)
	ev, err := st.Hub.WriteFile(ctx, events.WriteRequest{
		Workspace: "docs", Path: "dir/a.md", Content: []byte("new content"),
		LockToken: l.Token, FencingToken: l.FencingToken, Actor: "api:ci",
	})
	if err != nil {
		t.Fatalf("WriteFile: %v", err)
	}
	want := events.Event{Type: events.FileUpdated, Workspace: "docs", Path: "dir/a.md", Size: 11, Actor: "api:ci",
		Lock: &events.LockInfo{Holder: "alice#1", FencingToken: l.FencingToken, Mode: "exclusive"}}
	if diff := cmp.Diff(want, ev, ignoreVolatile); diff != "" {
		t.Errorf("event (-want +got):\n%s", diff)
	}
	if ev.Seq <= first.Seq || ev.SHA256 == "" {
		t.Errorf("event seq %d (after %d), sha %q", ev.Seq, first.Seq, ev.SHA256)
	}
	if got := readDisk(t, st, "dir/a.md"); got != "new content" {
		t.Errorf("on disk: %q", got)
	}

	// A new file in a new folder, without a lock token: allowed (nobody
	// holds it), created.
	ev2, err := st.Hub.WriteFile(ctx, events.WriteRequest{Workspace: "docs", Path: "new/sub/b.md", Content: []byte("b"), Actor: "api:ci"})
	if err != nil || ev2.Type != events.FileCreated || ev2.Lock != nil || ev2.Conflict {
		t.Fatalf("WriteFile(new) = %+v, %v", ev2, err)
	}

	// The watcher does not report either change again (before or after the
	// hub's events): the file events after the first are the two writes,
	// then the marker.
	writeDisk(t, st, "marker", "m")
	marker := st.Next(t, "docs", ev2.Seq)
	if got := fileEventsBetween(t, st, first.Seq, marker.Seq); !cmp.Equal(got, []uint64{ev.Seq, ev2.Seq, marker.Seq}) || marker.Path != "marker" {
		t.Fatalf("file events %v (last %s by %s), want the writes %d, %d and then the marker", got, marker.Path, marker.Actor, ev.Seq, ev2.Seq)
	}
	// And its index has the writes' versions.
	w := st.Watchers["docs"]
	eventstest.Eventually(t, "index versions", func() bool {
		a, _ := w.Stat("dir/a.md")
		b, _ := w.Stat("new/sub/b.md")
		return a.Version == ev.Seq && a.SHA256 == ev.SHA256 && b.Version == ev2.Seq
	})

	// Unchanged content: nothing written, no event.
	head := st.Head(t, "docs")
	same, err := st.Hub.WriteFile(ctx, events.WriteRequest{Workspace: "docs", Path: "dir/a.md", Content: []byte("new content"), LockToken: l.Token})
	if err != nil || same.Seq != 0 || same.Type != "" {
		t.Errorf("unchanged write = %+v, %v; want the zero event", same, err)
	}
	if h := st.Head(t, "docs"); h != head {
		t.Errorf("head moved from %d to %d on an unchanged write", head, h)
	}

	// Delete by the holder.
	del, err := st.Hub.WriteFile(ctx, events.WriteRequest{Workspace: "docs", Path: "dir/a.md", Delete: true, LockToken: l.Token, Actor: "api:ci"})
	if err != nil || del.Type != events.FileDeleted || del.Lock == nil || del.Conflict {
		t.Fatalf("delete = %+v, %v", del, err)
	}
	if _, err := os.Stat(st.Path("docs", "dir/a.md")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("file still there after delete: %v", err)
	}
	writeDisk(t, st, "marker", "m2")
	marker2 := st.Next(t, "docs", del.Seq)
	if got := fileEventsBetween(t, st, marker.Seq, marker2.Seq); !cmp.Equal(got, []uint64{del.Seq, marker2.Seq}) || marker2.Path != "marker" {
		t.Fatalf("file events %v, want the delete %d and then the marker", got, del.Seq)
	}
	_, err = st.Hub.WriteFile(ctx, events.WriteRequest{Workspace: "docs", Path: "dir/a.md", Delete: true, LockToken: l.Token})
	if !errors.Is(err, events.ErrNotFound) {
		t.Errorf("delete of a missing file: %v, want ErrNotFound", err)
	}
}

func TestHub_WriteFileRefused(t *testing.T) {
	t.Parallel()
	st := hubtest.Start(t, hubtest.Options{})
	ctx := context.Background()
	writeDisk(t, st, "a.md", "original")
	st.Next(t, "docs", 0)
	alice := lockFor(t, st, "alice#1", "a.md", "", time.Minute)
	bob := lockFor(t, st, "bob#2", "b.md", "", time.Minute)
	head := st.Head(t, "docs")

	write := func(token string, fencing uint64, del bool) error {
		_, err := st.Hub.WriteFile(ctx, events.WriteRequest{Workspace: "docs", Path: "a.md", Content: []byte("clobbered"),
			Delete: del, LockToken: token, FencingToken: fencing, Actor: "api:bob"})
		return err
	}
	for _, tc := range []struct {
		name    string
		token   string
		fencing uint64
		del     bool
		kind    error
	}{
		{"no token", "", 0, false, events.ErrLocked},
		{"another lock's token", bob.Token, 0, false, events.ErrLocked},
		{"delete without token", "", 0, true, events.ErrLocked},
		{"holder with a wrong fencing token", alice.Token, alice.FencingToken + 1, false, events.ErrStale},
	} {
		err := write(tc.token, tc.fencing, tc.del)
		if !errors.Is(err, tc.kind) {
			t.Errorf("%s: %v, want %v", tc.name, err, tc.kind)
			continue
		}
		le, ok := errors.AsType[*events.LockError](err)
		if !ok || le.Path != "a.md" {
			t.Errorf("%s: %v is not a *LockError on a.md", tc.name, err)
		} else if tc.kind == events.ErrLocked && (le.Holder != "alice#1" || !le.ExpiresAt.Equal(alice.ExpiresAt)) {
			t.Errorf("%s: LockError %+v does not name alice and her expiry %v", tc.name, le, alice.ExpiresAt)
		}
	}
	if got := readDisk(t, st, "a.md"); got != "original" {
		t.Errorf("refused writes changed the file: %q", got)
	}
	if h := st.Head(t, "docs"); h != head {
		t.Errorf("refused writes appended events: head %d → %d", head, h)
	}

	// After release, the old token is stale; anyone else may write.
	if err := st.Hub.Unlock(ctx, "docs", "a.md", alice.Token); err != nil {
		t.Fatal(err)
	}
	if err := write(alice.Token, 0, false); !errors.Is(err, events.ErrStale) {
		t.Errorf("write with a released token: %v, want ErrStale", err)
	}
	if err := write("", 0, false); err != nil {
		t.Errorf("write after release: %v", err)
	}

	// A lease that ran out is stale too.
	short := lockFor(t, st, "carol#3", "c.md", "", time.Second)
	if ev := st.Next(t, "docs", head, events.LockExpired); ev.Path != "c.md" {
		t.Fatalf("lock.expired of %s, want c.md", ev.Path)
	}
	_, err := st.Hub.WriteFile(ctx, events.WriteRequest{Workspace: "docs", Path: "c.md", Content: []byte("late"), LockToken: short.Token})
	if !errors.Is(err, events.ErrStale) {
		t.Errorf("write with an expired lease: %v, want ErrStale", err)
	}
}

func TestHub_WriteFileBadPaths(t *testing.T) {
	t.Parallel()
	outside := t.TempDir()
	st := hubtest.Start(t, hubtest.Options{})
	ctx := context.Background()
	if err := os.WriteFile(filepath.Join(outside, "secret"), []byte("s"), 0o644); err != nil {
		t.Fatal(err)
	}
	must(t, os.Symlink(outside, st.Path("docs", "out")))
	must(t, os.Symlink(filepath.Join(outside, "secret"), st.Path("docs", "secret-link")))
	must(t, os.Mkdir(st.Path("docs", "folder"), 0o755))
	must(t, os.Mkdir(st.Path("docs", "real"), 0o755))
	must(t, os.Symlink("real", st.Path("docs", "inside-link")))
	writeDisk(t, st, "file", "f")

	for _, tc := range []struct {
		path string
		del  bool
		kind error
	}{
		{"out/new.txt", false, events.ErrBadPath},
		{"out/secret", true, events.ErrBadPath},
		{"secret-link", false, events.ErrBadPath},
		{"inside-link/x.txt", false, events.ErrBadPath},
		{"folder", false, events.ErrBadPath},
		{"folder", true, events.ErrBadPath},
		{"file/below", false, events.ErrBadPath},
		{"../escape.txt", false, events.ErrBadPath},
		{"/etc/passwd", false, events.ErrBadPath},
	} {
		_, err := st.Hub.WriteFile(ctx, events.WriteRequest{Workspace: "docs", Path: tc.path, Content: []byte("x"), Delete: tc.del})
		if !errors.Is(err, tc.kind) {
			t.Errorf("WriteFile(%q, delete=%v) = %v, want %v", tc.path, tc.del, err, tc.kind)
		}
	}
	entries, _ := os.ReadDir(outside)
	if len(entries) != 1 {
		t.Errorf("the folder outside now holds %d entries, want only the secret", len(entries))
	}
	if b, _ := os.ReadFile(filepath.Join(outside, "secret")); string(b) != "s" {
		t.Errorf("the secret outside was changed: %q", b)
	}
	big := make([]byte, events.MaxReadSize+1)
	if _, err := st.Hub.WriteFile(ctx, events.WriteRequest{Workspace: "docs", Path: "big", Content: big}); !errors.Is(err, events.ErrTooLarge) {
		t.Errorf("too large: %v", err)
	}
	if _, err := st.Hub.WriteFile(ctx, events.WriteRequest{Workspace: "nope", Path: "a", Content: big[:1]}); !errors.Is(err, events.ErrUnknownWorkspace) {
		t.Errorf("unknown workspace: %v", err)
	}
	// No temporary file is left behind, and none was reported.
	leftovers, _ := filepath.Glob(st.Path("docs", ".*.tmp"))
	if len(leftovers) != 0 {
		t.Errorf("temporary files left: %v", leftovers)
	}
}

// TestHub_SharedLocksRefuseWrites checks that a shared lock is a read
// lock: while one is held nobody writes or deletes the file through the
// hub, its holders included.
func TestHub_SharedLocksRefuseWrites(t *testing.T) {
	t.Parallel()
	st := hubtest.Start(t, hubtest.Options{})
	ctx := context.Background()
	writeDisk(t, st, "s.md", "original")
	st.Next(t, "docs", 0)
	a := lockFor(t, st, "alice#1", "s.md", events.LockShared, time.Minute)
	b := lockFor(t, st, "bob#2", "s.md", events.LockShared, 2*time.Minute)
	for _, tc := range []struct {
		name  string
		token string
		del   bool
	}{
		{"no token", "", false},
		{"a holder's token", a.Token, false},
		{"the other holder's token", b.Token, false},
		{"delete by a holder", a.Token, true},
	} {
		_, err := st.Hub.WriteFile(ctx, events.WriteRequest{Workspace: "docs", Path: "s.md", Content: []byte("changed"),
			Delete: tc.del, LockToken: tc.token, Actor: "api:x"})
		le, ok := errors.AsType[*events.LockError](err)
		if !errors.Is(err, events.ErrLocked) || !ok {
			t.Errorf("%s: %v, want ErrLocked", tc.name, err)
			continue
		}
		if le.Mode != "shared" || le.Holder != "alice#1, bob#2" || !le.ExpiresAt.Equal(b.ExpiresAt) {
			t.Errorf("%s: LockError %+v, want both holders, mode shared and the later expiry %v", tc.name, le, b.ExpiresAt)
		}
	}
	if got := readDisk(t, st, "s.md"); got != "original" {
		t.Errorf("the file changed under shared locks: %q", got)
	}
	// Once they are released, a writer takes the exclusive lock and writes.
	must(t, st.Hub.Unlock(ctx, "docs", "s.md", a.Token))
	must(t, st.Hub.Unlock(ctx, "docs", "s.md", b.Token))
	w := lockFor(t, st, "carol#3", "s.md", events.LockExclusive, time.Minute)
	if _, err := st.Hub.WriteFile(ctx, events.WriteRequest{Workspace: "docs", Path: "s.md", Content: []byte("new"), LockToken: w.Token}); err != nil {
		t.Errorf("write under the exclusive lock: %v", err)
	}
}

// TestHub_LockThroughEscapingSymlink checks that a lock is refused where a
// write would be because the path leaves the workspace through a symbolic
// link, and granted on a path that does not exist yet or whose link stays
// inside.
func TestHub_LockThroughEscapingSymlink(t *testing.T) {
	t.Parallel()
	outside := t.TempDir()
	st := hubtest.Start(t, hubtest.Options{})
	ctx := context.Background()
	must(t, os.WriteFile(filepath.Join(outside, "secret"), []byte("s"), 0o644))
	must(t, os.Symlink(outside, st.Path("docs", "out")))
	must(t, os.Symlink(filepath.Join(outside, "secret"), st.Path("docs", "secret-link")))
	must(t, os.Symlink("../../../../../../../../../../etc", st.Path("docs", "up")))
	must(t, os.Mkdir(st.Path("docs", "real"), 0o755))
	must(t, os.Symlink("real", st.Path("docs", "inside-link")))
	for _, p := range []string{"out/new.txt", "out/secret", "secret-link", "up/passwd"} {
		_, err := st.Hub.Lock(ctx, events.LockRequest{Workspace: "docs", Path: p, Holder: "alice#1"})
		if !errors.Is(err, events.ErrBadPath) || !strings.Contains(err.Error(), "outside the workspace") {
			t.Errorf("Lock(%q) = %v, want ErrBadPath saying it leads outside the workspace", p, err)
		}
	}
	for _, p := range []string{"not/yet/there.md", "inside-link/x.txt", "real/y.txt"} {
		if _, err := st.Hub.Lock(ctx, events.LockRequest{Workspace: "docs", Path: p, Holder: "alice#1"}); err != nil {
			t.Errorf("Lock(%q) = %v, want granted", p, err)
		}
	}
}

func TestHub_LockErrors(t *testing.T) {
	t.Parallel()
	st := hubtest.Start(t, hubtest.Options{})
	ctx := context.Background()
	alice := lockFor(t, st, "alice#1", "a.md", "", time.Minute)

	_, err := st.Hub.Lock(ctx, events.LockRequest{Workspace: "docs", Path: "a.md", Holder: "bob#2"})
	le, ok := errors.AsType[*events.LockError](err)
	if !errors.Is(err, events.ErrLockConflict) || !ok || le.Holder != "alice#1" || !le.ExpiresAt.Equal(alice.ExpiresAt) || le.Mode != "exclusive" {
		t.Errorf("conflicting Lock = %v (%+v), want a LockError naming alice", err, le)
	}
	if err := st.Hub.Unlock(ctx, "docs", "a.md", "lk_wrongwrongwrongwrongwron"); !errors.Is(err, events.ErrNotHolder) {
		t.Errorf("Unlock with a wrong token = %v, want ErrNotHolder", err)
	}
	// Refresh keeps the fencing token and moves the expiry.
	r, err := st.Hub.Lock(ctx, events.LockRequest{Workspace: "docs", Token: alice.Token, TTL: 2 * time.Minute})
	if err != nil || r.FencingToken != alice.FencingToken || !r.ExpiresAt.After(alice.ExpiresAt) {
		t.Errorf("refresh = %+v, %v", r, err)
	}
	if _, err := st.Hub.Lock(ctx, events.LockRequest{Workspace: "docs", Token: "lk_nothing", TTL: time.Minute}); !errors.Is(err, events.ErrNotHolder) {
		t.Errorf("refresh with a wrong token = %v, want ErrNotHolder", err)
	}
	if _, err := st.Hub.Lock(ctx, events.LockRequest{Workspace: "nope", Path: "a", Holder: "x"}); !errors.Is(err, events.ErrUnknownWorkspace) {
		t.Errorf("Lock in an unknown workspace = %v", err)
	}
	if err := st.Hub.Unlock(ctx, "docs", "", alice.Token); err != nil {
		t.Errorf("Unlock by token alone: %v", err)
	}
	rel := st.Next(t, "docs", 0, events.LockReleased)
	if rel.Path != "a.md" || rel.Lock == nil || rel.Lock.FencingToken != alice.FencingToken {
		t.Errorf("lock.released = %+v", rel)
	}
}

func TestHub_NoLockManager(t *testing.T) {
	t.Parallel()
	st := hubtest.Start(t, hubtest.Options{NoLock: true})
	ctx := context.Background()
	if _, err := st.Hub.Lock(ctx, events.LockRequest{Workspace: "docs", Path: "a", Holder: "x"}); !errors.Is(err, hub.ErrNoLocks) || !errors.Is(err, events.ErrClosed) {
		t.Errorf("Lock without a manager = %v, want ErrNoLocks", err)
	}
	if _, err := st.Hub.Locks(ctx, "docs"); !errors.Is(err, hub.ErrNoLocks) {
		t.Errorf("Locks without a manager = %v", err)
	}
	ev, err := st.Hub.WriteFile(ctx, events.WriteRequest{Workspace: "docs", Path: "a", Content: []byte("x")})
	if err != nil || ev.Seq == 0 || ev.Actor != "api" {
		t.Errorf("WriteFile without a manager = %+v, %v", ev, err)
	}
	if _, err := st.Hub.WriteFile(ctx, events.WriteRequest{Workspace: "docs", Path: "a", Content: []byte("y"), LockToken: "lk_x"}); !errors.Is(err, events.ErrStale) {
		t.Errorf("WriteFile with a token and no manager = %v, want ErrStale", err)
	}
}

// TestHub_FencingAcrossRestart closes the whole stack and opens it again on
// the same data folder: fencing tokens keep growing, and the lock the first
// run held is still there.
func TestHub_FencingAcrossRestart(t *testing.T) {
	t.Parallel()
	data, dir := t.TempDir(), t.TempDir()
	opts := hubtest.Options{Data: data, Dirs: []string{dir}}
	st := hubtest.Start(t, opts)
	a := lockFor(t, st, "alice#1", "a.md", "", time.Minute)
	must(t, st.Hub.Unlock(context.Background(), "docs", "a.md", a.Token))
	b := lockFor(t, st, "bob#2", "b.md", "", time.Minute)
	st.Stop()

	st = hubtest.Start(t, opts)
	c := lockFor(t, st, "carol#3", "a.md", "", time.Minute)
	if c.FencingToken <= b.FencingToken || b.FencingToken <= a.FencingToken {
		t.Errorf("fencing tokens %d, %d, then after the restart %d: want increasing", a.FencingToken, b.FencingToken, c.FencingToken)
	}
	_, err := st.Hub.WriteFile(context.Background(), events.WriteRequest{Workspace: "docs", Path: "b.md", Content: []byte("x")})
	if !errors.Is(err, events.ErrLocked) {
		t.Errorf("write to a path locked before the restart = %v, want ErrLocked", err)
	}
	if _, err := st.Hub.WriteFile(context.Background(), events.WriteRequest{Workspace: "docs", Path: "b.md", Content: []byte("x"), LockToken: b.Token, FencingToken: b.FencingToken}); err != nil {
		t.Errorf("write by the holder after the restart = %v", err)
	}
}

// fileEventsBetween returns the seqs of the file events after from up to
// and including to.
func fileEventsBetween(t *testing.T, st *hubtest.Stack, from, to uint64) []uint64 {
	t.Helper()
	page, err := st.Hub.Changes(context.Background(), "docs", from, 1000, 0)
	if err != nil {
		t.Fatal(err)
	}
	var out []uint64
	for _, ev := range page.Events {
		if ev.Seq <= to && ev.Type.IsFile() {
			out = append(out, ev.Seq)
		}
	}
	return out
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// TestHub_WriteFileThenDiskChange: a change made on disk right after a
// write through the hub, before the watcher looked, is reported relative
// to the hub's change, once.
func TestHub_WriteFileThenDiskChange(t *testing.T) {
	t.Parallel()
	st := hubtest.Start(t, hubtest.Options{})
	ctx := context.Background()
	a, err := st.Hub.WriteFile(ctx, events.WriteRequest{Workspace: "docs", Path: "a.md", Content: []byte("by the hub")})
	must(t, err)
	f, err := os.OpenFile(st.Path("docs", "a.md"), os.O_APPEND|os.O_WRONLY, 0)
	must(t, err)
	_, err = f.WriteString(" and by hand")
	must(t, err)
	must(t, f.Close())
	b, err := st.Hub.WriteFile(ctx, events.WriteRequest{Workspace: "docs", Path: "b.md", Content: []byte("b")})
	must(t, err)
	must(t, os.Remove(st.Path("docs", "b.md")))

	upd := st.Next(t, "docs", a.Seq)
	for upd.Path != "a.md" {
		upd = st.Next(t, "docs", upd.Seq)
	}
	del := st.Next(t, "docs", b.Seq)
	for del.Path != "b.md" {
		del = st.Next(t, "docs", del.Seq)
	}
	if upd.Type != events.FileUpdated || upd.Actor != events.ActorFS || upd.Size != int64(len("by the hub and by hand")) {
		t.Errorf("after the hub's create, the edit on disk is %+v, want file.updated by fs", upd)
	}
	if del.Type != events.FileDeleted || del.Actor != events.ActorFS {
		t.Errorf("after the hub's create, the delete on disk is %+v, want file.deleted by fs", del)
	}
	writeDisk(t, st, "marker", "m")
	marker := st.Next(t, "docs", max(upd.Seq, del.Seq))
	for marker.Path != "marker" {
		marker = st.Next(t, "docs", marker.Seq)
	}
	if got := fileEventsBetween(t, st, 0, marker.Seq); len(got) != 5 {
		t.Errorf("file events %v, want 5: two writes, the edit, the delete and the marker", got)
	}
}
