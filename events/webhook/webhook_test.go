package webhook_test

import (
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/filecast/filecast/events"
	"github.com/filecast/filecast/events/eventstest"
	"github.com/filecast/filecast/events/journal"
	"github.com/filecast/filecast/events/natsd"
	"github.com/filecast/filecast/events/natsd/natstest"
	"github.com/filecast/filecast/events/webhook"
)

func TestDispatcher_DeliversSignedEvents(t *testing.T) {
	srv := natstest.Start(t)
	j := openJournal(t, srv.Conn())
	before := appendEvents(t, j, "old.md") // before registration: never delivered
	h := openHub(t, srv.Conn(), fastOpts(), false)
	rcv := newReceiver(t)
	w := h.register(t, webhook.Registration{URL: rcv.url()}, rcv)

	// Appended while the webhook is pending (Run not even started).
	want := appendEvents(t, j, "a.md", "b.md")
	h.run(t)
	h.waitStatus(t, w.ID, webhook.StatusActive)
	want = append(want, appendEvents(t, j, "a.md", "c/d.txt", "b.md")...)

	got := rcv.waitDelivered(t, len(want))
	rcv.checkSigned(t)
	var gotIDs, wantIDs []string
	for i, q := range got {
		gotIDs = append(gotIDs, q.ID)
		if i < len(want) {
			wantIDs = append(wantIDs, want[i].ID)
			body, err := json.Marshal(want[i])
			if err != nil {
				t.Fatal(err)
			}
			if string(q.Body) != string(body) {
				t.Errorf("body of %s:\n got %s\nwant %s", q.ID, q.Body, body)
			}
			if q.Event.Seq == 0 || q.Event.Seq != want[i].Seq {
				t.Errorf("event %s: seq %d, want %d", q.ID, q.Event.Seq, want[i].Seq)
			}
		}
		if q.ID == before[0].ID {
			t.Errorf("event appended before registration was delivered")
		}
	}
	if diff := cmp.Diff(wantIDs, gotIDs); diff != "" {
		t.Errorf("delivered webhook-ids (-want +got):\n%s", diff)
	}
	reqs := rcv.requests()
	if len(reqs) == 0 || reqs[0].Type != webhook.VerificationType {
		t.Fatalf("first request is not the verification challenge: %+v", reqs)
	}

	w = h.get(t, w.ID)
	if w.Secret != "" {
		t.Errorf("GET shows the secret")
	}
	if w.VerifiedAt.IsZero() {
		t.Errorf("VerifiedAt not set")
	}
	eventstest.Eventually(t, "stats", func() bool {
		s := h.d.Stats()[w.ID]
		return s.Delivered == uint64(len(want)) && s.Attempts == uint64(len(want))+1 && s.LatencyP95 > 0
	})
	eventstest.Eventually(t, "deliveries listed", func() bool {
		ds := h.deliveries(t, w.ID)
		return len(ds) == len(want)+1 && ds[0].Status == webhook.DeliverySucceeded &&
			ds[0].EventID == want[len(want)-1].ID && ds[len(ds)-1].Type == webhook.VerificationType
	})
	ds := h.deliveries(t, w.ID)
	if d := ds[0]; d.Attempt != 1 || d.ResponseCode != 200 || d.DeliveryID != d.EventID || d.Time.IsZero() || d.Path != "b.md" {
		t.Errorf("newest delivery: %+v", d)
	}
}

