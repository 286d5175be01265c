package lock

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/filecast/filecast/events"
)

// The timing of lock.expiring and lock.expired is tested here under
// testing/synctest, on the loop that follows the bucket (follow) fed with
// entries as a bucket watcher delivers them: time is the bubble's, so
// every event's instant is exact. The tests over a real NATS server check
// the same events arrive, and in which order, not when.

// kvEntry is a bucket entry as a watcher delivers it.
type kvEntry struct {
	key     string
	value   []byte
	rev     uint64
	created time.Time
	op      jetstream.KeyValueOp
}

func (e kvEntry) Bucket() string                  { return DefaultBucket }
func (e kvEntry) Key() string                     { return e.key }
func (e kvEntry) Value() []byte                   { return e.value }
func (e kvEntry) Revision() uint64                { return e.rev }
func (e kvEntry) Created() time.Time              { return e.created }
func (e kvEntry) Delta() uint64                   { return 0 }
func (e kvEntry) Operation() jetstream.KeyValueOp { return e.op }

func put(t *testing.T, key string, rev uint64, rec record) jetstream.KeyValueEntry {
	t.Helper()
	data, err := json.Marshal(rec)
	if err != nil {
		t.Fatal(err)
	}
	return kvEntry{key: key, value: data, rev: rev, created: time.Now(), op: jetstream.KeyValuePut}
}

func purge(key string, rev uint64) jetstream.KeyValueEntry {
	return kvEntry{key: key, rev: rev, created: time.Now(), op: jetstream.KeyValuePurge}
}

// eventLog keeps the events appended to it, with the bubble's time of each.
type eventLog struct {
	mu  sync.Mutex
	evs []string
}

func (l *eventLog) Append(_ context.Context, ev events.Event) (events.Event, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.evs = append(l.evs, fmt.Sprintf("%s %s %s +%v", ev.Type, ev.Path, ev.Lock.Holder, time.Since(epoch)))
	return ev, nil
}

func (l *eventLog) take() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := l.evs
	l.evs = nil
	return out
}

var discard = slog.New(slog.DiscardHandler)

// epoch is when every bubble starts (synctest's fixed start time).
var epoch = time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)

// following runs a Manager's follow loop on updates inside the bubble until
// the test function returns, with l as its Appender.
func following(t *testing.T, updates chan jetstream.KeyValueEntry, l *eventLog) *Manager {
	t.Helper()
	m := newManager(nil, nil, nil, Options{Bucket: DefaultBucket, Logger: discard})
	m.start(t.Context(), l)
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() {
		timer := time.NewTimer(time.Hour)
		defer timer.Stop()
		done <- m.follow(ctx, updates, timer)
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil && !errors.Is(err, context.Canceled) {
			t.Errorf("follow: %v", err)
		}
	})
	return m
}

// sleepTo sleeps until epoch+d and lets every goroutine of the bubble run.
func sleepTo(d time.Duration) {
	time.Sleep(time.Until(epoch.Add(d)))
	synctest.Wait()
}

func check(t *testing.T, l *eventLog, at string, want ...string) {
	t.Helper()
	if got := l.take(); !slices.Equal(got, want) {
		t.Errorf("at %s: events %q, want %q", at, got, want)
	}
}

