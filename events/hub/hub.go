// Package hub sequences and fans out the events of several workspaces. It
// appends events to a durable [Log], follows that log once per workspace,
// keeps the newest events of each workspace in a memory ring for fast
// replay, and hands them to any number of subscribers. It implements
// [events.Source]. With a [DirectLog] (the journal is one), an event the
// hub appends itself reaches the ring and the subscribers as soon as the
// log has stored it, still strictly in seq order; the follower then only
// brings what other writers of a shared log appended.
//
// Every subscriber gets a bounded queue. Fan-out never waits for a slow
// subscriber: when its queue is full the subscriber is cut off from the live
// stream, catches up from the log by its last delivered seq, and rejoins.
// A subscription therefore never loses an event and never sees one twice;
// the log is the backstop.
//
// The hub is also an [events.Locker]. Given a lock manager (Options.Locks,
// a [LockManager] such as *lock.Manager), it takes, refreshes, lists and
// releases leases, and the manager, run with the hub as its appender,
// reports every lock change as an event appended here. File events learn
// about locks:
//
//   - every file event on a path locked at the time carries Lock (holder,
//     fencing token, mode);
//   - WriteFile writes through the hub: it refuses a write to a path
//     someone else holds exclusively (events.ErrLocked, HTTP 423) and a
//     write with a lock or fencing token that is no longer current
//     (events.ErrStale, HTTP 409), so a lock protects the file, not only
//     the agents that remember to ask. The holder's own write carries its
//     lock and Conflict false;
//   - a change observed on disk (actor "fs", appended with Append) to a
//     path someone holds exclusively bypassed the lock and is flagged
//     Conflict true. Agents that hold a lock should therefore write through
//     write_file or PUT with their lock_token.
//
// WriteFile tells the workspace's watcher (an [Expecter]) about the change
// before making it, so that the change is reported once, by the writer.
//
// When several hubs share one log, one of them watches each workspace. A
// hub that does not (its SetIndex is nil) hands WriteFile and Files to the
// [Relay] set with SetRelay, which forwards them to the watching hub (see
// package relay); without a relay it writes itself and lists nothing, as
// a hub alone does.
// Without a lock manager no path is locked: WriteFile still writes, and
// Lock, Unlock and Locks fail with ErrNoLocks.
//
//	m, err := lock.Open(ctx, nc, lock.Options{}) // optional
//	if err != nil { ... }
//	h, err := hub.New(hub.Options{Workspaces: wss, Log: j, Locks: m})
//	if err != nil { ... }
//	h.SetIndex("docs", watcher)          // file listings, optional
//	go h.Run(ctx)                        // owned by the caller; returns when ctx is done
//	go m.Run(ctx, h)                     // the lock manager appends its events to h
//	<-h.Ready()
//	ev, err := h.Append(ctx, events.Event{Workspace: "docs", Type: events.FileUpdated, Path: "a.md"})
//	err = h.Subscribe(ctx, "docs", 0, func(ev events.Event) error {
//		fmt.Println(ev.Seq, ev.Type, ev.Path)
//		return nil
//	})
//	l, err := h.Lock(ctx, events.LockRequest{Workspace: "docs", Path: "a.md", Holder: "claude#3f2a"})
//	ev, err = h.WriteFile(ctx, events.WriteRequest{Workspace: "docs", Path: "a.md",
//		Content: []byte("new"), LockToken: l.Token, Actor: "api:ci"})
package hub

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/oklog/ulid/v2"
	"github.com/sourcegraph/conc"

	"github.com/filecast/filecast/events"
	"github.com/filecast/filecast/events/workspace"
)

// Errors returned by the hub itself; it also returns the events sentinels.
var (
	ErrRunning = errors.New("hub: Run was already called")
	ErrConfig  = errors.New("hub: invalid options")
)