func TestDispatcher_Filters(t *testing.T) {
	srv := natstest.Start(t)
	j := openJournal(t, srv.Conn())
	h := openHub(t, srv.Conn(), fastOpts(), true)
	rcv := newReceiver(t)
	w := h.register(t, webhook.Registration{
		URL: rcv.url(), Paths: []string{"reports/**"}, Extensions: []string{".MD"}, Types: []string{"created", "moved"},
	}, rcv)
	h.waitStatus(t, w.ID, webhook.StatusActive)

	ctx := t.Context()
	var want []string
	for _, c := range []struct {
		ev   events.Event
		want bool
	}{
		{newEvent("docs", "reports/q3.md", events.FileCreated), true},
		{newEvent("docs", "reports/q3.md", events.FileUpdated), false},  // type
		{newEvent("docs", "reports/q3.txt", events.FileCreated), false}, // extension
		{newEvent("docs", "notes/q3.md", events.FileCreated), false},    // path
		{func() events.Event {
			ev := newEvent("docs", "archive/q3.md", events.FileMoved)
			ev.OldPath = "reports/q3.md"
			return ev
		}(), true}, // old path matches
		{newEvent("docs", "reports/sub/Q4.Md", events.FileCreated), true},
	} {
		ev, err := j.Append(ctx, c.ev)
		if err != nil {
			t.Fatal(err)
		}
		if c.want {
			want = append(want, ev.ID)
		}
	}
	got := rcv.waitDelivered(t, len(want))
	var ids []string
	for _, q := range got {
		ids = append(ids, q.ID)
	}
	if diff := cmp.Diff(want, ids); diff != "" {
		t.Errorf("delivered (-want +got):\n%s", diff)
	}
}

func TestDispatcher_Challenge(t *testing.T) {
	srv := natstest.Start(t)
	h := openHub(t, srv.Conn(), fastOpts(), true)
	tests := []struct {
		name   string
		echo   func(string) string
		status webhook.Status
		reason string
	}{
		{"plain echo", nil, webhook.StatusActive, ""},
		{"plain echo with newline", func(c string) string { return c + "\n" }, webhook.StatusActive, ""},
		{"json echo", func(c string) string { return `{"challenge":"` + c + `"}` }, webhook.StatusActive, ""},
		{"wrong echo", func(c string) string { return "nope" }, webhook.StatusFailed, "does not echo the challenge"},
		{"empty body", func(string) string { return "" }, webhook.StatusFailed, "does not echo the challenge"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rcv := newReceiver(t)
			rcv.echo = tt.echo
			w := h.register(t, webhook.Registration{URL: rcv.url()}, rcv)
			got := h.waitStatus(t, w.ID, tt.status)
			if !strings.Contains(got.Reason, tt.reason) {
				t.Errorf("reason %q does not contain %q", got.Reason, tt.reason)
			}
			if tt.status == webhook.StatusFailed && !strings.HasPrefix(got.Reason, "verification failed") {
				t.Errorf("reason %q does not say the verification failed", got.Reason)
			}
		})
	}

	t.Run("refusing endpoint", func(t *testing.T) {
		fail := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			w.WriteHeader(http.StatusForbidden)
		}))
		defer fail.Close()
		w := h.register(t, webhook.Registration{URL: fail.URL}, nil)
		got := h.waitStatus(t, w.ID, webhook.StatusFailed)
		if !strings.Contains(got.Reason, "403") {
			t.Errorf("reason %q does not name the status", got.Reason)
		}
	})

	t.Run("retried after a 503", func(t *testing.T) {
		var mu sync.Mutex
		calls := 0
		flaky := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			mu.Lock()
			calls++
			n := calls
			mu.Unlock()
			if n == 1 {
				w.WriteHeader(http.StatusServiceUnavailable)
				return
			}
			var c struct{ Challenge string }
			_ = json.NewDecoder(r.Body).Decode(&c)
			_, _ = w.Write([]byte(c.Challenge))
		}))
		defer flaky.Close()
		w := h.register(t, webhook.Registration{URL: flaky.URL}, nil)
		h.waitStatus(t, w.ID, webhook.StatusActive)
		ds := h.deliveries(t, w.ID)
		if len(ds) != 2 || ds[1].Status != webhook.DeliveryPending || ds[1].ResponseCode != 503 || ds[0].Status != webhook.DeliverySucceeded {
			t.Errorf("verification attempts: %+v", ds)
		}
	})

	t.Run("redirect is not followed", func(t *testing.T) {
		rcv := newReceiver(t)
		redirect := httptest.NewServer(http.RedirectHandler(rcv.url(), http.StatusTemporaryRedirect))
		defer redirect.Close()
		w := h.register(t, webhook.Registration{URL: redirect.URL}, rcv)
		got := h.waitStatus(t, w.ID, webhook.StatusFailed)
		if !strings.Contains(got.Reason, "redirects are not followed") {
			t.Errorf("reason %q", got.Reason)
		}
		if n := len(rcv.requests()); n != 0 {
			t.Errorf("the redirect target got %d requests", n)
		}
	})
}

