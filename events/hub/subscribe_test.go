package hub_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/sourcegraph/conc"

	"github.com/filecast/filecast/events"
	"github.com/filecast/filecast/events/eventstest"
	"github.com/filecast/filecast/events/hub"
	"github.com/filecast/filecast/events/journal"
	"github.com/filecast/filecast/events/natsd/natstest"
)

func TestHub_SubscribeFanOut(t *testing.T) {
	log := newJournal(t)
	h := startHub(t, log, hub.Options{})
	const subs, n = 8, 300
	ctx, cancel := context.WithTimeout(context.Background(), deadline)
	defer cancel()
	results := make([][]uint64, subs)
	errs := make([]error, subs)
	var wg conc.WaitGroup
	for i := range subs {
		wg.Go(func() { results[i], errs[i] = collect(ctx, h, "docs", 0, n) })
	}
	eventstest.Eventually(t, "subscribers", func() bool { return h.Stats().Subscribers == subs })
	appendN(t, h, "docs", n)
	wg.Wait()
	for i := range subs {
		if errs[i] != nil {
			t.Fatalf("subscriber %d: %v", i, errs[i])
		}
		if diff := cmp.Diff(seqRange(1, n), results[i]); diff != "" {
			t.Errorf("subscriber %d seqs (-want +got):\n%s", i, diff)
		}
	}
	if got := h.Stats(); got.FannedOut == 0 || got.Subscribers != 0 {
		t.Errorf("Stats = %+v, want FannedOut > 0 and no subscribers left", got)
	}
}

// TestHub_SubscribeHandover starts subscriptions from 0 over a long log
// while appends race with their start: each must see 1..N exactly.
func TestHub_SubscribeHandover(t *testing.T) {
	for _, tc := range []struct {
		name        string
		ring, queue int
	}{
		{"defaults", 0, 0},
		{"small ring and queue", 16, 4},
	} {
		t.Run(tc.name, func(t *testing.T) {
			log := newMemLog()
			const existing, live = 10_000, 3_000
			for i := range existing {
				if _, err := log.Append(context.Background(), fileEvent("docs", i)); err != nil {
					t.Fatal(err)
				}
			}
			h := startHub(t, log, hub.Options{Ring: tc.ring, Queue: tc.queue})
			ctx, cancel := context.WithTimeout(context.Background(), 2*deadline)
			defer cancel()

			const subs = 4
			results := make([][]uint64, subs)
			errs := make([]error, subs)
			var wg conc.WaitGroup
			wg.Go(func() {
				for i := range live {
					if _, err := h.Append(ctx, fileEvent("docs", i)); err != nil {
						t.Errorf("Append: %v", err)
						return
					}
				}
			})
			for i := range subs {
				// Start each subscriber a little later into the appends.
				startAt := uint64(existing + i*live/(subs+1))
				wg.Go(func() {
					eventstest.Poll(2*deadline, func() bool {
						head, _ := log.Head(ctx, "docs")
						return head >= startAt || ctx.Err() != nil
					})
					results[i], errs[i] = collect(ctx, h, "docs", 0, existing+live)
				})
			}
			wg.Wait()
			want := seqRange(1, existing+live)
			for i := range subs {
				if errs[i] != nil {
					t.Fatalf("subscriber %d: %v", i, errs[i])
				}
				if len(results[i]) != len(want) || !cmp.Equal(want, results[i]) {
					t.Errorf("subscriber %d got %d events, first diff:\n%s", i, len(results[i]), firstDiff(want, results[i]))
				}
			}
		})
	}
}

func firstDiff(want, got []uint64) string {
	for i := range min(len(want), len(got)) {
		if want[i] != got[i] {
			return fmt.Sprintf("at %d want %d got %d", i, want[i], got[i])
		}
	}
	return fmt.Sprintf("lengths %d vs %d", len(want), len(got))
}

func TestHub_SubscribeRingMiss(t *testing.T) {
	log := newJournal(t)
	h := startHub(t, log, hub.Options{Ring: 4})
	appendN(t, h, "docs", 100)
	ctx, cancel := context.WithTimeout(context.Background(), deadline)
	defer cancel()
	// Wait until the ring holds only the newest events.
	eventstest.Eventually(t, "head", func() bool {
		p, err := h.Changes(ctx, "docs", 99, 1, 0)
		return err == nil && len(p.Events) == 1
	})
	for _, after := range []uint64{0, 10, 95, 96, 97, 99} {
		got, err := collect(ctx, h, "docs", after, 100)
		if err != nil {
			t.Fatalf("after %d: %v", after, err)
		}
		if diff := cmp.Diff(seqRange(after+1, 100), got); diff != "" {
			t.Errorf("after %d (-want +got):\n%s", after, diff)
		}
	}
}

