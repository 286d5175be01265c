package lock_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/sourcegraph/conc"

	"github.com/filecast/filecast/events"
	"github.com/filecast/filecast/events/eventstest"
	"github.com/filecast/filecast/events/lock"
	"github.com/filecast/filecast/events/natsd"
	"github.com/filecast/filecast/events/natsd/natstest"
)

func TestManager_AcquireConflict(t *testing.T) {
	t.Parallel()
	m, rec, _ := setup(t, lock.Options{})
	ctx := context.Background()

	before := time.Now()
	a := acquire(t, m, req("alice#1", "reports/q3.md", "", 30*time.Second))
	after := time.Now()
	if !strings.HasPrefix(a.Token, "lk_") || len(a.Token) < 3+22 {
		t.Errorf("token %q: want lk_ and at least 22 characters", a.Token)
	}
	if a.Mode != events.LockExclusive || a.Holder != "alice#1" || a.Path != "reports/q3.md" || a.FencingToken == 0 {
		t.Errorf("lease = %+v", a)
	}
	if a.ExpiresAt.Before(before.Add(30*time.Second)) || a.ExpiresAt.After(after.Add(30*time.Second)) {
		t.Errorf("expires at %v, want 30s after the call (%v to %v)", a.ExpiresAt, before, after)
	}

	_, err := m.Acquire(ctx, req("bob#2", "reports/q3.md", "", 30*time.Second))
	var ce *events.LockError
	if !errors.As(err, &ce) || !errors.Is(err, lock.ErrConflict) || !errors.Is(err, events.ErrLockConflict) {
		t.Fatalf("second Acquire error = %v, want *events.LockError wrapping ErrConflict", err)
	}
	want := &events.LockError{Kind: events.ErrLockConflict, Path: "reports/q3.md", Holder: "alice#1", Mode: events.LockExclusive, ExpiresAt: a.ExpiresAt}
	if diff := cmp.Diff(want, ce, cmpopts.EquateApproxTime(0), cmpopts.IgnoreFields(events.LockError{}, "Kind", "Why")); diff != "" || ce.Kind != events.ErrLockConflict {
		t.Errorf("conflict (-want +got):\n%s", diff)
	}
	for _, s := range []string{"alice#1", a.ExpiresAt.UTC().Format(time.RFC3339), "reports/q3.md", "exclusive", "that is in", "wait_ms"} {
		if !strings.Contains(err.Error(), s) {
			t.Errorf("message %q does not name %q", err, s)
		}
	}

	ev, _ := rec.waitEvent(t, events.LockAcquired, "reports/q3.md", waitFor)
	wantEv := events.Event{
		Type: events.LockAcquired, Workspace: "docs", Path: "reports/q3.md", Actor: "alice#1",
		Lock:      &events.LockInfo{Holder: "alice#1", FencingToken: a.FencingToken, Mode: "exclusive"},
		ExpiresAt: a.ExpiresAt,
	}
	if diff := cmp.Diff(wantEv, ev, cmpopts.IgnoreFields(events.Event{}, "ID", "Seq", "Time")); diff != "" {
		t.Errorf("lock.acquired event (-want +got):\n%s", diff)
	}
	if ev.ID == "" || ev.Time.IsZero() {
		t.Errorf("event lacks ID or time: %+v", ev)
	}
}

func TestManager_AcquireNonexistentPathAndClean(t *testing.T) {
	t.Parallel()
	m, _, _ := setup(t, lock.Options{})
	before := time.Now()
	l := acquire(t, m, req("a", "./new/dir/../file that does not exist.txt", "", 0))
	after := time.Now()
	if l.Path != "new/file that does not exist.txt" {
		t.Errorf("path = %q, want the clean path", l.Path)
	}
	if l.ExpiresAt.Before(before.Add(lock.DefaultTTL)) || l.ExpiresAt.After(after.Add(lock.DefaultTTL)) {
		t.Errorf("default TTL: expires at %v, want %v after the call", l.ExpiresAt, lock.DefaultTTL)
	}
	// The same file named differently conflicts.
	_, err := m.Acquire(context.Background(), req("b", "new/file that does not exist.txt", "", 0))
	if !errors.Is(err, lock.ErrConflict) {
		t.Errorf("Acquire of the clean name = %v, want ErrConflict", err)
	}
}

