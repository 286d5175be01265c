package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"slices"
	"strings"

	"github.com/filecast/filecast/events/api"
	"github.com/filecast/filecast/events/node"
	"github.com/filecast/filecast/events/workspace"
)

// hubConfig is "filecast hub": watch workspaces and serve their events over HTTP.
type hubConfig struct {
	stack     stackConfig
	process   processConfig
	listen    string
	tokenArgs tokenConfig
	originArg listFlag
	streams   int // --max-streams
	perClient int // --max-streams-per-client

	tokens  []api.Token // set by Validate
	origins []string
}

func (c *hubConfig) flags(fs *flag.FlagSet) {
	c.stack.flags(fs)
	c.process.flags(fs)
	fs.StringVar(&c.listen, "listen", defaultListen, "HTTP address to serve the API on; a non-loopback address needs --token")
	fs.IntVar(&c.streams, "max-streams", api.DefaultMaxStreams, "event streams (SSE) open at once, beyond which a new one gets 503; lowered to (open file limit - 256) / 2 when that is smaller; 0: no cap")
	fs.IntVar(&c.perClient, "max-streams-per-client", api.DefaultMaxStreamsPerClient, "event streams open at once per token, or per client address without one, beyond which a new one gets 429; 0: no cap")
	c.tokenArgs.flags(fs, "a bearer token clients must send, as [NAME=]SECRET[,ro][,ws=NAME+NAME][,rate=N] (repeatable; see Tokens above)")
	fs.Var(&c.originArg, "allow-origin", "a site (e.g. https://app.example) whose pages may call the API besides loopback ones and the hub's own origin; they get CORS headers (repeatable)")
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), help("hub"), help("tokens"), "\nFlags:\n")
		fs.PrintDefaults()
	}
}

// Validate checks the flags.
func (c *hubConfig) Validate(e *env) (err error) {
	if err := c.process.Validate(e.stderr); err != nil {
		return err
	}
	if len(c.stack.roots) == 0 {
		return errors.New("hub: give at least one --root DIR to watch")
	}
	if c.streams < 0 || c.perClient < 0 {
		return errors.New("--max-streams and --max-streams-per-client must be 0 (no cap) or more")
	}
	if err := c.stack.Validate(e); err != nil {
		return err
	}
	if c.tokens, err = c.tokenArgs.tokens(c.process.log); err != nil {
		return err
	}
	if err := servesTokenWorkspaces(c.tokens, c.stack.workspaces); err != nil {
		return err
	}
	if err := api.CheckListen(c.listen, c.tokens); err != nil {
		return err
	}
	c.origins, err = parseOrigins(c.originArg)
	return err
}

// Run serves the hub until ctx is done.
func (c *hubConfig) Run(ctx context.Context, e *env) error {
	log := c.process.log
	limit, stopProfile, err := c.process.start()
	if err != nil {
		return err
	}
	defer stopProfile()
	c.stack.streams = node.StreamCaps(log, c.streams, c.perClient, limit)
	ln, err := net.Listen("tcp", c.listen)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", c.listen, err)
	}
	defer ln.Close()

	serve := func(ctx context.Context, n *node.Node) error {
		h := n.Handler(c.tokens, c.origins, false)
		return node.RunAll(ctx,
			func(ctx context.Context) error { return serveHTTP(ctx, ln, h) },
			func(ctx context.Context) error {
				select {
				case <-n.Indexed():
					log.Info("hub ready", "addr", "http://"+ln.Addr().String(), "workspaces", len(c.stack.workspaces), "data", c.stack.data)
				case <-ctx.Done():
				}
				return nil
			})
	}
	sh, err := sharedHub(&c.stack, log, e.stderr, serve, mustOwn(&c.stack))
	if err != nil {
		return err
	}
	return sh.Run(ctx)
}

// servesTokenWorkspaces checks that every workspace a token is limited to
// is one of the hub's.
func servesTokenWorkspaces(tokens []api.Token, served []workspace.Workspace) error {
	for _, t := range tokens {
		for _, name := range t.Workspaces {
			if !slices.ContainsFunc(served, func(ws workspace.Workspace) bool { return ws.Name == name }) {
				names := make([]string, len(served))
				for i, ws := range served {
					names[i] = ws.Name
				}
				return fmt.Errorf("--token %s: ws=%s is not a workspace of this hub (it has %s)", t.Name, name, strings.Join(names, ", "))
			}
		}
	}
	return nil
}
