// Package tools registers filecast's tools on an mcp-go server:
// subscribe, unsubscribe and list_changes always, and lock, unlock and
// write_file when the events.Source is also an events.Locker. Every tool answers with
// structured content that matches its outputSchema and the same JSON as
// text for older clients; every failure is a tool result with isError set
// and a message telling the agent what to do next, never a protocol error.
//
//	err := tools.Register(mcpServer, src, tools.Options{
//		Session: func(ctx context.Context) (tools.Session, error) { ... }, // from package server
//		Heads:   router.Heads,
//	})
//
// Without a cursor, list_changes drains the calling session's buffer (an
// events/inbox.Inbox); with a cursor it reads the durable log through the
// events.Source, filtered the same way, so an agent can resume in a new
// session or after a restart.
//
// lock takes leases under the session's holder name (Session.Holder, the
// same name its inbox uses, so exclude_own and lock.expiring work) and
// records them in Session.Leases; the server releases what is left there
// when the session ends. write_file writes through the Locker, so another
// holder's exclusive lock (events.ErrLocked) and a lock that expired or
// was taken over (events.ErrStale) refuse the write.
package tools

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"
	"github.com/sourcegraph/conc"

	"github.com/filecast/filecast/events"
	"github.com/filecast/filecast/events/inbox"
)

// Limits of list_changes.
const (
	DefaultLimit = 100
	MaxLimit     = 1000
	MaxWait      = 30 * time.Second
	// maxPages bounds the log pages one cursor read scans for matches.
	maxPages = 16
)

// ErrNoSession is returned by a SessionFunc when the request belongs to no
// session the server knows.
var ErrNoSession = errors.New("tools: no session")

// Session is what the tools need of the MCP session a call belongs to.
type Session struct {
	// Inbox is the session's buffer: its subscriptions and the events
	// offered to it.
	Inbox *inbox.Inbox
	// Stateless is true for requests that have no lasting session
	// (protocol 2026-07-28 over HTTP). Their Inbox is shared and only
	// holds subscriptions; list_changes then needs a cursor.
	Stateless bool
	// Holder is the session's lock holder name: the client's name with a
	// short session suffix ("claude-code#3f2a"). It must equal the Holder
	// of Inbox.
	Holder string
	// Client is the MCP client's name; writes are made as "mcp:<Client>".
	Client string
	// Leases records the locks the session takes, to release them when it
	// ends. Nil for sessions that do not last: their locks end by TTL.
	Leases *Leases
}

// SessionFunc returns the session of the request in ctx.
type SessionFunc func(ctx context.Context) (Session, error)

// Options configure Register.
type Options struct {
	// Session finds the caller's session. Required.
	Session SessionFunc
	// Heads returns the log position up to which every event has been
	// offered to the session buffers. Nil means the heads reported by
	// Source.Workspaces.
	Heads func() events.Cursor
	// Logger receives failures that are not the agent's fault; nil discards.
	Logger *slog.Logger
	// MaxWriteSize bounds the content of one write_file call in bytes; 0,
	// or more than MaxWriteSize, means MaxWriteSize.
	MaxWriteSize int
}

// SubscribeArgs is the input of subscribe.
type SubscribeArgs struct {
	Paths      []string `json:"paths,omitempty"`
	Events     []string `json:"events,omitempty"`
	Workspace  string   `json:"workspace,omitempty"`
	ExcludeOwn bool     `json:"exclude_own,omitempty"`
}

// SubscribeResult is the output of subscribe.
type SubscribeResult struct {
	SubscriptionID string `json:"subscription_id"`
	Cursor         string `json:"cursor"`
}

// UnsubscribeArgs is the input of unsubscribe.
type UnsubscribeArgs struct {
	SubscriptionID string `json:"subscription_id"`
}

// UnsubscribeResult is the output of unsubscribe.
type UnsubscribeResult struct {
	Removed bool `json:"removed"`
}