const (
	// DefaultRing is the number of events kept in memory per workspace
	// when Options.Ring is not set.
	DefaultRing = 4096
	// DefaultQueue is the live queue of a subscriber when Options.Queue is
	// not set.
	DefaultQueue = 1024
	// DefaultLimit is the page size of Changes when limit <= 0.
	DefaultLimit = 100
	// MaxLimit is the largest page Changes returns.
	MaxLimit = 1000
)

const (
	readPage       = 1000 // events per Log.Read while a subscriber catches up
	minBackoff     = 100 * time.Millisecond
	maxBackoff     = 5 * time.Second
	workspacesHint = 10 // workspace names quoted in an unknown-workspace error
	// maxEarly bounds the events a workspace holds back because they were
	// stored after a seq it has not seen yet; beyond it they wait for the
	// follower like the events of other hubs.
	maxEarly = 1024
)

// Log is the durable event log (satisfied by *journal.Journal). Its
// methods are safe for concurrent use.
type Log interface {
	// Append stores ev and returns it with Seq assigned.
	Append(ctx context.Context, ev events.Event) (events.Event, error)
	// Read returns up to limit events of ws with seq greater than after,
	// in order; events.ErrCursorExpired when retention dropped some of them.
	Read(ctx context.Context, ws string, after uint64, limit int) ([]events.Event, error)
	// Head returns the seq of the newest event of ws, 0 if none.
	Head(ctx context.Context, ws string) (uint64, error)
	// Follow calls fn with every event of ws after after, in order, first
	// the stored ones and then live ones. It blocks until ctx is done or
	// fn or the log fails.
	Follow(ctx context.Context, ws string, after uint64, fn func(events.Event) error) error
}

// DirectLog is a Log that lets the hub fan out its own appends directly
// (satisfied by *journal.Journal). With one, an event the hub appends goes
// to the ring and the subscribers as soon as the log has stored it, on the
// appending goroutine, instead of after the follower has read it back;
// the follower then only brings, in order, what this hub did not append
// itself (other hubs sharing the log) and skips the rest undecoded.
type DirectLog interface {
	Log
	// AppendStored is Append that also reports whether this call stored
	// ev; when it did, the event returned is exactly what Read and Follow
	// return for its seq.
	AppendStored(ctx context.Context, ev events.Event) (events.Event, bool, error)
	// FollowSkipping is Follow without decoding, nor calling fn for, the
	// seqs for which skip returns true.
	FollowSkipping(ctx context.Context, ws string, after uint64, skip func(seq uint64) bool, fn func(events.Event) error) error
}

// Index lists a workspace's files (satisfied by *watch.Watcher). It is
// safe for concurrent use.
type Index interface {
	// Files returns the files whose path is prefix or lies under it (""
	// for all), and the seq of the last event the listing reflects.
	Files(prefix string) ([]events.FileInfo, uint64)
}

// Options configures a Hub. Zero values mean the defaults.
type Options struct {
	Workspaces []workspace.Workspace // served workspaces; names must be unique
	Log        Log                   // required
	Ring       int                   // events kept in memory per workspace for fast replay, default 4096
	Queue      int                   // per-subscriber live queue, default 1024
	Locks      LockManager           // lock manager; nil for none, and then Lock fails with ErrNoLocks
	Logger     *slog.Logger          // nil discards logs
}

// Stats is a snapshot of the hub's counters.
type Stats struct {
	Subscribers   int                    // Subscribe calls in progress
	FannedOut     uint64                 // events queued to live subscribers
	Overflows     uint64                 // times a subscriber's queue was full and it had to catch up from the log
	Appended      map[events.Type]uint64 // events this hub appended, by type
	LockConflicts uint64                 // lock requests refused because someone else held the lock
}

// allTypes are the event types counted in Stats.Appended.
var allTypes = []events.Type{
	events.FileCreated, events.FileUpdated, events.FileDeleted, events.FileMoved,
	events.LockAcquired, events.LockReleased, events.LockExpiring, events.LockExpired,
}

// typeCounters counts events by type without locking.
type typeCounters [8]atomic.Uint64

func (c *typeCounters) add(t events.Type) {
	if i := slices.Index(allTypes, t); i >= 0 {
		c[i].Add(1)
	}
}

