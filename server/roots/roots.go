// Package roots serves the folders an MCP host shares as its roots: it is
// the events.Source and events.Locker of "filecast mcp" started without
// --root and --hub. After each handshake it asks the host for its roots
// (roots/list), starts a hub on them (Options.Start), and does it again on
// notifications/roots/list_changed; every call goes to the current hub,
// and waits for one (bounded by its context) while it starts.
//
//	r := roots.New(roots.Options{Start: startHub, Logger: log})
//	srv, err := server.New(r, server.Options{...})
//	if err != nil { ... }
//	r.Attach(srv.MCPServer())
//	go r.Run(ctx) // owns the hubs it starts; returns when ctx is done
//
// A change of roots replaces the hub: the subscriptions on the old one end
// and events.Follow (the MCP server's router) resumes them on the new one,
// from the same data folder's log. Each workspace is named after its
// folder ("project"), with a number when two share a name
// ("project-2").
package roots

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/mark3labs/mcp-go/mcp"
	mcpserver "github.com/mark3labs/mcp-go/server"
	"github.com/sourcegraph/conc"

	"github.com/filecast/filecast/events"
	"github.com/filecast/filecast/events/workspace"
)

// ErrNoRoots is what every call answers while the host has shared no root.
var ErrNoRoots = errors.New("no workspace yet: this host shared no roots (MCP roots/list); start filecast with --root DIR or --hub URL")

// listTimeout bounds a roots/list request to the host.
const listTimeout = 10 * time.Second

// Hub is a hub started on the host's roots.
type Hub interface {
	events.Source
	events.Locker
	// Run serves until ctx is done, or fails.
	Run(ctx context.Context) error
	// Ready is closed once the hub can be called.
	Ready() <-chan struct{}
}

// Options configure New.
type Options struct {
	// Start makes the hub of the workspaces, which Run then runs. Required.
	Start func(wss []workspace.Workspace) (Hub, error)
	// Logger receives the changes of roots; nil discards them.
	Logger *slog.Logger
}

// Roots is the events.Source and events.Locker over the host's roots. Its
// methods are safe for concurrent use.
type Roots struct {
	start func([]workspace.Workspace) (Hub, error)
	log   *slog.Logger
	wake  chan mcpserver.ClientSession

	mu      sync.Mutex
	cur     Hub
	err     error         // why there is no hub (nil while waiting for one)
	changed chan struct{} // closed when cur or err changes
	dirs    []string      // folders of the current hub; owned by Run
}

var (
	_ events.Source = (*Roots)(nil)
	_ events.Locker = (*Roots)(nil)
)

// New returns Roots that serve nothing until Run has started a hub.
func New(opts Options) *Roots {
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Roots{start: opts.Start, log: log, changed: make(chan struct{}), wake: make(chan mcpserver.ClientSession, 1)}
}

// Attach makes s ask its host for roots after every handshake and on
// every notifications/roots/list_changed; s must have hooks
// (mcpserver.WithHooks, as server.New gives it).
func (r *Roots) Attach(s *mcpserver.MCPServer) {
	s.GetHooks().AddAfterInitialize(func(ctx context.Context, _ any, _ *mcp.InitializeRequest, _ *mcp.InitializeResult) {
		r.poke(mcpserver.ClientSessionFromContext(ctx))
	})
	s.AddNotificationHandler(mcp.MethodNotificationRootsListChanged, func(ctx context.Context, _ mcp.JSONRPCNotification) {
		r.poke(mcpserver.ClientSessionFromContext(ctx))
	})
}

func (r *Roots) poke(cs mcpserver.ClientSession) {
	if cs == nil {
		return
	}
	select {
	case r.wake <- cs:
	default:
	}
}

