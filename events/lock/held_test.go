package lock

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/filecast/filecast/events"
)

// fullLog is an eventLog that refuses every append for want of room while
// full is set, as the hub does while its log is full, and says so in Room.
type fullLog struct {
	eventLog
	full  atomic.Bool
	tries atomic.Int64
}

var errFull = fmt.Errorf("append event: %w: the event log cannot take more events", events.ErrInsufficientStorage)

func (l *fullLog) Append(ctx context.Context, ev events.Event) (events.Event, error) {
	l.tries.Add(1)
	if l.full.Load() {
		return ev, errFull
	}
	return l.eventLog.Append(ctx, ev)
}

func (l *fullLog) Room() error {
	if l.full.Load() {
		return errFull
	}
	return nil
}

// delivering starts a Manager with l as its Appender and runs its
// delivery of held events inside the bubble until the test returns.
func delivering(t *testing.T, l Appender) *Manager {
	t.Helper()
	m := newManager(nil, nil, nil, Options{Bucket: DefaultBucket, Logger: discard})
	m.start(t.Context(), l)
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() {
		defer close(done)
		m.deliverHeld(ctx)
	}()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	return m
}

func lockEvent(typ events.Type, path, holder string) events.Event {
	return events.Event{ID: string(typ) + path, Type: typ, Workspace: "docs", Path: path, Lock: &events.LockInfo{Holder: holder}}
}

// TestEmit_HeldWhileTheLogIsFull: a release and an expiry that fall while
// the log is full are held, in order, without trying the log while it
// says it is full, and appended within a second of it having room; later
// events go after them.
func TestEmit_HeldWhileTheLogIsFull(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := &fullLog{}
		l.full.Store(true)
		m := delivering(t, l)
		ctx := t.Context()
		m.emit(ctx, []events.Event{lockEvent(events.LockReleased, "a.md", "alice")})
		sleepTo(time.Second)
		m.emit(ctx, []events.Event{lockEvent(events.LockExpired, "b.md", "bob"), lockEvent(events.LockExpiring, "c.md", "carol")})
		sleepTo(10 * time.Second)
		if n := m.HeldEvents(); n != 3 {
			t.Errorf("HeldEvents() = %d while full, want 3", n)
		}
		if n := l.tries.Load(); n != 1 {
			t.Errorf("the full log was tried %d times, want once (then Room says it is full)", n)
		}
		check(t, &l.eventLog, "10s")

		l.full.Store(false)
		sleepTo(11 * time.Second)
		check(t, &l.eventLog, "11s",
			"lock.released a.md alice +11s", "lock.expired b.md bob +11s", "lock.expiring c.md carol +11s")
		if n := m.HeldEvents(); n != 0 {
			t.Errorf("HeldEvents() = %d once appended", n)
		}
		m.emit(ctx, []events.Event{lockEvent(events.LockAcquired, "d.md", "dave")})
		check(t, &l.eventLog, "11s", "lock.acquired d.md dave +11s")
	})
}

// TestEmit_HeldBound: beyond maxHeld, new events are dropped; the held
// ones are appended.
func TestEmit_HeldBound(t *testing.T) {
	old := maxHeld
	maxHeld = 3
	t.Cleanup(func() { maxHeld = old })
	synctest.Test(t, func(t *testing.T) {
		l := &fullLog{}
		l.full.Store(true)
		m := delivering(t, l)
		for i := range 5 {
			m.emit(t.Context(), []events.Event{lockEvent(events.LockExpired, fmt.Sprint(i, ".md"), "x")})
		}
		if n := m.HeldEvents(); n != 3 {
			t.Errorf("HeldEvents() = %d, want 3", n)
		}
		l.full.Store(false)
		sleepTo(2 * time.Second)
		check(t, &l.eventLog, "2s", "lock.expired 0.md x +1s", "lock.expired 1.md x +1s", "lock.expired 2.md x +1s")
	})
}

// TestEmit_HeldRetriesWithoutRoom: an Appender that cannot tell whether it
// has room is tried after 1 s, then 2, 4… up to 30 s between tries.
func TestEmit_HeldRetriesWithoutRoom(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := &fullLog{}
		l.full.Store(true)
		var app Appender = struct{ Appender }{l} // hides Room
		if _, ok := app.(roomer); ok {
			t.Fatal("the Appender still has Room")
		}
		m := delivering(t, app)
		m.emit(t.Context(), []events.Event{lockEvent(events.LockReleased, "a.md", "alice")})
		sleepTo(16 * time.Second) // tries at 0, 1, 3, 7, 15 s
		if n := l.tries.Load(); n != 5 {
			t.Errorf("%d tries in 16 s, want 5", n)
		}
		l.full.Store(false)
		sleepTo(31 * time.Second) // the next at 31 s
		check(t, &l.eventLog, "31s", "lock.released a.md alice +31s")
	})
}