// TestDispatcher_RetriesUntilBack: the receiver answers 503, then is not
// listening at all (connection refused), then is back.
func TestDispatcher_RetriesUntilBack(t *testing.T) {
	srv := natstest.Start(t)
	j := openJournal(t, srv.Conn())
	opts := fastOpts()
	opts.Schedule = []time.Duration{100 * time.Millisecond, 200 * time.Millisecond, 400 * time.Millisecond,
		400 * time.Millisecond, 400 * time.Millisecond, 400 * time.Millisecond, 400 * time.Millisecond}
	h := openHub(t, srv.Conn(), opts, true)

	// A receiver whose listener can be closed and opened again on the same port.
	rcv := newReceiver(t)
	addr := rcv.srv.Listener.Addr().String()
	w := h.register(t, webhook.Registration{URL: rcv.url()}, rcv)
	h.waitStatus(t, w.ID, webhook.StatusActive)

	rcv.set(func(r *receiver) {
		r.status = func(events.Event, int) int { return http.StatusServiceUnavailable }
	})
	evs := appendEvents(t, j, "a.md", "b.md", "a.md")
	eventstest.Eventually(t, "two 503s", func() bool { return len(rcv.requests()) >= 3 })

	rcv.srv.Close() // connection refused from now on
	eventstest.Eventually(t, "a refused attempt", func() bool {
		for _, d := range h.deliveries(t, w.ID) {
			if strings.Contains(d.Error, "refused") {
				return true
			}
		}
		return false
	})

	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatalf("listen again on %s: %v", addr, err)
	}
	back := &httptest.Server{Listener: ln, Config: &http.Server{Handler: http.HandlerFunc(rcv.serve)}}
	rcv.set(func(r *receiver) { r.status = nil })
	back.Start()
	t.Cleanup(back.Close)

	got := rcv.waitDelivered(t, len(evs))
	rcv.checkSigned(t)
	for i, q := range got {
		if q.ID != evs[i].ID {
			t.Errorf("delivery %d: webhook-id %s, want %s", i, q.ID, evs[i].ID)
		}
	}
	// Every retry of the first event carried the same webhook-id and body.
	var tries int
	for _, q := range rcv.requests() {
		if q.Event.ID == evs[0].ID {
			tries++
			if q.ID != evs[0].ID {
				t.Errorf("retry carries webhook-id %s, want %s", q.ID, evs[0].ID)
			}
			if string(q.Body) != string(got[0].Body) {
				t.Errorf("retry body differs")
			}
		}
	}
	if tries < 2 {
		t.Errorf("first event tried %d times, want retries", tries)
	}
	var attempts []int
	for _, d := range h.deliveries(t, w.ID) {
		if d.EventID == evs[0].ID {
			attempts = append([]int{d.Attempt}, attempts...)
			if d.Status == webhook.DeliveryPending && d.NextAttemptAt.IsZero() {
				t.Errorf("pending attempt without next_attempt_at: %+v", d)
			}
		}
	}
	for i, a := range attempts {
		if a != i+1 {
			t.Fatalf("attempt numbers of the first event: %v", attempts)
		}
	}
	if last := attempts[len(attempts)-1]; last < 3 {
		t.Errorf("the first event succeeded at attempt %d, want at least 3 (503, refused, ok)", last)
	}
}