// Run lists the roots whenever the host is asked for them (see Attach)
// and keeps a hub on them until ctx is done. It owns the hubs it starts,
// and they have stopped when it returns nil.
func (r *Roots) Run(ctx context.Context) error {
	var stop context.CancelFunc
	var done chan error
	var wg conc.WaitGroup
	defer wg.Wait()
	end := func() {
		if stop != nil {
			stop()
			<-done
			stop, done = nil, nil
		}
	}
	defer end()
	for {
		var cs mcpserver.ClientSession
		select {
		case <-ctx.Done():
			return nil
		case cs = <-r.wake:
		case err := <-done: // the hub failed
			stop, done = nil, nil
			r.set(nil, err)
			continue
		}
		dirs, err := r.list(ctx, cs)
		if err != nil {
			r.log.Warn("cannot list the host's roots", "err", err)
			if r.current() == nil {
				r.set(nil, fmt.Errorf("%w (%v)", ErrNoRoots, err))
			}
			continue
		}
		if slices.Equal(dirs, r.dirs) {
			continue
		}
		// Calls wait for the next hub rather than reach the one going away.
		r.set(nil, nil)
		end()
		r.dirs = dirs
		if len(dirs) == 0 {
			r.set(nil, ErrNoRoots)
			continue
		}
		h, err := r.startOn(dirs)
		if err != nil {
			r.log.Error("cannot watch the host's roots", "roots", dirs, "err", err)
			r.set(nil, err)
			continue
		}
		hctx, cancel := context.WithCancel(ctx)
		stop, done = cancel, make(chan error, 1)
		wg.Go(func() { done <- h.Run(hctx) }) // ended by stop()
		select {
		case <-h.Ready():
		case err := <-done: // failed before it could be called
			stop, done = nil, nil
			r.log.Error("cannot watch the host's roots", "roots", dirs, "err", err)
			r.set(nil, err)
			continue
		case <-ctx.Done():
			return nil
		}
		r.set(h, nil)
		r.log.Info("watching the host's roots", "roots", dirs)
	}
}

// list asks the host for its roots and returns their folders, sorted.
func (r *Roots) list(ctx context.Context, cs mcpserver.ClientSession) ([]string, error) {
	rs, ok := cs.(mcpserver.SessionWithRoots)
	if !ok {
		return nil, errors.New("this connection cannot ask for roots")
	}
	if ci, ok := cs.(mcpserver.SessionWithClientInfo); ok && ci.GetClientCapabilities().Roots == nil {
		return nil, errors.New("the host does not share roots")
	}
	ctx, cancel := context.WithTimeout(ctx, listTimeout)
	defer cancel()
	res, err := rs.ListRoots(ctx, mcp.ListRootsRequest{})
	if err != nil {
		return nil, fmt.Errorf("roots/list: %w", err)
	}
	var dirs []string
	for _, root := range res.Roots {
		u, err := url.Parse(root.URI)
		if err != nil || u.Scheme != "file" || u.Path == "" {
			r.log.Warn("ignoring a root that is not a local folder", "uri", root.URI)
			continue
		}
		dirs = append(dirs, filepath.Clean(u.Path))
	}
	slices.Sort(dirs)
	return slices.Compact(dirs), nil
}

// startOn makes the hub for dirs, each a workspace named after its folder.
func (r *Roots) startOn(dirs []string) (Hub, error) {
	var wss []workspace.Workspace
	seen := map[string]int{}
	for _, d := range dirs {
		name := Name(filepath.Base(d))
		seen[name]++
		if n := seen[name]; n > 1 {
			name = fmt.Sprintf("%s-%d", name, n)
		}
		ws, err := workspace.Parse(name + "=" + d)
		if err != nil {
			return nil, fmt.Errorf("root %s: %w", d, err)
		}
		wss = append(wss, ws)
	}
	return r.start(wss)
}

// Name turns a folder's name into a valid workspace name: characters
// other than letters, digits, '_', '.' and '-' become '_', leading dots
// and dashes go, at most 60 bytes are kept, and "root" stands for a name
// with nothing left.
func Name(base string) string {
	var b strings.Builder
	for _, ch := range base {
		switch {
		case ch >= 'a' && ch <= 'z', ch >= 'A' && ch <= 'Z', ch >= '0' && ch <= '9', ch == '_', ch == '.', ch == '-':
			b.WriteRune(ch)
		default:
			b.WriteByte('_')
		}
	}
	name := strings.TrimLeft(b.String(), ".-")
	if len(name) > 60 {
		name = name[:60]
	}
	if name == "" || events.ValidWorkspaceName(name) != nil {
		name = "root"
	}
	return name
}

