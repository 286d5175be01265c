package server

import (
	"context"
	"log/slog"
	"sync"

	"github.com/mark3labs/mcp-go/mcp"
	mcpserver "github.com/mark3labs/mcp-go/server"

	"github.com/filecast/filecast/events"
	"github.com/filecast/filecast/resources"
)

// notifier delivers resource notifications to one client stream: a legacy
// session (resources/subscribe) or one subscriptions/listen stream.
//
// The router calls offer, which never blocks: a URI already pending is not
// queued twice, and list_changed is one flag. run writes the pending
// notifications into the session's notification channel with a blocking
// send, so a slow client slows its own notifier and nothing is lost; the
// newest state of every URI is always notified after its last change,
// because a URI leaves the pending set before it is sent.
type notifier struct {
	session  mcpserver.ClientSession
	listenID any  // JSON-RPC id of the subscriptions/listen request, nil for a legacy session
	lists    bool // wants notifications/resources/list_changed
	stats    *counters
	log      *slog.Logger

	mu          sync.Mutex
	refs        map[resources.Ref]int // subscribed URIs, with a count of subscribe calls
	folders     []resources.Ref
	pending     map[string]struct{}
	queue       []string
	listPending bool
	wake        chan struct{}
	ctx         context.Context
	cancel      context.CancelFunc
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
		refs:     map[resources.Ref]int{},
		pending:  map[string]struct{}{},
		wake:     make(chan struct{}, 1),
	}
}

// subscribe adds a resource subscription.
func (n *notifier) subscribe(r resources.Ref) {
	n.mu.Lock()
	defer n.mu.Unlock()
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
	if n.lists && ev.Type != events.FileUpdated && n.session.Initialized() && (n.listenID != nil || !isModern(n.session)) {
		if n.listPending {
			n.stats.coalesced.Add(1)
		} else {
			n.listPending, queued = true, true
		}
	}
	n.mu.Unlock()
	if queued {
		select {
		case n.wake <- struct{}{}:
		default:
		}
	}
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
	n.pending[uri] = struct{}{}
	n.queue = append(n.queue, uri)
	return true
}

// next takes the next notification to send; ok is false when none is pending.
func (n *notifier) next() (mcp.JSONRPCNotification, bool) {
	n.mu.Lock()
	defer n.mu.Unlock()
	var method string
	params := map[string]any{}
	switch {
	case n.listPending:
		n.listPending = false
		method = mcp.MethodNotificationResourcesListChanged
	case len(n.queue) > 0:
		uri := n.queue[0]
		n.queue[0] = ""
		n.queue = n.queue[1:]
		if len(n.queue) == 0 {
			n.queue = nil // let the backing array go after a burst
		}
		delete(n.pending, uri)
		method = mcp.MethodNotificationResourceUpdated
		params["uri"] = uri
	default:
		return mcp.JSONRPCNotification{}, false
	}
	nt := mcp.JSONRPCNotification{
		JSONRPC:      mcp.JSONRPC_VERSION,
		Notification: mcp.Notification{Method: method, Params: mcp.NotificationParams{AdditionalFields: params}},
	}
	if n.listenID != nil {
		nt.Params.Meta = map[string]any{mcp.MetaKeySubscriptionID: n.listenID}
	}
	return nt, true
}

// start arms the notifier under ctx; it returns false if it was already
// started or stopped.
func (n *notifier) start(ctx context.Context) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.started || n.stopped {
		return false
	}
	n.started = true
	n.ctx, n.cancel = context.WithCancel(ctx)
	return true
}

// stop ends the notifier; what is still pending is counted as dropped.
func (n *notifier) stop() {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.stopped {
		return
	}
	n.stopped = true
	if n.cancel != nil {
		n.cancel()
	}
	if !n.started {
		n.dropPendingLocked("session ended")
	}
}

func (n *notifier) dropPendingLocked(why string) {
	dropped := len(n.queue)
	if n.listPending {
		dropped++
	}
	n.queue, n.pending, n.listPending = nil, map[string]struct{}{}, false
	if dropped > 0 {
		n.stats.dropped.Add(int64(dropped))
		n.log.Info("resource notifications dropped", "count", dropped, "session", n.session.SessionID(), "reason", why)
	}
}

// run sends pending notifications until its context ends. It must follow a
// successful start.
func (n *notifier) run() {
	ctx := n.ctx
	ch := n.session.NotificationChannel()
	for {
		nt, ok := n.next()
		if !ok {
			select {
			case <-n.wake:
				continue
			case <-ctx.Done():
				n.mu.Lock()
				n.dropPendingLocked("session ended")
				n.mu.Unlock()
				return
			}
		}
		select {
		case ch <- nt:
			n.stats.notified.Add(1)
		case <-ctx.Done():
			n.mu.Lock()
			n.stats.dropped.Add(1)
			n.dropPendingLocked("session ended")
			n.mu.Unlock()
			return
		}
	}
}