// TestDispatcher_ResumesAfterRestart closes the dispatcher and the NATS
// server in the middle of retries and opens both again on the same store.
func TestDispatcher_ResumesAfterRestart(t *testing.T) {
	dir := t.TempDir()
	srv := natstest.StartWith(t, natsd.Options{StoreDir: dir})
	j := openJournal(t, srv.Conn())
	opts := fastOpts()
	opts.Schedule = []time.Duration{150 * time.Millisecond, 150 * time.Millisecond, 150 * time.Millisecond,
		150 * time.Millisecond, 150 * time.Millisecond, 150 * time.Millisecond, 150 * time.Millisecond, 150 * time.Millisecond}
	h := openHub(t, srv.Conn(), opts, true)
	rcv := newReceiver(t)
	w := h.register(t, webhook.Registration{URL: rcv.url()}, rcv)
	h.waitStatus(t, w.ID, webhook.StatusActive)

	rcv.set(func(r *receiver) {
		r.status = func(events.Event, int) int { return http.StatusInternalServerError }
	})
	evs := appendEvents(t, j, "a.md", "b.md", "c.md")
	eventstest.Eventually(t, "failed attempts", func() bool { return len(rcv.requests()) >= 3 })

	h.stop()
	_ = h.d.Close()
	_ = j.Close()
	_ = srv.Close()
	triedBefore := len(rcv.requests()) - 1

	srv = natstest.StartWith(t, natsd.Options{StoreDir: dir})
	j = openJournal(t, srv.Conn())
	rcv.set(func(r *receiver) { r.status = nil })
	h = openHub(t, srv.Conn(), opts, true)
	evs = append(evs, appendEvents(t, j, "d.md")...)

	got := rcv.waitDelivered(t, len(evs))
	var ids, want []string
	for i, q := range got {
		ids = append(ids, q.ID)
		want = append(want, evs[i].ID)
	}
	if diff := cmp.Diff(want, ids); diff != "" {
		t.Errorf("delivered after restart (-want +got):\n%s", diff)
	}
	eventstest.Eventually(t, "attempt numbers continued", func() bool {
		for _, d := range h.deliveries(t, w.ID) {
			if d.EventID == evs[0].ID && d.Status == webhook.DeliverySucceeded {
				return d.Attempt > triedBefore
			}
		}
		return false
	})
	if s := h.get(t, w.ID); s.Status != webhook.StatusActive || !s.FailingSince.IsZero() {
		t.Errorf("after recovery: status %s, failing since %v", s.Status, s.FailingSince)
	}
}

func TestDispatcher_OrderPerPath(t *testing.T) {
	srv := natstest.Start(t)
	j := openJournal(t, srv.Conn())
	opts := fastOpts()
	opts.Schedule = []time.Duration{10 * time.Millisecond, 10 * time.Millisecond, 10 * time.Millisecond}
	h := openHub(t, srv.Conn(), opts, true)
	rcv := newReceiver(t)
	w := h.register(t, webhook.Registration{URL: rcv.url()}, rcv)
	h.waitStatus(t, w.ID, webhook.StatusActive)
	// Every fourth event fails on its first two tries, while the next
	// event on its path (three later) does not.
	rcv.set(func(r *receiver) {
		r.status = func(ev events.Event, try int) int {
			if ev.Seq%4 == 1 && try < 2 {
				return http.StatusBadGateway
			}
			return http.StatusOK
		}
	})
	var paths []string
	for i := range 30 {
		paths = append(paths, fmt.Sprintf("p%d.md", i%3))
	}
	evs := appendEvents(t, j, paths...)
	got := rcv.waitDelivered(t, len(evs))
	last := map[string]uint64{}
	for _, q := range got {
		if q.Event.Seq <= last[q.Event.Path] {
			t.Errorf("%s: seq %d after %d", q.Event.Path, q.Event.Seq, last[q.Event.Path])
		}
		last[q.Event.Path] = q.Event.Seq
	}
}

func TestDispatcher_SlowReceiverTimesOut(t *testing.T) {
	srv := natstest.Start(t)
	j := openJournal(t, srv.Conn())
	opts := fastOpts()
	opts.Timeout = 200 * time.Millisecond
	h := openHub(t, srv.Conn(), opts, true)
	rcv := newReceiver(t)
	rcv.delay = func(_ events.Event, try int) time.Duration {
		if try == 0 {
			return 2 * time.Second
		}
		return 0
	}
	w := h.register(t, webhook.Registration{URL: rcv.url()}, rcv)
	h.waitStatus(t, w.ID, webhook.StatusActive)
	evs := appendEvents(t, j, "slow.md")
	got := rcv.waitDelivered(t, 1)
	if got[0].ID != evs[0].ID {
		t.Fatalf("delivered %s", got[0].ID)
	}
	eventstest.Eventually(t, "a timed-out attempt", func() bool {
		ds := h.deliveries(t, w.ID)
		return len(ds) >= 3 && ds[0].Attempt == 2 && ds[0].Status == webhook.DeliverySucceeded &&
			strings.Contains(ds[1].Error, "timed out") && ds[1].Status == webhook.DeliveryPending
	})
}

