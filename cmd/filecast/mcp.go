package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"

	"github.com/filecast/filecast/events"
	"github.com/filecast/filecast/events/api"
	"github.com/filecast/filecast/events/inbox"
	"github.com/filecast/filecast/events/node"
	"github.com/filecast/filecast/events/remote"
	"github.com/filecast/filecast/events/workspace"
	"github.com/filecast/filecast/server"
	"github.com/filecast/filecast/server/roots"
)

// mcpConfig is "filecast mcp": the MCP server agents' hosts launch.
type mcpConfig struct {
	stack     stackConfig
	process   processConfig
	hubURL    string
	tokenArgs tokenConfig
	hubToken  string
	httpAddr  string
	originArg listFlag
	capacity  int

	tokens  []api.Token // set by Validate: those of the MCP endpoint
	origins []string
}

func (c *mcpConfig) flags(fs *flag.FlagSet) {
	c.stack.flags(fs)
	c.process.flags(fs)
	fs.StringVar(&c.hubURL, "hub", "", "take events from this running hub (e.g. http://127.0.0.1:8080) instead of an embedded one")
	c.tokenArgs.flags(fs, "with --http: a bearer token MCP clients must send, as [NAME=]SECRET[,rate=N] (repeatable); without --http: the token to send to --hub")
	fs.StringVar(&c.hubToken, "hub-token", "", "the bearer token to send to --hub (with --http, where --token protects the MCP endpoint)")
	fs.StringVar(&c.httpAddr, "http", "", "serve MCP streamable HTTP at ADDR/mcp instead of stdio (e.g. 127.0.0.1:8090)")
	fs.Var(&c.originArg, "allow-origin", "with --http: a site (e.g. https://app.example) whose pages may call the MCP endpoint besides loopback ones and its own origin (repeatable)")
	fs.IntVar(&c.capacity, "buffer", inbox.DefaultCapacity, "events buffered per MCP session before it is told it overflowed")
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), help("mcp"), "Flags:\n")
		fs.PrintDefaults()
	}
}

// Validate checks the flags.
func (c *mcpConfig) Validate(e *env) (err error) {
	if err := c.process.Validate(e.stderr); err != nil {
		return err
	}
	if c.capacity < 10 || c.capacity > 10_000_000 {
		return errors.New("--buffer must be between 10 and 10000000")
	}
	if c.tokens, c.hubToken, err = c.resolveTokens(c.process.log); err != nil {
		return err
	}
	if c.origins, err = parseOrigins(c.originArg); err != nil {
		return err
	}
	if c.httpAddr != "" {
		if err := api.CheckListen(c.httpAddr, c.tokens); err != nil {
			return err
		}
	}
	switch {
	case c.hubURL != "" && len(c.stack.roots) > 0:
		return errors.New("mcp: give either --root (embedded hub) or --hub URL, not both")
	case c.hubURL != "":
		return nil
	case len(c.stack.roots) == 0 && c.httpAddr != "":
		return errors.New("mcp: nothing to watch: pass --root DIR (repeatable) or --hub URL of a running filecast hub")
	}
	// --root, or the roots a host shares (checked when it shares them).
	return c.stack.Validate(e)
}

// Run serves MCP until ctx is done or, over stdio, the host closes stdin.
func (c *mcpConfig) Run(ctx context.Context, e *env) error {
	log := c.process.log
	_, stopProfile, err := c.process.start()
	if err != nil {
		return err
	}
	defer stopProfile()
	var ln net.Listener
	if c.httpAddr != "" {
		if ln, err = net.Listen("tcp", c.httpAddr); err != nil {
			return fmt.Errorf("listen on %s: %w", c.httpAddr, err)
		}
		defer ln.Close()
	}
	var src events.Source
	var hub func(ctx context.Context) error // what runs beside the MCP server, if anything
	var rs *roots.Roots
	switch {
	case c.hubURL != "":
		if src, err = remote.New(c.hubURL, remote.Options{Token: c.hubToken}); err != nil {
			return err
		}
	case len(c.stack.roots) > 0:
		// Every "filecast mcp" on one data folder shares one hub: the first
		// owns it, the others connect over its unix socket and take over
		// when it exits.
		sh, err := sharedHub(&c.stack, log, e.stderr, nil, servesAll(&c.stack))
		if err != nil {
			return err
		}
		src, hub = sh, node.Named("hub", sh.Run)
	default:
		// A host that shares its roots needs no flags: watch those.
		rs = roots.New(roots.Options{Start: c.rootsHub, Logger: log.With("component", "roots")})
		src, hub = rs, node.Named("roots", rs.Run)
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
	if rs != nil {
		rs.Attach(srv.MCPServer())
	}
	// Requests are served at once, while the hub starts and the workspaces
	// are indexed: the handshake waits only for the hub to be reachable
	// (to know the log's heads), and the calls that need the index wait
	// for it (hub.Gate).
	loops := []func(context.Context) error{node.Named("mcp", srv.Run)}
	if hub != nil {
		loops = append(loops, hub)
	}
	if ln == nil {
		loops = append(loops, func(ctx context.Context) error {
			if err := srv.ServeStdio(ctx, e.stdin, e.stdout); err != nil {
				return fmt.Errorf("stdio: %w", err)
			}
			return errHostLeft
		})
	} else {
		h := api.NewGuard(c.tokens, c.origins).Wrap(api.RequireToken(c.tokens, srv.HTTPHandler()))
		loops = append(loops, node.Named("http", func(ctx context.Context) error { return serveHTTP(ctx, ln, h) }))
		log.Info("mcp ready", "url", "http://"+ln.Addr().String()+"/mcp", "tokens", len(c.tokens))
	}
	if err := node.RunAll(ctx, loops...); !errors.Is(err, errHostLeft) {
		return err
	}
	return nil
}

// errHostLeft ends "filecast mcp" over stdio when the host closes stdin.
var errHostLeft = errors.New("the host closed stdin")

// rootsHub starts the shared hub of the data folder on the roots a host
// shares (roots.Options.Start).
func (c *mcpConfig) rootsHub(wss []workspace.Workspace) (roots.Hub, error) {
	sc := c.stack
	var err error
	if sc.workspaces, err = sc.outside(wss); err != nil {
		return nil, err
	}
	return sharedHub(&sc, c.process.log, nil, nil, servesAll(&sc))
}

// resolveTokens sorts out what --token means: with --http, the tokens the
// MCP endpoint accepts (unscoped: the endpoint cannot enforce ro or ws=);
// without it, the one token to send to --hub.
func (c *mcpConfig) resolveTokens(log *slog.Logger) (accept []api.Token, hubToken string, err error) {
	hubToken = c.hubToken
	if c.hubToken != "" && c.hubURL == "" {
		return nil, "", errors.New("--hub-token is the token of --hub URL; there is no --hub")
	}
	if c.httpAddr != "" {
		if !c.tokenArgs.given() {
			return nil, hubToken, nil
		}
		accept, err = c.tokenArgs.tokens(log)
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
	case c.tokenArgs.file != "":
		return nil, "", errors.New("--token-file lists the tokens of the MCP endpoint: it needs --http ADDR")
	case len(c.tokenArgs.specs) == 0:
		return nil, hubToken, nil
	case c.hubURL == "":
		return nil, "", errors.New("--token protects the MCP endpoint of --http ADDR or is sent to --hub URL; this command has neither")
	case len(c.tokenArgs.specs) > 1 || hubToken != "":
		return nil, "", errors.New("--hub takes one token: give it once, as --token or --hub-token")
	}
	return nil, c.tokenArgs.specs[0], nil
}