// TestFollow_ExpiringThenExpired: an exclusive lease of 60 s is warned about
// with half of it left, and reported expired when the server's marker for
// its key appears; without a marker, half a second after the key's TTL —
// within the second of the TTL the README promises.
func TestFollow_ExpiringThenExpired(t *testing.T) {
	for _, marker := range []bool{true, false} {
		t.Run(fmt.Sprintf("marker=%v", marker), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				if !time.Now().Equal(epoch) {
					t.Fatalf("the bubble starts at %v, not %v", time.Now(), epoch)
				}
				updates := make(chan jetstream.KeyValueEntry)
				l := &eventLog{}
				m := following(t, updates, l)
				exp := epoch.Add(time.Minute)
				updates <- put(t, keyFor("docs", "a.md"), 7, record{Workspace: "docs", Path: "a.md", Mode: events.LockExclusive, KeyExpires: exp,
					Holders: []holder{{Holder: "alice", TokenHash: "h", TTL: time.Minute, Expires: exp}}})
				updates <- nil // the current entries are loaded
				synctest.Wait()
				select {
				case <-m.Ready():
				default:
					t.Fatal("not ready after the initial entries")
				}
				if hs := m.Holders("docs", "a.md"); len(hs) != 1 || hs[0].FencingToken != 7 {
					t.Errorf("Holders = %+v", hs)
				}
				check(t, l, "start")

				sleepTo(30*time.Second - time.Millisecond)
				check(t, l, "29.999s")
				sleepTo(30 * time.Second)
				check(t, l, "30s", "lock.expiring a.md alice +30s")
				sleepTo(time.Minute)
				check(t, l, "60s") // the lease ran out; the marker may come
				if marker {
					sleepTo(time.Minute + 200*time.Millisecond)
					updates <- purge(keyFor("docs", "a.md"), 8)
					synctest.Wait()
					check(t, l, "the marker", "lock.expired a.md alice +1m0.2s")
				} else {
					sleepTo(time.Minute + markerGrace - time.Millisecond)
					check(t, l, "before the grace")
					sleepTo(time.Minute + markerGrace)
					check(t, l, "after the grace", "lock.expired a.md alice +1m0.5s")
				}
				sleepTo(2 * time.Minute)
				check(t, l, "later") // reported once
				if hs := m.Holders("docs", "a.md"); len(hs) != 0 {
					t.Errorf("Holders after expiry = %+v", hs)
				}
			})
		})
	}
}

// TestFollow_SharedHolderExpires: a shared holder whose lease ends before
// the key's TTL (another holder keeps the key) is reported expired at its
// own expiry, and warned about before; a short lease is warned about at
// once.
func TestFollow_SharedHolderExpires(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		updates := make(chan jetstream.KeyValueEntry)
		l := &eventLog{}
		following(t, updates, l)
		updates <- nil
		sleepTo(time.Second)
		short, long := epoch.Add(11*time.Second), epoch.Add(time.Hour)
		updates <- put(t, keyFor("docs", "s.md"), 3, record{Workspace: "docs", Path: "s.md", Mode: events.LockShared, KeyExpires: long, Holders: []holder{
			{Holder: "bob", TokenHash: "b", TTL: 10 * time.Second, Expires: short, Fencing: 2},
			{Holder: "carol", TokenHash: "c", TTL: time.Hour, Expires: long},
		}})
		synctest.Wait()
		check(t, l, "1s", "lock.expiring s.md bob +1s")
		sleepTo(11*time.Second - time.Millisecond)
		check(t, l, "10.999s")
		sleepTo(11 * time.Second)
		check(t, l, "11s", "lock.expired s.md bob +11s")
		sleepTo(31 * time.Minute)
		check(t, l, "31m", "lock.expiring s.md carol +30m0s")
	})
}

// TestFollow_ReleasedNotExpired: a holder removed by another hub's
// compare-and-set before its lease ran out was released, not expired, and
// is not reported here (the hub that released it reports it).
func TestFollow_ReleasedNotExpired(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		updates := make(chan jetstream.KeyValueEntry)
		l := &eventLog{}
		following(t, updates, l)
		exp := epoch.Add(time.Hour)
		updates <- put(t, keyFor("docs", "s.md"), 3, record{Workspace: "docs", Path: "s.md", Mode: events.LockShared, KeyExpires: exp, Holders: []holder{
			{Holder: "bob", TokenHash: "b", TTL: time.Hour, Expires: exp, Fencing: 2},
			{Holder: "carol", TokenHash: "c", TTL: time.Hour, Expires: exp},
		}})
		updates <- nil
		sleepTo(time.Minute)
		updates <- put(t, keyFor("docs", "s.md"), 4, record{Workspace: "docs", Path: "s.md", Mode: events.LockShared, KeyExpires: exp, Holders: []holder{
			{Holder: "carol", TokenHash: "c", TTL: time.Hour, Expires: exp, Fencing: 3},
		}})
		synctest.Wait()
		check(t, l, "after bob's release")
	})
}

