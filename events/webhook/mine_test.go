package webhook_test

import (
	"sync/atomic"
	"testing"

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
