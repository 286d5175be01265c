// Package tools registers filecast's tools on an mcp-go server:
// subscribe, unsubscribe, list_changes, read_file and list_files always,
// and lock, unlock, write_file and list_locks when the events.Source is
// also an events.Locker. Every tool answers with
// structured content that matches its outputSchema and the same JSON as
// text for older clients; every failure is a tool result with isError set
// and a message telling the agent what to do next, never a protocol error.
//
//	err := tools.Register(mcpServer, src, tools.Options{
//		Session: func(ctx context.Context) (tools.Session, error) { ... }, // from package server
//		Heads:   router.Heads,
//	})
//
// Every tool's arguments are checked against its input schema before its
// handler runs (unknown, missing, null, mistyped or out-of-range values are
// a tool error naming the argument and what it accepts), so handlers never
// see arguments their schema refuses.
//
// Without a cursor, list_changes drains the calling session's buffer (an
// events/inbox.Inbox); with a cursor it reads the durable log through the
// events.Source, filtered by the session's subscriptions but never by what
// the session read before: the same cursor returns the same events, so an
// agent can retry, resume in a new session or after a restart.
//
// lock takes leases under the session's holder name (Session.Holder, the
// same name its inbox uses, so exclude_own and lock.expiring work) and
// records them in Session.Leases; the server releases what is left there
// when the session ends. write_file writes through the Locker as
// Actor(Session.Holder), so another holder's exclusive lock or anyone's
// shared lock (events.ErrLocked) and a lock that expired or was taken over
// (events.ErrStale) refuse the write.
package tools

import (
	"bytes"
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
	// maxPages bounds the log pages one cursor read scans for matches, of
	// pageSize events or limit if more.
	maxPages = 16
	pageSize = 100
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
	// Client is the MCP client's name.
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
	Detail         string  `json:"detail,omitempty"`
	Diff           bool    `json:"diff,omitempty"`
}

// ListChangesResult is the output of list_changes, decoded: its events
// hold what their detail carries (a compact event has no event_id,
// sha256, and workspace unless the result spans several). HasMore and
// Overflowed are left out of the JSON when false.
type ListChangesResult struct {
	Events     []events.Event `json:"events"`
	Cursor     string         `json:"cursor"`
	HasMore    bool           `json:"has_more,omitempty"`
	Overflowed bool           `json:"overflowed,omitempty"`
}

// changesResult is list_changes' result as it is encoded.
type changesResult struct {
	Events     []change `json:"events"`
	Cursor     string   `json:"cursor"`
	HasMore    bool     `json:"has_more,omitempty"`
	Overflowed bool     `json:"overflowed,omitempty"`
}

// answer is the result of list_changes: r's events in the detail args
// ask for, with their diffs if asked.
func (t *toolset) answer(ctx context.Context, r ListChangesResult, args ListChangesArgs, cur events.Cursor) *mcp.CallToolResult {
	evs, err := t.changes(ctx, r.Events, args.Detail, args.Diff, cur)
	if err != nil {
		return t.failure("list_changes", err)
	}
	b, err := changesResult{Events: evs, Cursor: r.Cursor, HasMore: r.HasMore, Overflowed: r.Overflowed}.appendJSON(make([]byte, 0, 64+128*len(evs)))
	if err != nil {
		return mcp.NewToolResultError("encoding the result failed: " + err.Error())
	}
	return encoded(b)
}

// Tool descriptions, written for the model: when to call the tool, what
// comes back, what to do on an error. They are short, since a host sends
// them with every turn (see the budget test); the errors themselves say
// what to do in full.
const (
	subscribeDesc = "Hear about file changes (and locks, if asked). Call it at the start of a task with globs of the files you care about, then collect changes with list_changes. " +
		"Returns subscription_id and cursor: list_changes from that cursor returns exactly the matching changes after this call, even in a new session. " +
		"Errors (invalid glob, unknown workspace) say what to fix."
	unsubscribeDesc = "End a subscription of this session. Returns removed: false when there was none (not an error)."
	listChangesDesc = "Get the file changes since you last asked: without cursor, what this session's buffer collected since its last call, each once; " +
		"with a cursor from an earlier result, the durable log after it (the same changes every time, across sessions and restarts). " +
		"Returns events (oldest first), cursor (pass it next time), has_more (call again at once), overflowed (call again with cursor). " +
		"Want to see what changed, not re-read files? diff: true gives each text file event a diff (bounded), or diff_unavailable. " +
		"Errors (bad or expired cursor) say where to continue."
)

