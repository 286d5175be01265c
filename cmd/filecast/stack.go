package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"path/filepath"
	"sync/atomic"

	"github.com/sourcegraph/conc"

	"github.com/filecast/filecast/events/api"
	"github.com/filecast/filecast/events/dashboard"
	"github.com/filecast/filecast/events/feed"
	"github.com/filecast/filecast/events/hub"
	"github.com/filecast/filecast/events/journal"
	"github.com/filecast/filecast/events/lock"
	"github.com/filecast/filecast/events/metrics"
	"github.com/filecast/filecast/events/natsd"
	"github.com/filecast/filecast/events/watch"
	"github.com/filecast/filecast/events/webhook"
	"github.com/filecast/filecast/server"
)

// stack is an embedded hub: the NATS server, the journal, the hub, its
// lock manager, the webhook dispatcher and one watcher per workspace.
// openStack starts nothing that runs on its own; run drives the loops and
// close releases the rest. The caller holds the data folder's lock (a
// daemon.Shared does).
type stack struct {
	cfg      *stackConfig
	nats     *natsd.Server
	journal  *journal.Journal
	hub      *hub.Hub
	locks    *lock.Manager
	webhooks *webhook.Dispatcher
	watchers []*watch.Watcher
	feed     *feed.Feed
	metrics  *metrics.Registry
	dash     http.Handler
	log      *slog.Logger
}

func openStack(ctx context.Context, c *stackConfig, log *slog.Logger, progress io.Writer) (_ *stack, err error) {
	s := &stack{cfg: c, log: log}
	defer func() {
		if err != nil {
			s.close()
		}
	}()
	s.nats, err = natsd.Start(ctx, natsd.Options{
		StoreDir: filepath.Join(c.data, "jetstream"),
		URL:      c.natsURL,
		Logger:   log.With("component", "nats"),
	})
	if err != nil {
		return nil, fmt.Errorf("start event log: %w", err)
	}
	s.journal, err = journal.Open(ctx, s.nats.Conn(), journal.Options{
		MaxAge:    c.maxAge,
		MaxEvents: c.maxEvents,
		Logger:    log.With("component", "journal"),
	})
	if err != nil {
		return nil, fmt.Errorf("open event log: %w", err)
	}
	for _, ws := range c.workspaces {
		if err := s.journal.Ensure(ctx, ws.Name); err != nil {
			return nil, fmt.Errorf("open log of workspace %s: %w", ws.Name, err)
		}
	}
	s.hub, err = hub.New(hub.Options{
		Workspaces: c.workspaces,
		Log:        s.journal,
		Logger:     log.With("component", "hub"),
	})
	if err != nil {
		return nil, err
	}
	// The lock manager appends its events to the hub, so it comes second.
	s.locks, err = lock.Open(ctx, s.nats.Conn(), s.hub, lock.Options{Logger: log.With("component", "lock")})
	if err != nil {
		return nil, fmt.Errorf("open locks: %w", err)
	}
	s.hub.SetLocks(s.locks)
	s.webhooks, err = webhook.Open(ctx, s.nats.Conn(), webhook.Options{
		Schedule:     c.webhookSchedule,
		DisableAfter: c.webhookDisableAfter,
		AllowPrivate: c.allowPrivateWebhooks,
		Workspaces:   s.names(),
		Logger:       log.With("component", "webhook"),
	})
	if err != nil {
		return nil, fmt.Errorf("open webhooks: %w", err)
	}
	for _, ws := range c.workspaces {
		w, err := watch.New(watch.Options{
			Workspace: ws,
			Ignore:    c.ignorer,
			IndexPath: filepath.Join(c.data, "index", ws.Name+".json"),
			Log:       s.journal,
			Settle:    c.settle,
			Logger:    log,
			Progress:  progress,
		}, s.hub)
		if err != nil {
			return nil, fmt.Errorf("watch workspace %s: %w", ws.Name, err)
		}
		s.hub.SetIndex(ws.Name, w)
		s.watchers = append(s.watchers, w)
	}
	s.serving()
	return s, nil
}

// run blocks until ctx is done or a loop fails; every loop has stopped
// when it returns.
func (s *stack) run(ctx context.Context) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var wg conc.WaitGroup
	loop := func(name string, f func(context.Context) error) {
		wg.Go(func() {
			if err := f(ctx); err != nil && !errors.Is(err, context.Canceled) {
				cancel(fmt.Errorf("%s: %w", name, err))
			}
		})
	}
	loop("hub", s.hub.Run)
	loop("locks", s.locks.Run)
	loop("webhooks", s.webhooks.Run)
	for _, w := range s.watchers {
		loop("watcher", w.Run)
	}
	wg.Wait()
	if err := context.Cause(ctx); err != nil && !errors.Is(err, context.Canceled) {
		return err
	}
	return nil
}

// waitReady returns when every watcher has indexed its workspace and the
// lock manager has loaded the current locks.
func (s *stack) waitReady(ctx context.Context) error {
	select {
	case <-s.locks.Ready():
	case <-ctx.Done():
		return ctx.Err()
	}
	for _, w := range s.watchers {
		select {
		case <-w.Ready():
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

func (s *stack) close() {
	if s.webhooks != nil {
		_ = s.webhooks.Close()
	}
	if s.locks != nil {
		_ = s.locks.Close()
	}
	if s.journal != nil {
		if err := s.journal.Close(); err != nil {
			s.log.Warn("close journal", "err", err)
		}
	}
	if s.nats != nil {
		if err := s.nats.Close(); err != nil {
			s.log.Warn("close nats", "err", err)
		}
	}
}

// serving builds what every HTTP listener of the stack shares: one feed
// (its SSE streams, its encoding cache, its subscriber count), one metrics
// registry and one dashboard.
func (s *stack) serving() {
	s.feed = feed.New(s.hub, feed.Options{Heartbeat: s.cfg.heartbeat, Logger: s.log.With("component", "feed")})
	s.metrics = s.newMetrics(s.feed)
	s.dash = dashboard.Handler(dashboard.Options{Stats: func() dashboard.Stats {
		return dashboard.Stats{MCPSessions: localMCPSessions(), SSESubscribers: s.feed.Subscribers(), Workspaces: s.names(), Version: version()}
	}})
}

// handler is the hub's HTTP API over this stack: the /v1 routes, webhooks,
// metrics and the dashboard. Without tokens every route is open (the unix
// socket, or a loopback address).
func (s *stack) handler(tokens []api.Token, ready *atomic.Bool) http.Handler {
	h := api.New(s.hub, s.feed, api.Options{
		Tokens: tokens,
		Logger: s.log.With("component", "api"),
		Public: dashboard.IsAsset,
		Extra: func(mux *http.ServeMux) {
			s.webhooks.Routes(mux)
			mux.Handle("GET /metrics", s.metrics.Handler())
			mux.Handle("GET /{$}", s.dash)
			mux.Handle("GET /dashboard/", s.dash)
		},
	})
	return startingUntil(ready, h)
}

func (s *stack) names() []string {
	out := make([]string, len(s.cfg.workspaces))
	for i, ws := range s.cfg.workspaces {
		out[i] = ws.Name
	}
	return out
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

// startingUntil answers /healthz with 503 "starting" until ready is set,
// so that a supervisor (or a test) knows when the initial index is complete
// and every later change will be reported.
func startingUntil(ready *atomic.Bool, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/healthz" && !ready.Load() {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = w.Write([]byte(`{"status":"starting"}` + "\n"))
			return
		}
		next.ServeHTTP(w, r)
	})
}
