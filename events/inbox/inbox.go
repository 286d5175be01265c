// Package inbox is the per-session buffer behind the MCP tools subscribe,
// unsubscribe and list_changes. A background router offers it every event
// of every workspace; the inbox keeps the ones the session selected
// (filter), drops redeliveries (dedup), folds repeated updates of a path
// into one (coalesce), holds at most Capacity events (bound, with an
// overflow flag and a resume cursor) and lets tool handlers long-poll for
// them (wait). It does no I/O.
//
// A sketch of the wiring:
//
//	b := inbox.New(inbox.Options{Workspaces: []string{"docs"}, Holder: "claude-code#3f2a",
//		Actor: "mcp:claude-code#3f2a", Start: head})
//	defer b.Close()
//	go router(func(ev events.Event) { b.Offer(ev) }) // every event of every workspace
//
//	f, _ := events.NewFilter("", []string{"reports/**"}, nil)
//	sub, err := b.Subscribe(f, false)                // tool "subscribe"
//	res, err := b.Take(ctx, sub.ID, 100, 30*time.Second) // tool "list_changes" without cursor
//
//	// tool "list_changes" with a cursor reads the durable log instead; the
//	// inbox only filters it and is not changed by it:
//	for _, ev := range page.Events {
//		if b.Matches(ev, subID) { out = append(out, ev) }
//	}
//
// # Selection
//
// A session that never subscribed buffers every file event. Once it has
// subscribed, it buffers only what one of its subscriptions matches; when
// it removes its last subscription it buffers nothing more (not everything
// again). The warning that one of its own locks is about to lapse
// (lock.expiring with the session's Holder) is always buffered.
//
// # Coalescing
//
// A file.updated replaces the unread file.updated of the same path when
// both were made by the same actor under the same lock state (holder and
// conflict flag); an update by someone else is kept beside it, so that no
// writer's change disappears from the buffer.
//
// # Cursors
//
// A [Result]'s Cursor says, for every workspace of the session, the seq
// after which the agent has seen everything relevant to that Take, where
// relevant means the events the Take would return (all buffered events,
// or those of its subscription). It is the minimum of
//
//   - Head for that workspace,
//   - the seq just before the oldest relevant event still buffered, and
//   - when the Take reports Overflowed, the seq just before the oldest
//     event dropped since the previous report.
//
// So when nothing relevant is left and no overflow is reported, Cursor
// equals [Inbox.Head]; otherwise it is at or after the last returned event
// of each workspace and before anything the agent has not seen. Reading
// the durable log from Cursor (filtered with [Inbox.Matches]) therefore
// brings every dropped event.
//
// # Dedup
//
// Events of one workspace arrive in seq order, so Offer drops any event
// whose seq is at or below the highest seq offered so far for its
// workspace (a redelivery after a reconnect). The inbox keeps a few
// numbers per workspace, never a set of event IDs. De-duplication applies
// to the buffer only: reads of the log by cursor do not touch the inbox,
// so the same cursor always reads the same events.
package inbox

import (
	"context"
	"crypto/rand"
	"errors"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/filecast/filecast/events"
)

// Limits of Take and of the buffer.
const (
	DefaultCapacity = 10000 // buffered events when Options.Capacity is 0
	DefaultLimit    = 100   // events per Take when limit <= 0
	MaxLimit        = 1000  // events per Take at most
)

// ErrUnknownSubscription is returned by Take for a subscription ID this
// session does not have.
var ErrUnknownSubscription = errors.New("inbox: unknown subscription_id")

// Options configures an Inbox. The zero value of a field means its default.
type Options struct {
	Workspaces []string      // the workspaces this session may see; events of others are ignored
	Capacity   int           // max buffered events, default DefaultCapacity
	Holder     string        // this session's lock holder name, for exclude_own and lock.expiring; may be empty
	Actor      string        // the actor of this session's writes ("mcp:claude-code#3f2a"), for exclude_own; may be empty
	Start      events.Cursor // the log position the session starts after; Head begins here and older events are ignored
}

// Subscription is one subscribe call of the session.
type Subscription struct {
	ID         string
	Filter     events.Filter
	ExcludeOwn bool          // skip what the session did itself: its writes (Actor) and its lock.acquired and lock.released (Holder)
	Cursor     events.Cursor // Head when the subscription was created
}

