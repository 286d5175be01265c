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
		fmt.Fprint(fs.Output(), `Usage: filecast hub --root [NAME=]DIR… [--listen ADDR] [--data DIR] [--nats URL] [--token SPEC]… [--token-file PATH] [--allow-origin SITE]…

Watches the workspaces, keeps every change in a durable log and serves it:
  GET /v1/workspaces/{ws}/events   live Server-Sent Events, resumable with Last-Event-ID
  GET /v1/workspaces/{ws}/changes  a page of events after a cursor
  GET /v1/workspaces/{ws}/files    the listing, consistent with a cursor
  PUT/DELETE /v1/workspaces/{ws}/files/{path}   write through the hub: locks apply (423, 409)
  POST/GET /v1/workspaces/{ws}/locks, PATCH/DELETE …/locks/{token}   leases

Web pages: without tokens the hub answers only to loopback Host names
(localhost, 127.0.0.1, [::1]; 421 otherwise, which defeats DNS rebinding).
With or without tokens, requests from pages of other sites are refused
(403) unless --allow-origin lists the site; the dashboard works from the
hub's own origin.

Limits: request target 16 KiB (414), headers 64 KiB (431), JSON bodies 1 MiB
and file writes 16 MiB (413), 256 path filters of 1024 bytes, paths of 4096
bytes (400); without tokens each client address may send 1000 requests per
second (429 with Retry-After). At most --max-streams event streams are open
at once (503 beyond) and --max-streams-per-client per token or address (429).

While a workspace's folder is missing its files answer 503
workspace_unavailable; while the disk of --data has less than --min-free
free, writes answer 507 insufficient_storage and changes are held until
there is room. GET /healthz says which (503 with the problems).

Examples:
  filecast hub --root docs=$HOME/docs --listen 127.0.0.1:8080
  curl -N http://127.0.0.1:8080/v1/workspaces/docs/events
  filecast hub --root docs=$HOME/docs --listen :8080 --token-file /etc/filecast/tokens

`+tokenHelp+`
Flags:
`)
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
	c.stack.streams = streamCaps(log, c.streams, c.perClient, limit)
	ln, err := net.Listen("tcp", c.listen)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", c.listen, err)
	}
	defer ln.Close()

	o := newOwned()
	serve := func(ctx context.Context, st *stack) error {
		h := st.handler(c.tokens, c.origins, &o.ready, false)
		return runAll(ctx,
			func(ctx context.Context) error { return serveHTTP(ctx, ln, h) },
			func(ctx context.Context) error {
				select {
				case <-o.done:
					log.Info("hub ready", "addr", "http://"+ln.Addr().String(), "workspaces", len(c.stack.workspaces), "data", c.stack.data)
				case <-ctx.Done():
				}
				return nil
			})
	}
	sh, err := sharedHub(&c.stack, log, e.stderr, o, serve, mustOwn(&c.stack))
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