func (c *typeCounters) snapshot() map[events.Type]uint64 {
	out := make(map[events.Type]uint64, len(allTypes))
	for i, t := range allTypes {
		out[t] = c[i].Load()
	}
	return out
}

// Hub sequences and fans out the events of its workspaces. All methods
// are safe for concurrent use. Run must be called once for Subscribe to
// deliver anything; after Run returns the hub is closed.
type Hub struct {
	appended      typeCounters
	lockConflicts atomic.Uint64

	log    Log
	direct DirectLog // log, when it is one
	logger *slog.Logger
	queue  int
	names  []string
	ws     map[string]*wsState
	ready  chan struct{}
	life   context.Context // done once Run has stopped
	stop   context.CancelFunc
	ran    atomic.Bool
	locks  LockManager // nil without locks

	roomLog RoomLog // log, when it is one

	subscribers atomic.Int64
	fannedOut   atomic.Uint64
	overflows   atomic.Uint64
}

var _ events.Source = (*Hub)(nil)

// wsState is one workspace's ring, head and live subscribers.
type wsState struct {
	w      workspace.Workspace
	index  atomic.Pointer[indexBox]
	liveCh chan struct{} // closed when the follower first starts

	mu     sync.Mutex
	live   bool // the follower feeds ring and head
	head   uint64
	ring   ring
	subs   map[*queue]struct{}
	notify chan struct{}            // closed at the next event; nil until someone waits
	early  map[uint64]*events.Event // appended here, waiting for head to reach seq-1

	writeMu sync.Mutex // serialises WriteFile

	relay atomic.Pointer[relayBox] // used while index is nil

	missing missingSince // when the folder was found missing, without a Presence index
}

type indexBox struct {
	Index
	exp Expecter // the index's, if it is one
}

// Relay forwards the calls only the hub watching a workspace can answer
// to that hub, wherever it runs (satisfied by *relay.Client). Its methods
// are safe for concurrent use and return the watching hub's errors as
// they are.
type Relay interface {
	// Files lists the files of ws under prefix from the watcher's index.
	Files(ctx context.Context, ws, prefix string) (events.Listing, error)
	// WriteFile writes or deletes a file through the watching hub.
	WriteFile(ctx context.Context, w events.WriteRequest) (events.Event, error)
}

type relayBox struct{ Relay }

// New checks the options and returns a hub that is not running yet.
func New(opts Options) (*Hub, error) {
	if opts.Log == nil {
		return nil, fmt.Errorf("%w: Log is required", ErrConfig)
	}
	ringSize, queueSize := opts.Ring, opts.Queue
	if ringSize <= 0 {
		ringSize = DefaultRing
	}
	if queueSize <= 0 {
		queueSize = DefaultQueue
	}
	logger := opts.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	h := &Hub{
		log:    opts.Log,
		locks:  opts.Locks,
		logger: logger.With("component", "hub"),
		queue:  queueSize,
		ws:     make(map[string]*wsState, len(opts.Workspaces)),
		ready:  make(chan struct{}),
	}
	h.direct, _ = opts.Log.(DirectLog)
	h.roomLog, _ = opts.Log.(RoomLog)
	h.life, h.stop = context.WithCancel(context.Background())
	for _, w := range opts.Workspaces {
		if err := events.ValidWorkspaceName(w.Name); err != nil {
			return nil, fmt.Errorf("%w: %w", ErrConfig, err)
		}
		if _, dup := h.ws[w.Name]; dup {
			return nil, fmt.Errorf("%w: workspace %q given twice", ErrConfig, w.Name)
		}
		h.ws[w.Name] = &wsState{
			w:      w,
			liveCh: make(chan struct{}),
			ring:   newRing(ringSize),
			subs:   map[*queue]struct{}{},
		}
		h.names = append(h.names, w.Name)
	}
	slices.Sort(h.names)
	return h, nil
}