// Result is what Take returns; see the package doc for Cursor.
type Result struct {
	Events     []events.Event // oldest first, never nil
	Cursor     events.Cursor  // where to resume reading the durable log
	HasMore    bool           // more events for this Take are still buffered
	Overflowed bool           // events were dropped since the previous report; read the log from Cursor
}

// wsState is the bookkeeping of one workspace; its size does not grow
// with the number of events.
type wsState struct {
	head   uint64 // highest seq offered (or Options.Start)
	open   bool   // selected events were dropped by overflow and that is not reported yet
	openLo uint64 // the first seq dropped since the last report, while open
}

// Inbox buffers the events one session selected until the agent takes
// them. All methods are safe for concurrent use; only Take blocks.
type Inbox struct {
	capacity int
	holder   string
	actor    string
	names    []string // workspaces, sorted

	mu         sync.Mutex
	ws         map[string]*wsState
	subs       []*Subscription // in creation order
	subscribed bool            // Subscribe was called at least once
	buf        *buffer
	overflowed bool          // dropped events not yet reported by a Take
	wake       chan struct{} // closed when something changes; nil when nobody waits
	closed     bool
}

// New returns an empty inbox for the given workspaces.
func New(opts Options) *Inbox {
	b := &Inbox{
		capacity: opts.Capacity,
		holder:   opts.Holder,
		actor:    opts.Actor,
		ws:       make(map[string]*wsState, len(opts.Workspaces)),
		buf:      newBuffer(),
	}
	if b.capacity <= 0 {
		b.capacity = DefaultCapacity
	}
	for _, name := range opts.Workspaces {
		if _, dup := b.ws[name]; dup {
			continue
		}
		b.ws[name] = &wsState{head: opts.Start.For(name)}
		b.names = append(b.names, name)
	}
	slices.Sort(b.names)
	return b
}

// AddWorkspace lets the session see workspace name from now on, starting
// after seq start (the position the router has reached in it). Adding a
// workspace the session already sees does nothing.
func (b *Inbox) AddWorkspace(name string, start uint64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.ws[name] != nil || b.closed {
		return
	}
	b.ws[name] = &wsState{head: start}
	b.names = append(b.names, name)
	slices.Sort(b.names)
}

// Subscribe adds a subscription and returns it with a new random ID
// ("sub_" and 12 characters). f.Workspace must be one of the session's
// workspaces or "" for all of them, else the error wraps
// events.ErrUnknownWorkspace. From the first subscription on, only events
// that match one of the session's subscriptions are buffered.
func (b *Inbox) Subscribe(f events.Filter, excludeOwn bool) (Subscription, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if f.Workspace != "" && b.ws[f.Workspace] == nil {
		return Subscription{}, &events.Error{Kind: events.ErrUnknownWorkspace, Value: f.Workspace,
			Why: "this session sees " + strings.Join(b.names, ", ")}
	}
	s := &Subscription{
		ID:         "sub_" + strings.ToLower(rand.Text()[:12]),
		Filter:     f,
		ExcludeOwn: excludeOwn,
		Cursor:     b.headLocked(),
	}
	b.subs = append(b.subs, s)
	b.subscribed = true
	return *s, nil
}

// Unsubscribe removes a subscription and reports whether it existed.
// Events already buffered stay; a Take waiting on it returns
// ErrUnknownSubscription. Once the last subscription is gone the buffer
// takes no new events but the session's own lock.expiring warnings.
func (b *Inbox) Unsubscribe(id string) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	i := slices.IndexFunc(b.subs, func(s *Subscription) bool { return s.ID == id })
	if i < 0 {
		return false
	}
	b.subs = slices.Delete(b.subs, i, i+1)
	b.notifyLocked()
	return true
}

// Subscriptions returns the session's subscriptions in creation order.
func (b *Inbox) Subscriptions() []Subscription {
	b.mu.Lock()
	defer b.mu.Unlock()
	out := make([]Subscription, len(b.subs))
	for i, s := range b.subs {
		out[i] = *s
	}
	return out
}