// ListChangesArgs is the input of list_changes.
type ListChangesArgs struct {
	Cursor         *string `json:"cursor,omitempty"`
	Limit          int     `json:"limit,omitempty"`
	WaitMS         int     `json:"wait_ms,omitempty"`
	SubscriptionID string  `json:"subscription_id,omitempty"`
}

// ListChangesResult is the output of list_changes.
type ListChangesResult struct {
	Events     []events.Event `json:"events"`
	Cursor     string         `json:"cursor"`
	HasMore    bool           `json:"has_more"`
	Overflowed bool           `json:"overflowed"`
}

// Tool descriptions, written for the model.
const (
	subscribeDesc = "Start hearing about changes to files in the workspace: creations, updates, deletions, moves and, if asked, locks. " +
		"Call it once at the start of a task with the globs of the files you care about; afterwards call list_changes to collect what changed. " +
		"Returns subscription_id and cursor. Save the cursor: list_changes with it returns exactly the matching changes made after this call, even from a new session. " +
		"Errors: an invalid glob or event kind, or an unknown workspace, is reported with the reason; fix the argument and call again."
	unsubscribeDesc = "Stop a subscription made by subscribe in this session. Returns removed: true when it existed, false when there was nothing to remove (not an error)."
	listChangesDesc = "Get the file changes (and lock changes, if subscribed) since you last asked. " +
		"Without cursor it returns what this session collected since its previous call; with a cursor from an earlier result it reads the durable log after that position, so nothing is missed across sessions and restarts. " +
		"Set wait_ms to long-poll for the next change instead of calling in a loop. " +
		"Returns events (oldest first), cursor (save it and pass it next time), has_more (call again at once) and overflowed (your buffer overflowed: call again with your last saved cursor). An empty events list is normal. " +
		"Errors: a malformed cursor means pass one exactly as returned; an expired cursor means list the files again and continue from the listing's cursor; an unknown subscription_id means subscribe again."
)

