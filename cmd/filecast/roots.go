package main

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
	"github.com/filecast/filecast/events/daemon"
)

// errNoRoots is what every call answers while the host has shared no root.
var errNoRoots = errors.New("no workspace yet: this host shared no roots (MCP roots/list); start filecast with --root DIR or --hub URL")

// rootsHub serves the workspaces an MCP host shares as its roots, for
// "filecast mcp" started without --root and --hub: after the handshake it
// asks the host for its roots (roots/list), runs the data folder's shared
// hub on them, and does it again on notifications/roots/list_changed.
//
// It is an events.Source and events.Locker whose calls go to the current
// hub; Subscribe carries on across a change of roots from the last event
// it delivered.
type rootsHub struct {
	cfg stackConfig // flags; roots are filled in per hub
	log *slog.Logger

	mu      sync.Mutex
	cur     daemon.Backend
	err     error         // why there is no hub (nil while waiting)
	changed chan struct{} // closed when cur or err changes
	roots   []string      // folders of the current hub
	wake    chan mcpserver.ClientSession
}

func newRootsHub(c stackConfig, log *slog.Logger) *rootsHub {
	return &rootsHub{cfg: c, log: log, changed: make(chan struct{}), wake: make(chan mcpserver.ClientSession, 1)}
}

// attach asks for roots after every handshake and on every change.
func (r *rootsHub) attach(s *mcpserver.MCPServer) {
	s.GetHooks().AddAfterInitialize(func(ctx context.Context, _ any, _ *mcp.InitializeRequest, _ *mcp.InitializeResult) {
		r.poke(mcpserver.ClientSessionFromContext(ctx))
	})
	s.AddNotificationHandler(mcp.MethodNotificationRootsListChanged, func(ctx context.Context, _ mcp.JSONRPCNotification) {
		r.poke(mcpserver.ClientSessionFromContext(ctx))
	})
}

func (r *rootsHub) poke(cs mcpserver.ClientSession) {
	if cs == nil {
		return
	}
	select {
	case r.wake <- cs:
	default:
	}
}

// run lists the roots whenever poked and keeps a shared hub on them until
// ctx is done. It owns the hubs it starts.
func (r *rootsHub) run(ctx context.Context) error {
	var stop context.CancelFunc
	var done chan error
	var wg conc.WaitGroup
	defer wg.Wait()
	defer func() {
		if stop != nil {
			stop()
			<-done
		}
	}()
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
				r.set(nil, fmt.Errorf("%w (%v)", errNoRoots, err))
			}
			continue
		}
		if slices.Equal(dirs, r.roots) {
			continue
		}
		if stop != nil {
			stop()
			<-done
			stop, done = nil, nil
		}
		r.roots = dirs
		if len(dirs) == 0 {
			r.set(nil, errNoRoots)
			continue
		}
		sh, o, err := r.start(dirs)
		if err != nil {
			r.log.Error("cannot watch the host's roots", "roots", dirs, "err", err)
			r.set(nil, err)
			continue
		}
		hctx, cancel := context.WithCancel(ctx)
		stop, done = cancel, make(chan error, 1)
		wg.Go(func() { done <- sh.Run(hctx) }) // ended by stop()
		waitIndexed(ctx, sh, o)
		r.set(sh, nil)
		r.log.Info("watching the host's roots", "roots", dirs)
	}
}

