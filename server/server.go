// Package server is filecast's MCP server: it puts the tools of package
// tools and the resources of package resources on an mcp-go server, keeps
// one event buffer (events/inbox) per MCP session, and routes every event
// of an events.Source to those buffers and to the resource notifications
// of the sessions that subscribed, following each workspace with
// events.Follow (which resumes after the last event routed).
//
//	srv, err := server.New(src, server.Options{Name: "filecast", Version: v, Logger: log})
//	if err != nil { ... }
//	go srv.Run(ctx)                       // the router; blocks until ctx ends
//	err = srv.ServeStdio(ctx, os.Stdin, os.Stdout)
//	// or: http.Handle("/mcp", srv.HTTPHandler())
//
// Notifications are never dropped silently: mcp-go's own senders drop a
// notification when a session's 100-slot channel is full, so this package
// runs one notifier per client stream that coalesces pending
// notifications/resources/updated per URI (and list_changed into one flag)
// and writes them with a blocking send. A slow client slows only its own
// notifier; what it has not been told yet stays pending, at most once per
// URI. Notifications still pending when a session ends are counted as
// dropped in [Stats] and logged.
//
// Resource subscriptions are tracked here, because mcp-go's sessions do
// not: resources/subscribe and resources/unsubscribe (protocols up to
// 2025-11-25) through hooks, and the resourceSubscriptions of a
// subscriptions/listen request (2026-07-28) for as long as that request
// runs, its notifications tagged with the listen request's id. A URI that
// is not a filecast resource of a served workspace is refused with a
// JSON-RPC error before the request reaches its handler.
//
// Sessions: a stdio connection or a legacy streamable HTTP session owns a
// buffer from its initialize on. A 2026-07-28 request over HTTP has no
// lasting session: its subscribe calls land in a shared registry that only
// filters reads by cursor, and list_changes without a cursor returns the
// head to continue from.
//
// Locks: when the Source also implements events.Locker, the tools lock,
// unlock and write_file are served. Each lasting session has one holder
// name (the client's name and a short random suffix, "claude-code#3f2a"),
// used both for its locks and as its inbox's holder, so exclude_own and
// the holder's lock.expiring warnings work. The locks a session took and
// did not release are released when it ends cleanly (stdio EOF, HTTP
// DELETE, idle expiry, Run's end); a crashed process leaves them to their
// TTL.
package server

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	mcpserver "github.com/mark3labs/mcp-go/server"
	"github.com/sourcegraph/conc"

	"github.com/filecast/filecast/events"
	"github.com/filecast/filecast/events/inbox"
	"github.com/filecast/filecast/resources"
	"github.com/filecast/filecast/tools"
)

// Errors of package server.
var (
	ErrStdioBusy = errors.New("server: another stdio server is running in this process (there is one stdio session per process)")
	ErrRunning   = errors.New("server: Run is already running")
)

// Defaults of Options.
const (
	DefaultName           = "filecast"
	DefaultSessionIdleTTL = 30 * time.Minute
	maxBackoff            = 10 * time.Second
)

// instructions tell the model how to use the server.
const instructions = "filecast reports changes to the files of the workspaces it serves, within milliseconds. " +
	"Call subscribe with the globs you care about, then list_changes (with wait_ms to long-poll) to collect created, updated, deleted and moved files. " +
	"Save the cursor of every list_changes result: passing it back resumes exactly where you left off, even in a new session " +
	"(over HTTP with protocol 2026-07-28 a session keeps no buffer: pass it every time). " +
	"Read files with read_file and list them with list_files; the cursor each returns continues list_changes without a gap. " +
	"To see what changed rather than read a file again, pass diff: true to list_changes, or since (a sha256 you read) to read_file. " +
	"Files are also resources filecast://<workspace>/<path>; a URI ending in / is a folder."

// lockInstructions are added when the Source can lock.
const lockInstructions = " Before editing a file other agents may edit too, call lock on it, write it with write_file and its lock_token, then unlock it. " +
	"Locks expire after ttl_seconds; the locks of this session are released when it ends."

// releaseTimeout bounds releasing the locks of a session that ended.
const releaseTimeout = 5 * time.Second

// Options configure a Server. The zero value is usable.
type Options struct {
	Name, Version  string        // reported to clients; defaults "filecast" and "dev"
	Capacity       int           // events per session buffer; 0 means the inbox default
	Logger         *slog.Logger  // nil discards
	SessionIdleTTL time.Duration // HTTP sessions idle this long are closed; 0 means DefaultSessionIdleTTL
	PageSize       int           // resources per resources/list page; 0 means the resources default
	MaxWriteSize   int           // bytes per write_file call; 0 means tools.MaxWriteSize (16 MiB), the most allowed
	// CheckOutputSchemas makes every successful tool result be checked
	// against the tool's output schema, failing the call when it does not
	// match. The results are encoded from typed structs, so this guards
	// against programming errors only; tests turn it on, and servers leave
	// it off, since it costs a decode and a schema walk per call.
	CheckOutputSchemas bool
}