// Workspace returns the workspace called name.
func (h *Hub) Workspace(name string) (workspace.Workspace, bool) {
	st, ok := h.ws[name]
	if !ok {
		return workspace.Workspace{}, false
	}
	return st.w, true
}

// SetIndex sets (or, with nil, removes) the file index of workspace ws;
// it may be called before or after Run. An unknown ws is logged and ignored.
// When idx is also an [Expecter] (a watcher), WriteFile tells it about the
// hub's own changes.
func (h *Hub) SetIndex(ws string, idx Index) {
	st, ok := h.ws[ws]
	if !ok {
		h.logger.Error("set index of unknown workspace", "workspace", ws)
		return
	}
	if idx == nil {
		st.index.Store(nil)
		return
	}
	box := &indexBox{Index: idx}
	box.exp, _ = idx.(Expecter)
	st.index.Store(box)
}

// SetRelay sets (or, with nil, removes) the relay of workspace ws; it may
// be called at any time. While ws has no index, Files and WriteFile of ws
// go through r to the hub that watches it; with an index they stay here.
// An unknown ws is logged and ignored.
func (h *Hub) SetRelay(ws string, r Relay) {
	st, ok := h.ws[ws]
	if !ok {
		h.logger.Error("set relay of unknown workspace", "workspace", ws)
		return
	}
	if r == nil {
		st.relay.Store(nil)
		return
	}
	st.relay.Store(&relayBox{r})
}

// relayFor returns the relay of ws when ws has one and no index.
func (h *Hub) relayFor(ws string) Relay {
	st, ok := h.ws[ws]
	if !ok || st.index.Load() != nil {
		return nil
	}
	if box := st.relay.Load(); box != nil {
		return box.Relay
	}
	return nil
}

// Ready returns a channel closed when every workspace's follower has
// started, so that Subscribe and Changes are served from memory. It is
// never closed if Run fails before that.
func (h *Hub) Ready() <-chan struct{} { return h.ready }

// Stats returns a snapshot of the counters.
func (h *Hub) Stats() Stats {
	return Stats{
		Subscribers:   int(h.subscribers.Load()),
		FannedOut:     h.fannedOut.Load(),
		Overflows:     h.overflows.Load(),
		Appended:      h.appended.snapshot(),
		LockConflicts: h.lockConflicts.Load(),
	}
}

// Run follows the log of every workspace from its current head, feeding
// the rings and live subscribers. It blocks until ctx is done, then waits
// for its goroutines, closes the hub and returns nil; it returns an error
// at once if a head cannot be read. Run may be called only once.
func (h *Hub) Run(ctx context.Context) error {
	if !h.ran.CompareAndSwap(false, true) {
		return ErrRunning
	}
	defer h.stop()
	heads := make([]uint64, len(h.names))
	for i, name := range h.names {
		head, err := h.log.Head(ctx, name)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("read head of %s: %w", name, err)
		}
		heads[i] = head
	}
	var wg conc.WaitGroup
	for i, name := range h.names {
		st := h.ws[name]
		st.mu.Lock()
		st.live, st.head = true, heads[i]
		st.ring.reset(heads[i])
		st.mu.Unlock()
		close(st.liveCh)
		wg.Go(func() { h.follow(ctx, st) })
	}
	close(h.ready)
	h.logger.Debug("hub running", "workspaces", len(h.names))
	<-ctx.Done()
	h.stop()
	wg.Wait()
	for _, st := range h.ws {
		st.mu.Lock()
		st.live = false
		st.ring.reset(st.head)
		clear(st.subs)
		st.early = nil
		st.mu.Unlock()
	}
	return nil
}

