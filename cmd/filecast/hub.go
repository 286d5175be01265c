package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/sourcegraph/conc"

	"github.com/filecast/filecast/events/api"
	"github.com/filecast/filecast/events/feed"
)

// hubCmd is "filecast hub": watch workspaces and serve their events over HTTP.
type hubCmd struct {
	stack     stackConfig
	logs      logConfig
	listen    string
	tokens    listFlag
	heartbeat time.Duration
}

func (c *hubCmd) flags(fs *flag.FlagSet) {
	c.stack.flags(fs)
	c.logs.flags(fs)
	fs.StringVar(&c.listen, "listen", "127.0.0.1:8080", "HTTP address to serve the API on; a non-loopback address needs --token")
	fs.Var(&c.tokens, "token", "bearer token clients must send, as SECRET or NAME=SECRET (repeatable)")
	fs.DurationVar(&c.heartbeat, "heartbeat", 15*time.Second, "interval of SSE heartbeat comments")
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), `Usage: filecast hub --root [NAME=]DIR… [--listen ADDR] [--data DIR] [--nats URL] [--token T]

Watches the workspaces, keeps every change in a durable log and serves it:
  GET /v1/workspaces/{ws}/events   live Server-Sent Events, resumable with Last-Event-ID
  GET /v1/workspaces/{ws}/changes  a page of events after a cursor
  GET /v1/workspaces/{ws}/files    the listing, consistent with a cursor
  PUT/DELETE /v1/workspaces/{ws}/files/{path}   write through the hub: locks apply (423, 409)
  POST/GET /v1/workspaces/{ws}/locks, PATCH/DELETE …/locks/{token}   leases

Example:
  filecast hub --root docs=$HOME/docs --listen 127.0.0.1:8080
  curl -N http://127.0.0.1:8080/v1/workspaces/docs/events

Flags:
`)
		fs.PrintDefaults()
	}
}

func (c *hubCmd) run(ctx context.Context, e *env) error {
	log, err := c.logs.logger(e.stderr)
	if err != nil {
		return err
	}
	if len(c.stack.roots) == 0 {
		return errors.New("hub: give at least one --root DIR to watch")
	}
	if err := c.stack.validate(e); err != nil {
		return err
	}
	tokens, err := parseTokens(c.tokens)
	if err != nil {
		return err
	}
	if err := api.CheckListen(c.listen, tokens); err != nil {
		return err
	}
	ln, err := net.Listen("tcp", c.listen)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", c.listen, err)
	}
	defer ln.Close()

	st, err := openStack(ctx, &c.stack, log, e.stderr)
	if err != nil {
		return err
	}
	defer st.close()

	f := feed.New(st.hub, feed.Options{Heartbeat: c.heartbeat, Logger: log.With("component", "feed")})
	handler := api.New(st.hub, f, api.Options{Tokens: tokens, Logger: log.With("component", "api")})
	var ready atomic.Bool
	return serveWith(ctx, st, ln, startingUntil(&ready, handler), func() {
		ready.Store(true)
		log.Info("hub ready", "addr", "http://"+ln.Addr().String(), "workspaces", len(c.stack.workspaces), "data", c.stack.data)
	})
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

// serveWith runs the stack and an HTTP server on ln until ctx is done or
// either fails, then shuts the server down (ending open streams) and waits.
func serveWith(ctx context.Context, st *stack, ln net.Listener, h http.Handler, ready func()) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	reqCtx, endRequests := context.WithCancel(context.WithoutCancel(ctx))
	defer endRequests()
	srv := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
		BaseContext:       func(net.Listener) context.Context { return reqCtx },
		ErrorLog:          nil,
	}
	var wg conc.WaitGroup
	wg.Go(func() {
		if err := st.run(ctx); err != nil {
			cancel(err)
		}
		cancel(nil)
	})
	wg.Go(func() {
		if err := st.waitReady(ctx); err == nil && ready != nil {
			ready()
		}
	})
	wg.Go(func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			cancel(fmt.Errorf("serve http: %w", err))
		}
	})
	<-ctx.Done()
	endRequests()
	shutdownCtx, done := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer done()
	_ = srv.Shutdown(shutdownCtx)
	wg.Wait()
	if err := context.Cause(ctx); err != nil && !errors.Is(err, context.Canceled) {
		return err
	}
	return nil
}