// Stats are counters of the notification path.
type Stats struct {
	Sessions  int   // registered sessions
	Listens   int   // open subscriptions/listen streams
	Notified  int64 // resource notifications written to sessions
	Coalesced int64 // notifications merged into one already pending
	Dropped   int64 // pending notifications discarded because their session or stream ended
}

type counters struct {
	notified, coalesced, dropped atomic.Int64
}

// Server is filecast's MCP server. Its methods are safe for concurrent use.
// Run owns every goroutine the server starts; ServeStdio and the HTTP
// handler serve requests on the caller's goroutines.
type Server struct {
	src    events.Source
	locker events.Locker // src, when it can lock; else nil
	opts   Options
	log    *slog.Logger
	mcp    *mcpserver.MCPServer
	res    *resources.Provider
	stats  counters

	mu       sync.RWMutex
	sessions map[string]*session // by MCP session id
	listens  map[*notifier]struct{}
	heads    events.Cursor // every event up to here was routed
	running  bool
	runCtx   context.Context
	wg       *conc.WaitGroup
	waiting  []*notifier // created before Run started

	stateless *inbox.Inbox // see statelessInbox; guarded by mu

	httpOnce sync.Once
	http     *mcpserver.StreamableHTTPServer // guarded by mu
}

// session is one registered MCP session.
type session struct {
	cs     mcpserver.ClientSession
	notif  *notifier
	leases *tools.Leases // locks taken through the lock tool

	mu     sync.Mutex
	box    *inbox.Inbox
	client string // the client's name, once known
	holder string // the lock holder name: client#suffix, one per session
}

// stdioBusy guards the process-wide stdio session.
var stdioBusy atomic.Bool