// Filter returns the filter of subscription id.
func (b *Inbox) Filter(id string) (events.Filter, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if s := b.subLocked(id); s != nil {
		return s.Filter, true
	}
	return events.Filter{}, false
}

// Offer hands the inbox one event. Events of one workspace must be offered
// in seq order; anything at or below the workspace's Head is a redelivery
// and is dropped. Offer never blocks on a reader and does no I/O.
func (b *Inbox) Offer(ev events.Event) {
	b.mu.Lock()
	defer b.mu.Unlock()
	w := b.ws[ev.Workspace]
	if b.closed || w == nil || ev.Seq <= w.head {
		return
	}
	w.head = ev.Seq
	if !b.selectedLocked(ev) {
		return
	}
	q := b.buf
	switch {
	case w.open:
		// Keep dropping until the overflow is reported, so that no
		// buffered event sits inside a dropped range.
		b.dropLocked(w, ev)
		return
	case ev.Type == events.FileUpdated:
		if q.coalesce(ev) {
			b.notifyLocked()
			return
		}
	case ev.Type.IsFile():
		q.forget(ev.Workspace, ev.Path)
		q.forget(ev.Workspace, ev.OldPath)
	}
	if q.live >= b.capacity {
		b.dropLocked(w, ev)
		return
	}
	q.push(ev)
	b.notifyLocked()
}

// dropLocked records ev as lost to overflow.
func (b *Inbox) dropLocked(w *wsState, ev events.Event) {
	if ev.Type.IsFile() {
		b.buf.forget(ev.Workspace, ev.Path)
		b.buf.forget(ev.Workspace, ev.OldPath)
	}
	if !w.open {
		w.open, w.openLo = true, ev.Seq
	}
	b.overflowed = true
	b.notifyLocked()
}

// Take returns and removes up to limit buffered events, oldest first:
// all of them when subID is "", else only those of that subscription (the
// rest stay for other calls). limit <= 0 means DefaultLimit; it is capped
// at MaxLimit. When nothing is there and wait > 0 it blocks until an
// event for it arrives, an overflow is detected, wait elapses (an empty
// Result), ctx is done (ctx.Err()) or the inbox is closed
// (events.ErrClosed). An unknown subID is an error wrapping
// ErrUnknownSubscription. Concurrent Takes never return the same event.
func (b *Inbox) Take(ctx context.Context, subID string, limit int, wait time.Duration) (Result, error) {
	switch {
	case limit <= 0:
		limit = DefaultLimit
	case limit > MaxLimit:
		limit = MaxLimit
	}
	var timer *time.Timer
	b.mu.Lock()
	for {
		if b.closed {
			b.mu.Unlock()
			return Result{}, events.ErrClosed
		}
		match := func(events.Event) bool { return true }
		if subID != "" {
			s := b.subLocked(subID)
			if s == nil {
				b.mu.Unlock()
				return Result{}, &events.Error{Kind: ErrUnknownSubscription, Value: subID, Why: "call subscribe again"}
			}
			match = func(ev events.Event) bool { return b.subMatch(s, ev) || b.alwaysOn(ev) }
		}
		res := b.takeLocked(match, limit)
		if len(res.Events) > 0 || res.Overflowed || wait <= 0 {
			b.mu.Unlock()
			return res, nil
		}
		if err := ctx.Err(); err != nil {
			b.mu.Unlock()
			return Result{}, err
		}
		if timer == nil {
			timer = time.NewTimer(wait)
			defer timer.Stop()
		}
		if b.wake == nil {
			b.wake = make(chan struct{})
		}
		wake := b.wake
		b.mu.Unlock()
		select {
		case <-wake:
		case <-timer.C:
			wait = 0 // one last look, then return what is there
		case <-ctx.Done():
			return Result{}, ctx.Err()
		}
		b.mu.Lock()
	}
}

