package webhook_test

import (
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/filecast/filecast/events"
	"github.com/filecast/filecast/events/eventstest"
	"github.com/filecast/filecast/events/natsd/natstest"
	"github.com/filecast/filecast/events/webhook"
)

// TestDispatcher_Mine delivers a webhook only while Options.Mine gives it
// to this process: nothing while another process has it (a second webhook,
// always ours, shows that deliveries happen meanwhile), then every event,
// in order, once it is ours.
func TestDispatcher_Mine(t *testing.T) {
	srv := natstest.Start(t)
	j := openJournal(t, srv.Conn())
	var mine atomic.Bool
	var markerID atomic.Value
	markerID.Store("")
	opts := fastOpts()
	opts.Mine = func(id string) bool { return id == markerID.Load().(string) || mine.Load() }
	h := openHub(t, srv.Conn(), opts, true)
	rcv, marker := newReceiver(t), newReceiver(t)
	m := h.register(t, webhook.Registration{URL: marker.url()}, marker)
	markerID.Store(m.ID)
	w := h.register(t, webhook.Registration{URL: rcv.url()}, rcv)
	h.waitStatus(t, m.ID, webhook.StatusActive)
	h.waitStatus(t, w.ID, webhook.StatusActive)

	want := appendEvents(t, j, "a.md", "b.md")
	marker.waitDelivered(t, len(want))
	if got := rcv.delivered(); len(got) != 0 {
		t.Fatalf("%d events delivered by a process the webhook is not given to", len(got))
	}
	mine.Store(true)
	got := rcv.waitDelivered(t, len(want))
	for i := range want {
		if got[i].ID != want[i].ID {
			t.Fatalf("delivery %d is %s, want %s", i, got[i].ID, want[i].ID)
		}
	}
}

// TestDispatcher_MineMovesBetweenAttempts: a webhook that moves to another
// process while an attempt is in flight moves once that attempt is
// answered and acknowledged, not before: the endpoint, which accepted the
// event, does not receive it a second time from the new owner.
func TestDispatcher_MineMovesBetweenAttempts(t *testing.T) {
	srv := natstest.Start(t)
	j := openJournal(t, srv.Conn())
	var aMine atomic.Bool // the webhook belongs to a, else to b
	aMine.Store(true)
	movedOn := make(chan struct{}) // a was told the webhook is no longer its own
	var once sync.Once
	optsA, optsB := fastOpts(), fastOpts()
	optsA.Timeout, optsB.Timeout = 5*time.Second, 5*time.Second
	optsA.Mine = func(string) bool {
		if aMine.Load() {
			return true
		}
		once.Do(func() { close(movedOn) })
		return false
	}
	optsB.Mine = func(string) bool { return !aMine.Load() }
	a := openHub(t, srv.Conn(), optsA, true)
	b := openHub(t, srv.Conn(), optsB, true)
	rcv := newReceiver(t)
	w := a.register(t, webhook.Registration{URL: rcv.url()}, rcv)
	a.waitStatus(t, w.ID, webhook.StatusActive)

	const moveAt = 3
	paths := []string{"0.md", "1.md", "2.md", "3.md", "4.md", "5.md", "6.md", "7.md"}
	// The first request for event moveAt gives the webhook to b and is
	// answered once a has seen that, or as soon as a abandons it.
	rcv.set(func(r *receiver) {
		r.delay = func(ev events.Event, try int) time.Duration {
			if ev.Path != paths[moveAt] || try != 0 {
				return 0
			}
			aMine.Store(false)
			select {
			case <-movedOn:
			case <-time.After(waitFor):
				t.Errorf("a did not look at Mine while its request was in flight")
			}
			// A dispatcher that abandons the attempt does so at once; give
			// it ample time to show it.
			return time.Second
		}
	})
	want := appendEvents(t, j, paths...)
	rcv.waitDelivered(t, len(want))
	eventstest.Eventually(t, "the answers counted", func() bool {
		return a.d.Stats()[w.ID].Delivered+b.d.Stats()[w.ID].Delivered >= uint64(len(want))
	})
	if diff := cmp.Diff(eventIDs(want), ids(rcv.delivered())); diff != "" {
		t.Errorf("delivered (-want +got):\n%s", diff)
	}
	if sa, sb := a.d.Stats()[w.ID].Delivered, b.d.Stats()[w.ID].Delivered; sa != moveAt+1 || sb != uint64(len(want)-moveAt-1) {
		t.Errorf("a delivered %d events and b %d, want %d and %d", sa, sb, moveAt+1, len(want)-moveAt-1)
	}
}
