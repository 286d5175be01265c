package webhook_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/sourcegraph/conc"

	"github.com/filecast/filecast/events"
	"github.com/filecast/filecast/events/eventstest"
	"github.com/filecast/filecast/events/journal"
	"github.com/filecast/filecast/events/natsd/natstest"
	"github.com/filecast/filecast/events/webhook"
)

// ids returns the webhook-ids of requests.
func ids(qs []request) []string {
	var out []string
	for _, q := range qs {
		out = append(out, q.ID)
	}
	return out
}

func eventIDs(evs []events.Event) []string {
	var out []string
	for _, ev := range evs {
		out = append(out, ev.ID)
	}
	return out
}

// TestDispatcher_FailureHoldsLaterEvents: the events behind a failing one
// are already with the dispatcher (it reads ahead), yet none is posted
// before the failing one succeeds, whatever its path.
func TestDispatcher_FailureHoldsLaterEvents(t *testing.T) {
	srv := natstest.Start(t)
	j := openJournal(t, srv.Conn())
	opts := fastOpts()
	opts.Schedule = []time.Duration{30 * time.Millisecond, 30 * time.Millisecond, 30 * time.Millisecond, 30 * time.Millisecond}
	h := openHub(t, srv.Conn(), opts, true)
	rcv := newReceiver(t)
	w := h.register(t, webhook.Registration{URL: rcv.url()}, rcv)
	h.waitStatus(t, w.ID, webhook.StatusActive)
	// Every fifth event fails on its first three tries.
	rcv.set(func(r *receiver) {
		r.status = func(ev events.Event, try int) int {
			if ev.Seq%5 == 0 && try < 3 {
				return http.StatusServiceUnavailable
			}
			return http.StatusOK
		}
	})
	var paths []string
	for i := range 40 {
		paths = append(paths, []string{"a.md", "b/c.md", "d.txt", "e.md"}[i%4])
	}
	evs := appendEvents(t, j, paths...)
	got := rcv.waitDelivered(t, len(evs))
	if diff := cmp.Diff(eventIDs(evs), ids(got)); diff != "" {
		t.Errorf("accepted events, not in log order (-want +got):\n%s", diff)
	}
	// No request at all, tries included, for an event before the one
	// ahead of it was accepted.
	accepted := map[string]bool{}
	next := 0
	for _, q := range rcv.requests() {
		if q.Type == webhook.VerificationType {
			continue
		}
		if q.ID != evs[next].ID {
			t.Fatalf("request for seq %d while seq %d was not yet accepted", q.Event.Seq, evs[next].Seq)
		}
		if q.Status == http.StatusOK {
			accepted[q.ID] = true
			next++
		}
	}
	eventstest.Eventually(t, "attempts recorded", func() bool {
		n := 0
		for _, d := range h.deliveries(t, w.ID) {
			if d.Status == webhook.DeliveryPending {
				n++
				if d.NextAttemptAt.IsZero() || d.Attempt > 3 {
					t.Fatalf("pending attempt %+v", d)
				}
			}
		}
		return n == 3*len(evs)/5
	})
	if s := h.d.Stats()[w.ID]; s.Delivered != uint64(len(evs)) || s.Attempts != uint64(len(evs)+3*len(evs)/5+1) {
		t.Errorf("stats: %+v", s)
	}
}

