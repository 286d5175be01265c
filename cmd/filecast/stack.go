package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"path/filepath"
	"sync/atomic"
	"time"

	"github.com/sourcegraph/conc"

	"github.com/filecast/filecast/events"
	"github.com/filecast/filecast/events/api"
	"github.com/filecast/filecast/events/daemon"
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
	hub      *hub.Hub
	locks    *lock.Manager
	webhooks *webhook.Dispatcher
	watchers []*watch.Watcher
	feed     *feed.Feed
	metrics  *metrics.Registry
	dash     http.Handler
	log      *slog.Logger
	elector  *leader.Elector // the workspace watch elections of a cluster; nil otherwise
	members  *members        // the live hubs of a cluster, over which webhooks spread; nil otherwise
	progress io.Writer
	opened   time.Time
	counters watch.Counters // shared by every watcher of the stack
}

func openStack(ctx context.Context, c *stackConfig, log *slog.Logger, progress io.Writer) (_ *stack, err error) {
	s := &stack{cfg: c, log: log, progress: progress, opened: time.Now()}
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
	s.hub, err = hub.New(hub.Options{
		Workspaces: c.workspaces,
		Log:        s.journal,
		Logger:     log.With("component", "hub"),
	})
	if err != nil {
		return nil, err
	}
	// The workspaces' streams, the lock bucket and the webhook store are
	// independent: each is a round trip or two to JetStream (a file
	// created and synced on a first start), so they are opened together.
	// Nothing is appended to the hub before its streams exist: the lock
	// manager appends only once it runs.
	errs := make([]error, len(c.workspaces)+2)
	var wg conc.WaitGroup
	for i, ws := range c.workspaces {
		wg.Go(func() {
			if err := retryOpen(ctx, func(ctx context.Context) error { return s.journal.Ensure(ctx, ws.Name) }); err != nil {
				errs[i] = fmt.Errorf("open log of workspace %s: %w", ws.Name, err)
			}
		})
	}
	wg.Go(func() {
		err := retryOpen(ctx, func(ctx context.Context) (err error) {
			s.locks, err = lock.Open(ctx, s.nats.Conn(), s.hub, lock.Options{Replicas: s.nats.Replicas(), Logger: log.With("component", "lock")})
			return err
		})
		if err != nil {
			errs[len(errs)-2] = fmt.Errorf("open locks: %w", err)
		}
	})
	wg.Go(func() {
		err := retryOpen(ctx, func(ctx context.Context) (err error) {
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
			errs[len(errs)-1] = fmt.Errorf("open webhooks: %w", err)
		}
	})
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	s.hub.SetLocks(s.locks)
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

// webhookMine is webhook.Options.Mine: on a cluster, the webhooks are
// spread over the live hubs; otherwise this process delivers them all.
func (s *stack) webhookMine() func(string) bool {
	if !s.cfg.clustered() {
		return nil
	}
	return func(id string) bool { return s.members == nil || s.members.mine(id) }
}

// newWatcher makes the watcher of ws, appending to the hub.
func (s *stack) newWatcher(ws workspace.Workspace) (*watch.Watcher, error) {
	c := s.cfg
	w, err := watch.New(watch.Options{
		Workspace: ws,
		Ignore:    c.ignorer,
		IndexPath: filepath.Join(c.data, "index", ws.Name+".json"),
		Log:       s.journal,
		Settle:    c.settle,
		Logger:    s.log,
		Progress:  s.progress,
		Since:     processStart.Add(-clockTick),
		Counters:  &s.counters,
		Leftover:  hub.IsTempName,
	}, s.hub)
	if err != nil {
		return nil, fmt.Errorf("watch workspace %s: %w", ws.Name, err)
	}
	return w, nil
}

// retryOpen runs open (which creates or checks streams and buckets) with a
// bound per attempt (openTry, doubling), again after a short random pause when it
// timed out: on a JetStream cluster, hubs starting together create the
// same streams at once, and the server may then leave every one of those
// requests unanswered (nats-server#3677); once a stream exists, the next
// attempt finds it. Other errors, and the last attempt's, are returned.
func retryOpen(ctx context.Context, open func(context.Context) error) error {
	for attempt := 1; ; attempt++ {
		actx, cancel := context.WithTimeout(ctx, min(openTry<<(attempt-1), openTryMax))
		err := open(actx)
		cancel()
		if err == nil || ctx.Err() != nil || attempt == openTries || !errors.Is(err, context.DeadlineExceeded) {
			return err
		}
		if !sleepCtx(ctx, time.Duration(100+rand.IntN(400))*time.Millisecond) {
			return err
		}
	}
}

const (
	openTry    = time.Second // the first attempt's bound, doubled for each next one up to openTryMax
	openTryMax = 5 * time.Second
	openTries  = 8
)

// processStart is when this process started, as near as Go lets a
// program know: before main, after the packages it imports are set up.
var processStart = time.Now()

// clockTick bounds how far behind the real time a file's ctime may be:
// the kernel stamps files from a clock that advances once per scheduler
// tick (1 to 10 ms), unless the file system has fine-grained timestamps.
// A first start reports the files changed at or after processStart less
// clockTick (watch.Options.Since): the changes made while the first index
// is built, after an agent's first call among them. Files written in the
// last few milliseconds before the process started are reported too.
const clockTick = 10 * time.Millisecond

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
	if s.members != nil {
		loop("members", s.members.run)
	}
	if s.elector != nil {
		for _, ws := range s.cfg.workspaces {
			loop("watch "+ws.Name, func(ctx context.Context) error { return s.watchElected(ctx, ws) })
		}
	}
	wg.Wait()
	if err := context.Cause(ctx); err != nil && !errors.Is(err, context.Canceled) {
		return err
	}
	return nil
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

// indexGate is the hub as its clients see it (this process's MCP server,
// the other processes on the data folder's socket, the HTTP API) while the
// first index of a workspace is being built: the calls whose answer
// depends on the index wait for it, bounded by their context. They are a
// listing (resources/list), a read (its version comes from the index) and
// a page of changes after a cursor (the changes made while filecast was
// not running are still being appended: a page read earlier would look
// complete without them). Everything else is served at once, the live
// event stream included, so that no change made meanwhile is missed.
type indexGate struct {
	daemon.Backend
	ready map[string]<-chan struct{} // by workspace
}

func (s *stack) gate() indexGate {
	g := indexGate{Backend: s.hub, ready: map[string]<-chan struct{}{}}
	for i, w := range s.watchers {
		g.ready[s.cfg.workspaces[i].Name] = w.Ready()
	}
	return g
}

// wait returns once ws is indexed (at once for a workspace it does not
// know: the hub answers that), or ctx's error.
func (g indexGate) wait(ctx context.Context, ws string) error {
	ready, ok := g.ready[ws]
	if !ok {
		return nil
	}
	select {
	case <-ready:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("wait for the index of %s: %w", ws, ctx.Err())
	}
}

// Files implements events.Source once ws is indexed.
func (g indexGate) Files(ctx context.Context, ws, prefix string) (events.Listing, error) {
	if err := g.wait(ctx, ws); err != nil {
		return events.Listing{}, err
	}
	return g.Backend.Files(ctx, ws, prefix)
}

// ReadFile implements events.Source once ws is indexed.
func (g indexGate) ReadFile(ctx context.Context, ws, path string) ([]byte, events.FileInfo, error) {
	if err := g.wait(ctx, ws); err != nil {
		return nil, events.FileInfo{}, err
	}
	return g.Backend.ReadFile(ctx, ws, path)
}

// Changes implements events.Source once ws is indexed.
func (g indexGate) Changes(ctx context.Context, ws string, after uint64, limit int, wait time.Duration) (events.Page, error) {
	if err := g.wait(ctx, ws); err != nil {
		return events.Page{}, err
	}
	return g.Backend.Changes(ctx, ws, after, limit, wait)
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
	s.feed = feed.New(s.gate(), feed.Options{Heartbeat: s.cfg.heartbeat, Logger: s.log.With("component", "feed")})
	s.metrics = s.newMetrics(s.feed)
	s.dash = dashboard.Handler(dashboard.Options{Stats: func() dashboard.Stats {
		return dashboard.Stats{MCPSessions: localMCPSessions(), SSESubscribers: s.feed.Subscribers(), Workspaces: s.names(), Version: version(),
			Problems: s.hub.Problems()}
	}})
}

// handler is the hub's HTTP API over this stack: the /v1 routes, webhooks,
// metrics and the dashboard. Without tokens every route is open to
// programs (over the unix socket, or a loopback address); web pages of
// other sites than origins are kept out (api.Guard). With trustActor (the
// unix socket only) a write keeps the actor it names: the MCP session of a
// process that joined the shared hub.
func (s *stack) handler(tokens []api.Token, origins []string, ready *atomic.Bool, trustActor bool) http.Handler {
	h := api.New(s.gate(), s.feed, api.Options{
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

func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