// follow runs Log.Follow for one workspace, resuming after failures.
func (h *Hub) follow(ctx context.Context, st *wsState) {
	backoff := minBackoff
	for {
		from := st.currentHead()
		fn := func(ev events.Event) error {
			h.publish(st, &ev, true)
			return nil
		}
		var err error
		if h.direct != nil {
			err = h.direct.FollowSkipping(ctx, st.w.Name, from, st.seen, fn)
		} else {
			err = h.log.Follow(ctx, st.w.Name, from, fn)
		}
		if ctx.Err() != nil {
			return
		}
		if st.currentHead() > from {
			backoff = minBackoff
		}
		h.logger.Warn("follow log", "workspace", st.w.Name, "after", from, "err", err, "retry_in", backoff)
		t := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		backoff = min(2*backoff, maxBackoff)
	}
}

// publish adds ev to the ring and queues it to every live subscriber
// without blocking; a subscriber whose queue is full is dropped from the
// live set and catches up from the log by itself.
//
// The follower's events (fromLog) come in log order and go out at once.
// An event the hub appended itself goes out at once only when it is the
// next seq; one stored after a seq the hub has not seen yet (another
// append's acknowledgement still on its way, or another hub's event) waits
// in early until the gap is filled, by the follower at the latest, so the
// ring and every subscriber see seqs in order.
func (h *Hub) publish(st *wsState, p *events.Event, fromLog bool) {
	var fanned, over uint64
	st.mu.Lock()
	if !st.live || p.Seq <= st.head {
		st.mu.Unlock()
		return
	}
	if !fromLog && p.Seq != st.head+1 {
		if len(st.early) < maxEarly {
			if st.early == nil {
				st.early = map[uint64]*events.Event{}
			}
			st.early[p.Seq] = p
		}
		st.mu.Unlock()
		return
	}
	for p != nil {
		st.ring.push(p)
		st.head = p.Seq
		for q := range st.subs {
			if q.push(p) {
				fanned++
			} else {
				delete(st.subs, q)
				over++
			}
		}
		p = st.nextEarly()
	}
	if st.notify != nil {
		close(st.notify)
		st.notify = nil
	}
	st.mu.Unlock()
	h.fannedOut.Add(fanned)
	if over > 0 {
		h.overflows.Add(over)
	}
}

// nextEarly takes the held-back event that follows head, if any, and
// forgets those head has passed. st.mu must be held.
func (st *wsState) nextEarly() *events.Event {
	if len(st.early) == 0 {
		return nil
	}
	if p, ok := st.early[st.head+1]; ok {
		delete(st.early, st.head+1)
		return p
	}
	for seq := range st.early {
		if seq <= st.head {
			delete(st.early, seq)
		}
	}
	return nil
}

// seen reports whether seq is already in the ring (or before it): the
// follower then need not decode it.
func (st *wsState) seen(seq uint64) bool {
	st.mu.Lock()
	defer st.mu.Unlock()
	return seq <= st.head
}

func (st *wsState) currentHead() uint64 {
	st.mu.Lock()
	defer st.mu.Unlock()
	return st.head
}

// waitCh returns a channel closed at the next event; st.mu must be held.
func (st *wsState) waitCh() chan struct{} {
	if st.notify == nil {
		st.notify = make(chan struct{})
	}
	return st.notify
}

func (h *Hub) state(ws string) (*wsState, error) {
	if st, ok := h.ws[ws]; ok {
		return st, nil
	}
	names := h.names
	if len(names) > workspacesHint {
		names = names[:workspacesHint]
	}
	return nil, &events.Error{Kind: events.ErrUnknownWorkspace, Value: ws, Why: "known workspaces: " + strings.Join(names, ", ")}
}

// head returns the head from memory while following, else from the log.
func (h *Hub) head(ctx context.Context, st *wsState) (uint64, error) {
	st.mu.Lock()
	live, head := st.live, st.head
	st.mu.Unlock()
	if live {
		return head, nil
	}
	head, err := h.log.Head(ctx, st.w.Name)
	if err != nil {
		return 0, fmt.Errorf("read head of %s: %w", st.w.Name, err)
	}
	return head, nil
}

