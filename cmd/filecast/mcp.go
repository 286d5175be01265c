package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/sourcegraph/conc"

	"github.com/filecast/filecast/events"
	"github.com/filecast/filecast/events/api"
	"github.com/filecast/filecast/events/daemon"
	"github.com/filecast/filecast/events/remote"
	"github.com/filecast/filecast/server"
)

// waitIndexed returns once sh is reachable (this process owns the hub or
// is connected to its owner), or ctx is done. It does not wait for the
// first index: the calls that depend on it wait for it themselves
// (indexGate), and a change made while it is being built is reported all
// the same (watch.Options.Since, and the watches placed before each folder
// is listed).
func waitIndexed(ctx context.Context, sh *daemon.Shared, _ *owned) {
	select {
	case <-sh.Ready():
	case <-ctx.Done():
	}
}

// mcpCmd is "filecast mcp": the MCP server agents' hosts launch.
type mcpCmd struct {
	stack    stackConfig
	logs     logConfig
	hubURL   string
	tokens   tokenConfig
	hubToken string
	httpAddr string
	origins  listFlag
	capacity int
}

func (c *mcpCmd) flags(fs *flag.FlagSet) {
	c.stack.flags(fs)
	c.logs.flags(fs)
	fs.StringVar(&c.hubURL, "hub", "", "take events from this running hub (e.g. http://127.0.0.1:8080) instead of an embedded one")
	c.tokens.flags(fs, "with --http: a bearer token MCP clients must send, as [NAME=]SECRET[,rate=N] (repeatable); without --http: the token to send to --hub")
	fs.StringVar(&c.hubToken, "hub-token", "", "the bearer token to send to --hub (with --http, where --token protects the MCP endpoint)")
	fs.StringVar(&c.httpAddr, "http", "", "serve MCP streamable HTTP at ADDR/mcp instead of stdio (e.g. 127.0.0.1:8090)")
	fs.Var(&c.origins, "allow-origin", "with --http: a site (e.g. https://app.example) whose pages may call the MCP endpoint besides loopback ones and its own origin (repeatable)")
	fs.IntVar(&c.capacity, "buffer", 10000, "events buffered per MCP session before it is told it overflowed")
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), `Usage: filecast mcp [--root [NAME=]DIR]… [--hub URL] [--token T]… [--token-file PATH] [--http ADDR] [--data DIR]

Serves the MCP tools subscribe, unsubscribe and list_changes and every file
as a resource filecast://<workspace>/<path>. Over stdio by default: stdout
carries only MCP messages, logs go to stderr.

Over HTTP (--http ADDR) the endpoint is ADDR/mcp. Without --token it may
only listen on a loopback address and answers only to loopback Host names
(421 otherwise: DNS rebinding); with tokens every request needs
"Authorization: Bearer SECRET" (401 otherwise) and each token has its rate
limit (429 with Retry-After). Requests from other sites' pages are refused
by their Origin (403; --allow-origin adds sites). The --token SPEC is
the hub's (see filecast hub --help) without ro and ws=, which only the hub
enforces: here every token may use every workspace. With --hub, send the
hub's token with --hub-token (or, without --http, with --token).

Examples:
  filecast mcp --root ~/project                      # hub embedded in this process
  filecast mcp --http 127.0.0.1:8090 --root ~/project
  filecast mcp --http :8090 --token-file ~/.config/filecast/tokens --root ~/project
  filecast mcp --hub http://127.0.0.1:8080 --token $HUB_SECRET

Flags:
`)
		fs.PrintDefaults()
	}
}

func (c *mcpCmd) run(ctx context.Context, e *env) error {
	log, err := c.logs.logger(e.stderr)
	if err != nil {
		return err
	}
	stopProfile, err := c.logs.profile()
	if err != nil {
		return err
	}
	defer stopProfile()
	if c.capacity < 10 || c.capacity > 10_000_000 {
		return errors.New("--buffer must be between 10 and 10000000")
	}
	fileLimit(log)
	tokens, hubToken, err := c.resolveTokens(log)
	if err != nil {
		return err
	}
	origins, err := parseOrigins(c.origins)
	if err != nil {
		return err
	}
	var ln net.Listener
	if c.httpAddr != "" {
		if err := api.CheckListen(c.httpAddr, tokens); err != nil {
			return err
		}
		ln, err = net.Listen("tcp", c.httpAddr)
		if err != nil {
			return fmt.Errorf("listen on %s: %w", c.httpAddr, err)
		}
		defer ln.Close()
	}

	var src events.Source
	var sh *daemon.Shared
	var roots *rootsHub
	o := newOwned()
	switch {
	case c.hubURL != "" && len(c.stack.roots) > 0:
		return errors.New("mcp: give either --root (embedded hub) or --hub URL, not both")
	case c.hubURL != "":
		rc, err := remote.New(c.hubURL, remote.Options{Token: hubToken})
		if err != nil {
			return err
		}
		src = rc
	case len(c.stack.roots) > 0:
		if err := c.stack.validate(e); err != nil {
			return err
		}
		// Every "filecast mcp" on one data folder shares one hub: the first
		// owns it, the others connect over its unix socket and take over
		// when it exits.
		sh, err = sharedHub(&c.stack, log, e.stderr, o, nil, servesAll(&c.stack))
		if err != nil {
			return err
		}
		src = sh
	case c.httpAddr != "":
		return errors.New("mcp: nothing to watch: pass --root DIR (repeatable) or --hub URL of a running filecast hub")
	default:
		// A host that shares its roots needs no flags: watch those.
		roots = newRootsHub(c.stack, log.With("component", "roots"))
		src = roots
	}

	srv, err := server.New(src, server.Options{
		Name:     "filecast",
		Version:  version(),
		Capacity: c.capacity,
		Logger:   log.With("component", "mcp"),
	})
	if err != nil {
		return err
	}
	localMCP.Store(srv)
	if roots != nil {
		roots.attach(srv.MCPServer())
	}
	return c.serve(ctx, e, log, sh, roots, srv, ln, tokens, origins)
}