// list asks the host for its roots and returns their folders, sorted.
func (r *rootsHub) list(ctx context.Context, cs mcpserver.ClientSession) ([]string, error) {
	rs, ok := cs.(mcpserver.SessionWithRoots)
	if !ok {
		return nil, errors.New("this connection cannot ask for roots")
	}
	if ci, ok := cs.(mcpserver.SessionWithClientInfo); ok && ci.GetClientCapabilities().Roots == nil {
		return nil, errors.New("the host does not share roots")
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
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

// start makes the shared hub for dirs, naming each workspace after its
// folder (with a number when two folders share a name).
func (r *rootsHub) start(dirs []string) (*daemon.Shared, *owned, error) {
	c := r.cfg
	c.roots, c.workspaces = nil, nil
	seen := map[string]int{}
	for _, d := range dirs {
		name := sanitizeName(filepath.Base(d))
		seen[name]++
		if n := seen[name]; n > 1 {
			name = fmt.Sprintf("%s-%d", name, n)
		}
		c.roots = append(c.roots, name+"="+d)
	}
	if err := c.validate(&env{getenv: osGetenv}); err != nil {
		return nil, nil, err
	}
	o := newOwned()
	sh, err := sharedHub(&c, r.log, nil, o, nil, servesAll(&c))
	return sh, o, err
}

// sanitizeName turns a folder name into a valid workspace name.
func sanitizeName(base string) string {
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
	if name == "" || events.ValidWorkspaceName(name) != nil {
		name = "root"
	}
	if len(name) > 60 {
		name = name[:60]
	}
	return name
}

func (r *rootsHub) set(b daemon.Backend, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.cur, r.err = b, err
	close(r.changed)
	r.changed = make(chan struct{})
}

func (r *rootsHub) current() daemon.Backend {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.cur
}

// backend waits for a hub, up to ctx; it fails at once when the host has
// none to offer.
func (r *rootsHub) backend(ctx context.Context) (daemon.Backend, error) {
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

var (
	_ events.Source = (*rootsHub)(nil)
	_ events.Locker = (*rootsHub)(nil)
)

func (r *rootsHub) Workspaces(ctx context.Context) ([]events.WorkspaceInfo, error) {
	b, err := r.backend(ctx)
	if err != nil {
		return nil, err
	}
	return b.Workspaces(ctx)
}

// Subscribe follows ws on the current hub and, when the roots change and
// the hub with them, on the next one, from the last event delivered.
func (r *rootsHub) Subscribe(ctx context.Context, ws string, after uint64, fn func(events.Event) error) error {
	for {
		b, err := r.backend(ctx)
		if err != nil {
			return err
		}
		var fnErr error
		err = b.Subscribe(ctx, ws, after, func(ev events.Event) error {
			if ev.Seq <= after {
				return nil
			}
			if fnErr = fn(ev); fnErr == nil {
				after = ev.Seq
			}
			return fnErr
		})
		if fnErr != nil || ctx.Err() != nil || !errors.Is(err, daemon.ErrStopped) {
			return err
		}
	}
}

func (r *rootsHub) Changes(ctx context.Context, ws string, after uint64, limit int, wait time.Duration) (events.Page, error) {
	b, err := r.backend(ctx)
	if err != nil {
		return events.Page{}, err
	}
	return b.Changes(ctx, ws, after, limit, wait)
}

func (r *rootsHub) Files(ctx context.Context, ws, prefix string) (events.Listing, error) {
	b, err := r.backend(ctx)
	if err != nil {
		return events.Listing{}, err
	}
	return b.Files(ctx, ws, prefix)
}

func (r *rootsHub) ReadFile(ctx context.Context, ws, path string) ([]byte, events.FileInfo, error) {
	b, err := r.backend(ctx)
	if err != nil {
		return nil, events.FileInfo{}, err
	}
	return b.ReadFile(ctx, ws, path)
}

func (r *rootsHub) Lock(ctx context.Context, req events.LockRequest) (events.Lease, error) {
	b, err := r.backend(ctx)
	if err != nil {
		return events.Lease{}, err
	}
	return b.Lock(ctx, req)
}

func (r *rootsHub) Unlock(ctx context.Context, ws, path, token string) error {
	b, err := r.backend(ctx)
	if err != nil {
		return err
	}
	return b.Unlock(ctx, ws, path, token)
}

func (r *rootsHub) Locks(ctx context.Context, ws string) ([]events.Lease, error) {
	b, err := r.backend(ctx)
	if err != nil {
		return nil, err
	}
	return b.Locks(ctx, ws)
}

func (r *rootsHub) WriteFile(ctx context.Context, w events.WriteRequest) (events.Event, error) {
	b, err := r.backend(ctx)
	if err != nil {
		return events.Event{}, err
	}
	return b.WriteFile(ctx, w)
}
