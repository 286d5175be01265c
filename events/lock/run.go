package lock

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/sourcegraph/conc"

	"github.com/filecast/filecast/events"
)

const (
	// markerGrace is how long after a key's TTL ran out Run waits for the
	// server's delete marker before it reports the expiry itself.
	markerGrace = 500 * time.Millisecond
	// keepTombstones is how long the mirror remembers a removed key, so that
	// a late, older update cannot bring it back.
	keepTombstones = time.Minute
	// keepEmitted is how long a deterministic event ID is remembered.
	keepEmitted  = 10 * time.Minute
	rewatchDelay = 250 * time.Millisecond
)

// entry is the mirror's view of one key: the newest revision seen and its
// record (nil once the key holds no lock).
type entry struct {
	rev uint64
	rec *record
	at  time.Time // when the entry was applied
}

// apply stores rec at rev under key unless a newer revision is known. It
// returns the record it replaced and whether it applied.
func (m *Manager) apply(key string, rev uint64, rec *record, now time.Time) (prev *record, ok bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	e := m.mirror[key]
	if e != nil && rev <= e.rev {
		return nil, false
	}
	if e != nil {
		prev = e.rec
	}
	m.mirror[key] = &entry{rev: rev, rec: rec, at: now}
	select {
	case m.kick <- struct{}{}:
	default:
	}
	return prev, true
}

// Run watches the bucket until ctx is done or the Manager is closed (it
// then returns nil): it keeps the mirror behind Holders and Check, and
// appends to app the events of lock changes: lock.acquired and
// lock.released as this Manager's callers make them (those made before Run
// started first), lock.expiring shortly before a lease runs out and
// lock.expired when it has — when the server's TTL marker for the key
// appears, when a shared holder's own expiry passes while others still
// hold the key, or at the latest half a second after the key's TTL if the
// marker is late. Every hub running Run reports the same expiry events
// with the same IDs. Events app refuses for want of room (its log full:
// events.ErrInsufficientStorage) are held, with every later one, and
// appended in order once it has room (when app has a Room method, once it
// says so). With a nil app no events are appended. app stays the
// destination of the events after Run returns, so that a change made while
// shutting down is still reported. Call Run once per Manager; it returns
// an error if the connection is closed.
func (m *Manager) Run(ctx context.Context, app Appender) error {
	if !m.running.CompareAndSwap(false, true) {
		return errors.New("lock: Run is already running")
	}
	defer m.running.Store(false)
	m.start(ctx, app)
	runCtx := ctx
	ctx, cancel := context.WithCancel(ctx)
	stop := context.AfterFunc(m.closing, cancel)
	defer stop()
	var wg conc.WaitGroup
	wg.Go(func() { m.deliverHeld(ctx) })
	defer func() {
		cancel()
		wg.Wait()
		m.flushHeld(runCtx)
	}()

	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		err := m.watch(ctx, timer)
		if ctx.Err() != nil {
			return nil
		}
		if m.nc.IsClosed() {
			return fmt.Errorf("watch locks: %w", events.ErrClosed)
		}
		m.log.Warn("lock watch ended; watching again", "err", err)
		select {
		case <-time.After(rewatchDelay):
		case <-ctx.Done():
			return nil
		}
	}
}

// watch runs one watcher until it ends or ctx is done.
func (m *Manager) watch(ctx context.Context, timer *time.Timer) error {
	w, err := m.kv.WatchAll(ctx)
	if err != nil {
		return err
	}
	defer func() { _ = w.Stop() }()
	return m.follow(ctx, w.Updates(), timer)
}