// resolveTokens sorts out what --token means: with --http, the tokens the
// MCP endpoint accepts (unscoped: the endpoint cannot enforce ro or ws=);
// without it, the one token to send to --hub.
func (c *mcpCmd) resolveTokens(log *slog.Logger) (accept []api.Token, hubToken string, err error) {
	hubToken = c.hubToken
	if c.hubToken != "" && c.hubURL == "" {
		return nil, "", errors.New("--hub-token is the token of --hub URL; there is no --hub")
	}
	if c.httpAddr != "" {
		if !c.tokens.given() {
			return nil, hubToken, nil
		}
		accept, err = c.tokens.tokens(log)
		if err != nil {
			return nil, "", err
		}
		for _, t := range accept {
			if t.Scoped() {
				return nil, "", fmt.Errorf("--token %s: ro and ws= are enforced by filecast hub only; the MCP endpoint gives every token every workspace, so leave them out", t.Name)
			}
		}
		return accept, hubToken, nil
	}
	switch {
	case c.tokens.file != "":
		return nil, "", errors.New("--token-file lists the tokens of the MCP endpoint: it needs --http ADDR")
	case len(c.tokens.specs) == 0:
		return nil, hubToken, nil
	case c.hubURL == "":
		return nil, "", errors.New("--token protects the MCP endpoint of --http ADDR or is sent to --hub URL; this command has neither")
	case len(c.tokens.specs) > 1 || hubToken != "":
		return nil, "", errors.New("--hub takes one token: give it once, as --token or --hub-token")
	}
	return nil, c.tokens.specs[0], nil
}

func (c *mcpCmd) serve(ctx context.Context, e *env, log *slog.Logger, sh *daemon.Shared, roots *rootsHub, srv *server.Server, ln net.Listener, tokens []api.Token, origins []string) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var wg conc.WaitGroup
	fail := func(name string, err error) {
		if err != nil && !errors.Is(err, context.Canceled) {
			cancel(fmt.Errorf("%s: %w", name, err))
		}
	}
	if sh != nil {
		wg.Go(func() { fail("hub", sh.Run(ctx)) })
	}
	if roots != nil {
		wg.Go(func() { fail("roots", roots.run(ctx)) })
	}
	// Requests are served at once, while the hub starts and the workspaces
	// are indexed: the handshake waits only for the hub to be reachable
	// (to know the log's heads), and the calls that need the index wait
	// for it (indexGate).
	wg.Go(func() { fail("mcp", srv.Run(ctx)) })
	if ln == nil {
		wg.Go(func() {
			err := srv.ServeStdio(ctx, e.stdin, e.stdout)
			fail("stdio", err)
			cancel(nil) // the host closed stdin: we are done
		})
	} else {
		reqCtx, endRequests := context.WithCancel(context.WithoutCancel(ctx))
		defer endRequests()
		hs := &http.Server{
			Handler:           api.NewGuard(tokens, origins).Wrap(api.RequireToken(tokens, srv.HTTPHandler())),
			ReadHeaderTimeout: 10 * time.Second,
			MaxHeaderBytes:    maxHeaderBytes,
			BaseContext:       func(net.Listener) context.Context { return reqCtx },
		}
		wg.Go(func() {
			if err := hs.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				fail("http", err)
			}
		})
		wg.Go(func() {
			<-ctx.Done()
			endRequests()
			sctx, done := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
			defer done()
			_ = hs.Shutdown(sctx)
		})
		log.Info("mcp ready", "url", "http://"+ln.Addr().String()+"/mcp", "tokens", len(tokens))
	}
	wg.Wait()
	if err := context.Cause(ctx); err != nil && !errors.Is(err, context.Canceled) {
		return err
	}
	return nil
}