// New returns a Server over src. It does not start anything: call Run.
func New(src events.Source, opts Options) (*Server, error) {
	if src == nil {
		return nil, errors.New("server: nil events.Source")
	}
	if opts.Name == "" {
		opts.Name = DefaultName
	}
	if opts.Version == "" {
		opts.Version = "dev"
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.SessionIdleTTL <= 0 {
		opts.SessionIdleTTL = DefaultSessionIdleTTL
	}
	s := &Server{
		src:      src,
		opts:     opts,
		log:      opts.Logger.With("component", "mcp"),
		sessions: map[string]*session{},
		listens:  map[*notifier]struct{}{},
		heads:    events.Cursor{},
	}
	s.locker, _ = src.(events.Locker)
	instr := instructions
	if s.locker != nil {
		instr += lockInstructions
	}
	hooks := &mcpserver.Hooks{}
	mopts := []mcpserver.ServerOption{
		mcpserver.WithHooks(hooks),
		mcpserver.WithToolCapabilities(false),
		mcpserver.WithResourceCapabilities(true, true),
		mcpserver.WithLogging(),
		mcpserver.WithRecovery(),
		mcpserver.WithResourceRecovery(),
		mcpserver.WithInstructions(instr),
	}
	if opts.CheckOutputSchemas {
		mopts = append(mopts, mcpserver.WithOutputSchemaValidation())
	}
	s.mcp = mcpserver.NewMCPServer(opts.Name, opts.Version, mopts...)
	hooks.AddOnRegisterSession(s.onRegister)
	hooks.AddOnUnregisterSession(s.onUnregister)
	hooks.AddAfterInitialize(s.afterInitialize)
	hooks.AddOnRequestInitialization(s.checkRequest)
	hooks.AddAfterSubscribe(s.afterSubscribe)
	hooks.AddAfterUnsubscribe(s.afterUnsubscribe)
	hooks.AddBeforeSubscriptionsListen(s.beforeListen)

	s.res = resources.New(src, resources.Options{PageSize: opts.PageSize, Logger: opts.Logger})
	if err := s.res.Register(s.mcp); err != nil {
		return nil, fmt.Errorf("register resources: %w", err)
	}
	if err := tools.Register(s.mcp, src, tools.Options{
		Session: s.toolSession, Heads: s.Heads, Logger: opts.Logger, MaxWriteSize: opts.MaxWriteSize,
	}); err != nil {
		return nil, fmt.Errorf("register tools: %w", err)
	}
	return s, nil
}

// MCPServer returns the underlying mcp-go server, for transports this
// package does not wrap (an in-process client in tests, for example).
func (s *Server) MCPServer() *mcpserver.MCPServer { return s.mcp }

// Run routes events until ctx ends, then stops every notifier and closes
// the HTTP sessions. It subscribes to every workspace of the Source from
// the head it reports at start, and resubscribes with backoff when a
// subscription fails. It returns nil when ctx ends, or the error of
// listing the workspaces if ctx ends before that ever succeeded.
func (s *Server) Run(ctx context.Context) error {
	wss, err := s.workspacesWithRetry(ctx)
	if err != nil {
		return err
	}
	var wg conc.WaitGroup
	s.mu.Lock()
	if s.running {
		s.mu.Unlock()
		return ErrRunning
	}
	for _, w := range wss {
		if _, ok := s.heads[w.Name]; !ok {
			s.heads[w.Name] = w.Head
		}
	}
	s.running, s.runCtx, s.wg = true, ctx, &wg
	for _, n := range s.waiting {
		s.startLocked(n)
	}
	s.waiting = nil
	followed := map[string]bool{}
	for _, w := range wss {
		after := s.heads[w.Name]
		followed[w.Name] = true
		wg.Go(func() { s.follow(ctx, w.Name, after) })
	}
	s.mu.Unlock()

	// A Source's workspaces may change (an MCP host's roots): follow new
	// ones as they appear and let every session see them.
	t := time.NewTicker(refreshEvery)
	defer t.Stop()
	for ctx.Err() == nil {
		select {
		case <-ctx.Done():
			continue
		case <-t.C:
		}
		wss, err := s.src.Workspaces(ctx)
		if err != nil {
			continue
		}
		for _, w := range wss {
			if followed[w.Name] {
				continue
			}
			followed[w.Name] = true
			s.mu.Lock()
			if _, ok := s.heads[w.Name]; !ok {
				s.heads[w.Name] = w.Head
			}
			after := s.heads[w.Name]
			for _, ss := range s.sessions {
				ss.mu.Lock()
				if ss.box != nil {
					ss.box.AddWorkspace(w.Name, after)
				}
				ss.mu.Unlock()
			}
			s.mu.Unlock()
			s.log.Info("following a new workspace", "workspace", w.Name)
			wg.Go(func() { s.follow(ctx, w.Name, after) })
		}
	}
	s.mu.Lock()
	s.running = false
	h := s.http
	s.mu.Unlock()
	if h != nil {
		shutdown, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		if err := h.Shutdown(shutdown); err != nil {
			s.log.Warn("close HTTP sessions", "err", err)
		}
		cancel()
	}
	wg.Wait()
	return nil
}

// refreshEvery is how often Run looks for new workspaces.
const refreshEvery = 500 * time.Millisecond

func (s *Server) workspacesWithRetry(ctx context.Context) ([]events.WorkspaceInfo, error) {
	delay := 100 * time.Millisecond
	for {
		wss, err := s.src.Workspaces(ctx)
		if err == nil {
			return wss, nil
		}
		if ctx.Err() != nil {
			return nil, fmt.Errorf("list workspaces: %w", err)
		}
		s.log.Warn("list workspaces failed; retrying", "err", err, "in", delay)
		if !sleep(ctx, delay) {
			return nil, fmt.Errorf("list workspaces: %w", err)
		}
		delay = min(delay*2, maxBackoff)
	}
}

// follow routes the events of one workspace for as long as ctx lasts.
// events.Follow resumes the subscription after the last event routed
// whenever it ends; when the log has dropped events this process never
// routed, routing continues from the log's head (sessions resume by cursor
// and see the expiry).
func (s *Server) follow(ctx context.Context, ws string, after uint64) {
	for {
		err := events.Follow(ctx, s.src, ws, after, func(ev events.Event) error {
			s.route(ev)
			return nil
		}, events.FollowOptions{Logger: s.log})
		if ctx.Err() != nil {
			return
		}
		s.log.Error("event subscription fell behind the log; continuing from its head", "workspace", ws, "after", s.Heads()[ws], "err", err)
		wss, err := s.src.Workspaces(ctx)
		if err != nil {
			if !sleep(ctx, time.Second) {
				return
			}
			continue
		}
		for _, w := range wss {
			if w.Name == ws {
				after = w.Head
			}
		}
	}
}

// route hands one event to every buffer and notifier. It never blocks.
func (s *Server) route(ev events.Event) {
	s.mu.RLock()
	for _, ss := range s.sessions {
		ss.mu.Lock()
		box := ss.box
		ss.mu.Unlock()
		if box != nil {
			box.Offer(ev)
		}
		ss.notif.offer(ev)
	}
	for n := range s.listens {
		n.offer(ev)
	}
	s.mu.RUnlock()
	s.mu.Lock()
	if ev.Seq > s.heads[ev.Workspace] {
		s.heads[ev.Workspace] = ev.Seq
	}
	s.mu.Unlock()
}

// Heads returns the log position up to which every event has been routed
// to the session buffers.
func (s *Server) Heads() events.Cursor {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.heads.Clone()
}

// startLocked starts a notifier under Run; the caller holds s.mu and Run
// is running.
func (s *Server) startLocked(n *notifier) {
	n.start(s.runCtx, s.wg.Go)
}

// arm starts n now if Run is running, else when it starts.
func (s *Server) arm(n *notifier) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.running {
		s.startLocked(n)
		return
	}
	s.waiting = append(s.waiting, n)
}