func TestManager_Refresh(t *testing.T) {
	t.Parallel()
	m, rec, _ := setup(t, lock.Options{})
	ctx := context.Background()
	a := acquire(t, m, req("a", "f.go", "", 2*time.Second))

	r := events.LockRequest{Workspace: "docs", Path: "f.go", Token: a.Token, TTL: 20 * time.Second}
	b := acquire(t, m, r)
	if !b.ExpiresAt.After(a.ExpiresAt.Add(15 * time.Second)) {
		t.Errorf("refresh expires at %v, not later than %v + 15s", b.ExpiresAt, a.ExpiresAt)
	}
	// A refresh keeps the fencing token.
	if b.FencingToken != a.FencingToken || b.Token != a.Token || b.Holder != "a" || b.Mode != events.LockExclusive {
		t.Errorf("refreshed lease = %+v, want same fencing token %d, token, holder and mode", b, a.FencingToken)
	}
	// A refresh by token alone finds the lease.
	c := acquire(t, m, events.LockRequest{Workspace: "docs", Token: a.Token, TTL: 30 * time.Second})
	if c.Path != "f.go" || c.FencingToken != a.FencingToken || !c.ExpiresAt.After(b.ExpiresAt) {
		t.Errorf("refresh by token = %+v", c)
	}
	_, err := m.Acquire(ctx, req("b", "f.go", "", time.Second))
	var ce *events.LockError
	if !errors.As(err, &ce) || !ce.ExpiresAt.Equal(c.ExpiresAt) {
		t.Errorf("conflict after refresh = %v, want expiry %v", err, c.ExpiresAt)
	}

	if _, err := m.Acquire(ctx, events.LockRequest{Workspace: "docs", Path: "f.go", Token: a.Token, Mode: events.LockShared}); !errors.Is(err, lock.ErrBadRequest) {
		t.Errorf("refresh changing mode = %v, want ErrBadRequest", err)
	}
	if _, err := m.Acquire(ctx, events.LockRequest{Workspace: "docs", Path: "f.go", Token: "lk_wrong"}); !errors.Is(err, lock.ErrNotHolder) {
		t.Errorf("refresh with a wrong token = %v, want ErrNotHolder", err)
	}
	if n := rec.count(events.LockAcquired, "f.go"); n != 3 {
		t.Errorf("lock.acquired events = %d, want 3 (acquire and two refreshes)", n)
	}

	// After release, the next holder gets a larger fencing token.
	if err := m.Release(ctx, "docs", "f.go", a.Token); err != nil {
		t.Fatal(err)
	}
	d := acquire(t, m, req("b", "f.go", "", time.Minute))
	if d.FencingToken <= c.FencingToken {
		t.Errorf("fencing after refresh and release = %d, want > %d", d.FencingToken, c.FencingToken)
	}
}

