// Package node assembles an embedded hub from its parts: the NATS server
// (embedded, or a connection to an external cluster), the journal, the
// hub, its lock manager, the webhook dispatcher, one watcher per
// workspace (or, on a cluster, the elections of who watches which), and
// what its HTTP listeners share: one feed, one metrics registry, one
// dashboard.
//
// A program turns its flags into a Config, opens the node, runs it and
// serves its handler:
//
//	n, err := node.Open(ctx, node.Config{Workspaces: wss, Data: dir, NATS: natsd.Options{StoreDir: dir + "/jetstream"}})
//	if err != nil {
//		return err
//	}
//	defer n.Close()
//	go http.Serve(ln, n.Handler(nil, nil, false))
//	return n.Run(ctx)
//
// Data rises through it one way: the watchers append to the hub, whose
// journal feeds the feed, the webhooks and any MCP server built on Gate.
package node

import (
	"context"
	"errors"
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
)

// Config is what a node is made of. Workspaces, Data and NATS are
// required; the zero value of every other field is its package default,
// but for ContentCap: 0 keeps no earlier contents (no diffs).
type Config struct {
	Workspaces []workspace.Workspace
	Ignore     *workspace.Ignorer // paths not watched besides the defaults
	Data       string             // the state folder: the watchers' indexes (and the embedded log, by NATS.StoreDir)
	NATS       natsd.Options      // the embedded server, or an external one by URL: then the node is one of a cluster's hubs

	HubID     string        // this hub's name in a cluster's watch elections
	LeaderTTL time.Duration // how long a dead hub keeps the watch of a workspace

	MaxAge    time.Duration // events older than this leave the log
	MaxEvents int64         // at most this many events per workspace

	ContentCap     int64         // the content store's room (content.Options.MaxBytes); 0: no store, no diffs
	ContentMaxFile int64         // the largest content kept (content.Options.MaxFileSize)
	Settle         time.Duration // watch.Options.Settle

	Watch        watch.Kind    // how the watchers learn of changes (watch.Options.Watch)
	PollInterval time.Duration // watch.Options.PollInterval
	Since        time.Time     // watch.Options.Since: on a first start, files changed from then on are reported
	Heartbeat    time.Duration // of the SSE streams

	WebhookSchedule      []time.Duration
	WebhookDisableAfter  time.Duration
	AllowPrivateWebhooks bool

	Streams     *api.StreamLimits // the caps of the HTTP API's event streams; nil: none
	Version     string            // shown on the dashboard
	MCPSessions func() int        // the sessions of an MCP server in this process, for the dashboard and metrics; nil: none

	Logger   *slog.Logger
	Progress io.Writer // indexing progress of a long first start; nil: none
}

// clustered reports whether the node shares an external NATS cluster with
// other hubs: then one hub per workspace watches its folder.
func (c *Config) clustered() bool { return c.NATS.URL != "" }

// Node is an embedded hub. Open starts nothing that runs on its own; Run
// drives the loops and Close releases the rest. The caller holds the data
// folder's lock (a daemon.Shared does).
type Node struct {
	cfg      Config
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
	counters watch.Counters // shared by every watcher of the node
	budget   *watch.Budget  // the kernel watches every watcher of the node may take
	live     sync.Map       // workspace name → *watch.Watcher: the watchers of this hub (of its terms, on a cluster)
	ready    atomic.Bool    // the initial index is complete: set by run
	indexed  chan struct{}  // closed when ready is set
}

