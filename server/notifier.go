package server

import (
	"context"
	"log/slog"
	"sync"
	"sync/atomic"

	"github.com/mark3labs/mcp-go/mcp"
	mcpserver "github.com/mark3labs/mcp-go/server"

	"github.com/filecast/filecast/events"
	"github.com/filecast/filecast/resources"
)

// notifier delivers resource notifications to one client stream: a legacy
// session (resources/subscribe) or one subscriptions/listen stream.
//
// The router calls offer, which never blocks: a URI already pending is not
// queued twice, and list_changed is one flag. While a stdio session's
// notification channel has room and no sender runs, offer puts the
// notifications in it itself; otherwise a sender goroutine writes the
// pending notifications into it with a blocking send, so a slow client
// slows its own notifier and nothing is lost; the newest state of every
// URI is always notified after its last change, because a URI leaves the
// pending set before it is sent.
//
// The sender runs only while something is pending: offer starts it (with
// the spawn function given to start, which ties it to Run's goroutine
// group) and it exits once it has sent everything, so an idle session
// costs no goroutine. The maps are allocated on first use.
type notifier struct {
	session  mcpserver.ClientSession
	listenID any         // JSON-RPC id of the subscriptions/listen request, nil for a session's own notifier
	lists    bool        // wants notifications/resources/list_changed
	legacy   atomic.Bool // a session's own notifier: the session negotiated a protocol before 2026-07-28
	stats    *counters
	log      *slog.Logger

	mu          sync.Mutex
	refs        map[resources.Ref]int // subscribed URIs, with a count of subscribe calls
	folders     []resources.Ref
	pending     map[string]struct{}
	queue       []string
	listPending bool
	ctx         context.Context // Run's, once started
	spawn       func(func())    // starts the sender in Run's group, once started
	quit        chan struct{}   // closed by stop; made when the first sender starts
	sending     bool            // a sender goroutine runs
	started     bool
	stopped     bool
}

func newNotifier(session mcpserver.ClientSession, listenID any, lists bool, stats *counters, log *slog.Logger) *notifier {
	return &notifier{
		session:  session,
		listenID: listenID,
		lists:    lists,
		stats:    stats,
		log:      log,
	}
}

// setLegacy lets a session's own notifier send list_changed: its session
// did a legacy initialize. Under 2026-07-28 notifications go only to the
// subscriptions/listen streams that asked for them.
func (n *notifier) setLegacy() { n.legacy.Store(true) }

// subscribe adds a resource subscription.
func (n *notifier) subscribe(r resources.Ref) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.refs == nil {
		n.refs = map[resources.Ref]int{}
	}
	n.refs[r]++
	if r.Folder && n.refs[r] == 1 {
		n.folders = append(n.folders, r)
	}
}

// unsubscribe removes a resource subscription; it reports whether there was one.
func (n *notifier) unsubscribe(r resources.Ref) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	if _, ok := n.refs[r]; !ok {
		return false
	}
	delete(n.refs, r)
	if r.Folder {
		for i, f := range n.folders {
			if f == r {
				n.folders = append(n.folders[:i], n.folders[i+1:]...)
				break
			}
		}
	}
	return true
}

func (n *notifier) covers(ws, path string) bool {
	if _, ok := n.refs[resources.Ref{Workspace: ws, Path: path}]; ok {
		return true
	}
	for _, f := range n.folders {
		if f.Covers(ws, path) {
			return true
		}
	}
	return false
}

// offer queues the notifications ev brings. It never blocks.
func (n *notifier) offer(ev events.Event) {
	if !ev.Type.IsFile() {
		return
	}
	n.mu.Lock()
	if n.stopped {
		n.mu.Unlock()
		return
	}
	queued := false
	if len(n.refs) > 0 {
		queued = n.queueURI(ev.Workspace, ev.Path)
		if ev.OldPath != "" {
			queued = n.queueURI(ev.Workspace, ev.OldPath) || queued
		}
	}
	if n.lists && ev.Type != events.FileUpdated && (n.listenID != nil || n.legacy.Load() && n.session.Initialized() && !isModern(n.session)) {
		if n.listPending {
			n.stats.coalesced.Add(1)
		} else {
			n.listPending, queued = true, true
		}
	}
	if queued {
		n.flushLocked()
	}
	n.mu.Unlock()
}

// flushLocked puts what is pending straight into the session's
// notification channel when no sender runs and the channel has room,
// the common case of changes one at a time: then a notification costs
// no goroutine. What does not fit goes to a sender, which waits for
// room. n.mu must be held.
//
// Only a stdio session's queue is filled directly: mcp-go's streamable
// HTTP session hands its queue to whichever POST is in flight and can
// lose a notification taken just as that POST ends, and a notification
// queued at the very moment the change wakes a list_changes long-poll
// meets that window far more often than one queued by a sender.
func (n *notifier) flushLocked() {
	_, stdio := n.session.(*stdioSession)
	if !stdio || n.sending || !n.started || n.stopped || n.ctx.Err() != nil {
		n.sendLocked()
		return
	}
	ch := n.session.NotificationChannel()
	for {
		nt, uri, ok := n.takeLocked()
		if !ok {
			return
		}
		select {
		case ch <- nt:
			n.stats.notified.Add(1)
		default:
			n.putBackLocked(uri)
			n.sendLocked()
			return
		}
	}
}