// TestDecide: the verdict on a write, at a given instant.
func TestDecide(t *testing.T) {
	now := epoch
	excl := &record{Workspace: "docs", Path: "a.md", Mode: events.LockExclusive, Holders: []holder{
		{Holder: "alice", TokenHash: hashToken("lk_alice"), Expires: now.Add(time.Second), Fencing: 5},
	}}
	shared := &record{Workspace: "docs", Path: "a.md", Mode: events.LockShared, Holders: []holder{
		{Holder: "bob", TokenHash: hashToken("lk_bob"), Expires: now.Add(time.Second), Fencing: 6},
	}}
	for _, tt := range []struct {
		name    string
		rec     *record
		token   string
		fencing uint64
		at      time.Time
		want    error // nil: allowed
	}{
		{"free", nil, "", 0, now, nil},
		{"free, with a token", nil, "lk_alice", 0, now, events.ErrStale},
		{"exclusive, no token", excl, "", 0, now, events.ErrLocked},
		{"exclusive, another token", excl, "lk_bob", 0, now, events.ErrLocked},
		{"exclusive, the holder", excl, "lk_alice", 5, now, nil},
		{"exclusive, an old fencing token", excl, "lk_alice", 4, now, events.ErrStale},
		{"exclusive, a moment before it ends", excl, "lk_alice", 0, now.Add(time.Second - 1), nil},
		{"exclusive, when it ends", excl, "lk_alice", 0, now.Add(time.Second), events.ErrStale},
		{"exclusive, ended, no token", excl, "", 0, now.Add(time.Second), nil},
		{"shared, no token", shared, "", 0, now, events.ErrLocked},
		{"shared, the holder", shared, "lk_bob", 0, now, events.ErrLocked},
		{"shared, ended", shared, "", 0, now.Add(time.Second), nil},
	} {
		t.Run(tt.name, func(t *testing.T) {
			l, err := decide(tt.rec, "a.md", tt.token, tt.fencing, tt.at)
			if tt.want == nil {
				if err != nil {
					t.Fatalf("decide = %v, want the write allowed", err)
				}
				if tt.token != "" && l.Token != tt.token {
					t.Errorf("lease %+v lacks the token", l)
				}
				return
			}
			if _, ok := errors.AsType[*events.LockError](err); !ok || !errors.Is(err, tt.want) {
				t.Fatalf("decide = %v, want a *events.LockError wrapping %v", err, tt.want)
			}
		})
	}
}

// TestNearKeyExpiry: no value is written over a key from keyGuard before
// its TTL until markerWait after it.
func TestNearKeyExpiry(t *testing.T) {
	rec := &record{KeyExpires: epoch}
	for _, tt := range []struct {
		at   time.Duration
		near bool
	}{
		{-keyGuard - time.Millisecond, false},
		{-keyGuard + time.Millisecond, true},
		{0, true},
		{markerWait - time.Millisecond, true},
		{markerWait, false},
	} {
		near, until := nearKeyExpiry(rec, epoch.Add(tt.at))
		if near != tt.near || !until.Equal(epoch.Add(markerWait)) {
			t.Errorf("at %v: near %v until %v, want %v until %v", tt.at, near, until, tt.near, epoch.Add(markerWait))
		}
	}
	if near, _ := nearKeyExpiry(nil, epoch); near {
		t.Error("a key without a lock is near its expiry")
	}
}