// exclude_own descriptions: with lock, unlock and write_file, and without.
const (
	excludeOwnLocking = "true: leave out this session's own writes and locks."
	excludeOwnPlain   = "true: leave out this session's own changes."
)

// Register adds subscribe, unsubscribe, list_changes, read_file and
// list_files to s, and lock, unlock, write_file and list_locks when src
// also implements events.Locker. Each tool's arguments are checked against
// its input schema before its handler runs.
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
	excludeOwn := excludeOwnPlain
	if l, ok := src.(events.Locker); ok {
		t.locker = l
		excludeOwn = excludeOwnLocking
	}
	readOnly := []mcp.ToolOption{mcp.WithReadOnlyHintAnnotation(true), mcp.WithDestructiveHintAnnotation(false), mcp.WithOpenWorldHintAnnotation(false)}
	defs := []toolDef{
		{"subscribe", subscribeDesc, strings.Replace(subscribeInput, "EXCLUDE_OWN", excludeOwn, 1), subscribeOutput,
			mcp.NewTypedToolHandler(t.subscribe), append([]mcp.ToolOption{mcp.WithIdempotentHintAnnotation(false)}, readOnly...)},
		{"unsubscribe", unsubscribeDesc, unsubscribeInput, unsubscribeOutput,
			mcp.NewTypedToolHandler(t.unsubscribe), append([]mcp.ToolOption{mcp.WithIdempotentHintAnnotation(true)}, readOnly...)},
		{"list_changes", listChangesDesc, listChangesInput, listChangesOutput,
			mcp.NewTypedToolHandler(t.listChanges), readOnly},
	}
	defs = append(defs, t.fileTools(readOnly)...)
	if t.locker != nil {
		defs = append(defs, t.lockTools(readOnly)...)
	}
	all := make([]server.ServerTool, 0, len(defs))
	for _, d := range defs {
		st, err := d.build()
		if err != nil {
			return err
		}
		all = append(all, st)
	}
	s.AddTools(all...)
	return nil
}

// toolDef is one tool before registration.
type toolDef struct {
	name, desc, in, out string
	handler             server.ToolHandlerFunc
	opts                []mcp.ToolOption
}

// build parses the tool's input schema and wraps its handler so that
// arguments that do not satisfy the schema are refused, with a tool error
// naming them, before the handler runs.
func (d toolDef) build() (server.ServerTool, error) {
	schema, err := parseSchema(d.in)
	if err != nil {
		return server.ServerTool{}, fmt.Errorf("tools: %s: %w", d.name, err)
	}
	h := d.handler
	return server.ServerTool{
		Tool: newTool(d.name, d.desc, d.in, d.out, d.opts...),
		Handler: func(ctx context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			if msg := schema.check(d.name, req.GetRawArguments()); msg != "" {
				return mcp.NewToolResultError(msg), nil
			}
			return h(ctx, req)
		},
	}, nil
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
	b, err := marshal(v)
	if err != nil {
		return mcp.NewToolResultError("encoding the result failed: " + err.Error())
	}
	return encoded(b)
}

// encoded is result for a v already encoded as b.
func encoded(b []byte) *mcp.CallToolResult {
	return mcp.NewToolResultStructured(json.RawMessage(b), string(b))
}

// marshal encodes v as JSON without escaping <, > and &: a result is
// read by a model, never put in a page, and a diff or a file of code full
// of "\u003c" costs it six bytes for one.
func marshal(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
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
	return result(UnsubscribeResult{Removed: sess.Inbox.Unsubscribe(args.SubscriptionID)}), nil
}

