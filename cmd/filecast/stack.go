package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sourcegraph/conc/pool"

	"github.com/filecast/filecast/events/api"
	"github.com/filecast/filecast/events/content"
	"github.com/filecast/filecast/events/dashboard"
	"github.com/filecast/filecast/events/feed"
	"github.com/filecast/filecast/events/hub"
	"github.com/filecast/filecast/events/journal"
	"github.com/filecast/filecast/events/leader"
	"github.com/filecast/filecast/events/lock"
	"github.com/filecast/filecast/events/metrics"
	"github.com/filecast/filecast/events/natsd"
	"github.com/filecast/filecast/events/watch"
	"github.com/filecast/filecast/events/webhook"
	"github.com/filecast/filecast/events/workspace"
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
	contents *content.Store // nil with --content-cap 0, or when JetStream has no room for it
	hub      *hub.Hub
	gate     *hub.Gate // the hub as its clients see it while the first index is built
	locks    *lock.Manager
	webhooks *webhook.Dispatcher
	watchers []*watch.Watcher
	feed     *feed.Feed
	metrics  *metrics.Registry
	dash     http.Handler
	log      *slog.Logger
	elector  *leader.Elector // the workspace watch elections of a cluster; nil otherwise
	members  *leader.Members // the live hubs of a cluster, over which webhooks spread; nil otherwise
	progress io.Writer
	opened   time.Time
	counters watch.Counters // shared by every watcher of the stack
	budget   *watch.Budget  // the kernel watches every watcher of the stack may take
	live     sync.Map       // workspace name → *watch.Watcher: the watchers of this hub (of its terms, on a cluster)
	ready    atomic.Bool    // the initial index is complete: set by run
	indexed  chan struct{}  // closed when ready is set
}

func openStack(ctx context.Context, c *stackConfig, log *slog.Logger, progress io.Writer) (_ *stack, err error) {
	s := &stack{cfg: c, log: log, progress: progress, opened: time.Now(), indexed: make(chan struct{}), budget: watch.NewBudget(0)}
	defer func() {
		if err != nil {
			s.close()
		}
	}()
	nopts := c.nats // validated, with its StoreDir
	nopts.Logger = log.With("component", "nats")
	s.nats, err = natsd.Start(ctx, nopts)
	if err != nil {
		return nil, fmt.Errorf("start event log: %w", err)
	}
	jopts := journal.Options{
		MaxAge:    c.maxAge,
		MaxEvents: c.maxEvents,
		Replicas:  s.nats.Replicas(),
		Logger:    log.With("component", "journal"),
	}
	if s.nats.Embedded() {
		jopts.Room = s.nats.Room // an external server's refusals come with its answers
	}
	s.journal, err = journal.Open(ctx, s.nats.Conn(), jopts)
	if err != nil {
		return nil, fmt.Errorf("open event log: %w", err)
	}
	// The workspaces' streams, the lock bucket and the webhook store are
	// independent: each is a round trip or two to JetStream (a file
	// created and synced on a first start), so they are opened together.
	// Nothing is appended to the hub before its streams exist: the lock
	// manager appends only once it runs.
	p := pool.New().WithErrors()
	for _, ws := range c.workspaces {
		p.Go(func() error {
			if err := natsd.RetryOpen(ctx, func(ctx context.Context) error { return s.journal.Ensure(ctx, ws.Name) }); err != nil {
				return fmt.Errorf("open log of workspace %s: %w", ws.Name, err)
			}
			return nil
		})
	}
	p.Go(func() error {
		err := natsd.RetryOpen(ctx, func(ctx context.Context) (err error) {
			s.locks, err = lock.Open(ctx, s.nats.Conn(), lock.Options{Replicas: s.nats.Replicas(), Logger: log.With("component", "lock")})
			return err
		})
		if err != nil {
			return fmt.Errorf("open locks: %w", err)
		}
		return nil
	})
	p.Go(func() error {
		err := natsd.RetryOpen(ctx, func(ctx context.Context) (err error) {
			s.webhooks, err = webhook.Open(ctx, s.nats.Conn(), webhook.Options{
				Schedule:     c.webhookSchedule,
				DisableAfter: c.webhookDisableAfter,
				AllowPrivate: c.allowPrivateWebhooks,
				Workspaces:   s.names(),
				Replicas:     s.nats.Replicas(),
				Mine:         s.webhookMine(),
				Logger:       log.With("component", "webhook"),
			})
			return err
		})
		if err != nil {
			return fmt.Errorf("open webhooks: %w", err)
		}
		return nil
	})
	if c.contentCap > 0 {
		p.Go(func() error { return s.openContents(ctx) })
	}
	if err := p.Wait(); err != nil {
		return nil, err
	}
	hopts := hub.Options{
		Workspaces: c.workspaces,
		Log:        s.journal,
		Locks:      s.locks,
		Logger:     log.With("component", "hub"),
	}
	if s.contents != nil {
		hopts.Contents = s.contents
	}
	s.hub, err = hub.New(hopts)
	if err != nil {
		return nil, err
	}
	if c.clustered() {
		// The hubs of the cluster elect one watcher per workspace (run).
		if err := s.openCluster(ctx); err != nil {
			return nil, err
		}
	} else {
		for _, ws := range c.workspaces {
			w, err := s.newWatcher(ws)
			if err != nil {
				return nil, err
			}
			s.hub.SetIndex(ws.Name, w)
			s.watchers = append(s.watchers, w)
		}
	}
	s.serving()
	return s, nil
}