func TestDispatcher_ExhaustedThenReplay(t *testing.T) {
	srv := natstest.Start(t)
	j := openJournal(t, srv.Conn())
	opts := fastOpts()
	opts.Schedule = []time.Duration{20 * time.Millisecond, 20 * time.Millisecond}
	h := openHub(t, srv.Conn(), opts, true)
	rcv := newReceiver(t)
	w := h.register(t, webhook.Registration{URL: rcv.url()}, rcv)
	h.waitStatus(t, w.ID, webhook.StatusActive)
	rcv.set(func(r *receiver) {
		r.status = func(events.Event, int) int { return http.StatusTeapot }
	})
	start := time.Now()
	evs := appendEvents(t, j, "a.md", "b.md", "c.md")

	failed := func(id string) bool {
		for _, d := range h.deliveries(t, w.ID) {
			if d.EventID == id && d.Status == webhook.DeliveryFailed {
				return d.Attempt == 3 && d.ResponseCode == http.StatusTeapot
			}
		}
		return false
	}
	eventstest.Eventually(t, "three failed deliveries", func() bool { return failed(evs[0].ID) && failed(evs[1].ID) && failed(evs[2].ID) })
	if s := h.d.Stats()[w.ID]; s.Failed != 3 {
		t.Errorf("stats: %d failed, want 3", s.Failed)
	}
	rcv.set(func(r *receiver) { r.status = nil })

	// One by delivery_id.
	var res webhook.ReplayResult
	if code, eb := h.call(t, http.MethodPost, "/v1/webhooks/"+w.ID+"/replay", map[string]string{"delivery_id": evs[1].ID}, &res); code != http.StatusAccepted {
		t.Fatalf("replay: %d %+v", code, eb)
	}
	if diff := cmp.Diff(webhook.ReplayResult{Replayed: 1, DeliveryIDs: []string{evs[1].ID}}, res); diff != "" {
		t.Errorf("replay result (-want +got):\n%s", diff)
	}
	got := rcv.waitDelivered(t, 1)
	if got[0].ID != evs[1].ID || got[0].Event.Seq != evs[1].Seq || !got[0].Valid {
		t.Errorf("replayed %s seq %d valid %v, want %s seq %d", got[0].ID, got[0].Event.Seq, got[0].Valid, evs[1].ID, evs[1].Seq)
	}
	// Replaying it again: it is no longer failed.
	if code, eb := h.call(t, http.MethodPost, "/v1/webhooks/"+w.ID+"/replay", map[string]string{"delivery_id": evs[1].ID}, nil); code != http.StatusNotFound {
		t.Errorf("second replay: %d %+v, want 404", code, eb)
	}

	// The rest by time range.
	body := map[string]string{"since": start.Add(-time.Second).Format(time.RFC3339Nano), "until": time.Now().Add(time.Second).Format(time.RFC3339Nano)}
	if code, eb := h.call(t, http.MethodPost, "/v1/webhooks/"+w.ID+"/replay", body, &res); code != http.StatusAccepted || res.Replayed != 2 {
		t.Fatalf("replay range: %d %+v %+v", code, eb, res)
	}
	got = rcv.waitDelivered(t, 3)
	seen := map[string]bool{}
	for _, q := range got {
		seen[q.ID] = true
	}
	for _, ev := range evs {
		if !seen[ev.ID] {
			t.Errorf("event %s not delivered after replay", ev.ID)
		}
	}
	eventstest.Eventually(t, "replay recorded", func() bool {
		ds := h.deliveries(t, w.ID)
		return ds[0].Replay && ds[0].Status == webhook.DeliverySucceeded && ds[0].Attempt == 1
	})

	for _, bad := range []any{map[string]string{}, map[string]string{"delivery_id": "x", "since": start.Format(time.RFC3339)}, map[string]int{"bogus": 1}} {
		if code, _ := h.call(t, http.MethodPost, "/v1/webhooks/"+w.ID+"/replay", bad, nil); code != http.StatusBadRequest {
			t.Errorf("replay %v: %d, want 400", bad, code)
		}
	}
}

