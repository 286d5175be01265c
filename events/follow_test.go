package events_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/filecast/filecast/events"
)

// flaky is a Source whose subscriptions can be cut or refused: a fake
// that injects the faults of a hub that restarts or an owner that goes.
// Only Subscribe is used.
type flaky struct {
	events.Source

	mu      sync.Mutex
	log     []uint64      // seqs in the log
	grown   chan struct{} // closed and replaced when the log grows
	cut     chan struct{} // closed to end the running subscriptions
	down    bool          // subscriptions fail at once
	replay  bool          // subscriptions start from seq 1, whatever after says
	expired uint64        // subscriptions after less than this fail with ErrCursorExpired
	calls   []call
}

type call struct {
	after uint64
	at    time.Time
}

var errLost = errors.New("test: connection lost")

func newFlaky(seqs ...uint64) *flaky {
	return &flaky{log: seqs, grown: make(chan struct{}), cut: make(chan struct{})}
}

func (f *flaky) add(seqs ...uint64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.log = append(f.log, seqs...)
	close(f.grown)
	f.grown = make(chan struct{})
}

// sever ends the running subscriptions; with down, the next ones fail.
func (f *flaky) sever(down bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	close(f.cut)
	f.cut = make(chan struct{})
	f.down = down
}

func (f *flaky) up() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.down = false
}

func (f *flaky) Subscribe(ctx context.Context, ws string, after uint64, fn func(events.Event) error) error {
	f.mu.Lock()
	f.calls = append(f.calls, call{after, time.Now()})
	down, cut, expired := f.down, f.cut, f.expired
	if f.replay {
		after = 0
	}
	f.mu.Unlock()
	if down {
		return errLost
	}
	if after < expired {
		return fmt.Errorf("subscribe: %w", events.ErrCursorExpired)
	}
	for {
		f.mu.Lock()
		var next []uint64
		for _, s := range f.log {
			if s > after {
				next = append(next, s)
			}
		}
		grown := f.grown
		f.mu.Unlock()
		for _, s := range next {
			if err := fn(events.Event{Seq: s, Workspace: ws}); err != nil {
				return err
			}
			after = s
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-cut:
			return errLost
		case <-grown:
		}
	}
}

func (f *flaky) afters() []uint64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []uint64
	for _, c := range f.calls {
		out = append(out, c.after)
	}
	return out
}

// follower runs Follow on f until the test ends, collecting the seqs.
type follower struct {
	mu   sync.Mutex
	seqs []uint64
	done chan error
}

func follow(ctx context.Context, f *flaky, after uint64) *follower {
	fl := &follower{done: make(chan error, 1)}
	go func() {
		fl.done <- events.Follow(ctx, f, "docs", after, func(ev events.Event) error {
			fl.mu.Lock()
			fl.seqs = append(fl.seqs, ev.Seq)
			fl.mu.Unlock()
			return nil
		}, events.FollowOptions{})
	}()
	return fl
}

func (fl *follower) got() []uint64 {
	fl.mu.Lock()
	defer fl.mu.Unlock()
	return append([]uint64(nil), fl.seqs...)
}

// TestFollow_ResumesAfterTheLastEvent: a subscription that ends is
// followed at once by one after the last event delivered; nothing is
// missed or repeated.
func TestFollow_ResumesAfterTheLastEvent(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx, cancel := context.WithCancel(t.Context())
		f := newFlaky(1, 2, 3)
		fl := follow(ctx, f, 0)
		synctest.Wait()
		start := time.Now()
		f.sever(false)
		f.add(4, 5)
		synctest.Wait()
		if waited := time.Since(start); waited != 0 {
			t.Errorf("resubscribed after %v, want at once after a subscription that delivered", waited)
		}
		if diff := cmp.Diff([]uint64{1, 2, 3, 4, 5}, fl.got()); diff != "" {
			t.Errorf("seqs (-want +got):\n%s", diff)
		}
		if diff := cmp.Diff([]uint64{0, 3}, f.afters()); diff != "" {
			t.Errorf("subscribed after (-want +got):\n%s", diff)
		}
		cancel()
		if err := <-fl.done; !errors.Is(err, context.Canceled) {
			t.Errorf("Follow = %v, want context.Canceled", err)
		}
	})
}