// openContents opens the content store (--content-cap). A JetStream
// without room for it leaves the hub without one: it says so, and serves
// everything but diffs.
func (s *stack) openContents(ctx context.Context) error {
	c := s.cfg
	opts := content.Options{
		MaxBytes:    int64(c.contentCap),
		MaxFileSize: int64(c.contentMaxFile),
		MaxAge:      c.maxAge,
		Replicas:    s.nats.Replicas(),
		Logger:      s.log,
	}
	if s.nats.Embedded() {
		opts.Room = s.nats.Room
	}
	err := natsd.RetryOpen(ctx, func(ctx context.Context) (err error) {
		s.contents, err = content.Open(ctx, s.nats.Conn(), opts)
		return err
	})
	if natsd.NoRoom(err) {
		s.log.Warn("no diffs: the content store cannot be opened; lower --content-cap or give JetStream more room", "err", err)
		return nil
	}
	if err != nil {
		return fmt.Errorf("open content store: %w", err)
	}
	return nil
}

// webhookMine is webhook.Options.Mine: on a cluster, the webhooks are
// spread over the live hubs; otherwise this process delivers them all.
func (s *stack) webhookMine() func(string) bool {
	if !s.cfg.clustered() {
		return nil
	}
	return func(id string) bool { return s.members == nil || s.members.Mine(id) }
}

// newWatcher makes the watcher of ws, appending to the hub.
func (s *stack) newWatcher(ws workspace.Workspace) (*watch.Watcher, error) {
	c := s.cfg
	w, err := watch.New(watch.Options{
		Workspace:    ws,
		Ignore:       c.ignorer,
		IndexPath:    filepath.Join(c.data, "index", ws.Name+".json"),
		Log:          s.journal,
		Settle:       c.settle,
		Logger:       s.log,
		Progress:     s.progress,
		Since:        processStart.Add(-clockTick),
		Counters:     &s.counters,
		Leftover:     hub.IsTempName,
		Watch:        c.watch,
		PollInterval: c.pollInterval,
		Budget:       s.budget,
		Contents:     s.workspaceContents(ws.Name),
	}, s.hub)
	if err != nil {
		return nil, fmt.Errorf("watch workspace %s: %w", ws.Name, err)
	}
	s.live.Store(ws.Name, w)
	return w, nil
}

// workspaceContents is what the watcher of ws keeps contents in; nil
// without a content store.
func (s *stack) workspaceContents(ws string) watch.Contents {
	if s.contents == nil {
		return nil
	}
	return s.contents.Workspace(ws)
}

// watching is how this hub watches each workspace it watches, once its
// watcher has chosen, in the order of the workspaces.
func (s *stack) watching() []watchingWorkspace {
	var out []watchingWorkspace
	for _, ws := range s.cfg.workspaces {
		v, ok := s.live.Load(ws.Name)
		if !ok {
			continue
		}
		if x, ok := v.(*watch.Watcher).Watching(); ok {
			out = append(out, watchingWorkspace{ws.Name, x})
		}
	}
	return out
}