func TestDispatcher_RotationSignsWithBoth(t *testing.T) {
	srv := natstest.Start(t)
	j := openJournal(t, srv.Conn())
	h := openHub(t, srv.Conn(), fastOpts(), true)
	rcv := newReceiver(t)
	w := h.register(t, webhook.Registration{URL: rcv.url()}, rcv)
	h.waitStatus(t, w.ID, webhook.StatusActive)
	oldSecret := w.Secret

	var rot webhook.Webhook
	if code, eb := h.call(t, http.MethodPost, "/v1/webhooks/"+w.ID+"/rotate", map[string]int{"overlap_seconds": 1}, &rot); code != http.StatusOK {
		t.Fatalf("rotate: %d %+v", code, eb)
	}
	if rot.Secret == "" || rot.Secret == oldSecret || rot.PreviousSecretExpiresAt.IsZero() {
		t.Fatalf("rotate answer: %+v", rot)
	}
	rcv.setSecrets(rot.Secret)
	appendEvents(t, j, "a.md")
	q := rcv.waitDelivered(t, 1)[0]
	if len(q.Sigs) != 2 {
		t.Fatalf("got %d signatures during the overlap, want 2: %v", len(q.Sigs), q.Sigs)
	}
	if !matches(rot.Secret, request{ID: q.ID, Timestamp: q.Timestamp, Body: q.Body, Sigs: q.Sigs[:1]}) {
		t.Errorf("first signature is not the new secret's")
	}
	if !matches(oldSecret, request{ID: q.ID, Timestamp: q.Timestamp, Body: q.Body, Sigs: q.Sigs[1:]}) {
		t.Errorf("second signature is not the old secret's")
	}
	if err := webhook.Verify([]string{oldSecret}, http.Header{
		"Webhook-Id": {q.ID}, "Webhook-Timestamp": {q.Timestamp}, "Webhook-Signature": {strings.Join(q.Sigs, " ")},
	}, q.Body, 0); err != nil {
		t.Errorf("Verify with the old secret: %v", err)
	}

	// After the overlap only the new secret signs (TestSigner_MatchesSign).
	if code, _ := h.call(t, http.MethodPost, "/v1/webhooks/"+w.ID+"/rotate", map[string]int{"overlap_seconds": -1}, nil); code != http.StatusBadRequest {
		t.Errorf("negative overlap: %d, want 400", code)
	}
}

func TestDispatcher_DisablesAfter(t *testing.T) {
	srv := natstest.Start(t)
	j := openJournal(t, srv.Conn())
	opts := fastOpts()
	opts.Schedule = []time.Duration{50 * time.Millisecond, 50 * time.Millisecond, 50 * time.Millisecond, 50 * time.Millisecond,
		50 * time.Millisecond, 50 * time.Millisecond, 50 * time.Millisecond, 50 * time.Millisecond}
	opts.DisableAfter = 150 * time.Millisecond
	h := openHub(t, srv.Conn(), opts, true)
	rcv := newReceiver(t)
	w := h.register(t, webhook.Registration{URL: rcv.url()}, rcv)
	h.waitStatus(t, w.ID, webhook.StatusActive)
	rcv.set(func(r *receiver) {
		r.status = func(events.Event, int) int { return http.StatusServiceUnavailable }
	})
	appendEvents(t, j, "a.md")
	got := h.waitStatus(t, w.ID, webhook.StatusDisabled)
	if !strings.Contains(got.Reason, "every delivery failed") || !strings.Contains(got.Reason, "503") {
		t.Errorf("reason %q", got.Reason)
	}
	n := len(rcv.requests())
	appendEvents(t, j, "b.md")
	// The server holds b.md for the webhook, and nobody asks for it (a.md
	// was handed back when the webhook's loop stopped).
	eventstest.Eventually(t, "b.md held undelivered", func() bool {
		info := consumerInfo(t, srv, journal.StreamName("docs"), webhook.LiveConsumer(w.ID))
		return info.NumPending >= 1 && info.NumWaiting == 0
	})
	if m := len(rcv.requests()); m != n {
		t.Errorf("a disabled webhook got %d more requests", m-n)
	}
	if code, eb := h.call(t, http.MethodPost, "/v1/webhooks/"+w.ID+"/replay", map[string]string{"delivery_id": "x"}, nil); code != http.StatusConflict {
		t.Errorf("replay on a disabled webhook: %d %+v, want 409", code, eb)
	}
}