// putBackLocked queues again, first, the notification takeLocked took:
// of uri, or list_changed when uri is "". n.mu must be held.
func (n *notifier) putBackLocked(uri string) {
	if uri == "" {
		n.listPending = true
		return
	}
	if n.pending == nil {
		n.pending = map[string]struct{}{}
	}
	n.pending[uri] = struct{}{}
	n.queue = append([]string{uri}, n.queue...)
}

// sendLocked starts the sender unless it runs, the notifier is not
// started yet (start does it) or it has stopped. n.mu must be held.
func (n *notifier) sendLocked() {
	if n.sending || !n.started || n.stopped {
		return
	}
	if n.quit == nil {
		n.quit = make(chan struct{})
	}
	n.sending = true
	n.spawn(n.run)
}

// queueURI adds the URI of a changed file when a subscription covers it.
// The caller holds n.mu.
func (n *notifier) queueURI(ws, path string) bool {
	if !n.covers(ws, path) {
		return false
	}
	uri := resources.URI(ws, path)
	if _, ok := n.pending[uri]; ok {
		n.stats.coalesced.Add(1)
		return false
	}
	if n.pending == nil {
		n.pending = map[string]struct{}{}
	}
	n.pending[uri] = struct{}{}
	n.queue = append(n.queue, uri)
	return true
}

// next takes the next notification to send; ok is false when none is
// pending, and the sender then ends (sending is cleared under the same
// lock, so that the next offer starts a new one).
func (n *notifier) next() (mcp.JSONRPCNotification, bool) {
	n.mu.Lock()
	defer n.mu.Unlock()
	nt, _, ok := n.takeLocked()
	if !ok {
		n.sending = false
	}
	return nt, ok
}

// takeLocked takes the next pending notification: list_changed first,
// then the URIs in the order they changed (uri is the one taken, "" for
// list_changed); ok is false when none is pending. n.mu must be held.
func (n *notifier) takeLocked() (nt mcp.JSONRPCNotification, uri string, ok bool) {
	var method string
	params := map[string]any{}
	switch {
	case n.listPending:
		n.listPending = false
		method = mcp.MethodNotificationResourcesListChanged
	case len(n.queue) > 0:
		uri = n.queue[0]
		n.queue[0] = ""
		n.queue = n.queue[1:]
		if len(n.queue) == 0 {
			n.queue = nil // let the backing array go after a burst
		}
		delete(n.pending, uri)
		method = mcp.MethodNotificationResourceUpdated
		params["uri"] = uri
	default:
		return mcp.JSONRPCNotification{}, "", false
	}
	nt = mcp.JSONRPCNotification{
		JSONRPC:      mcp.JSONRPC_VERSION,
		Notification: mcp.Notification{Method: method, Params: mcp.NotificationParams{AdditionalFields: params}},
	}
	if n.listenID != nil {
		nt.Params.Meta = map[string]any{mcp.MetaKeySubscriptionID: n.listenID}
	}
	return nt, uri, true
}

// start arms the notifier under ctx, Run's context: from now on a sender
// goroutine is started with spawn whenever notifications are pending
// (at once if some already are). It returns false if the notifier was
// already started or stopped.
func (n *notifier) start(ctx context.Context, spawn func(func())) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.started || n.stopped {
		return false
	}
	n.started, n.ctx, n.spawn = true, ctx, spawn
	if len(n.queue) > 0 || n.listPending {
		n.sendLocked()
	}
	return true
}

// stop ends the notifier; what is still pending is counted as dropped
// (by the sender, if one runs).
func (n *notifier) stop() {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.stopped {
		return
	}
	n.stopped = true
	if n.quit != nil {
		close(n.quit)
	}
	if !n.sending {
		n.dropPendingLocked("session ended")
	}
}

func (n *notifier) dropPendingLocked(why string) {
	dropped := len(n.queue)
	if n.listPending {
		dropped++
	}
	n.queue, n.pending, n.listPending = nil, nil, false
	if dropped > 0 {
		n.stats.dropped.Add(int64(dropped))
		n.log.Info("resource notifications dropped", "count", dropped, "session", n.session.SessionID(), "reason", why)
	}
}

// run sends pending notifications until none is left, Run's context ends
// or the notifier stops. It must be started by sendLocked.
func (n *notifier) run() {
	ch := n.session.NotificationChannel()
	for {
		nt, ok := n.next()
		if !ok {
			return
		}
		select {
		case ch <- nt:
			n.stats.notified.Add(1)
		case <-n.ctx.Done():
			n.abort()
			return
		case <-n.quit:
			n.abort()
			return
		}
	}
}

// abort ends a sender whose session or Run ended with nt unsent.
func (n *notifier) abort() {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.sending = false
	n.stats.dropped.Add(1)
	n.dropPendingLocked("session ended")
}
