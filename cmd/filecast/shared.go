package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/filecast/filecast/events/api"
	"github.com/filecast/filecast/events/daemon"
	"github.com/filecast/filecast/events/node"
	"github.com/filecast/filecast/events/remote"
	"github.com/filecast/filecast/server"
)

// sharedHub returns the one hub of the data folder c.data: this process
// becomes its owner (starting the embedded stack and serving it on the
// folder's unix socket) or connects to the process that owns it. serve, if
// set, runs beside the owner's stack (e.g. the TCP API of "filecast hub").
// check vets an owner found running.
func sharedHub(c *stackConfig, log *slog.Logger, progress io.Writer,
	serve func(ctx context.Context, n *node.Node) error,
	check func(ctx context.Context, b daemon.Backend) error) (*daemon.Shared, error) {
	become := func(ctx context.Context) (*daemon.Owner, error) {
		n, err := node.Open(ctx, c.node(log, progress))
		if err != nil {
			return nil, err
		}
		run := n.Run
		if serve != nil {
			run = func(ctx context.Context) error {
				return node.RunAll(ctx, n.Run, func(ctx context.Context) error { return serve(ctx, n) })
			}
		}
		return &daemon.Owner{
			Backend: n.Gate(),
			// The socket is this user's alone: writes through it keep the
			// actor of the MCP session that made them.
			Handler: n.Handler(nil, nil, true),
			Run:     run,
			Close:   n.Close,
		}, nil
	}
	return daemon.NewShared(daemon.Options{
		Dir:    c.data,
		Become: become,
		Connect: func(socket string) (daemon.Backend, error) {
			return remote.New("http://filecast", remote.Options{
				HTTPClient: &http.Client{Transport: daemon.Transport(socket)},
				SendActor:  true,
			})
		},
		Check:  check,
		Logger: log.With("component", "daemon"),
	})
}

// localMCP is this process's MCP server, when it runs one: the hub it owns
// reports its sessions.
var localMCP atomic.Pointer[server.Server]

func localMCPSessions() int {
	if srv := localMCP.Load(); srv != nil {
		return srv.Sessions()
	}
	return 0
}

// serveHTTP serves h on ln until ctx is done, then shuts the server down,
// ending open streams.
func serveHTTP(ctx context.Context, ln net.Listener, h http.Handler) error {
	reqCtx, endRequests := context.WithCancel(context.WithoutCancel(ctx))
	defer endRequests()
	srv := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
		MaxHeaderBytes:    api.MaxHeaderBytes,
		BaseContext:       func(net.Listener) context.Context { return reqCtx },
	}
	return node.RunAll(ctx,
		func(context.Context) error {
			if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				return fmt.Errorf("serve http: %w", err)
			}
			return nil
		},
		func(ctx context.Context) error {
			<-ctx.Done()
			endRequests()
			sctx, done := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
			defer done()
			_ = srv.Shutdown(sctx)
			return nil
		})
}

// servesAll is the check of "filecast mcp --root": the running owner must
// serve every workspace this process was asked for.
func servesAll(c *stackConfig) func(ctx context.Context, b daemon.Backend) error {
	return func(ctx context.Context, b daemon.Backend) error {
		infos, err := b.Workspaces(ctx)
		if err != nil {
			return err
		}
		var have []string
		for _, w := range infos {
			have = append(have, w.Name)
		}
		for _, ws := range c.workspaces {
			if !slices.Contains(have, ws.Name) {
				return fmt.Errorf("the hub of data folder %s (process %d) serves %s, not workspace %s; give the same --root as the other filecast processes, or a different --data",
					c.data, daemon.OwnerPID(c.data), strings.Join(have, ", "), ws.Name)
			}
		}
		return nil
	}
}

// mustOwn is the check of "filecast hub": it will not share its data
// folder with a hub another process owns.
func mustOwn(c *stackConfig) func(ctx context.Context, b daemon.Backend) error {
	return func(context.Context, daemon.Backend) error {
		return &daemon.BusyError{Dir: c.data, PID: daemon.OwnerPID(c.data)}
	}
}
