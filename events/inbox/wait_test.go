package inbox_test

import (
	"context"
	"errors"
	"testing"
	"testing/synctest"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/filecast/filecast/events"
	"github.com/filecast/filecast/events/inbox"
)

// takeAsync runs Take in a goroutine of the bubble and returns a function
// that waits for its outcome and how long it took.
func takeAsync(ctx context.Context, b *inbox.Inbox, subID string, wait time.Duration) func() (inbox.Result, time.Duration, error) {
	type outcome struct {
		res     inbox.Result
		elapsed time.Duration
		err     error
	}
	done := make(chan outcome, 1)
	go func() {
		start := time.Now()
		res, err := b.Take(ctx, subID, 0, wait)
		done <- outcome{res, time.Since(start), err}
	}()
	return func() (inbox.Result, time.Duration, error) {
		o := <-done
		return o.res, o.elapsed, o.err
	}
}

func TestInbox_TakeWait(t *testing.T) {
	t.Run("wakes on Offer", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			b := newInbox(0)
			result := takeAsync(t.Context(), b, "", 10*time.Second)
			time.Sleep(time.Second)
			b.Offer(ev("docs", 1, events.FileCreated, "a"))
			res, elapsed, err := result()
			if err != nil || elapsed != time.Second {
				t.Fatalf("err %v after %v, want nil after 1s", err, elapsed)
			}
			if diff := cmp.Diff([]string{"docs/1"}, ids(res.Events)); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	})
	t.Run("times out", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			b := newInbox(0)
			b.Offer(ev("src", 3, events.LockAcquired, "a")) // not selected
			res, elapsed, err := takeAsync(t.Context(), b, "", 5*time.Second)()
			want := inbox.Result{Events: []events.Event{}, Cursor: events.Cursor{"docs": 0, "src": 3}}
			if err != nil || elapsed != 5*time.Second {
				t.Fatalf("err %v after %v, want nil after 5s", err, elapsed)
			}
			if diff := cmp.Diff(want, res); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	})
	t.Run("returns at once when something is buffered", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			b := newInbox(0)
			b.Offer(ev("docs", 1, events.FileCreated, "a"))
			res, elapsed, err := takeAsync(t.Context(), b, "", 5*time.Second)()
			if err != nil || elapsed != 0 || len(res.Events) != 1 {
				t.Errorf("got %d events, err %v after %v", len(res.Events), err, elapsed)
			}
		})
	})
	t.Run("subscription waits for its own events", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			b := newInbox(0)
			md := subscribe(t, b, "", []string{"*.md"}, nil, false)
			subscribe(t, b, "", []string{"*.go"}, nil, false)
			result := takeAsync(t.Context(), b, md, 10*time.Second)
			time.Sleep(time.Second)
			b.Offer(ev("docs", 1, events.FileCreated, "a.go"))
			time.Sleep(time.Second)
			b.Offer(ev("docs", 2, events.FileCreated, "a.md"))
			res, elapsed, err := result()
			if err != nil || elapsed != 2*time.Second {
				t.Fatalf("err %v after %v, want nil after 2s", err, elapsed)
			}
			if diff := cmp.Diff([]string{"docs/2"}, ids(res.Events)); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	})
	t.Run("wakes for other events do not stretch the wait", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			b := newInbox(0)
			md := subscribe(t, b, "", []string{"*.md"}, nil, false)
			subscribe(t, b, "", []string{"*.go"}, nil, false)
			result := takeAsync(t.Context(), b, md, 3*time.Second)
			for i := range uint64(5) {
				time.Sleep(time.Second / 2)
				b.Offer(ev("docs", i+1, events.FileCreated, "a.go"))
			}
			res, elapsed, err := result()
			if err != nil || elapsed != 3*time.Second || len(res.Events) != 0 {
				t.Fatalf("%d events, err %v after %v; want none, nil after 3s", len(res.Events), err, elapsed)
			}
		})
	})
	t.Run("wakes on overflow", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			b := newInbox(1)
			md := subscribe(t, b, "", []string{"*.md"}, nil, false)
			subscribe(t, b, "", []string{"*.go"}, nil, false)
			b.Offer(ev("docs", 1, events.FileCreated, "a.go"))
			result := takeAsync(t.Context(), b, md, 10*time.Second)
			time.Sleep(time.Second)
			b.Offer(ev("docs", 2, events.FileCreated, "a.md")) // dropped: full
			res, elapsed, err := result()
			want := inbox.Result{Events: []events.Event{}, Cursor: events.Cursor{"docs": 1, "src": 0}, Overflowed: true}
			if err != nil || elapsed != time.Second {
				t.Fatalf("err %v after %v, want nil after 1s", err, elapsed)
			}
			if diff := cmp.Diff(want, res); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	})
	t.Run("context", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			b := newInbox(0)
			ctx, cancel := context.WithTimeout(t.Context(), 2*time.Second)
			defer cancel()
			_, elapsed, err := takeAsync(ctx, b, "", time.Minute)()
			if !errors.Is(err, context.DeadlineExceeded) || elapsed != 2*time.Second {
				t.Errorf("err %v after %v, want DeadlineExceeded after 2s", err, elapsed)
			}
			// Already done: no wait at all.
			_, elapsed, err = takeAsync(ctx, b, "", time.Minute)()
			if !errors.Is(err, context.DeadlineExceeded) || elapsed != 0 {
				t.Errorf("err %v after %v, want DeadlineExceeded at once", err, elapsed)
			}
		})
	})
	t.Run("Close wakes waiters", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			b := newInbox(0)
			r1 := takeAsync(t.Context(), b, "", time.Minute)
			r2 := takeAsync(t.Context(), b, subscribe(t, b, "", nil, nil, false), time.Minute)
			time.Sleep(time.Second)
			b.Close()
			b.Close()
			for _, r := range []func() (inbox.Result, time.Duration, error){r1, r2} {
				if _, elapsed, err := r(); !errors.Is(err, events.ErrClosed) || elapsed != time.Second {
					t.Errorf("err %v after %v, want ErrClosed after 1s", err, elapsed)
				}
			}
			if _, err := b.Take(t.Context(), "", 0, 0); !errors.Is(err, events.ErrClosed) {
				t.Errorf("Take after Close: err %v, want ErrClosed", err)
			}
		})
	})
	t.Run("Unsubscribe wakes its waiter", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			b := newInbox(0)
			id := subscribe(t, b, "", nil, nil, false)
			result := takeAsync(t.Context(), b, id, time.Minute)
			time.Sleep(time.Second)
			b.Unsubscribe(id)
			if _, elapsed, err := result(); !errors.Is(err, inbox.ErrUnknownSubscription) || elapsed != time.Second {
				t.Errorf("err %v after %v, want ErrUnknownSubscription after 1s", err, elapsed)
			}
		})
	})
}
