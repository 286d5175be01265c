package lock

import (
	"context"
	"sync"
	"time"

	"github.com/oklog/ulid/v2"

	"github.com/filecast/filecast/events"
)

// maxHeld bounds the lock events a Manager holds while Run has not started;
// beyond it they are dropped, with a warning.
const maxHeld = 1024

// outbox is where a Manager's lock events go: to the Appender Run was
// given, or, before Run starts, into a bounded list that Run appends first.
// The events of one change are appended in order, and the held ones before
// any later one.
type outbox struct {
	mu      sync.Mutex
	started bool     // Run has set app
	app     Appender // nil: events are dropped
	held    []events.Event
	dropped int
}

// start makes app the destination of the events and appends the held ones
// to it, holding back every other emit until they are in.
func (m *Manager) start(ctx context.Context, app Appender) {
	o := &m.out
	o.mu.Lock()
	defer o.mu.Unlock()
	o.started, o.app = true, app
	held, dropped := o.held, o.dropped
	o.held, o.dropped = nil, 0
	if dropped > 0 {
		m.log.Warn("lock events of changes made before Run were dropped", "count", dropped)
	}
	if app != nil && len(held) > 0 {
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), apiTimeout)
		defer cancel()
		appendAll(ctx, m, app, held)
	}
}

// emit appends evs to the Appender Run was given, or holds them until Run
// starts.
func (m *Manager) emit(ctx context.Context, evs []events.Event) {
	if len(evs) == 0 {
		return
	}
	o := &m.out
	o.mu.Lock()
	if !o.started {
		n := min(len(evs), maxHeld-len(o.held))
		o.held = append(o.held, evs[:n]...)
		o.dropped += len(evs) - n
		o.mu.Unlock()
		return
	}
	app := o.app
	o.mu.Unlock()
	if app != nil {
		appendAll(ctx, m, app, evs)
	}
}

func appendAll(ctx context.Context, m *Manager, app Appender, evs []events.Event) {
	for _, ev := range evs {
		if _, err := app.Append(ctx, ev); err != nil {
			m.log.Warn("append lock event", "type", ev.Type, "workspace", ev.Workspace, "path", ev.Path, "err", err)
		}
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