// TestDispatcher_PendingFromEarlierRunGoFirst: a client that died holding
// events (here: a plain fetch on the webhook's consumer that never acks)
// leaves them pending; a new run delivers them before the events after
// them, although the server hands it those first.
func TestDispatcher_PendingFromEarlierRunGoFirst(t *testing.T) {
	defer webhook.SetAckMargin(300 * time.Millisecond)()
	srv := natstest.Start(t)
	j := openJournal(t, srv.Conn())
	opts := fastOpts()
	opts.Timeout = 300 * time.Millisecond // ack wait 600ms
	h := openHub(t, srv.Conn(), opts, true)
	rcv := newReceiver(t)
	w := h.register(t, webhook.Registration{URL: rcv.url()}, rcv)
	h.waitStatus(t, w.ID, webhook.StatusActive)
	ctx := t.Context()
	js, err := jetstream.New(srv.Conn())
	if err != nil {
		t.Fatal(err)
	}
	stream, err := js.Stream(ctx, journal.StreamName("docs"))
	if err != nil {
		t.Fatal(err)
	}
	var cons jetstream.Consumer
	eventstest.Eventually(t, "the webhook's consumer", func() bool {
		cons, err = stream.Consumer(ctx, "webhook-"+w.ID)
		return err == nil
	})
	h.stop()

	evs := appendEvents(t, j, "1.md", "2.md", "3.md", "4.md", "5.md")
	batch, err := cons.Fetch(3, jetstream.FetchPriorityGroup("filecast"), jetstream.FetchMaxWait(2*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	var taken []string
	for m := range batch.Messages() {
		var ev events.Event
		_ = json.Unmarshal(m.Data(), &ev)
		taken = append(taken, ev.ID)
	}
	if diff := cmp.Diff(eventIDs(evs[:3]), taken); diff != "" {
		t.Fatalf("fetched (-want +got):\n%s", diff)
	}
	// The dead client's pin would last PinnedTTL; lift it as its expiry would.
	if err := stream.UnpinConsumer(ctx, "webhook-"+w.ID, "filecast"); err != nil {
		t.Fatal(err)
	}

	h.run(t)
	evs = append(evs, appendEvents(t, j, "6.md", "7.md")...)
	got := rcv.waitDelivered(t, len(evs))
	if diff := cmp.Diff(eventIDs(evs), ids(got)); diff != "" {
		t.Errorf("delivered (-want +got):\n%s", diff)
	}
}

// TestDispatcher_TwoHubs: two dispatchers on one NATS share each webhook's
// consumer; one of them delivers, in order, and when it stops the other
// takes over at once.
func TestDispatcher_TwoHubs(t *testing.T) {
	srv := natstest.Start(t)
	j := openJournal(t, srv.Conn())
	a := openHub(t, srv.Conn(), fastOpts(), true)
	b := openHub(t, srv.Conn(), fastOpts(), true)
	rcv := newReceiver(t)
	w := a.register(t, webhook.Registration{URL: rcv.url()}, rcv)
	a.waitStatus(t, w.ID, webhook.StatusActive)

	var paths []string
	for i := range 60 {
		paths = append(paths, []string{"x.md", "y.md", "z.md"}[i%3])
	}
	evs := appendEvents(t, j, paths...)
	rcv.waitDelivered(t, len(evs))
	// Stopping a hub abandons an attempt in flight (delivered again later,
	// at least once); let the last answer arrive first.
	eventstest.Eventually(t, "answers of the first events", func() bool {
		return a.d.Stats()[w.ID].Delivered+b.d.Stats()[w.ID].Delivered == uint64(len(evs))
	})
	a.stop() // takes its pin with it
	evs = append(evs, appendEvents(t, j, paths[:20]...)...)
	got := rcv.waitDelivered(t, len(evs))
	if diff := cmp.Diff(eventIDs(evs), ids(got)); diff != "" {
		t.Errorf("delivered (-want +got):\n%s", diff)
	}
	eventstest.Eventually(t, "stats of both hubs", func() bool {
		sa, sb := a.d.Stats()[w.ID], b.d.Stats()[w.ID]
		return sa.Delivered+sb.Delivered == uint64(len(evs)) && sb.Delivered >= 20
	})
}

func TestLiveBody(t *testing.T) {
	plain := newEvent("docs", "a/b.md", events.FileUpdated)
	odd := newEvent("docs", "x\u2028<y>&\"z\".md", events.FileMoved)
	odd.OldPath = "old\\path"
	odd.ID = "id with spaces/and<html>"
	locked := newEvent("docs", "l.md", events.LockAcquired)
	locked.Lock = &events.LockInfo{Holder: "agent", FencingToken: 9, Mode: "exclusive"}
	locked.ExpiresAt = time.Now().Add(time.Minute)
	for _, tt := range []struct {
		name string
		ev   events.Event
		seq  uint64
	}{
		{"plain", plain, 1},
		{"large seq", plain, 1<<64 - 1},
		{"escaped fields and id", odd, 42},
		{"lock", locked, 7},
	} {
		t.Run(tt.name, func(t *testing.T) {
			stored := tt.ev
			stored.Seq = 0
			data, err := json.Marshal(stored)
			if err != nil {
				t.Fatal(err)
			}
			want := tt.ev
			want.Seq = tt.seq
			wantBody, err := json.Marshal(want)
			if err != nil {
				t.Fatal(err)
			}
			before := string(data)
			got, err := webhook.LiveBody(data, tt.ev.ID, tt.seq)
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != string(wantBody) {
				t.Errorf("body\n got %s\nwant %s", got, wantBody)
			}
			if string(data) != before {
				t.Errorf("the stored data was modified")
			}
		})
	}
	if _, err := webhook.LiveBody([]byte(`{"event_id":`), "x", 1); err == nil {
		t.Errorf("truncated data: no error")
	}
}

// FuzzLiveBody: for any stored event, the body is the event with its seq,
// byte for byte what encoding it gives when the event survives encoding.
func FuzzLiveBody(f *testing.F) {
	f.Add("01J0000000000000000000000A", "a.md", "", uint64(3))
	f.Add("x\"y", "p\x00\xff", "o", uint64(0))
	f.Add("A_b-9", `","seq":0,`, "", uint64(99))
	f.Fuzz(func(t *testing.T, id, path, oldPath string, seq uint64) {
		ev := events.Event{ID: id, Type: events.FileMoved, Workspace: "docs", Path: path, OldPath: oldPath,
			Actor: events.ActorFS, Time: time.Unix(1700000000, 5).UTC()}
		data, err := json.Marshal(ev)
		if err != nil {
			t.Skip()
		}
		var decoded events.Event
		if err := json.Unmarshal(data, &decoded); err != nil {
			t.Fatal(err)
		}
		got, err := webhook.LiveBody(data, decoded.ID, seq)
		if err != nil {
			t.Fatalf("LiveBody: %v", err)
		}
		decoded.Seq = seq
		want, err := json.Marshal(decoded)
		if err != nil {
			t.Fatal(err)
		}
		var g, w any
		if err := json.Unmarshal(got, &g); err != nil {
			t.Fatalf("body is not JSON: %v: %s", err, got)
		}
		_ = json.Unmarshal(want, &w)
		if diff := cmp.Diff(w, g); diff != "" {
			t.Errorf("body differs from the event with seq %d (-want +got):\n%s", seq, diff)
		}
		if string(got) != string(want) && !strings.Contains(string(data), `\ufffd`) {
			t.Errorf("body\n got %s\nwant %s", got, want)
		}
	})
}

func TestSigner_MatchesSign(t *testing.T) {
	newer, older := webhook.NewSecret(), webhook.NewSecret()
	ts := time.Unix(1700000000, 0)
	bodies := [][]byte{[]byte(`{"event_id":"e1"}`), []byte(`{"event_id":"e2","path":"a much longer body than the first one"}`), nil}
	for _, tt := range []struct {
		name    string
		expires time.Time
		both    bool
	}{
		{"both sign", ts.Add(time.Second), true},
		{"older expired", ts, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			sign, err := webhook.Signer([]string{newer, older}, []time.Time{{}, tt.expires})
			if err != nil {
				t.Fatal(err)
			}
			// Several bodies with one signer: no state may carry over.
			for i, body := range bodies {
				id := fmt.Sprintf("e%d", i)
				want, _ := webhook.Sign(newer, id, ts, body)
				if tt.both {
					s2, _ := webhook.Sign(older, id, ts, body)
					want += " " + s2
				}
				if got := sign(id, ts, body); got != want {
					t.Errorf("body %d: got %q, want %q", i, got, want)
				}
			}
		})
	}
	if _, err := webhook.Signer([]string{"whsec_!!"}, []time.Time{{}}); err == nil {
		t.Errorf("bad secret: no error")
	}
}

// fnTransport is an http.RoundTripper made of a function.
type fnTransport func(*http.Request) (*http.Response, error)

func (f fnTransport) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// TestDispatcher_AnsweredWhileStoppingIsAcknowledged: an event whose 2xx
// answer is in when Run is stopped counts as delivered: the next run goes
// on after it and does not post it again.
func TestDispatcher_AnsweredWhileStoppingIsAcknowledged(t *testing.T) {
	srv := natstest.Start(t)
	j := openJournal(t, srv.Conn())
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	var stopAfter atomic.Value // the event whose answer stops Run
	stopAfter.Store("")
	base := http.DefaultTransport.(*http.Transport).Clone()
	t.Cleanup(base.CloseIdleConnections)
	opts := fastOpts()
	opts.HTTPClient = &http.Client{Transport: fnTransport(func(r *http.Request) (*http.Response, error) {
		resp, err := base.RoundTrip(r)
		if err != nil || !stopAfter.CompareAndSwap(r.Header.Get(webhook.HeaderID), "") {
			return resp, err
		}
		// The whole answer is in; Run is stopped before it is handed over.
		body, err := io.ReadAll(resp.Body)
		_ = resp.Body.Close()
		resp.Body = io.NopCloser(bytes.NewReader(body))
		stop()
		return resp, err
	})}
	h := openHub(t, srv.Conn(), opts, false)
	var wg conc.WaitGroup
	wg.Go(func() {
		if err := h.d.Run(ctx); err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	rcv := newReceiver(t)
	w := h.register(t, webhook.Registration{URL: rcv.url()}, rcv)
	h.waitStatus(t, w.ID, webhook.StatusActive)

	// The events are made first, so that the transport knows the third.
	var want []events.Event
	for i := range 6 {
		want = append(want, newEvent("docs", fmt.Sprintf("%d.md", i), events.FileUpdated))
	}
	const stopAt = 2
	stopAfter.Store(want[stopAt].ID)
	actx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	for i, ev := range want {
		stored, err := j.Append(actx, ev)
		if err != nil {
			t.Fatalf("append: %v", err)
		}
		want[i] = stored
	}
	wg.Wait()
	if got := rcv.delivered(); len(got) != stopAt+1 {
		t.Fatalf("%d events delivered before Run stopped, want %d", len(got), stopAt+1)
	}
	h.run(t)
	rcv.waitDelivered(t, len(want))
	eventstest.Eventually(t, "the answers counted", func() bool { return h.d.Stats()[w.ID].Delivered >= uint64(len(want)) })
	if diff := cmp.Diff(eventIDs(want), ids(rcv.delivered())); diff != "" {
		t.Errorf("delivered (-want +got):\n%s", diff)
	}
}