// Open opens the node's log, locks and webhooks and makes its watchers.
func Open(ctx context.Context, cfg Config) (_ *Node, err error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.MCPSessions == nil {
		cfg.MCPSessions = func() int { return 0 }
	}
	s := &Node{cfg: cfg, log: cfg.Logger, progress: cfg.Progress, opened: time.Now(), indexed: make(chan struct{}), budget: watch.NewBudget(0)}
	c, log := &s.cfg, s.log
	defer func() {
		if err != nil {
			s.Close()
		}
	}()
	nopts := c.NATS
	nopts.Logger = log.With("component", "nats")
	s.nats, err = natsd.Start(ctx, nopts)
	if err != nil {
		return nil, fmt.Errorf("start event log: %w", err)
	}
	jopts := journal.Options{
		MaxAge:    c.MaxAge,
		MaxEvents: c.MaxEvents,
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
	for _, ws := range c.Workspaces {
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
				Schedule:     c.WebhookSchedule,
				DisableAfter: c.WebhookDisableAfter,
				AllowPrivate: c.AllowPrivateWebhooks,
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
	if c.ContentCap > 0 {
		p.Go(func() error { return s.openContents(ctx) })
	}
	if err := p.Wait(); err != nil {
		return nil, err
	}
	hopts := hub.Options{
		Workspaces: c.Workspaces,
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
		for _, ws := range c.Workspaces {
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
func (s *Node) openContents(ctx context.Context) error {
	c := &s.cfg
	opts := content.Options{
		MaxBytes:    c.ContentCap,
		MaxFileSize: c.ContentMaxFile,
		MaxAge:      c.MaxAge,
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
func (s *Node) webhookMine() func(string) bool {
	if !s.cfg.clustered() {
		return nil
	}
	return func(id string) bool { return s.members == nil || s.members.Mine(id) }
}

// newWatcher makes the watcher of ws, appending to the hub.
func (s *Node) newWatcher(ws workspace.Workspace) (*watch.Watcher, error) {
	c := &s.cfg
	w, err := watch.New(watch.Options{
		Workspace:    ws,
		Ignore:       c.Ignore,
		IndexPath:    filepath.Join(c.Data, "index", ws.Name+".json"),
		Log:          s.journal,
		Settle:       c.Settle,
		Logger:       s.log,
		Progress:     s.progress,
		Since:        c.Since,
		Counters:     &s.counters,
		Leftover:     hub.IsTempName,
		Watch:        c.Watch,
		PollInterval: c.PollInterval,
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
func (s *Node) workspaceContents(ws string) watch.Contents {
	if s.contents == nil {
		return nil
	}
	return s.contents.Workspace(ws)
}

// watching is how this hub watches each workspace it watches, once its
// watcher has chosen, in the order of the workspaces.
func (s *Node) watching() []watchingWorkspace {
	var out []watchingWorkspace
	for _, ws := range s.cfg.Workspaces {
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
func (s *Node) dashboardWatchers() []dashboard.Watcher {
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

// Run blocks until ctx is done or a loop fails; every loop has stopped
// when it returns.
func (s *Node) Run(ctx context.Context) error {
	loops := []func(context.Context) error{Named("hub", s.hub.Run), Named("locks", func(ctx context.Context) error { return s.locks.Run(ctx, s.hub) }), Named("webhooks", s.webhooks.Run),
		func(ctx context.Context) error {
			if s.waitReady(ctx) == nil {
				s.ready.Store(true)
				close(s.indexed)
			}
			return nil
		}}
	for _, w := range s.watchers {
		loops = append(loops, Named("watcher", w.Run))
	}
	if s.members != nil {
		loops = append(loops, Named("members", s.members.Run))
	}
	if s.elector != nil {
		for _, ws := range s.cfg.Workspaces {
			loops = append(loops, Named("watch "+ws.Name, func(ctx context.Context) error {
				return s.elector.RunTerms(ctx, leader.Key(ws.Name), s.cfg.HubID, func(ctx context.Context) error { return s.watchTerm(ctx, ws) })
			}))
		}
	}
	return RunAll(ctx, loops...)
}

// RunAll runs every loop until ctx is done or one fails, which stops the
// others; it returns the first failure. A loop that ends with ctx's
// cancellation has not failed.
func RunAll(ctx context.Context, loops ...func(context.Context) error) error {
	p := pool.New().WithContext(ctx).WithCancelOnError().WithFirstError()
	for _, loop := range loops {
		p.Go(func(ctx context.Context) error {
			if err := loop(ctx); err != nil && !errors.Is(err, context.Canceled) {
				return err
			}
			return nil
		})
	}
	return p.Wait()
}

// Named prefixes the error of loop with its name.
func Named(name string, loop func(context.Context) error) func(context.Context) error {
	return func(ctx context.Context) error {
		if err := loop(ctx); err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		return nil
	}
}

// waitReady returns when every watcher has indexed its workspace and the
// lock manager has loaded the current locks. When that took long enough
// for progress lines to matter, it says so on the progress writer.
func (s *Node) waitReady(ctx context.Context) error {
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
			fmt.Fprintf(s.progress, "filecast: indexing %s: done in %.1fs\n", s.cfg.Workspaces[i].Name, took.Seconds())
		}
	}
	return nil
}

// Indexed is closed once every watcher has indexed its workspace and the
// lock manager has loaded the current locks: from then on every change is
// reported. Until then /healthz answers 503 "starting".
func (s *Node) Indexed() <-chan struct{} { return s.indexed }

// Gate is the hub as its clients see it: reads wait for the first index of
// their workspace.
func (s *Node) Gate() *hub.Gate { return s.gate }

// Close releases what Open opened; Run has returned.
func (s *Node) Close() {
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

// serving builds what every HTTP listener of the node shares: one feed
// (its SSE streams, its encoding cache, its subscriber count), one metrics
// registry and one dashboard.
func (s *Node) serving() {
	ready := map[string]<-chan struct{}{}
	for i, w := range s.watchers {
		ready[s.cfg.Workspaces[i].Name] = w.Ready()
	}
	s.gate = hub.NewGate(s.hub, ready)
	s.feed = feed.New(s.gate, feed.Options{Heartbeat: s.cfg.Heartbeat, Logger: s.log.With("component", "feed")})
	s.metrics = s.newMetrics(s.feed)
	s.dash = dashboard.Handler(dashboard.Options{Stats: func() dashboard.Stats {
		return dashboard.Stats{MCPSessions: s.cfg.MCPSessions(), SSESubscribers: s.feed.Subscribers(), Workspaces: s.names(), Version: s.cfg.Version,
			Problems: s.hub.Problems(), Watchers: s.dashboardWatchers()}
	}})
}

// Handler is the hub's HTTP API over this node: the /v1 routes, webhooks,
// metrics and the dashboard. Without tokens every route is open to
// programs (over the unix socket, or a loopback address); web pages of
// other sites than origins are kept out (api.Guard). With trustActor (the
// unix socket only) a write keeps the actor it names: the MCP session of a
// process that joined the shared hub.
func (s *Node) Handler(tokens []api.Token, origins []string, trustActor bool) http.Handler {
	h := api.New(s.gate, s.feed, api.Options{
		Tokens:         tokens,
		AllowedOrigins: origins,
		TrustActor:     trustActor,
		Logger:         s.log.With("component", "api"),
		Public:         dashboard.IsAsset,
		Streams:        s.cfg.Streams,
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

func (s *Node) names() []string {
	out := make([]string, len(s.cfg.Workspaces))
	for i, ws := range s.cfg.Workspaces {
		out[i] = ws.Name
	}
	return out
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
