package server

import (
	"context"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/mcp"

	"github.com/filecast/filecast/events"
	"github.com/filecast/filecast/events/eventstest"
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
	// One slot left: the list_changed of c fits, its update does not: a
	// sender takes over (how many list_changed it sends for c, d and e
	// depends on when it runs, as they wait as one while pending).
	for _, p := range []string{"c", "d", "e"} {
		n.offer(created(p))
	}
	if spawned.Load() == 0 {
		t.Error("no sender started when the channel was full")
	}
	var got []string
	for len(got) == 0 || got[len(got)-1] != upd("e") {
		select {
		case nt := <-sess.notifications:
			uri, _ := nt.Params.AdditionalFields["uri"].(string)
			got = append(got, nt.Method+" "+uri)
		case <-time.After(10 * time.Second):
			t.Fatalf("got %q, want every update up to e's", got)
		}
	}
	if want := []string{lc, upd("a"), upd("b"), lc}; len(got) < len(want) || !slices.Equal(got[:len(want)], want) {
		t.Fatalf("notifications %q, want them to start with %q", got, want)
	}
	updates := slices.DeleteFunc(slices.Clone(got[4:]), func(s string) bool { return s == lc })
	if want := []string{upd("c"), upd("d"), upd("e")}; !slices.Equal(updates, want) {
		t.Errorf("updates after the channel filled: %q, want %q (all of %q)", updates, want, got)
	}
	eventstest.Eventually(t, "every notification counted", func() bool { return stats.notified.Load() == int64(len(got)) })
}