func TestHub_SubscribeAfterHead(t *testing.T) {
	log := newJournal(t)
	h := startHub(t, log, hub.Options{})
	appendN(t, h, "docs", 3)
	ctx, cancel := context.WithTimeout(context.Background(), deadline)
	defer cancel()
	done := make(chan struct{})
	var got []uint64
	var err error
	go func() {
		defer close(done)
		got, err = collect(ctx, h, "docs", 6, 8)
	}()
	eventstest.Eventually(t, "subscriber", func() bool { return h.Stats().Subscribers == 1 })
	appendN(t, h, "docs", 5)
	<-done
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]uint64{7, 8}, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}

func TestHub_SubscribeSlow(t *testing.T) {
	log := newJournal(t)
	h := startHub(t, log, hub.Options{Ring: 8, Queue: 4})
	const n = 100
	ctx, cancel := context.WithTimeout(context.Background(), deadline)
	defer cancel()

	release := make(chan struct{})
	blocked := make(chan struct{})
	var slow []uint64
	slowErr := make(chan error, 1)
	go func() {
		err := h.Subscribe(ctx, "docs", 0, func(ev events.Event) error {
			if len(slow) == 0 {
				close(blocked)
				select {
				case <-release:
				case <-ctx.Done():
				}
			}
			slow = append(slow, ev.Seq)
			if ev.Seq == n {
				return errEnough
			}
			return nil
		})
		slowErr <- err
	}()
	var fast []uint64
	fastErr := make(chan error, 1)
	go func() {
		var err error
		fast, err = collect(ctx, h, "docs", 0, n)
		fastErr <- err
	}()
	eventstest.Eventually(t, "subscribers", func() bool { return h.Stats().Subscribers == 2 })
	appendN(t, h, "docs", n)

	// The fast subscriber gets everything while the slow one is blocked.
	select {
	case err := <-fastErr:
		if err != nil {
			t.Fatalf("fast: %v", err)
		}
	case <-time.After(deadline):
		t.Fatal("the fast subscriber was delayed by the slow one")
	}
	select {
	case <-blocked:
	case <-time.After(deadline):
		t.Fatal("slow subscriber never called")
	}
	if diff := cmp.Diff(seqRange(1, n), fast); diff != "" {
		t.Errorf("fast (-want +got):\n%s", diff)
	}
	if got := h.Stats().Overflows; got == 0 {
		t.Errorf("Stats().Overflows = 0, want > 0")
	}
	close(release)
	if err := <-slowErr; !errors.Is(err, errEnough) {
		t.Fatalf("slow: %v", err)
	}
	if diff := cmp.Diff(seqRange(1, n), slow); diff != "" {
		t.Errorf("slow (-want +got):\n%s", diff)
	}
}

func TestHub_SubscribeErrors(t *testing.T) {
	log := newMemLog()
	h := startHub(t, log, hub.Options{Ring: 4})
	appendN(t, h, "docs", 20)
	ctx, cancel := context.WithTimeout(context.Background(), deadline)
	defer cancel()
	eventstest.Eventually(t, "head", func() bool {
		ws, err := h.Workspaces(ctx)
		return err == nil && ws[0].Head == 20
	})
	log.drop("docs", 10)

	mine := errors.New("mine")
	tests := []struct {
		name  string
		ws    string
		after uint64
		fn    func(events.Event) error
		want  error
	}{
		{"cursor expired", "docs", 5, func(events.Event) error { return nil }, events.ErrCursorExpired},
		{"unknown workspace", "nope", 0, func(events.Event) error { return nil }, events.ErrUnknownWorkspace},
		{"fn error as is", "docs", 12, func(events.Event) error { return mine }, mine},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := h.Subscribe(ctx, tc.ws, tc.after, tc.fn)
			if !errors.Is(err, tc.want) {
				t.Fatalf("Subscribe = %v, want %v", err, tc.want)
			}
		})
	}
	t.Run("ring still covers", func(t *testing.T) {
		got, err := collect(ctx, h, "docs", 17, 20)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff([]uint64{18, 19, 20}, got); diff != "" {
			t.Errorf("(-want +got):\n%s", diff)
		}
	})
	t.Run("own context", func(t *testing.T) {
		sctx, scancel := context.WithTimeout(ctx, 20*time.Millisecond)
		defer scancel()
		err := h.Subscribe(sctx, "docs", 20, func(events.Event) error { return nil })
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Subscribe = %v, want context.DeadlineExceeded", err)
		}
	})
}