func (r *Roots) set(h Hub, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.cur, r.err = h, err
	close(r.changed)
	r.changed = make(chan struct{})
}

func (r *Roots) current() Hub {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.cur
}

// hub waits for a hub, up to ctx; it fails at once when the host has none
// to offer.
func (r *Roots) hub(ctx context.Context) (Hub, error) {
	for {
		r.mu.Lock()
		cur, err, changed := r.cur, r.err, r.changed
		r.mu.Unlock()
		if cur != nil {
			return cur, nil
		}
		if err != nil {
			return nil, err
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// Workspaces implements events.Source on the current hub.
func (r *Roots) Workspaces(ctx context.Context) ([]events.WorkspaceInfo, error) {
	h, err := r.hub(ctx)
	if err != nil {
		return nil, err
	}
	return h.Workspaces(ctx)
}

// Subscribe implements events.Source on the current hub. It ends with that
// hub's subscription, when the roots change for instance: the caller
// subscribes again (events.Follow does) and lands on the next hub.
func (r *Roots) Subscribe(ctx context.Context, ws string, after uint64, fn func(events.Event) error) error {
	h, err := r.hub(ctx)
	if err != nil {
		return err
	}
	return h.Subscribe(ctx, ws, after, fn)
}

// Changes implements events.Source on the current hub.
func (r *Roots) Changes(ctx context.Context, ws string, after uint64, limit int, wait time.Duration) (events.Page, error) {
	h, err := r.hub(ctx)
	if err != nil {
		return events.Page{}, err
	}
	return h.Changes(ctx, ws, after, limit, wait)
}

// Files implements events.Source on the current hub.
func (r *Roots) Files(ctx context.Context, ws, prefix string) (events.Listing, error) {
	h, err := r.hub(ctx)
	if err != nil {
		return events.Listing{}, err
	}
	return h.Files(ctx, ws, prefix)
}

// ReadFile implements events.Source on the current hub.
func (r *Roots) ReadFile(ctx context.Context, ws, path string, rg events.Range) ([]byte, events.FileInfo, error) {
	h, err := r.hub(ctx)
	if err != nil {
		return nil, events.FileInfo{}, err
	}
	return h.ReadFile(ctx, ws, path, rg)
}

// Content implements events.Source on the current hub.
func (r *Roots) Content(ctx context.Context, ws, sha string) ([]byte, error) {
	h, err := r.hub(ctx)
	if err != nil {
		return nil, err
	}
	return h.Content(ctx, ws, sha)
}

// Lock implements events.Locker on the current hub.
func (r *Roots) Lock(ctx context.Context, req events.LockRequest) (events.Lease, error) {
	h, err := r.hub(ctx)
	if err != nil {
		return events.Lease{}, err
	}
	return h.Lock(ctx, req)
}

// Unlock implements events.Locker on the current hub.
func (r *Roots) Unlock(ctx context.Context, ws, path, token string) error {
	h, err := r.hub(ctx)
	if err != nil {
		return err
	}
	return h.Unlock(ctx, ws, path, token)
}

// Locks implements events.Locker on the current hub.
func (r *Roots) Locks(ctx context.Context, ws string) ([]events.Lease, error) {
	h, err := r.hub(ctx)
	if err != nil {
		return nil, err
	}
	return h.Locks(ctx, ws)
}

// WriteFile implements events.Locker on the current hub.
func (r *Roots) WriteFile(ctx context.Context, w events.WriteRequest) (events.Event, error) {
	h, err := r.hub(ctx)
	if err != nil {
		return events.Event{}, err
	}
	return h.WriteFile(ctx, w)
}