// takeLocked removes up to limit matching events and builds the Result.
func (b *Inbox) takeLocked(match func(events.Event) bool, limit int) Result {
	q := b.buf
	res := Result{Events: make([]events.Event, 0, min(limit, q.live))}
	var first map[string]uint64 // oldest matching seq left per workspace
	for i := q.start; i < len(q.entries) && (first == nil || len(first) < len(b.names)); i++ {
		e := &q.entries[i]
		if !e.live || !match(e.ev) {
			continue
		}
		if len(res.Events) < limit {
			res.Events = append(res.Events, q.remove(i))
			continue
		}
		res.HasMore = true
		if first == nil {
			first = make(map[string]uint64, len(b.names))
		}
		if _, ok := first[e.ev.Workspace]; !ok {
			first[e.ev.Workspace] = e.ev.Seq
		}
	}
	q.tidy()
	res.Cursor = b.headLocked()
	for ws, seq := range first {
		res.Cursor[ws] = min(res.Cursor[ws], seq-1)
	}
	if b.overflowed {
		res.Overflowed = true
		b.overflowed = false
		for ws, w := range b.ws {
			if w.open {
				res.Cursor[ws] = min(res.Cursor[ws], w.openLo-1)
				w.open = false
			}
		}
	}
	return res
}

// Matches reports whether a read of the durable log by cursor returns ev
// for subID: the subscription's filter (and exclude_own) when subID is
// given, else any of the session's current subscriptions, else — when it
// has none — every file event; the holder's own lock.expiring always
// matches. Events of other workspaces and unknown subscriptions never
// match. It depends only on ev and the session's subscriptions, never on
// what the session has read, so the same cursor reads the same events.
func (b *Inbox) Matches(ev events.Event, subID string) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.ws[ev.Workspace] == nil {
		return false
	}
	if b.alwaysOn(ev) {
		return true
	}
	if subID == "" {
		if len(b.subs) == 0 {
			return ev.Type.IsFile()
		}
		return slices.ContainsFunc(b.subs, func(s *Subscription) bool { return b.subMatch(s, ev) })
	}
	s := b.subLocked(subID)
	return s != nil && b.subMatch(s, ev)
}

// Head returns, for every workspace of the session, the seq of the last
// event offered (selected or not), or Options.Start when none was.
func (b *Inbox) Head() events.Cursor {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.headLocked()
}

// Close wakes every waiting Take with events.ErrClosed; later Takes fail
// the same way and later Offers are ignored. Close is idempotent.
func (b *Inbox) Close() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.closed = true
	b.notifyLocked()
}

func (b *Inbox) headLocked() events.Cursor {
	c := make(events.Cursor, len(b.ws))
	for name, w := range b.ws {
		c[name] = w.head
	}
	return c
}

func (b *Inbox) notifyLocked() {
	if b.wake != nil {
		close(b.wake)
		b.wake = nil
	}
}

func (b *Inbox) subLocked(id string) *Subscription {
	for _, s := range b.subs {
		if s.ID == id {
			return s
		}
	}
	return nil
}

// selectedLocked is the buffering rule of Offer.
func (b *Inbox) selectedLocked(ev events.Event) bool {
	if b.alwaysOn(ev) {
		return true
	}
	if !b.subscribed {
		return ev.Type.IsFile()
	}
	for _, s := range b.subs {
		if b.subMatch(s, ev) {
			return true
		}
	}
	return false
}

// subMatch applies one subscription's filter and exclude_own.
func (b *Inbox) subMatch(s *Subscription, ev events.Event) bool {
	if s.ExcludeOwn && b.doneBySession(ev) {
		return false
	}
	return s.Filter.Match(ev)
}

// doneBySession reports whether the session made ev itself: a file
// change written as its actor, or a lock it took, refreshed or released.
// Expiries and warnings of its locks are not its doing.
func (b *Inbox) doneBySession(ev events.Event) bool {
	switch {
	case ev.Type.IsFile():
		return b.actor != "" && ev.Actor == b.actor
	case ev.Type == events.LockAcquired, ev.Type == events.LockReleased:
		return b.own(ev)
	}
	return false
}

// alwaysOn selects the warning that one of the session's own locks is
// about to lapse.
func (b *Inbox) alwaysOn(ev events.Event) bool {
	return ev.Type == events.LockExpiring && b.own(ev)
}

func (b *Inbox) own(ev events.Event) bool {
	return b.holder != "" && ev.Lock != nil && ev.Lock.Holder == b.holder
}
