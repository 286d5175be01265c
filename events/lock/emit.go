package lock

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/oklog/ulid/v2"

	"github.com/filecast/filecast/events"
)

// A lock event that cannot be appended now is held, in order, and appended
// later: before Run starts (there is no Appender yet), and while the
// Appender refuses it for want of room (its log full: the error wraps
// events.ErrInsufficientStorage). While events are held, later ones are
// held behind them, so that the log gets them in order. Run's goroutine
// appends them once the Appender has room again (Room, when it has one,
// says so; otherwise it tries every heldRetry, doubling up to
// heldRetryMax while refused). A lock change cannot wait for that: a new
// lock is refused by the hub while its log is full, but a release, an
// expiry or a warning of one happens anyway, and its event must not be
// lost. Held events live in memory: a process stopped while it holds some
// loses them, and says how many.

// maxHeld bounds the lock events a Manager holds; beyond it new ones are
// dropped, with a warning. New locks being refused while the log is full,
// the events held are about those of the locks already held then: a few
// per lock.
var maxHeld = 16384

const (
	heldRetry    = time.Second
	heldRetryMax = 30 * time.Second
)

// roomer is an Appender that can tell whether its log has room (the hub
// can).
type roomer interface {
	Room() error
}

// outbox is where a Manager's lock events go: to the Appender Run was
// given, or into held until they can be.
type outbox struct {
	mu      sync.Mutex
	started bool     // Run has set app
	app     Appender // nil: events are dropped
	held    []events.Event
	dropped int  // since the last warning
	full    bool // the Appender refused for want of room; held until it has room
}

// HeldEvents returns how many lock events wait to be appended: until Run
// starts, or until the log has room. Safe for concurrent use.
func (m *Manager) HeldEvents() int {
	o := &m.out
	o.mu.Lock()
	defer o.mu.Unlock()
	return len(o.held)
}

// start makes app the destination of the events; the held ones go first,
// then every later one.
func (m *Manager) start(ctx context.Context, app Appender) {
	o := &m.out
	o.mu.Lock()
	o.started, o.app = true, app
	if app == nil {
		o.held = nil
	}
	o.mu.Unlock()
	m.appendHeld(ctx)
}

// emit appends evs, in order, or holds them.
func (m *Manager) emit(ctx context.Context, evs []events.Event) {
	if len(evs) == 0 {
		return
	}
	o := &m.out
	o.mu.Lock()
	if !o.started || len(o.held) > 0 {
		m.holdLocked(evs)
		o.mu.Unlock()
		return
	}
	app := o.app
	o.mu.Unlock()
	if app == nil {
		return
	}
	for i, ev := range evs {
		_, err := app.Append(ctx, ev)
		if refused(err) {
			o.mu.Lock()
			m.refusedLocked(err)
			m.holdLocked(evs[i:])
			o.mu.Unlock()
			return
		}
		if err != nil {
			m.log.Warn("append lock event", "type", ev.Type, "workspace", ev.Workspace, "path", ev.Path, "err", err)
		}
	}
}

// refused reports whether an append failed for want of room in the log.
func refused(err error) bool { return errors.Is(err, events.ErrInsufficientStorage) }

// holdLocked adds evs to the held events, as many as the bound allows.
// m.out.mu must be held.
func (m *Manager) holdLocked(evs []events.Event) {
	o := &m.out
	n := min(len(evs), max(maxHeld-len(o.held), 0))
	o.held = append(o.held, evs[:n]...)
	if n < len(evs) {
		if o.dropped == 0 {
			m.log.Warn("too many lock events held: later ones are dropped until the log takes the held ones", "held", len(o.held))
		}
		o.dropped += len(evs) - n
	}
}

// refusedLocked notes that the Appender refused for want of room. m.out.mu
// must be held.
func (m *Manager) refusedLocked(err error) {
	o := &m.out
	if !o.full {
		o.full = true
		m.log.Warn("the event log has no room: lock events are held and appended once it has room", "err", err)
	}
}