// follow applies the updates of a watcher of the whole bucket (the current
// entries, a nil, then the changes) to the mirror, and appends the lock
// events that fall due, waking with timer when the next one does. It
// returns when updates is closed or ctx is done.
func (m *Manager) follow(ctx context.Context, updates <-chan jetstream.KeyValueEntry, timer *time.Timer) error {
	loading := true
	seen := map[string]bool{}
	var top uint64
	for {
		select {
		case e, ok := <-updates:
			if !ok {
				return errors.New("watcher closed")
			}
			if e == nil {
				if loading {
					loading = false
					m.forgetUnseen(seen, top)
					seen = nil
					select {
					case <-m.ready:
					default:
						close(m.ready)
					}
				}
			} else {
				if loading {
					seen[e.Key()] = true
					top = max(top, e.Revision())
				}
				m.observe(ctx, e)
			}
		case <-timer.C:
		case <-m.kick:
		case <-ctx.Done():
			return ctx.Err()
		}
		next := m.sweep(ctx, time.Now())
		if !timer.Stop() {
			select {
			case <-timer.C:
			default:
			}
		}
		timer.Reset(time.Until(next))
	}
}

// forgetUnseen drops mirror entries a fresh watcher did not report: their
// keys are gone for good.
func (m *Manager) forgetUnseen(seen map[string]bool, top uint64) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for key, e := range m.mirror {
		if !seen[key] && e.rev <= top {
			delete(m.mirror, key)
		}
	}
}

// observe applies a change seen in the bucket and reports holders that
// went because their lease ran out: all holders when the server's TTL marker
// (a purge) replaced the value, else those removed by another Manager's
// compare-and-set after their expiry. Releases are reported by the Manager
// that made them.
func (m *Manager) observe(ctx context.Context, e jetstream.KeyValueEntry) {
	var rec *record
	op := e.Operation()
	if op == jetstream.KeyValuePut {
		var err error
		if rec, err = decodeRecord(e.Value(), e.Revision()); err != nil {
			m.log.Warn("skip undecodable lock", "key", e.Key(), "err", err)
			return
		}
	}
	now := time.Now()
	prev, ok := m.apply(e.Key(), e.Revision(), rec, now)
	if !ok || prev == nil {
		return
	}
	var evs []events.Event
	for _, h := range prev.Holders {
		if rec != nil && find(rec.Holders, h.TokenHash) >= 0 {
			continue
		}
		if op != jetstream.KeyValuePurge && h.Expires.After(e.Created()) {
			continue // released
		}
		if id := eventID(events.LockExpired, m.bucket, e.Key(), h); m.first(id, now) {
			evs = append(evs, leaseEvent(events.LockExpired, id, prev, h, now))
		}
	}
	m.emit(ctx, evs)
}

// sweep appends the lock.expiring and lock.expired events that are due at
// now and returns when the next one is due.
func (m *Manager) sweep(ctx context.Context, now time.Time) time.Time {
	next := now.Add(time.Hour)
	var evs []events.Event
	m.mu.Lock()
	for id, at := range m.emitted {
		if now.Sub(at) > keepEmitted {
			delete(m.emitted, id)
		}
	}
	for key, e := range m.mirror {
		if e.rec == nil {
			if now.Sub(e.at) > keepTombstones {
				delete(m.mirror, key)
			}
			continue
		}
		for _, h := range e.rec.Holders {
			warn := h.Expires.Add(-m.expiringLead(h.TTL))
			switch {
			case now.Before(warn):
				next = minTime(next, warn)
			case now.Before(h.Expires):
				if id := eventID(events.LockExpiring, m.bucket, key, h); m.firstLocked(id, now) {
					evs = append(evs, leaseEvent(events.LockExpiring, id, e.rec, h, now))
				}
			}
			// The holder whose expiry the key's TTL covers is reported when
			// the server's marker appears; the others, and that one if the
			// marker is late, by time.
			due := h.Expires
			if !h.Expires.Before(e.rec.KeyExpires.Add(-100 * time.Millisecond)) {
				due = e.rec.KeyExpires.Add(markerGrace)
			}
			if now.Before(due) {
				next = minTime(next, due)
				continue
			}
			if now.Sub(due) > keepEmitted/2 {
				continue // long reported, and no longer remembered as such
			}
			if id := eventID(events.LockExpired, m.bucket, key, h); m.firstLocked(id, now) {
				evs = append(evs, leaseEvent(events.LockExpired, id, e.rec, h, now))
			}
		}
	}
	m.mu.Unlock()
	m.emit(ctx, evs)
	return next
}

func minTime(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}
