package server_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/client/transport"
	"github.com/mark3labs/mcp-go/mcp"
	"github.com/sourcegraph/conc/pool"

	"github.com/filecast/filecast/events"
	"github.com/filecast/filecast/server"
	"github.com/filecast/filecast/tools"
)

// TestServer_ThousandHTTPSessions opens 1,000 streamable HTTP sessions
// (protocol 2025-11-25) on one server over 127.0.0.1, each initialized and
// subscribed with a tool call, then appends one event and checks that
// list_changes of every session returns it, and nothing else. It takes
// about 2s; under the race detector, which makes it more than ten times
// slower, it opens 100 sessions.
func TestServer_ThousandHTTPSessions(t *testing.T) {
	scaleSessions := 1000
	if raceEnabled {
		scaleSessions = 100
	}
	if testing.Short() {
		t.Skip("opens 1,000 sessions")
	}
	raiseFileLimit()
	h := start(t, server.Options{}, "docs")
	ts := httptest.NewServer(h.srv.HTTPHandler())
	t.Cleanup(ts.Close)
	// One HTTP client for all sessions, as a busy agent host would share
	// its connections; every session still has its own Mcp-Session-Id.
	hc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	t.Cleanup(hc.CloseIdleConnections)

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	clients := make([]*client.Client, scaleSessions)
	subs := make([]string, scaleSessions)
	t.Cleanup(func() {
		p := pool.New().WithMaxGoroutines(16)
		for _, c := range clients {
			if c != nil {
				p.Go(func() { _ = c.Close() })
			}
		}
		p.Wait()
	})
	p := pool.New().WithErrors().WithContext(ctx).WithMaxGoroutines(16)
	for i := range scaleSessions {
		p.Go(func(ctx context.Context) error {
			tr, err := transport.NewStreamableHTTP(ts.URL+"/mcp", transport.WithHTTPBasicClient(hc),
				transport.WithHTTPLogger(slog.New(slog.DiscardHandler)))
			if err != nil {
				return err
			}
			c := client.NewClient(tr, client.WithProtocolVersion(mcp.LATEST_LEGACY_PROTOCOL_VERSION))
			if err := c.Start(ctx); err != nil {
				return fmt.Errorf("start session %d: %w", i, err)
			}
			clients[i] = c
			init := mcp.InitializeRequest{}
			init.Params.ClientInfo = mcp.Implementation{Name: "agent-" + strconv.Itoa(i), Version: "1"}
			if _, err := c.Initialize(ctx, init); err != nil {
				return fmt.Errorf("initialize session %d: %w", i, err)
			}
			var sub tools.SubscribeResult
			if err := callTool(ctx, c, "subscribe", map[string]any{"paths": []string{"reports/**"}}, &sub); err != nil {
				return fmt.Errorf("subscribe session %d: %w", i, err)
			}
			subs[i] = sub.SubscriptionID
			return nil
		})
	}
	if err := p.Wait(); err != nil {
		t.Fatal(err)
	}
	if n := h.srv.Sessions(); n != scaleSessions {
		t.Fatalf("%d sessions registered, want %d", n, scaleSessions)
	}

	h.src.Append("docs", events.FileCreated, "src/main.go") // matches no subscription
	want := h.src.Append("docs", events.FileUpdated, "reports/q3.md")
	var got atomic.Int64
	p = pool.New().WithErrors().WithContext(ctx).WithMaxGoroutines(16)
	for i, c := range clients {
		p.Go(func(ctx context.Context) error {
			var res tools.ListChangesResult
			if err := callTool(ctx, c, "list_changes", map[string]any{"subscription_id": subs[i], "wait_ms": 10000, "detail": "full"}, &res); err != nil {
				return fmt.Errorf("list_changes session %d: %w", i, err)
			}
			if len(res.Events) != 1 || res.Events[0].ID != want.ID || res.Events[0].Seq != want.Seq {
				return fmt.Errorf("session %d got %v, want only %s %s (seq %d)", i, paths(res.Events), want.Type, want.Path, want.Seq)
			}
			got.Add(1)
			return nil
		})
	}
	if err := p.Wait(); err != nil {
		t.Fatal(err)
	}
	if got.Load() != int64(scaleSessions) {
		t.Fatalf("%d sessions got the event, want %d", got.Load(), scaleSessions)
	}
}

// callTool calls a tool and decodes its structured result into out; a
// protocol error or a tool error is an error.
func callTool(ctx context.Context, c *client.Client, name string, args map[string]any, out any) error {
	req := mcp.CallToolRequest{}
	req.Params.Name = name
	req.Params.Arguments = args
	res, err := c.CallTool(ctx, req)
	if err != nil {
		return err
	}
	if res.IsError {
		return fmt.Errorf("tool error: %s", text(res))
	}
	b, err := json.Marshal(res.StructuredContent)
	if err != nil {
		return err
	}
	return json.Unmarshal(b, out)
}