// Append checks ev (known workspace, valid type, clean paths), fills its
// ID and Time when empty, and appends it to the log. It returns the event
// as stored, with its Seq. It does not wait for subscribers.
//
// A file event without Lock gets the lock held on its path at this moment
// (see the package doc): with a lock manager, a change appended here to a
// path someone holds exclusively is flagged Conflict, since it did not go
// through WriteFile.
func (h *Hub) Append(ctx context.Context, ev events.Event) (events.Event, error) {
	if ev.Type.IsFile() && ev.Lock == nil {
		if rel, err := workspace.Clean(ev.Path); err == nil {
			ev.Path = rel
			if old, err := workspace.Clean(ev.OldPath); err == nil {
				ev.OldPath = old
			}
			h.annotate(&ev)
		}
	}
	return h.appendEvent(ctx, ev)
}

// appendEvent is Append without the lock annotation.
func (h *Hub) appendEvent(ctx context.Context, ev events.Event) (events.Event, error) {
	st, ev, err := h.prepare(ev)
	if err != nil {
		return events.Event{}, err
	}
	if h.direct == nil {
		out, err := h.log.Append(ctx, ev)
		if err != nil {
			return events.Event{}, fmt.Errorf("append event to %s: %w", ev.Workspace, err)
		}
		h.appended.add(ev.Type)
		return out, nil
	}
	out, stored, err := h.direct.AppendStored(ctx, ev)
	if err != nil {
		return events.Event{}, fmt.Errorf("append event to %s: %w", ev.Workspace, err)
	}
	h.appended.add(ev.Type)
	if stored {
		p := new(events.Event)
		*p = out
		if p.Lock != nil { // the caller's copy must not alias what subscribers get
			l := *p.Lock
			p.Lock = &l
		}
		h.publish(st, p, false)
	}
	return out, nil
}

// prepare checks ev and fills in its ID and Time, as appendEvent does.
func (h *Hub) prepare(ev events.Event) (*wsState, events.Event, error) {
	st, err := h.state(ev.Workspace)
	if err != nil {
		return nil, ev, err
	}
	if !ev.Type.Valid() {
		return nil, ev, &events.Error{Kind: events.ErrBadType, Value: string(ev.Type), Why: "not one of the known event types"}
	}
	ev.Path, err = workspace.Clean(ev.Path)
	if err != nil {
		return nil, ev, err
	}
	if ev.OldPath != "" {
		if ev.OldPath, err = workspace.Clean(ev.OldPath); err != nil {
			return nil, ev, err
		}
	}
	if ev.Type == events.FileMoved && ev.OldPath == "" {
		return nil, ev, &events.Error{Kind: events.ErrBadPath, Value: ev.Path, Why: "a file.moved event needs old_path"}
	}
	ev.Seq = 0
	if ev.ID == "" {
		ev.ID = ulid.Make().String()
	}
	if ev.Time.IsZero() {
		ev.Time = time.Now().UTC()
	}
	return st, ev, nil
}

// Workspaces lists the workspaces, sorted by name, with their heads.
func (h *Hub) Workspaces(ctx context.Context) ([]events.WorkspaceInfo, error) {
	out := make([]events.WorkspaceInfo, 0, len(h.names))
	for _, name := range h.names {
		head, err := h.head(ctx, h.ws[name])
		if err != nil {
			return nil, err
		}
		out = append(out, events.WorkspaceInfo{Name: name, Head: head})
	}
	return out, nil
}

// Changes returns up to limit events of ws after after (limit <= 0 means
// 100, at most 1000), from memory when the ring still holds them, else
// from the log. With nothing to return and wait > 0 it blocks until an
// event arrives, wait elapses (an empty page) or ctx is done (ctx.Err());
// before Run, only the timeout ends such a wait.
// Next is the seq of the last event returned, else the head, but never
// less than after.
func (h *Hub) Changes(ctx context.Context, ws string, after uint64, limit int, wait time.Duration) (events.Page, error) {
	st, err := h.state(ws)
	if err != nil {
		return events.Page{}, err
	}
	switch {
	case limit <= 0:
		limit = DefaultLimit
	case limit > MaxLimit:
		limit = MaxLimit
	}
	var timeout <-chan time.Time
	if wait > 0 {
		t := time.NewTimer(wait)
		defer t.Stop()
		timeout = t.C
	}
	for {
		page, notify, err := h.page(ctx, st, after, limit, wait > 0)
		if err != nil || len(page.Events) > 0 || wait <= 0 {
			return page, err
		}
		select {
		case <-notify:
		case <-timeout:
			return page, nil
		case <-h.life.Done():
			return page, nil
		case <-ctx.Done():
			return events.Page{}, ctx.Err()
		}
	}
}