// dashboardWatchers is watching for the dashboard.
func (s *stack) dashboardWatchers() []dashboard.Watcher {
	var out []dashboard.Watcher
	for _, x := range s.watching() {
		d := dashboard.Watcher{Workspace: x.name, Kind: x.Label(), Reason: x.Reason}
		if x.Kind == watch.Poll || len(x.Polled) > 0 {
			d.PollIntervalMS = x.Interval.Milliseconds()
		}
		out = append(out, d)
	}
	return out
}

type watchingWorkspace struct {
	name string
	watch.Watching
}

// run blocks until ctx is done or a loop fails; every loop has stopped
// when it returns.
func (s *stack) run(ctx context.Context) error {
	loops := []func(context.Context) error{named("hub", s.hub.Run), named("locks", func(ctx context.Context) error { return s.locks.Run(ctx, s.hub) }), named("webhooks", s.webhooks.Run),
		func(ctx context.Context) error {
			if s.waitReady(ctx) == nil {
				s.ready.Store(true)
				close(s.indexed)
			}
			return nil
		}}
	for _, w := range s.watchers {
		loops = append(loops, named("watcher", w.Run))
	}
	if s.members != nil {
		loops = append(loops, named("members", s.members.Run))
	}
	if s.elector != nil {
		for _, ws := range s.cfg.workspaces {
			loops = append(loops, named("watch "+ws.Name, func(ctx context.Context) error {
				return s.elector.RunTerms(ctx, leader.Key(ws.Name), s.cfg.hubID, func(ctx context.Context) error { return s.watchTerm(ctx, ws) })
			}))
		}
	}
	return runAll(ctx, loops...)
}

// waitReady returns when every watcher has indexed its workspace and the
// lock manager has loaded the current locks. When that took long enough
// for progress lines to matter, it says so on the progress writer.
func (s *stack) waitReady(ctx context.Context) error {
	select {
	case <-s.locks.Ready():
	case <-ctx.Done():
		return ctx.Err()
	}
	for i, w := range s.watchers {
		select {
		case <-w.Ready():
		case <-ctx.Done():
			return ctx.Err()
		}
		if took := time.Since(s.opened); s.progress != nil && took >= time.Second {
			fmt.Fprintf(s.progress, "filecast: indexing %s: done in %.1fs\n", s.cfg.workspaces[i].Name, took.Seconds())
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
	if s.contents != nil {
		_ = s.contents.Close()
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
	ready := map[string]<-chan struct{}{}
	for i, w := range s.watchers {
		ready[s.cfg.workspaces[i].Name] = w.Ready()
	}
	s.gate = hub.NewGate(s.hub, ready)
	s.feed = feed.New(s.gate, feed.Options{Heartbeat: s.cfg.heartbeat, Logger: s.log.With("component", "feed")})
	s.metrics = s.newMetrics(s.feed)
	s.dash = dashboard.Handler(dashboard.Options{Stats: func() dashboard.Stats {
		return dashboard.Stats{MCPSessions: localMCPSessions(), SSESubscribers: s.feed.Subscribers(), Workspaces: s.names(), Version: version(),
			Problems: s.hub.Problems(), Watchers: s.dashboardWatchers()}
	}})
}

// handler is the hub's HTTP API over this stack: the /v1 routes, webhooks,
// metrics and the dashboard. Without tokens every route is open to
// programs (over the unix socket, or a loopback address); web pages of
// other sites than origins are kept out (api.Guard). With trustActor (the
// unix socket only) a write keeps the actor it names: the MCP session of a
// process that joined the shared hub.
func (s *stack) handler(tokens []api.Token, origins []string, trustActor bool) http.Handler {
	h := api.New(s.gate, s.feed, api.Options{
		Tokens:         tokens,
		AllowedOrigins: origins,
		TrustActor:     trustActor,
		Logger:         s.log.With("component", "api"),
		Public:         dashboard.IsAsset,
		Streams:        s.cfg.streams,
		Health:         s.hub.Problems,
		Extra: func(mux *http.ServeMux) {
			s.webhooks.Routes(mux)
			mux.Handle("GET /metrics", s.metrics.Handler())
			mux.Handle("GET /{$}", s.dash)
			mux.Handle("GET /dashboard/", s.dash)
		},
	})
	return startingUntil(&s.ready, h)
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