func TestManager_Release(t *testing.T) {
	t.Parallel()
	m, rec, _ := setup(t, lock.Options{})
	ctx := context.Background()
	a := acquire(t, m, req("a", "doc.md", "", time.Minute))

	for _, tok := range []string{"", "nope", "lk_AAAAAAAAAAAAAAAAAAAAAAAA"} {
		err := m.Release(ctx, "docs", "doc.md", tok)
		if !errors.Is(err, lock.ErrNotHolder) {
			t.Errorf("Release(token %q) = %v, want ErrNotHolder", tok, err)
		} else if !strings.Contains(err.Error(), "lock_token") {
			t.Errorf("message %q does not say what is wrong", err)
		}
	}
	if err := m.Release(ctx, "docs", "doc.md", a.Token); err != nil {
		t.Fatalf("Release: %v", err)
	}
	ev, _ := rec.waitEvent(t, events.LockReleased, "doc.md", waitFor)
	if ev.Lock == nil || ev.Lock.FencingToken != a.FencingToken || ev.Actor != "a" {
		t.Errorf("lock.released = %+v", ev)
	}
	if err := m.Release(ctx, "docs", "doc.md", a.Token); !errors.Is(err, lock.ErrNotHolder) {
		t.Errorf("second Release = %v, want ErrNotHolder", err)
	}
	if hs := m.Holders("docs", "doc.md"); len(hs) != 0 {
		t.Errorf("Holders after release = %+v", hs)
	}
	b := acquire(t, m, req("b", "doc.md", "", time.Minute))
	if b.FencingToken <= a.FencingToken {
		t.Errorf("next fencing token %d, want > %d", b.FencingToken, a.FencingToken)
	}
	// Release by token alone (the mirror finds the path).
	if err := m.Release(ctx, "docs", "", b.Token); err != nil {
		t.Errorf("Release by token: %v", err)
	}
}

func TestManager_Modes(t *testing.T) {
	t.Parallel()
	m, _, _ := setup(t, lock.Options{})
	tests := []struct {
		first, second string
		conflict      bool
	}{
		{events.LockShared, events.LockShared, false},
		{events.LockShared, events.LockExclusive, true},
		{events.LockExclusive, events.LockShared, true},
		{events.LockExclusive, events.LockExclusive, true},
	}
	for _, tt := range tests {
		t.Run(tt.first+"+"+tt.second, func(t *testing.T) {
			path := "modes/" + tt.first + "-" + tt.second
			a := acquire(t, m, req("a", path, tt.first, time.Minute))
			b, err := m.Acquire(context.Background(), req("b", path, tt.second, time.Minute))
			if tt.conflict {
				var ce *events.LockError
				if !errors.As(err, &ce) || ce.Holder != "a" || ce.Mode != tt.first {
					t.Fatalf("Acquire = %v, want conflict with a (%s)", err, tt.first)
				}
				return
			}
			if err != nil {
				t.Fatalf("Acquire: %v", err)
			}
			if b.FencingToken <= a.FencingToken || b.Mode != events.LockShared {
				t.Errorf("second shared lease = %+v, first fencing %d", b, a.FencingToken)
			}
			hs := m.Holders("docs", path)
			if len(hs) != 2 || hs[0].Holder != "a" || hs[1].Holder != "b" || hs[0].Token != "" {
				t.Errorf("Holders = %+v", hs)
			}
			// An exclusive request names both shared holders.
			_, err = m.Acquire(context.Background(), req("c", path, events.LockExclusive, time.Minute))
			var ce *events.LockError
			if !errors.As(err, &ce) || ce.Holder != "a, b" || !ce.ExpiresAt.Equal(b.ExpiresAt) {
				t.Errorf("exclusive over two shared = %v", err)
			}
			// Releasing one shared holder keeps the other.
			if err := m.Release(context.Background(), "docs", path, a.Token); err != nil {
				t.Fatal(err)
			}
			if hs := m.Holders("docs", path); len(hs) != 1 || hs[0].Holder != "b" || hs[0].FencingToken != b.FencingToken {
				t.Errorf("Holders after releasing a = %+v", hs)
			}
		})
	}
}

// TestManager_WaitForRelease: a request that waits gets the lock when its
// holder releases it, long before its wait or the holder's lease would end.
func TestManager_WaitForRelease(t *testing.T) {
	t.Parallel()
	m, _, srv := setup(t, lock.Options{})
	a := acquire(t, m, req("a", "w.txt", "", lock.MaxTTL))
	idle := watchers(t, srv)

	var wg conc.WaitGroup
	var b events.Lease
	var err error
	r := req("b", "w.txt", "", time.Minute)
	r.Wait = 20 * time.Second
	wg.Go(func() { b, err = m.Acquire(context.Background(), r) })
	eventstest.Eventually(t, "b to wait, watching the lock", func() bool { return watchers(t, srv) > idle })
	if err := m.Release(context.Background(), "docs", "w.txt", a.Token); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	if err != nil {
		t.Fatalf("waiting Acquire: %v", err)
	}
	if b.FencingToken <= a.FencingToken || b.Holder != "b" {
		t.Errorf("waiter's lease = %+v", b)
	}
}