// page reads one page; when asked it also returns a channel closed at the
// next event, taken before reading so that no event slips between.
func (h *Hub) page(ctx context.Context, st *wsState, after uint64, limit int, wantNotify bool) (events.Page, chan struct{}, error) {
	var notify chan struct{}
	st.mu.Lock()
	if wantNotify {
		notify = st.waitCh()
	}
	live, head := st.live, st.head
	if live && st.ring.covers(after) {
		i := st.ring.after(after)
		evs := make([]events.Event, min(limit, st.ring.n-i))
		for j := range evs {
			evs[j] = *st.ring.at(i + j)
		}
		st.mu.Unlock()
		return newPage(evs, after, head), notify, nil
	}
	st.mu.Unlock()
	if !live {
		var err error
		if head, err = h.head(ctx, st); err != nil {
			return events.Page{}, nil, err
		}
	}
	// One more than asked tells whether more exist even when the
	// in-memory head lags behind the log.
	evs, err := h.log.Read(ctx, st.w.Name, after, limit+1)
	if err != nil {
		return events.Page{}, nil, fmt.Errorf("read %s after %d: %w", st.w.Name, after, err)
	}
	more := len(evs) > limit
	if more {
		evs = evs[:limit]
	}
	if evs == nil {
		evs = []events.Event{}
	}
	p := newPage(evs, after, head)
	p.HasMore = p.HasMore || more
	return p, notify, nil
}

func newPage(evs []events.Event, after, head uint64) events.Page {
	p := events.Page{Events: evs, Next: max(head, after)}
	if n := len(evs); n > 0 {
		p.Next = evs[n-1].Seq
		p.HasMore = p.Next < head
	}
	return p
}

// Files lists the files of ws under prefix from the workspace's index,
// with the cursor the listing is consistent with. Without an index it
// asks the relay (see SetRelay) when there is one; else the listing is
// empty and its cursor is the head.
func (h *Hub) Files(ctx context.Context, ws, prefix string) (events.Listing, error) {
	st, err := h.state(ws)
	if err != nil {
		return events.Listing{}, err
	}
	p, err := workspace.CleanPrefix(prefix)
	if err != nil {
		return events.Listing{}, err
	}
	if r := h.relayFor(ws); r != nil {
		return r.Files(ctx, ws, p)
	}
	if err := h.present(st); err != nil {
		return events.Listing{}, err
	}
	if box := st.index.Load(); box != nil {
		files, seq := box.Files(p)
		if files == nil {
			files = []events.FileInfo{}
		}
		return events.Listing{Workspace: ws, Files: files, Cursor: seq}, nil
	}
	head, err := h.head(ctx, st)
	if err != nil {
		return events.Listing{}, err
	}
	return events.Listing{Workspace: ws, Files: []events.FileInfo{}, Cursor: head}, nil
}

