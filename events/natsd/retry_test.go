package natsd_test

import (
	"context"
	"errors"
	"testing"
	"testing/synctest"
	"time"

	"github.com/filecast/filecast/events/natsd"
)

// TestRetryOpen_TimeoutsRetried: attempts that time out are tried again
// with a doubled bound (1s, 2s, 4s, then 5s), until one succeeds.
func TestRetryOpen_TimeoutsRetried(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var bounds []time.Duration
		err := natsd.RetryOpen(t.Context(), func(ctx context.Context) error {
			deadline, _ := ctx.Deadline()
			bounds = append(bounds, time.Until(deadline))
			if len(bounds) < 5 {
				<-ctx.Done() // unanswered
				return ctx.Err()
			}
			return nil
		})
		if err != nil {
			t.Fatalf("RetryOpen = %v, want nil", err)
		}
		want := []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 5 * time.Second, 5 * time.Second}
		if len(bounds) != len(want) {
			t.Fatalf("%d attempts, want %d", len(bounds), len(want))
		}
		for i := range want {
			if bounds[i] != want[i] {
				t.Errorf("attempt %d bounded by %v, want %v", i+1, bounds[i], want[i])
			}
		}
	})
}

// TestRetryOpen_GivesUp: after 8 attempts that time out, the last
// attempt's error is returned; any other error at once.
func TestRetryOpen_GivesUp(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := 0
		err := natsd.RetryOpen(t.Context(), func(ctx context.Context) error {
			n++
			<-ctx.Done()
			return ctx.Err()
		})
		if !errors.Is(err, context.DeadlineExceeded) || n != 8 {
			t.Fatalf("RetryOpen = %v after %d attempts, want a deadline error after 8", err, n)
		}
	})
	synctest.Test(t, func(t *testing.T) {
		refused := errors.New("refused")
		n := 0
		err := natsd.RetryOpen(t.Context(), func(context.Context) error { n++; return refused })
		if err != refused || n != 1 {
			t.Fatalf("RetryOpen = %v after %d attempts, want the error at once", err, n)
		}
	})
}

// TestRetryOpen_Cancelled: a cancelled context ends the retries.
func TestRetryOpen_Cancelled(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx, cancel := context.WithCancel(t.Context())
		n := 0
		err := natsd.RetryOpen(ctx, func(ctx context.Context) error {
			n++
			cancel()
			return context.DeadlineExceeded
		})
		if err == nil || n != 1 {
			t.Fatalf("RetryOpen = %v after %d attempts, want the error after 1", err, n)
		}
	})
}
