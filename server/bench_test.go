package server_test

import (
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/mcp"

	"github.com/filecast/filecast/events"
	"github.com/filecast/filecast/server"
	"github.com/filecast/filecast/tools"
)

// BenchmarkServer_EventToNotification measures an event appended to the
// Source until the client has read its notifications/resources/updated.
func BenchmarkServer_EventToNotification(b *testing.B) {
	h := start(b, server.Options{}, "docs")
	c, n := h.stdioClient(b, clientOpts{})
	got := make(chan struct{}, 1)
	n.hook = func(nt mcp.JSONRPCNotification) {
		if nt.Method == mcp.MethodNotificationResourceUpdated {
			got <- struct{}{}
		}
	}
	if err := subscribeURI(b, c, "filecast://docs/a.md"); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		h.src.Append("docs", events.FileUpdated, "a.md")
		select {
		case <-got:
		case <-time.After(10 * time.Second):
			b.Fatal("no notification")
		}
	}
}

// BenchmarkServer_LockUnlock measures a lock and an unlock call over stdio.
func BenchmarkServer_LockUnlock(b *testing.B) {
	h, _ := startLocking(b, server.Options{}, "docs")
	c, _ := h.stdioClient(b, clientOpts{})
	b.ReportAllocs()
	for b.Loop() {
		l := decode[tools.LockResult](b, call(b, c, "lock", map[string]any{"path": "a.md"}))
		if r := decode[tools.UnlockResult](b, call(b, c, "unlock", map[string]any{"path": "a.md", "lock_token": l.LockToken})); !r.Released {
			b.Fatal("not released")
		}
	}
}