func TestManager_WaitForExpiry(t *testing.T) {
	t.Parallel()
	m, _, _ := setup(t, lock.Options{})
	a := acquire(t, m, req("a", "w.txt", "", time.Second))
	r := req("b", "w.txt", events.LockShared, time.Minute)
	r.Wait = 10 * time.Second
	b := acquire(t, m, r)
	if now := time.Now(); now.Before(a.ExpiresAt) {
		t.Errorf("waiter got the lock %v before a's lease ran out", a.ExpiresAt.Sub(now))
	}
	if b.FencingToken <= a.FencingToken {
		t.Errorf("fencing %d, want > %d", b.FencingToken, a.FencingToken)
	}

	// A wait that runs out is a conflict, after the wait.
	r = req("c", "w.txt", events.LockExclusive, time.Minute)
	r.Wait = 300 * time.Millisecond
	start := time.Now()
	_, err := m.Acquire(context.Background(), r)
	if !errors.Is(err, lock.ErrConflict) {
		t.Errorf("Acquire after wait = %v, want ErrConflict", err)
	}
	if d := time.Since(start); d < r.Wait {
		t.Errorf("the conflict came after %v, before the wait of %v ran out", d, r.Wait)
	}
}

func TestManager_ExpiryEvents(t *testing.T) {
	t.Parallel()
	m, rec, _ := setup(t, lock.Options{})
	a := acquire(t, m, req("a", "e.md", "", time.Second))

	expiring, _ := rec.waitEvent(t, events.LockExpiring, "e.md", waitFor)
	if !expiring.Time.Before(a.ExpiresAt) {
		t.Errorf("lock.expiring at %v, not before expiry %v", expiring.Time, a.ExpiresAt)
	}
	expired, seen := rec.waitEvent(t, events.LockExpired, "e.md", waitFor)
	if seen.Before(a.ExpiresAt) {
		t.Errorf("lock.expired seen %v before the lease ran out", a.ExpiresAt.Sub(seen))
	}
	want := events.Event{
		Type: events.LockExpired, Workspace: "docs", Path: "e.md", Actor: "a",
		Lock: &events.LockInfo{Holder: "a", FencingToken: a.FencingToken, Mode: "exclusive"}, ExpiresAt: a.ExpiresAt,
	}
	if diff := cmp.Diff(want, expired, cmpopts.IgnoreFields(events.Event{}, "ID", "Seq", "Time")); diff != "" {
		t.Errorf("lock.expired (-want +got):\n%s", diff)
	}
	if hs := m.Holders("docs", "e.md"); len(hs) != 0 {
		t.Errorf("Holders after expiry = %+v", hs)
	}
	ls, err := m.List(context.Background(), "docs")
	if err != nil || len(ls) != 0 {
		t.Errorf("List after expiry = %+v, %v", ls, err)
	}
}

func TestManager_SharedHolderExpiry(t *testing.T) {
	t.Parallel()
	m, rec, _ := setup(t, lock.Options{})
	a := acquire(t, m, req("a", "s.md", events.LockShared, time.Second))
	b := acquire(t, m, req("b", "s.md", events.LockShared, 30*time.Second))

	ev, seen := rec.waitEvent(t, events.LockExpired, "s.md", waitFor)
	if ev.Lock.Holder != "a" || ev.Lock.FencingToken != a.FencingToken {
		t.Errorf("expired event for %+v, want a", ev.Lock)
	}
	if seen.Before(a.ExpiresAt) {
		t.Errorf("lock.expired seen %v before a's lease ran out", a.ExpiresAt.Sub(seen))
	}
	hs := m.Holders("docs", "s.md")
	if len(hs) != 1 || hs[0].FencingToken != b.FencingToken {
		t.Errorf("Holders = %+v, want only b", hs)
	}
	// A CAS that prunes a does not report it twice.
	c := acquire(t, m, req("c", "s.md", events.LockShared, 30*time.Second))
	if n := rec.count(events.LockExpired, "s.md"); n != 1 {
		t.Errorf("lock.expired events = %d, want 1", n)
	}
	if c.FencingToken <= b.FencingToken {
		t.Errorf("fencing %d, want > %d", c.FencingToken, b.FencingToken)
	}
}