func (s *Server) disarm(n *notifier) {
	n.stop()
	s.mu.Lock()
	defer s.mu.Unlock()
	if i := slices.Index(s.waiting, n); i >= 0 {
		s.waiting = slices.Delete(s.waiting, i, i+1)
	}
}

// Sessions returns the number of registered MCP sessions.
func (s *Server) Sessions() int {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return len(s.sessions)
}

// Stats returns the notification counters.
func (s *Server) Stats() Stats {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return Stats{
		Sessions:  len(s.sessions),
		Listens:   len(s.listens),
		Notified:  s.stats.notified.Load(),
		Coalesced: s.stats.coalesced.Load(),
		Dropped:   s.stats.dropped.Load(),
	}
}

// ServeStdio serves one MCP client over in and out until ctx ends or in
// reaches EOF. out carries only MCP messages. A line of in that is not
// valid UTF-8 is answered with a JSON-RPC parse error and goes no further.
// The stdio session is named "stdio", as mcp-go names it, so only one
// ServeStdio may run at a time in a process (ErrStdioBusy). When in is an
// *os.File on a pipe or socket in blocking mode (a host's stdin), it is
// read through a non-blocking duplicate, which saves context switches per
// request; blocking mode is restored before ServeStdio returns. Otherwise
// the caller should close in after ctx ends: the goroutine reading it
// returns only then (it drops what it still reads).
func (s *Server) ServeStdio(ctx context.Context, in io.Reader, out io.Writer) error {
	if !stdioBusy.CompareAndSwap(false, true) {
		return ErrStdioBusy
	}
	defer stdioBusy.Store(false)
	in, undo := pollable(in)
	// A pending read of a pollable duplicate ends when it is closed: do so
	// when ctx ends, so that mcp-go's reader goroutine returns too.
	stopClose := context.AfterFunc(ctx, undo)
	defer func() {
		stopClose()
		undo()
	}()
	log := s.log.With("transport", "stdio")
	err := serveStdio(context.WithValue(ctx, stdioKey{}, true), s.mcp, newStdioWire(in, out, log), log)
	if ctx.Err() != nil {
		return nil // whatever the reader saw, it saw because the session ended
	}
	if err != nil {
		return fmt.Errorf("serve stdio: %w", err)
	}
	return nil
}

// HTTPHandler returns the MCP streamable HTTP endpoint, to be mounted at
// /mcp (it answers on any path), with request bodies bounded by
// MaxRequestBody; a body that is not valid UTF-8 answers 400 with a
// JSON-RPC parse error. It checks neither Host nor Origin: serve it behind
// api.Guard (and api.RequireToken), as filecast mcp --http does, so that
// web pages cannot drive it. Run's end closes the HTTP sessions.
func (s *Server) HTTPHandler() http.Handler {
	s.httpOnce.Do(func() {
		h := mcpserver.NewStreamableHTTPServer(s.mcp,
			mcpserver.WithStateful(true),
			mcpserver.WithSessionIdleTTL(s.opts.SessionIdleTTL),
			mcpserver.WithHeartbeatInterval(s.opts.SessionIdleTTL/3),
			mcpserver.WithStreamableHTTPLogger(s.log.With("transport", "http")),
			// api.Guard checks Host, the same way for the hub and here.
			mcpserver.WithDisableLocalhostProtection(true),
		)
		s.mu.Lock()
		s.http = h
		s.mu.Unlock()
	})
	s.mu.RLock()
	defer s.mu.RUnlock()
	return limitBody(s.wireHTTP(s.http))
}

// holder returns a lock holder name for a session of client name: the
// name with a short random suffix.
func holder(name string) string {
	if name == "" {
		name = "anonymous"
	}
	var b [2]byte
	_, _ = rand.Read(b[:])
	return name + "#" + hex.EncodeToString(b[:])
}

// sleep waits for d or until ctx is done, and reports whether d passed.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
