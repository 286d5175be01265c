package server

import (
	"context"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/mcp"

	"github.com/filecast/filecast/events"
	"github.com/filecast/filecast/resources"
)

// TestNotifier_DirectWhileRoom offers changes one at a time to a
// notifier whose session's channel has room: they go into it without a
// sender goroutine. Once the channel is full, a sender takes over and
// still delivers everything, in order, once the channel is read.
func TestNotifier_DirectWhileRoom(t *testing.T) {
	sess := &stdioSession{notifications: make(chan mcp.JSONRPCNotification, 4)}
	var stats counters
	n := newNotifier(sess, int64(1), true, &stats, slog.New(slog.DiscardHandler))
	n.subscribe(resources.Ref{Workspace: "w", Folder: true})
	var spawned atomic.Int32
	var wg sync.WaitGroup
	ctx, cancel := context.WithCancel(context.Background())
	defer func() { cancel(); n.stop(); wg.Wait() }()
	n.start(ctx, func(f func()) {
		spawned.Add(1)
		wg.Go(f)
	})
	created := func(p string) events.Event {
		return events.Event{Type: events.FileCreated, Workspace: "w", Path: p}
	}
	lc := mcp.MethodNotificationResourcesListChanged + " "
	upd := func(p string) string { return mcp.MethodNotificationResourceUpdated + " " + resources.URI("w", p) }
	n.offer(created("a"))
	n.offer(events.Event{Type: events.FileUpdated, Workspace: "w", Path: "b"})
	if got := spawned.Load(); got != 0 {
		t.Errorf("%d senders started while the channel had room, want none", got)
	}
	// One slot left: the list_changed of c fits, its update does not; the
	// list_changed of d and e wait as one, before the updates.
	for _, p := range []string{"c", "d", "e"} {
		n.offer(created(p))
	}
	if spawned.Load() == 0 {
		t.Error("no sender started when the channel was full")
	}
	want := []string{lc, upd("a"), upd("b"), lc, lc, upd("c"), upd("d"), upd("e")}
	var got []string
	for len(got) < len(want) {
		select {
		case nt := <-sess.notifications:
			uri, _ := nt.Params.AdditionalFields["uri"].(string)
			got = append(got, nt.Method+" "+uri)
		case <-time.After(10 * time.Second):
			t.Fatalf("got %d notifications, want %d: %q", len(got), len(want), got)
		}
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("notifications\n%q\nwant\n%q", got, want)
		}
	}
	if s := stats.notified.Load(); s != int64(len(want)) {
		t.Errorf("notified = %d, want %d", s, len(want))
	}
}
