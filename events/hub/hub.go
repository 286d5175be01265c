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
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/sourcegraph/conc"

	"github.com/filecast/filecast/events"
	"github.com/filecast/filecast/events/internal/wait"
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

// Options configures a Hub. Zero values mean the defaults.
type Options struct {
	Workspaces []workspace.Workspace // served workspaces; names must be unique
	Log        Log                   // required
	Ring       int                   // events kept in memory per workspace for fast replay, default 4096
	Queue      int                   // per-subscriber live queue, default 1024
	Locks      LockManager           // lock manager; nil for none, and then Lock fails with ErrNoLocks
	Contents   Contents              // earlier contents of files, for Content; nil keeps none
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

	log      Log
	direct   DirectLog // log, when it is one
	logger   *slog.Logger
	queue    int
	names    []string
	ws       map[string]*wsState
	ready    chan struct{}
	life     context.Context // done once Run has stopped
	stop     context.CancelFunc
	ran      atomic.Bool
	locks    LockManager // nil without locks
	contents Contents    // nil without a content store

	roomLog RoomLog // log, when it is one

	subscribers atomic.Int64
	fannedOut   atomic.Uint64
	overflows   atomic.Uint64
}

var _ events.Source = (*Hub)(nil)

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
		log:      opts.Log,
		locks:    opts.Locks,
		contents: opts.Contents,
		logger:   logger.With("component", "hub"),
		queue:    queueSize,
		ws:       make(map[string]*wsState, len(opts.Workspaces)),
		ready:    make(chan struct{}),
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
		if !wait.Sleep(ctx, backoff) {
			return
		}
		backoff = min(2*backoff, maxBackoff)
	}
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