// TestFollow_BacksOff: while subscriptions fail at once, the pauses
// double from 100ms, with at most half again of jitter, up to 5s; once
// one succeeds the events flow again from where they stopped.
func TestFollow_BacksOff(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFlaky(1)
		fl := follow(t.Context(), f, 0)
		synctest.Wait()
		f.sever(true)
		time.Sleep(40 * time.Second) // the fake clock of the bubble
		f.add(2)
		f.up()
		time.Sleep(10 * time.Second)
		synctest.Wait()
		if diff := cmp.Diff([]uint64{1, 2}, fl.got()); diff != "" {
			t.Errorf("seqs (-want +got):\n%s", diff)
		}
		f.mu.Lock()
		calls := f.calls
		f.mu.Unlock()
		// calls[0] delivered; calls[1] was at once after the cut and
		// failed; the pauses before the next ones back off.
		if len(calls) < 8 {
			t.Fatalf("%d subscriptions in 50s, want at least 8", len(calls))
		}
		if calls[1].at != calls[0].at {
			t.Errorf("first resubscription after %v, want at once", calls[1].at.Sub(calls[0].at))
		}
		want := events.DefaultMinBackoff
		for i := 2; i < len(calls); i++ {
			pause := calls[i].at.Sub(calls[i-1].at)
			if pause < want || pause > min(want+want/2, events.DefaultMaxBackoff) {
				t.Errorf("pause before subscription %d = %v, want %v to %v", i, pause, want, min(want+want/2, events.DefaultMaxBackoff))
			}
			want = min(2*want, events.DefaultMaxBackoff)
		}
	})
}

// TestFollow_SkipsRepeats: a Source that replays what was delivered does
// not make fn see an event twice.
func TestFollow_SkipsRepeats(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFlaky(1, 2)
		f.replay = true
		fl := follow(t.Context(), f, 0)
		synctest.Wait()
		f.sever(false)
		f.add(3)
		synctest.Wait()
		if diff := cmp.Diff([]uint64{1, 2, 3}, fl.got()); diff != "" {
			t.Errorf("seqs (-want +got):\n%s", diff)
		}
	})
}

// TestFollow_Ends: Follow returns an expired cursor, an error Final
// accepts and fn's error as they are, without subscribing again.
func TestFollow_Ends(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFlaky(5, 6)
		f.expired = 4
		err := events.Follow(t.Context(), f, "docs", 2, func(events.Event) error { return nil }, events.FollowOptions{})
		if !errors.Is(err, events.ErrCursorExpired) || len(f.calls) != 1 {
			t.Errorf("Follow on an expired cursor = %v after %d subscriptions, want ErrCursorExpired after 1", err, len(f.calls))
		}

		f = newFlaky(1)
		f.down = true
		err = events.Follow(t.Context(), f, "docs", 0, func(events.Event) error { return nil },
			events.FollowOptions{Final: func(err error) bool { return errors.Is(err, errLost) }})
		if !errors.Is(err, errLost) || len(f.calls) != 1 {
			t.Errorf("Follow with Final = %v after %d subscriptions, want errLost after 1", err, len(f.calls))
		}

		f = newFlaky(1, 2)
		stop := errors.New("stop")
		err = events.Follow(t.Context(), f, "docs", 0, func(events.Event) error { return stop }, events.FollowOptions{})
		if err != stop || len(f.calls) != 1 {
			t.Errorf("Follow with a failing fn = %v after %d subscriptions, want fn's error after 1", err, len(f.calls))
		}
	})
}