func TestHub_RunCancelEndsSubscribe(t *testing.T) {
	log := newMemLog()
	h := newHub(t, log, hub.Options{})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	runDone := make(chan error, 1)

	const subs = 3
	errs := make(chan error, subs)
	for range subs {
		// Subscribe before Run: it waits for the follower.
		go func() { errs <- h.Subscribe(context.Background(), "docs", 0, func(events.Event) error { return nil }) }()
	}
	go func() { runDone <- h.Run(ctx) }()
	<-h.Ready()
	appendN(t, h, "docs", 5)
	eventstest.Eventually(t, "subscribers", func() bool { return h.Stats().Subscribers == subs })
	if err := h.Run(ctx); !errors.Is(err, hub.ErrRunning) {
		t.Errorf("second Run = %v, want ErrRunning", err)
	}
	cancel()
	for range subs {
		select {
		case err := <-errs:
			if !errors.Is(err, events.ErrClosed) {
				t.Errorf("Subscribe = %v, want ErrClosed", err)
			}
		case <-time.After(deadline):
			t.Fatal("Subscribe did not return after Run stopped")
		}
	}
	select {
	case err := <-runDone:
		if err != nil {
			t.Errorf("Run = %v", err)
		}
	case <-time.After(deadline):
		t.Fatal("Run did not return")
	}
	if err := h.Subscribe(context.Background(), "docs", 0, func(events.Event) error { return nil }); !errors.Is(err, events.ErrClosed) {
		t.Errorf("Subscribe after stop = %v, want ErrClosed", err)
	}
	// The log still answers Changes after the hub stopped.
	p, err := h.Changes(context.Background(), "docs", 0, 0, 0)
	if err != nil || len(p.Events) != 5 {
		t.Errorf("Changes after stop = %d events, %v; want 5", len(p.Events), err)
	}
}

func TestHub_FollowRetries(t *testing.T) {
	log := newMemLog()
	log.failFollow = 1
	h := startHub(t, log, hub.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), deadline)
	defer cancel()
	// Appended behind the hub's back (like another hub on a shared log),
	// so that only the follower can bring them.
	for i := range 3 {
		if _, err := log.Append(ctx, fileEvent("docs", i)); err != nil {
			t.Fatal(err)
		}
	}
	got, err := collect(ctx, h, "docs", 0, 3)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(seqRange(1, 3), got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	if n := log.followCalls(); n < 2 {
		t.Errorf("Follow called %d times, want a retry", n)
	}
}

// TestHub_SubscribeThroughSeqsWithoutEvent runs a hub on a log some of
// whose seqs hold no event (as a write the store failed for want of space
// leaves them), its head among them: a subscriber from the start gets
// every event, then the live ones, and is not told that events expired.
func TestHub_SubscribeThroughSeqsWithoutEvent(t *testing.T) {
	srv := natstest.Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), deadline)
	defer cancel()
	j, err := journal.Open(ctx, srv.Conn(), journal.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = j.Close() })
	for i := range 3 {
		ev := fileEvent("docs", i)
		ev.ID = fmt.Sprint("before-", i)
		if _, err := j.Append(ctx, ev); err != nil {
			t.Fatal(err)
		}
	}
	js, err := jetstream.New(srv.Conn())
	if err != nil {
		t.Fatal(err)
	}
	stream, err := js.Stream(ctx, journal.StreamName("docs"))
	if err != nil {
		t.Fatal(err)
	}
	for _, seq := range []uint64{1, 3} {
		if err := stream.DeleteMsg(ctx, seq); err != nil {
			t.Fatal(err)
		}
	}
	h := startHub(t, j, hub.Options{})
	done := make(chan struct{})
	var got []uint64
	go func() {
		defer close(done)
		got, err = collect(ctx, h, "docs", 0, 4)
	}()
	eventstest.Eventually(t, "the subscriber to be live", func() bool {
		select {
		case <-done:
			t.Fatalf("Subscribe from 0 returned early: %v", err)
		default:
		}
		return h.Stats().Subscribers == 1
	})
	appendN(t, h, "docs", 1)
	<-done
	if err != nil {
		t.Fatalf("Subscribe from 0: %v", err)
	}
	if diff := cmp.Diff([]uint64{2, 4}, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}