func TestManager_Check(t *testing.T) {
	t.Parallel()
	m, rec, _ := setup(t, lock.Options{})
	a := acquire(t, m, req("a", "c.txt", "", time.Second))

	_, err := m.Check("docs", "c.txt", "", 0)
	var le *events.LockError
	if !errors.As(err, &le) || !errors.Is(err, lock.ErrLocked) || le.Holder != "a" || !le.ExpiresAt.Equal(a.ExpiresAt) {
		t.Errorf("Check without token = %v, want *events.LockError naming a", err)
	}
	if _, err := m.Check("docs", "c.txt", "lk_other", 0); !errors.Is(err, lock.ErrLocked) {
		t.Errorf("Check with another token = %v, want ErrLocked", err)
	}
	got, err := m.Check("docs", "c.txt", a.Token, a.FencingToken)
	if err != nil || !cmp.Equal(got, a) {
		t.Errorf("Check by holder = %+v, %v; want %+v", got, err, a)
	}
	if _, err := m.Check("docs", "c.txt", a.Token, a.FencingToken+1); !errors.Is(err, lock.ErrStale) {
		t.Errorf("Check with old fencing token = %v, want ErrStale", err)
	}
	if l, err := m.Check("docs", "free.txt", "", 0); err != nil || l != (events.Lease{}) {
		t.Errorf("Check of an unlocked path = %+v, %v", l, err)
	}

	// Expired: the token is stale.
	rec.waitEvent(t, events.LockExpired, "c.txt", waitFor)
	if _, err := m.Check("docs", "c.txt", a.Token, a.FencingToken); !errors.Is(err, lock.ErrStale) {
		t.Errorf("Check after expiry = %v, want ErrStale", err)
	}
	if _, err := m.Check("docs", "c.txt", "", 0); err != nil {
		t.Errorf("Check without token after expiry = %v", err)
	}
	// Replaced by a shared holder, or by an exclusive one: locked.
	s := acquire(t, m, req("s", "c.txt", events.LockShared, time.Minute))
	if _, err := m.Check("docs", "c.txt", a.Token, 0); !errors.Is(err, lock.ErrLocked) {
		t.Errorf("Check of a lease replaced by a shared lock = %v, want ErrLocked", err)
	}
	// Shared locks are read locks: nobody writes, the holder included.
	for _, token := range []string{"", s.Token} {
		_, err := m.Check("docs", "c.txt", token, 0)
		le, ok := errors.AsType[*events.LockError](err)
		if !errors.Is(err, lock.ErrLocked) || !ok || le.Holder != "s" || le.Mode != "shared" || !strings.Contains(le.Why, "read lock") {
			t.Errorf("Check under a shared lock (token %q) = %v, want ErrLocked naming holder s", token, err)
		}
	}
	if _, err := m.Verify(context.Background(), "docs", "c.txt", s.Token, 0); !errors.Is(err, lock.ErrLocked) {
		t.Errorf("Verify by the shared holder = %v, want ErrLocked", err)
	}
	if err := m.Release(context.Background(), "docs", "c.txt", s.Token); err != nil {
		t.Fatal(err)
	}
	acquire(t, m, req("b", "c.txt", events.LockExclusive, time.Minute))
	if _, err := m.Check("docs", "c.txt", a.Token, a.FencingToken); !errors.Is(err, lock.ErrLocked) {
		t.Errorf("Check of a lease replaced by an exclusive lock = %v, want ErrLocked", err)
	}
	if _, err := m.Check("docs", "../c.txt", "", 0); !errors.Is(err, events.ErrBadPath) {
		t.Errorf("Check of a bad path = %v, want ErrBadPath", err)
	}
}