// Register adds subscribe, unsubscribe and list_changes to s, and lock,
// unlock and write_file when src also implements events.Locker.
func Register(s *server.MCPServer, src events.Source, opts Options) error {
	if opts.Session == nil {
		return errors.New("tools: Options.Session is required")
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.MaxWriteSize <= 0 || opts.MaxWriteSize > MaxWriteSize {
		opts.MaxWriteSize = MaxWriteSize
	}
	t := &toolset{src: src, opts: opts, log: opts.Logger.With("component", "tools")}
	if l, ok := src.(events.Locker); ok {
		t.locker = l
		t.registerLocks(s)
	}
	s.AddTools(
		server.ServerTool{
			Tool: newTool("subscribe", subscribeDesc, subscribeInput, subscribeOutput,
				mcp.WithIdempotentHintAnnotation(false), mcp.WithReadOnlyHintAnnotation(true),
				mcp.WithDestructiveHintAnnotation(false), mcp.WithOpenWorldHintAnnotation(false)),
			Handler: mcp.NewTypedToolHandler(t.subscribe),
		},
		server.ServerTool{
			Tool: newTool("unsubscribe", unsubscribeDesc, unsubscribeInput, unsubscribeOutput,
				mcp.WithIdempotentHintAnnotation(true), mcp.WithReadOnlyHintAnnotation(true),
				mcp.WithDestructiveHintAnnotation(false), mcp.WithOpenWorldHintAnnotation(false)),
			Handler: mcp.NewTypedToolHandler(t.unsubscribe),
		},
		server.ServerTool{
			Tool: newTool("list_changes", listChangesDesc, listChangesInput, listChangesOutput,
				mcp.WithReadOnlyHintAnnotation(true), mcp.WithDestructiveHintAnnotation(false),
				mcp.WithOpenWorldHintAnnotation(false)),
			Handler: mcp.NewTypedToolHandler(t.listChanges),
		},
	)
	return nil
}

// newTool builds a tool with hand-written input and output schemas.
func newTool(name, desc, in, out string, opts ...mcp.ToolOption) mcp.Tool {
	t := mcp.NewTool(name, append([]mcp.ToolOption{mcp.WithDescription(desc)}, opts...)...)
	t.InputSchema = mcp.ToolInputSchema{} // replaced by the raw schema
	t.RawInputSchema = json.RawMessage(in)
	t.RawOutputSchema = json.RawMessage(out)
	return t
}

type toolset struct {
	src    events.Source
	locker events.Locker // nil when src cannot lock
	opts   Options
	log    *slog.Logger
}

// result builds a successful result: structured content plus the same JSON
// as text. v is encoded once: the structured content is that encoding, so
// neither the output schema check nor the response encodes v again.
func result(v any) *mcp.CallToolResult {
	b, err := json.Marshal(v)
	if err != nil {
		return mcp.NewToolResultError("encoding the result failed: " + err.Error())
	}
	return mcp.NewToolResultStructured(json.RawMessage(b), string(b))
}

func (t *toolset) subscribe(ctx context.Context, _ mcp.CallToolRequest, args SubscribeArgs) (*mcp.CallToolResult, error) {
	sess, err := t.opts.Session(ctx)
	if err != nil {
		return noSession(err), nil
	}
	names, heads, err := t.workspaces(ctx)
	if err != nil {
		return t.failure("subscribe", err), nil
	}
	if args.Workspace != "" && !slices.Contains(names, args.Workspace) {
		return unknownWorkspace(args.Workspace, names), nil
	}
	f, err := events.NewFilter(args.Workspace, args.Paths, args.Events)
	if err != nil {
		return t.failure("subscribe", err), nil
	}
	sub, err := sess.Inbox.Subscribe(f, args.ExcludeOwn)
	if err != nil {
		return t.failure("subscribe", err), nil
	}
	cur := events.Cursor{}
	for _, ws := range names {
		if args.Workspace != "" && ws != args.Workspace {
			continue
		}
		cur[ws] = max(heads.For(ws), sub.Cursor[ws])
	}
	return result(SubscribeResult{SubscriptionID: sub.ID, Cursor: cur.String()}), nil
}

func (t *toolset) unsubscribe(ctx context.Context, _ mcp.CallToolRequest, args UnsubscribeArgs) (*mcp.CallToolResult, error) {
	sess, err := t.opts.Session(ctx)
	if err != nil {
		return noSession(err), nil
	}
	if args.SubscriptionID == "" {
		return mcp.NewToolResultError("subscription_id is required: pass the subscription_id that subscribe returned."), nil
	}
	return result(UnsubscribeResult{Removed: sess.Inbox.Unsubscribe(args.SubscriptionID)}), nil
}

func (t *toolset) listChanges(ctx context.Context, _ mcp.CallToolRequest, args ListChangesArgs) (*mcp.CallToolResult, error) {
	sess, err := t.opts.Session(ctx)
	if err != nil {
		return noSession(err), nil
	}
	limit := args.Limit
	switch {
	case limit <= 0:
		limit = DefaultLimit
	case limit > MaxLimit:
		limit = MaxLimit
	}
	wait := min(time.Duration(max(args.WaitMS, 0))*time.Millisecond, MaxWait)
	if args.SubscriptionID != "" {
		if _, ok := sess.Inbox.Filter(args.SubscriptionID); !ok {
			return unknownSubscription(args.SubscriptionID), nil
		}
	}
	if args.Cursor != nil && *args.Cursor != "" {
		out, err := t.readLog(ctx, sess, *args.Cursor, args.SubscriptionID, limit, wait)
		if err != nil {
			return t.failure("list_changes", err), nil
		}
		return result(out), nil
	}
	if sess.Stateless {
		// No buffer outlives a stateless request: hand out the head so the
		// agent can continue by cursor.
		_, heads, err := t.workspaces(ctx)
		if err != nil {
			return t.failure("list_changes", err), nil
		}
		return result(ListChangesResult{Events: []events.Event{}, Cursor: heads.String()}), nil
	}
	res, err := sess.Inbox.Take(ctx, args.SubscriptionID, limit, wait)
	if err != nil {
		if errors.Is(err, inbox.ErrUnknownSubscription) {
			return unknownSubscription(args.SubscriptionID), nil
		}
		if errors.Is(err, events.ErrClosed) {
			return noSession(err), nil
		}
		return t.failure("list_changes", err), nil
	}
	evs := res.Events
	if evs == nil {
		evs = []events.Event{}
	}
	return result(ListChangesResult{Events: evs, Cursor: res.Cursor.String(), HasMore: res.HasMore, Overflowed: res.Overflowed}), nil
}

// readLog answers list_changes with a cursor from the durable log.
func (t *toolset) readLog(ctx context.Context, sess Session, text, subID string, limit int, wait time.Duration) (ListChangesResult, error) {
	cur, err := events.ParseCursor(text)
	if err != nil {
		return ListChangesResult{}, err
	}
	names, _, err := t.workspaces(ctx)
	if err != nil {
		return ListChangesResult{}, err
	}
	for ws := range cur {
		if ws != "" && !slices.Contains(names, ws) {
			return ListChangesResult{}, &events.Error{Kind: events.ErrUnknownWorkspace, Value: ws,
				Why: "the cursor names a workspace this server does not serve; served: " + strings.Join(names, ", ")}
		}
	}
	if subID != "" {
		if f, ok := sess.Inbox.Filter(subID); ok && f.Workspace != "" {
			names = []string{f.Workspace}
		}
	}
	pos := events.Cursor{}
	for _, ws := range names {
		pos[ws] = cur.For(ws)
	}
	deadline := time.Now().Add(wait)
	for {
		out, err := t.collect(ctx, sess, names, pos, subID, limit)
		if err != nil {
			return ListChangesResult{}, err
		}
		remaining := time.Until(deadline)
		if len(out.Events) > 0 || out.HasMore || remaining <= 0 {
			// Workspaces the cursor names but this read did not cover
			// keep their position.
			for ws, seq := range cur {
				if _, ok := pos[ws]; !ok && ws != "" {
					pos[ws] = seq
				}
			}
			out.Cursor = pos.String()
			return out, nil
		}
		if err := t.waitAny(ctx, names, pos, remaining); err != nil {
			return ListChangesResult{}, err
		}
	}
}

// collect reads the log of each workspace after pos, keeping matching,
// not yet delivered events, and advances pos past what it read.
func (t *toolset) collect(ctx context.Context, sess Session, names []string, pos events.Cursor, subID string, limit int) (ListChangesResult, error) {
	out := ListChangesResult{Events: []events.Event{}}
	for _, ws := range names {
		for n := 0; ; n++ {
			if len(out.Events) >= limit || n == maxPages {
				out.HasMore = true
				break
			}
			page, err := t.src.Changes(ctx, ws, pos[ws], limit, 0)
			if err != nil {
				return ListChangesResult{}, fmt.Errorf("read changes of %s: %w", ws, err)
			}
			full := false
			for _, ev := range page.Events {
				if len(out.Events) >= limit {
					full = true
					break
				}
				pos[ws] = ev.Seq
				if !sess.Inbox.Matches(ev, subID) {
					continue
				}
				if !sess.Stateless && !sess.Inbox.Delivered(ev) {
					continue
				}
				out.Events = append(out.Events, ev)
			}
			if full {
				out.HasMore = true
				break
			}
			if page.Next > pos[ws] {
				pos[ws] = page.Next
			}
			if !page.HasMore || len(page.Events) == 0 {
				break
			}
		}
	}
	return out, nil
}

// waitAny blocks until some workspace has an event after pos, d passes or
// ctx ends.
func (t *toolset) waitAny(parent context.Context, names []string, pos events.Cursor, d time.Duration) error {
	ctx, cancel := context.WithCancel(parent)
	defer cancel()
	var wg conc.WaitGroup
	errs := make([]error, len(names))
	for i, ws := range names {
		wg.Go(func() {
			_, err := t.src.Changes(ctx, ws, pos[ws], 1, d)
			if err != nil && ctx.Err() == nil {
				errs[i] = fmt.Errorf("wait for changes of %s: %w", ws, err)
			}
			cancel()
		})
	}
	wg.Wait()
	if err := parent.Err(); err != nil {
		return err
	}
	return errors.Join(errs...)
}

// workspaces returns the workspace names, sorted, and their log heads.
func (t *toolset) workspaces(ctx context.Context) ([]string, events.Cursor, error) {
	wss, err := t.src.Workspaces(ctx)
	if err != nil {
		return nil, nil, fmt.Errorf("list workspaces: %w", err)
	}
	names := make([]string, 0, len(wss))
	heads := events.Cursor{}
	for _, w := range wss {
		names = append(names, w.Name)
		heads[w.Name] = w.Head
	}
	slices.Sort(names)
	if t.opts.Heads != nil {
		offered := t.opts.Heads()
		for _, ws := range names {
			if seq, ok := offered[ws]; ok {
				heads[ws] = seq
			}
		}
	}
	return names, heads, nil
}

func noSession(err error) *mcp.CallToolResult {
	if !errors.Is(err, ErrNoSession) && !errors.Is(err, events.ErrClosed) {
		// The session exists but its hub cannot serve it yet; say why.
		return mcp.NewToolResultError(err.Error())
	}
	return mcp.NewToolResultError("this request belongs to no MCP session (" + err.Error() + "); reconnect and initialize the session, then call again.")
}

func unknownWorkspace(ws string, names []string) *mcp.CallToolResult {
	return mcp.NewToolResultError(fmt.Sprintf("%v %q: use one of: %s, or omit workspace to watch all of them.",
		events.ErrUnknownWorkspace, ws, strings.Join(names, ", ")))
}

func unknownSubscription(id string) *mcp.CallToolResult {
	return mcp.NewToolResultError(fmt.Sprintf("%v %q: subscriptions end with the session that made them; call subscribe again, or omit subscription_id.",
		inbox.ErrUnknownSubscription, id))
}

// failure turns an error into a tool error result with advice.
func (t *toolset) failure(tool string, err error) *mcp.CallToolResult {
	var advice string
	switch {
	case errors.Is(err, events.ErrCursorExpired):
		return mcp.NewToolResultError(events.ErrCursorExpired.Error() + ".")
	case errors.Is(err, events.ErrBadCursor):
		advice = "pass the cursor exactly as a previous list_changes or subscribe returned it (for example \"docs:42\"), or omit it."
	case errors.Is(err, events.ErrBadGlob):
		advice = "fix the pattern and call " + tool + " again."
	case errors.Is(err, events.ErrBadType):
		advice = "use created, updated, deleted, moved, locked or unlocked."
	case errors.Is(err, events.ErrUnknownWorkspace):
		advice = "omit workspace or use one this server serves."
	case errors.Is(err, inbox.ErrUnknownSubscription):
		advice = "call subscribe again."
	case errors.Is(err, events.ErrWorkspaceUnavailable):
		advice = "call again once the folder is back; list_changes still works meanwhile."
	case errors.Is(err, events.ErrInsufficientStorage):
		advice = "the hub's disk is full: call again once space is freed; reads and list_changes still work meanwhile."
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		advice = "the request was cancelled; call again."
	default:
		t.log.Warn(tool+" failed", "err", err)
		advice = "this is a server-side problem; try again in a moment."
	}
	return mcp.NewToolResultError(err.Error() + "; " + advice)
}
