package server_test

import (
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/mcp"

	"github.com/filecast/filecast/events"
	"github.com/filecast/filecast/events/eventstest"
	"github.com/filecast/filecast/resources"
	"github.com/filecast/filecast/server"
)

// A burst of 20,000 events to a client that reads notifications slowly:
// list_changes loses nothing, resources/updated is coalesced per URI, and
// every URI is notified again after its last change.
func TestServer_BurstSlowClient(t *testing.T) {
	const total, files = 20000, 1000
	src := newMemSource(t, "docs")

	var (
		mu       sync.Mutex
		recv     int                // notifications received so far
		lastRecv = map[string]int{} // URI -> index of its last notification
		mark     = map[string]int{} // URI -> recv when its last change was routed
	)
	src.routed = func(ev events.Event) {
		mu.Lock()
		mark[resources.URI(ev.Workspace, ev.Path)] = recv
		if ev.OldPath != "" {
			mark[resources.URI(ev.Workspace, ev.OldPath)] = recv
		}
		mu.Unlock()
	}
	h := startOn(t, src, server.Options{Capacity: 2 * total})
	c, n := h.stdioClient(t, clientOpts{})
	var slow atomic.Int32
	n.hook = func(nt mcp.JSONRPCNotification) {
		if slow.Add(1) < 200 {
			time.Sleep(2 * time.Millisecond) // a client that falls behind
		}
		if nt.Method == mcp.MethodNotificationResourceUpdated {
			uri, _ := nt.Params.AdditionalFields["uri"].(string)
			mu.Lock()
			recv++
			lastRecv[uri] = recv
			mu.Unlock()
		}
	}
	if err := subscribeURI(t, c, "filecast://docs/"); err != nil {
		t.Fatal(err)
	}

	lastSeq := map[string]uint64{}
	for i := range total {
		p := fmt.Sprintf("f/%04d.txt", i%files)
		typ := events.FileUpdated
		switch {
		case i < files:
			typ = events.FileCreated
		case i >= total-10:
			typ = events.FileDeleted
		}
		lastSeq[p] = src.Append("docs", typ, p).Seq
	}
	eventstest.Eventually(t, "routing", func() bool { return h.srv.Heads().For("docs") == total })

	// Every event reaches list_changes.
	seen := map[string]bool{}
	newest := map[string]uint64{}
	for range 2 * total / 1000 {
		got := listChanges(t, c, map[string]any{"limit": 1000, "detail": "full"})
		for _, ev := range got.Events {
			if seen[ev.ID] {
				t.Fatalf("duplicate %s", ev.ID)
			}
			seen[ev.ID] = true
			newest[ev.Path] = max(newest[ev.Path], ev.Seq)
		}
		if got.Overflowed {
			t.Fatal("overflowed")
		}
		if !got.HasMore {
			break
		}
	}
	// Updates of a path still buffered are folded into one by the inbox,
	// so what must not be lost is the newest change of every path.
	for p, seq := range lastSeq {
		if newest[p] != seq {
			t.Errorf("%s: newest event returned is seq %d, want %d", p, newest[p], seq)
		}
	}

	// Every URI's last change is followed by a notification for it.
	eventstest.Eventually(t, "a notification after each URI's last change", func() bool {
		mu.Lock()
		defer mu.Unlock()
		for uri, m := range mark {
			if lastRecv[uri] <= m {
				return false
			}
		}
		return len(mark) == files
	})
	eventstest.Eventually(t, "list_changed", func() bool { return n.count(mcp.MethodNotificationResourcesListChanged) >= 1 })
	st := h.srv.Stats()
	if st.Dropped != 0 {
		t.Errorf("dropped %d notifications", st.Dropped)
	}
	if st.Coalesced == 0 {
		t.Errorf("nothing coalesced for a slow client: %+v", st)
	}
	t.Logf("stats %+v, updated notifications %d for %d events", st, len(n.updated()), total)
}