func TestExpiringLead(t *testing.T) {
	for _, tt := range []struct{ ttl, want time.Duration }{
		{time.Second, time.Second},           // short: warned at once
		{30 * time.Second, 30 * time.Second}, //
		{40 * time.Second, 30 * time.Second}, // 30 s before the end, earlier than half
		{time.Minute, 30 * time.Second},      // the default TTL: half
		{10 * time.Minute, 5 * time.Minute},  // half
		{24 * time.Hour, 12 * time.Hour},     //
	} {
		if got := lock.ExpiringLead(tt.ttl); got != tt.want {
			t.Errorf("ExpiringLead(%v) = %v, want %v", tt.ttl, got, tt.want)
		}
	}
}

func TestManager_FencingAcrossRestart(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	ctx := context.Background()
	srv := natstest.StartWith(t, natsd.Options{StoreDir: dir})
	m, err := lock.Open(ctx, srv.Conn(), lock.Options{})
	if err != nil {
		t.Fatal(err)
	}
	var last uint64
	for i := range 3 {
		l := acquire(t, m, req("a", "r.md", "", time.Minute))
		if err := m.Release(ctx, "docs", "r.md", l.Token); err != nil {
			t.Fatal(err)
		}
		if l.FencingToken <= last {
			t.Fatalf("round %d: fencing %d, want > %d", i, l.FencingToken, last)
		}
		last = l.FencingToken
	}
	_ = m.Close()
	_ = srv.Close()

	srv2 := natstest.StartWith(t, natsd.Options{StoreDir: dir})
	m2, err := lock.Open(ctx, srv2.Conn(), lock.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer m2.Close()
	for _, p := range []string{"r.md", "other.md"} {
		if l := acquire(t, m2, req("b", p, "", time.Minute)); l.FencingToken <= last {
			t.Errorf("after restart: fencing on %s %d, want > %d", p, l.FencingToken, last)
		}
	}
}

func TestManager_TwoManagers(t *testing.T) {
	t.Parallel()
	srv := natstest.Start(t)
	rec1, rec2 := newRecorder(), newRecorder()
	m1 := openManager(t, srv.Conn(), rec1, lock.Options{})
	m2 := openManager(t, srv.Conn(), rec2, lock.Options{})
	ctx := context.Background()

	a := acquire(t, m1, req("a", "hub.md", "", time.Minute))
	if _, err := m2.Acquire(ctx, req("b", "hub.md", "", time.Minute)); !errors.Is(err, lock.ErrConflict) {
		t.Fatalf("second hub Acquire = %v, want ErrConflict", err)
	}
	eventstest.Eventually(t, "the other hub's mirror to see the lock", func() bool { return len(m2.Holders("docs", "hub.md")) == 1 })
	if _, err := m2.Check("docs", "hub.md", "", 0); !errors.Is(err, lock.ErrLocked) {
		t.Errorf("other hub Check = %v, want ErrLocked", err)
	}
	if err := m1.Release(ctx, "docs", "hub.md", a.Token); err != nil {
		t.Fatal(err)
	}
	b := acquire(t, m2, req("b", "hub.md", "", time.Second))
	if b.FencingToken <= a.FencingToken {
		t.Errorf("fencing on the other hub %d, want > %d", b.FencingToken, a.FencingToken)
	}
	// Both hubs observe the expiry and report it with the same ID.
	e1, _ := rec1.waitEvent(t, events.LockExpired, "hub.md", waitFor)
	e2, _ := rec2.waitEvent(t, events.LockExpired, "hub.md", waitFor)
	if e1.ID != e2.ID {
		t.Errorf("lock.expired IDs differ: %s and %s", e1.ID, e2.ID)
	}
}

func TestManager_BadRequests(t *testing.T) {
	t.Parallel()
	m, _, _ := setup(t, lock.Options{})
	tests := []struct {
		name string
		r    events.LockRequest
		want error
	}{
		{"parent", req("a", "../x", "", 0), events.ErrBadPath},
		{"climbs out", req("a", "a/../../x", "", 0), events.ErrBadPath},
		{"absolute", req("a", "/etc/passwd", "", 0), events.ErrBadPath},
		{"empty", req("a", "", "", 0), events.ErrBadPath},
		{"root", req("a", ".", "", 0), events.ErrBadPath},
		{"nul", req("a", "a\x00b", "", 0), events.ErrBadPath},
		{"bad workspace", events.LockRequest{Workspace: "../w", Path: "a", Holder: "a"}, events.ErrBadPath},
		{"mode", req("a", "a", "both", 0), lock.ErrBadRequest},
		{"ttl short", req("a", "a", "", time.Millisecond), lock.ErrBadRequest},
		{"ttl long", req("a", "a", "", 25*time.Hour), lock.ErrBadRequest},
		{"wait", events.LockRequest{Workspace: "docs", Path: "a", Holder: "a", Wait: time.Hour}, lock.ErrBadRequest},
		{"no holder", req("", "a", "", 0), lock.ErrBadRequest},
		{"holder control", req("a\nb", "a", "", 0), lock.ErrBadRequest},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := m.Acquire(context.Background(), tt.r)
			if !errors.Is(err, tt.want) {
				t.Fatalf("Acquire = %v, want %v", err, tt.want)
			}
			if tt.want == events.ErrBadPath {
				var ee *events.Error
				if !errors.As(err, &ee) {
					t.Errorf("error %v is not an *events.Error", err)
				}
			}
		})
	}
}