// ReadFile reads a file of ws by its relative path, refusing paths and
// symlinks that leave the workspace (events.ErrBadPath) and files larger
// than events.MaxReadSize (events.ErrTooLarge). The description carries the
// size, sha256 and mtime of the data read, and the version from the index.
func (h *Hub) ReadFile(ctx context.Context, ws, path string) ([]byte, events.FileInfo, error) {
	st, err := h.state(ws)
	if err != nil {
		return nil, events.FileInfo{}, err
	}
	if err := ctx.Err(); err != nil {
		return nil, events.FileInfo{}, err
	}
	rel, err := workspace.Clean(path)
	if err != nil {
		return nil, events.FileInfo{}, err
	}
	if err := h.present(st); err != nil {
		return nil, events.FileInfo{}, err
	}
	data, fi, err := st.w.ReadFile(rel, events.MaxReadSize)
	if err != nil {
		if !errors.Is(err, events.ErrNotFound) && !errors.Is(err, events.ErrBadPath) && !errors.Is(err, events.ErrTooLarge) {
			err = h.missingRoot(st, err)
		}
		return nil, events.FileInfo{}, err
	}
	sum := sha256.Sum256(data)
	info := events.FileInfo{Path: rel, Size: int64(len(data)), SHA256: hex.EncodeToString(sum[:]), ModTime: fi.ModTime()}
	info.Version = h.version(ctx, st, rel)
	return data, info, nil
}

// Stater is an Index that can describe one file without listing others
// (*watch.Watcher is one).
type Stater interface {
	Stat(rel string) (events.FileInfo, bool)
}

// version returns the seq of the last event of file rel as the index of
// its workspace knows it — the local one, or through the relay the
// watching hub's — or 0 when none knows the file.
func (h *Hub) version(ctx context.Context, st *wsState, rel string) uint64 {
	var files []events.FileInfo
	if box := st.index.Load(); box != nil {
		if s, ok := box.Index.(Stater); ok {
			f, _ := s.Stat(rel)
			return f.Version
		}
		files, _ = box.Files(rel)
	} else if r := h.relayFor(st.w.Name); r != nil {
		list, err := r.Files(ctx, st.w.Name, rel)
		if err != nil {
			return 0
		}
		files = list.Files
	}
	for _, f := range files {
		if f.Path == rel {
			return f.Version
		}
	}
	return 0
}

// BatchLog is a DirectLog that can also append several events of one
// workspace with one wait for all their acknowledgements.
type BatchLog interface {
	AppendStoredBatch(ctx context.Context, evs []events.Event) ([]events.Event, []bool, error)
}

// AppendBatch is Append for several events of one workspace, stored in
// the order given: when the log is a BatchLog, it publishes them all, then
// waits for their acknowledgements, which costs about one round trip for
// the whole batch. It returns the events as stored, in order. On error it
// returns those known to be stored, a prefix of evs (later ones may have
// been stored too). Safe for concurrent use, though callers that need
// their events in order call it serially.
func (h *Hub) AppendBatch(ctx context.Context, evs []events.Event) ([]events.Event, error) {
	bl, ok := h.direct.(BatchLog)
	if !ok || len(evs) < 2 {
		out := make([]events.Event, 0, len(evs))
		for _, ev := range evs {
			got, err := h.Append(ctx, ev)
			if err != nil {
				return out, err
			}
			out = append(out, got)
		}
		return out, nil
	}
	in := make([]events.Event, len(evs))
	var st *wsState
	for i, ev := range evs {
		if i > 0 && ev.Workspace != evs[0].Workspace {
			return nil, &events.Error{Kind: events.ErrUnknownWorkspace, Value: ev.Workspace, Why: "a batch holds events of one workspace"}
		}
		if ev.Type.IsFile() && ev.Lock == nil {
			if rel, err := workspace.Clean(ev.Path); err == nil {
				ev.Path = rel
				if old, err := workspace.Clean(ev.OldPath); err == nil {
					ev.OldPath = old
				}
				h.annotate(&ev)
			}
		}
		var err error
		if st, ev, err = h.prepare(ev); err != nil {
			return nil, err
		}
		in[i] = ev
	}
	out, stored, err := bl.AppendStoredBatch(ctx, in)
	if err != nil {
		err = fmt.Errorf("append events to %s: %w", evs[0].Workspace, err)
	}
	for i := range out {
		h.appended.add(out[i].Type)
		if stored[i] {
			p := new(events.Event)
			*p = out[i]
			if p.Lock != nil {
				l := *p.Lock
				p.Lock = &l
			}
			h.publish(st, p, false)
		}
	}
	return out, err
}