func TestRoutes_ListGetDelete(t *testing.T) {
	srv := natstest.Start(t)
	h := openHub(t, srv.Conn(), fastOpts(), false)
	a := h.register(t, webhook.Registration{URL: "http://127.0.0.1:1/a"}, nil)
	b := h.register(t, webhook.Registration{URL: "http://127.0.0.1:1/b", Workspace: "other", Types: []string{"locked"}}, nil)

	var list struct{ Webhooks []webhook.Webhook }
	h.call(t, http.MethodGet, "/v1/webhooks", nil, &list)
	a.Secret, b.Secret = "", ""
	if diff := cmp.Diff([]webhook.Webhook{a, b}, list.Webhooks); diff != "" {
		t.Errorf("list (-want +got):\n%s", diff)
	}
	h.call(t, http.MethodGet, "/v1/webhooks?workspace=other", nil, &list)
	if len(list.Webhooks) != 1 || list.Webhooks[0].ID != b.ID {
		t.Errorf("list by workspace: %+v", list.Webhooks)
	}
	if code, _ := h.call(t, http.MethodDelete, "/v1/webhooks/"+a.ID, nil, nil); code != http.StatusOK {
		t.Errorf("delete: %d", code)
	}
	for _, p := range []string{"/v1/webhooks/" + a.ID, "/v1/webhooks/" + a.ID + "/deliveries", "/v1/webhooks/wh_nonsense"} {
		if code, eb := h.call(t, http.MethodGet, p, nil, nil); code != http.StatusNotFound || eb.Error.Code != "not_found" {
			t.Errorf("GET %s after delete: %d %+v", p, code, eb)
		}
	}
	if code, _ := h.call(t, http.MethodDelete, "/v1/webhooks/"+a.ID, nil, nil); code != http.StatusNotFound {
		t.Errorf("second delete: %d, want 404", code)
	}

	bad := []struct {
		name string
		body any
		code string
	}{
		{"no url", webhook.Registration{Workspace: "docs"}, "bad_url"},
		{"unknown workspace", webhook.Registration{URL: "http://127.0.0.1/", Workspace: "nope"}, "unknown_workspace"},
		{"bad glob", webhook.Registration{URL: "http://127.0.0.1/", Workspace: "docs", Paths: []string{"../x"}}, "bad_glob"},
		{"bad type", webhook.Registration{URL: "http://127.0.0.1/", Workspace: "docs", Types: []string{"exploded"}}, "bad_type"},
		{"bad extension", webhook.Registration{URL: "http://127.0.0.1/", Workspace: "docs", Extensions: []string{"a/b"}}, "bad_request"},
		{"unknown field", map[string]string{"url": "http://127.0.0.1/", "workspace": "docs", "secret": "x"}, "bad_request"},
		{"not json", "[", "bad_request"},
		{"trailing brace", rawBody(`{"url":"http://127.0.0.1:1/c","workspace":"docs"}}`), "bad_request"},
		{"trailing garbage", rawBody(`{"url":"http://127.0.0.1:1/c","workspace":"docs"} x`), "bad_request"},
		{"two objects", rawBody(`{"url":"http://127.0.0.1:1/c","workspace":"docs"}{}`), "bad_request"},
		{"invalid UTF-8", rawBody("{\"url\":\"http://127.0.0.1:1/\xff\",\"workspace\":\"docs\"}"), "bad_request"},
		{"lone surrogate", rawBody(`{"url":"http://127.0.0.1:1/\ud800","workspace":"docs"}`), "bad_request"},
	}
	for _, tt := range bad {
		code, eb := h.call(t, http.MethodPost, "/v1/webhooks", tt.body, nil)
		if code/100 != 4 || eb.Error.Code != tt.code {
			t.Errorf("%s: %d %+v, want code %s", tt.name, code, eb, tt.code)
		}
	}
	h.call(t, http.MethodGet, "/v1/webhooks", nil, &list)
	if len(list.Webhooks) != 1 {
		t.Errorf("a refused registration was kept: %+v", list.Webhooks)
	}
}