func TestManager_ListAndReleaseAll(t *testing.T) {
	t.Parallel()
	m, rec, _ := setup(t, lock.Options{})
	ctx := context.Background()
	b := acquire(t, m, req("b", "z/b.md", events.LockShared, time.Minute))
	a := acquire(t, m, req("a", "a.md", "", time.Minute))
	c := acquire(t, m, req("c", "z/b.md", events.LockShared, time.Minute))
	other := acquire(t, m, events.LockRequest{Workspace: "docs.2", Path: "a.md", Holder: "x"})

	got, err := m.List(ctx, "docs")
	if err != nil {
		t.Fatal(err)
	}
	strip := func(ls ...events.Lease) []events.Lease {
		for i := range ls {
			ls[i].Token = ""
		}
		return ls
	}
	if diff := cmp.Diff(strip(a, b, c), got, cmpopts.EquateApproxTime(0)); diff != "" {
		t.Errorf("List (-want +got):\n%s", diff)
	}
	if got, err := m.List(ctx, "empty"); err != nil || len(got) != 0 {
		t.Errorf("List of a workspace without locks = %+v, %v", got, err)
	}

	m.ReleaseAll(ctx, []string{a.Token, b.Token, "lk_unknown"})
	got, err = m.List(ctx, "docs")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(strip(c), got, cmpopts.EquateApproxTime(0)); diff != "" {
		t.Errorf("List after ReleaseAll (-want +got):\n%s", diff)
	}
	if n := rec.count(events.LockReleased, "a.md") + rec.count(events.LockReleased, "z/b.md"); n != 2 {
		t.Errorf("lock.released events = %d, want 2", n)
	}
	if got, _ := m.List(ctx, "docs.2"); len(got) != 1 || got[0].FencingToken != other.FencingToken {
		t.Errorf("List(docs.2) = %+v", got)
	}
}

func TestManager_Closed(t *testing.T) {
	t.Parallel()
	m, _, srv := setup(t, lock.Options{})
	acquire(t, m, req("a", "x", "", time.Minute))
	idle := watchers(t, srv)
	r := req("b", "x", "", time.Minute)
	r.Wait = time.Minute
	var wg conc.WaitGroup
	var err error
	wg.Go(func() { _, err = m.Acquire(context.Background(), r) })
	eventstest.Eventually(t, "b to wait, watching the lock", func() bool { return watchers(t, srv) > idle })
	_ = m.Close()
	wg.Wait()
	if !errors.Is(err, events.ErrClosed) {
		t.Errorf("waiting Acquire after Close = %v, want ErrClosed", err)
	}
	if _, err := m.Acquire(context.Background(), req("c", "y", "", 0)); !errors.Is(err, events.ErrClosed) {
		t.Errorf("Acquire after Close = %v, want ErrClosed", err)
	}
}