func (t *toolset) listChanges(ctx context.Context, _ mcp.CallToolRequest, args ListChangesArgs) (*mcp.CallToolResult, error) {
	sess, err := t.opts.Session(ctx)
	if err != nil {
		return noSession(err), nil
	}
	limit := args.Limit // 1 to MaxLimit by the schema; 0 when omitted
	if limit == 0 {
		limit = DefaultLimit
	}
	wait := time.Duration(args.WaitMS) * time.Millisecond
	if args.SubscriptionID != "" {
		if _, ok := sess.Inbox.Filter(args.SubscriptionID); !ok {
			return unknownSubscription(args.SubscriptionID), nil
		}
	}
	if args.Cursor != nil {
		out, cur, err := t.readLog(ctx, sess, *args.Cursor, args.SubscriptionID, limit, wait)
		if err != nil {
			return t.cursorFailure(*args.Cursor, err), nil
		}
		return t.answer(ctx, out, args, cur), nil
	}
	if sess.Stateless {
		// No buffer outlives a stateless request: hand out the head so the
		// agent can continue by cursor.
		_, heads, err := t.workspaces(ctx)
		if err != nil {
			return t.failure("list_changes", err), nil
		}
		return t.answer(ctx, ListChangesResult{Events: []events.Event{}, Cursor: heads.String()}, args, heads), nil
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
	out := ListChangesResult{Events: res.Events, Cursor: res.Cursor.String(), HasMore: res.HasMore, Overflowed: res.Overflowed}
	return t.answer(ctx, out, args, res.Cursor), nil
}

// beyondHead is a cursor past the end of a workspace's log.
type beyondHead struct {
	ws        string
	seq, head uint64
}

func (e *beyondHead) Error() string {
	return fmt.Sprintf("%s:%d is beyond the end of the log of %s, which is at %s:%d", e.ws, e.seq, e.ws, e.ws, e.head)
}

func (e *beyondHead) Unwrap() error { return events.ErrBadCursor }

// readLog answers list_changes with a cursor from the durable log. It
// depends only on the cursor, the filter and the log: what the session
// read before does not change it.
func (t *toolset) readLog(ctx context.Context, sess Session, text, subID string, limit int, wait time.Duration) (ListChangesResult, events.Cursor, error) {
	cur, err := events.ParseCursor(text)
	if err != nil {
		return ListChangesResult{}, nil, err
	}
	names, heads, err := t.logHeads(ctx)
	if err != nil {
		return ListChangesResult{}, nil, err
	}
	for ws := range cur {
		if ws != "" && !slices.Contains(names, ws) {
			return ListChangesResult{}, nil, &events.Error{Kind: events.ErrUnknownWorkspace, Value: ws,
				Why: "the cursor names a workspace this server does not serve; served: " + strings.Join(names, ", ")}
		}
	}
	for _, ws := range names {
		if seq := cur.For(ws); seq > heads[ws] {
			return ListChangesResult{}, nil, &beyondHead{ws: ws, seq: seq, head: heads[ws]}
		}
	}
	if subID != "" {
		if f, ok := sess.Inbox.Filter(subID); ok && f.Workspace != "" {
			names = []string{f.Workspace}
		}
	}
	match := func(ev events.Event) bool { return sess.Inbox.Matches(ev, subID) }
	if sess.Stateless && subID == "" {
		// The subscriptions of stateless requests are everybody's: without
		// a subscription_id, read every file event.
		match = func(ev events.Event) bool { return ev.Type.IsFile() }
	}
	pos := events.Cursor{}
	for _, ws := range names {
		pos[ws] = cur.For(ws)
	}
	deadline := time.Now().Add(wait)
	for {
		out, err := t.collect(ctx, names, heads, pos, match, limit)
		if err != nil {
			return ListChangesResult{}, nil, err
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
			return out, pos, nil
		}
		if err := t.waitAny(ctx, names, pos, remaining); err != nil {
			return ListChangesResult{}, nil, err
		}
	}
}

// collect reads the log of each workspace after pos, keeping the events
// match selects, and advances pos past what it read: to the last event
// returned when limit was reached, else to the end of what it scanned.
// HasMore says that it stopped early with more of the log after pos: at
// limit, or after scanning maxPages pages without reaching it.
func (t *toolset) collect(ctx context.Context, names []string, heads, pos events.Cursor, match func(events.Event) bool, limit int) (ListChangesResult, error) {
	out := ListChangesResult{Events: []events.Event{}}
	size := max(limit, pageSize)
	for _, ws := range names {
		if len(out.Events) >= limit {
			// Not read at all: more is there if its log goes on.
			if heads[ws] > pos[ws] {
				out.HasMore = true
			}
			continue
		}
		for n := 0; ; n++ {
			if n == maxPages {
				out.HasMore = true
				break
			}
			page, err := t.src.Changes(ctx, ws, pos[ws], size, 0)
			if err != nil {
				return ListChangesResult{}, fmt.Errorf("read changes of %s: %w", ws, err)
			}
			full := false
			for j, ev := range page.Events {
				pos[ws] = ev.Seq
				if match(ev) {
					out.Events = append(out.Events, ev)
				}
				if len(out.Events) >= limit {
					full = true
					out.HasMore = out.HasMore || j < len(page.Events)-1 || page.HasMore
					break
				}
			}
			if full {
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

// logHeads returns the workspace names, sorted, and the heads of their
// logs as the Source reports them.
func (t *toolset) logHeads(ctx context.Context) ([]string, events.Cursor, error) {
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
	return names, heads, nil
}

// workspaces returns the workspace names, sorted, and the position up to
// which every event has been offered to the session buffers (the log
// heads without Options.Heads).
func (t *toolset) workspaces(ctx context.Context) ([]string, events.Cursor, error) {
	names, heads, err := t.logHeads(ctx)
	if err != nil {
		return nil, nil, err
	}
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
		return mcp.NewToolResultError(plain(err) + ". Try again in a moment.")
	}
	return mcp.NewToolResultError("This request belongs to no open MCP session: reconnect, initialize the session, then call again.")
}

func unknownWorkspace(ws string, names []string) *mcp.CallToolResult {
	return mcp.NewToolResultError(fmt.Sprintf("unknown workspace %q: use one of %s, or omit workspace to watch all of them.",
		ws, strings.Join(names, ", ")))
}

func unknownSubscription(id string) *mcp.CallToolResult {
	return mcp.NewToolResultError(fmt.Sprintf("unknown subscription_id %q: subscriptions end with the session that made them. Call subscribe again, or omit subscription_id.", id))
}

// cursorFailure explains why a read by cursor failed and what to do next.
func (t *toolset) cursorFailure(cursor string, err error) *mcp.CallToolResult {
	var bh *beyondHead
	switch {
	case errors.As(err, &bh):
		return mcp.NewToolResultError(fmt.Sprintf("invalid cursor %q: %s. Pass a cursor exactly as an earlier list_changes or subscribe returned it, or %s:%d to read from the end.",
			cursor, bh.Error(), bh.ws, bh.head))
	case errors.Is(err, events.ErrCursorExpired):
		return mcp.NewToolResultError(fmt.Sprintf("cursor %q has expired: the log no longer holds the changes right after it, so some are lost to you. "+
			"Call list_files for the files you follow (it gives their sha256 now and a cursor), read_file those that changed, "+
			"then continue list_changes from the cursor list_files returned.", cursor))
	case errors.Is(err, events.ErrBadCursor):
		return mcp.NewToolResultError(plain(err) + ". Pass a cursor unchanged from an earlier result, for example \"docs:42\", or omit it to read this session's buffer.")
	}
	return t.failure("list_changes", err)
}

// failure turns an error into a tool error result with advice.
func (t *toolset) failure(tool string, err error) *mcp.CallToolResult {
	switch {
	case errors.Is(err, events.ErrBadGlob):
		return mcp.NewToolResultError(plain(err) + ". Fix the pattern and call " + tool + " again.")
	case errors.Is(err, events.ErrBadType), errors.Is(err, events.ErrUnknownWorkspace):
		return mcp.NewToolResultError(plain(err) + ".")
	case errors.Is(err, inbox.ErrUnknownSubscription):
		return mcp.NewToolResultError(plain(err) + ".")
	case errors.Is(err, events.ErrWorkspaceUnavailable):
		return mcp.NewToolResultError(plain(err) + ". Call again once the folder is back; list_changes still works meanwhile.")
	case errors.Is(err, events.ErrInsufficientStorage):
		return mcp.NewToolResultError(plain(err) + ". The hub's disk is full: call again once space is freed; list_changes still works meanwhile.")
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return mcp.NewToolResultError("The request was cancelled before it finished; call " + tool + " again.")
	}
	t.log.Warn(tool+" failed", "err", err)
	return mcp.NewToolResultError(plain(err) + ". This is a problem on filecast's side, not in your arguments: try again in a moment.")
}