// appendHeld appends the held events, in order, until none is left or the
// Appender refuses for want of room; it reports whether none is left.
// Only Run's goroutine calls it (and Run itself, once started), so that
// the held events are appended by one caller at a time.
func (m *Manager) appendHeld(ctx context.Context) bool {
	o := &m.out
	appended := 0
	for {
		o.mu.Lock()
		if len(o.held) == 0 || o.app == nil {
			left := len(o.held) == 0
			wasFull, dropped := o.full, o.dropped
			o.full, o.dropped = false, 0
			o.mu.Unlock()
			if dropped > 0 {
				m.log.Warn("lock events were dropped: too many were held", "count", dropped)
			}
			if wasFull && appended > 0 {
				m.log.Info("the event log has room again: the held lock events are appended", "count", appended)
			}
			return left
		}
		ev, app := o.held[0], o.app
		o.mu.Unlock()

		actx, cancel := context.WithTimeout(ctx, apiTimeout)
		_, err := app.Append(actx, ev)
		cancel()
		if ctx.Err() != nil {
			return false
		}
		o.mu.Lock()
		if refused(err) {
			m.refusedLocked(err)
			o.mu.Unlock()
			return false
		}
		o.held[0] = events.Event{}
		o.held = o.held[1:]
		o.mu.Unlock()
		if err != nil {
			m.log.Warn("append lock event", "type", ev.Type, "workspace", ev.Workspace, "path", ev.Path, "err", err)
			continue
		}
		appended++
	}
}

// deliverHeld appends the held events, every heldRetry while there are
// some and the log has room, until ctx is done. It runs on a goroutine of
// Run.
func (m *Manager) deliverHeld(ctx context.Context) {
	pause := heldRetry
	timer := time.NewTimer(pause)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-timer.C:
		}
		if m.HeldEvents() > 0 && m.hasRoom() {
			if m.appendHeld(ctx) {
				pause = heldRetry
			} else {
				pause = min(2*pause, heldRetryMax)
			}
		}
		if m.HeldEvents() == 0 {
			pause = heldRetry
		}
		timer.Reset(pause)
	}
}

// hasRoom reports whether the Appender says its log has room; one that
// cannot tell is tried.
func (m *Manager) hasRoom() bool {
	o := &m.out
	o.mu.Lock()
	app := o.app
	o.mu.Unlock()
	if r, ok := app.(roomer); ok {
		return r.Room() == nil
	}
	return true
}

// flushHeld is Run's last try, as it returns, to append what is held.
func (m *Manager) flushHeld(ctx context.Context) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), apiTimeout)
	defer cancel()
	if m.HeldEvents() == 0 || !m.hasRoom() {
		if n := m.HeldEvents(); n > 0 {
			m.log.Warn("lock events held for want of room in the log are lost as the lock manager stops", "count", n)
		}
		return
	}
	if !m.appendHeld(ctx) {
		m.log.Warn("lock events held for want of room in the log are lost as the lock manager stops", "count", m.HeldEvents())
	}
}

// emitChange appends the event of a change this Manager made to h (typ),
// and lock.expired for the holders of prev it removed because their lease
// had run out.
func (m *Manager) emitChange(ctx context.Context, typ events.Type, key string, rec *record, h holder, prev *record, gone []holder) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), apiTimeout)
	defer cancel()
	now := time.Now()
	var evs []events.Event
	for _, g := range gone {
		if id := eventID(events.LockExpired, m.bucket, key, g); m.first(id, now) {
			evs = append(evs, leaseEvent(events.LockExpired, id, prev, g, now))
		}
	}
	evs = append(evs, leaseEvent(typ, ulid.Make().String(), rec, h, now))
	m.emit(ctx, evs)
}

func leaseEvent(typ events.Type, id string, rec *record, h holder, now time.Time) events.Event {
	return events.Event{
		ID:        id,
		Type:      typ,
		Workspace: rec.Workspace,
		Path:      rec.Path,
		Actor:     h.Holder,
		Lock:      &events.LockInfo{Holder: h.Holder, FencingToken: h.Fencing, Mode: rec.Mode},
		ExpiresAt: h.Expires,
		Time:      now,
	}
}

// first reports whether the deterministic event id is new to this Manager
// and records it.
func (m *Manager) first(id string, now time.Time) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.firstLocked(id, now)
}

func (m *Manager) firstLocked(id string, now time.Time) bool {
	if _, ok := m.emitted[id]; ok {
		return false
	}
	m.emitted[id] = now
	return true
}