// TestManager_StaleMirror judges writes and releases by the bucket when
// the mirror lags: a Manager whose Run is not running (as while its watch
// of the bucket is being re-established) still refuses a write to a path
// locked elsewhere, refuses a released token, and releases by token.
func TestManager_StaleMirror(t *testing.T) {
	t.Parallel()
	srv := natstest.Start(t)
	m1 := openManager(t, srv.Conn(), newRecorder(), lock.Options{})
	ctx := context.Background()
	lagging, err := lock.Open(ctx, srv.Conn(), lock.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer lagging.Close()

	a := acquire(t, m1, req("a", "s.md", "", time.Minute))
	if _, err := lagging.Check("docs", "s.md", "", 0); err != nil {
		t.Fatalf("the lagging mirror knows the lock already (%v); the test needs it not to", err)
	}
	if _, err := lagging.Verify(ctx, "docs", "s.md", "", 0); !errors.Is(err, lock.ErrLocked) {
		t.Errorf("Verify of a write without the token = %v, want ErrLocked", err)
	}
	if l, err := lagging.Verify(ctx, "docs", "s.md", a.Token, a.FencingToken); err != nil || l.FencingToken != a.FencingToken {
		t.Errorf("Verify of the holder's write = %+v, %v", l, err)
	}
	if err := lagging.Release(ctx, "docs", "", a.Token); err != nil {
		t.Fatalf("release by token through the lagging manager: %v", err)
	}
	if _, err := lagging.Verify(ctx, "docs", "s.md", a.Token, a.FencingToken); !errors.Is(err, lock.ErrStale) {
		t.Errorf("Verify with the released token = %v, want ErrStale", err)
	}
	b := acquire(t, m1, req("b", "s.md", "", time.Minute))
	if _, err := lagging.Verify(ctx, "docs", "s.md", a.Token, a.FencingToken); !errors.Is(err, lock.ErrLocked) {
		t.Errorf("Verify with the old token while b holds it = %v, want ErrLocked", err)
	}
	if _, err := lagging.Verify(ctx, "docs", "s.md", b.Token, a.FencingToken); !errors.Is(err, lock.ErrStale) {
		t.Errorf("Verify with b's token and a's fencing token = %v, want ErrStale", err)
	}
}

// TestManager_EventsBeforeRun: the Manager is opened before the hub it
// reports to exists; the changes made before Run starts are reported when
// it does, in order and before any later one.
func TestManager_EventsBeforeRun(t *testing.T) {
	t.Parallel()
	srv := natstest.Start(t)
	ctx := context.Background()
	m, err := lock.Open(ctx, srv.Conn(), lock.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = m.Close() })
	a := acquire(t, m, req("a", "early.md", "", time.Minute))
	if err := m.Release(ctx, "docs", "early.md", a.Token); err != nil {
		t.Fatal(err)
	}
	rec := newRecorder()
	runManager(t, m, rec)
	b := acquire(t, m, req("b", "early.md", "", time.Minute))
	rec.waitEvent(t, events.LockAcquired, "early.md", waitFor)
	eventstest.Eventually(t, "three lock events", func() bool { return len(rec.events()) == 3 })
	var got []string
	for _, ev := range rec.events() {
		got = append(got, fmt.Sprintf("%s %s %d", ev.Type, ev.Actor, ev.Lock.FencingToken))
	}
	want := []string{
		fmt.Sprintf("lock.acquired a %d", a.FencingToken),
		fmt.Sprintf("lock.released a %d", a.FencingToken),
		fmt.Sprintf("lock.acquired b %d", b.FencingToken),
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("events (-want +got):\n%s", diff)
	}
}
