package watch

import (
	"context"
	"testing"
	"testing/synctest"
	"time"
)

// TestYieldToChanges: the fill of a new content store pauses before each
// file while live changes are being appended, and does not when the
// watcher is quiet (or has appended nothing yet).
func TestYieldToChanges(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		w := &Watcher{}
		took := func() time.Duration {
			start := time.Now()
			w.yieldToChanges(context.Background())
			return time.Since(start)
		}
		if d := took(); d != 0 {
			t.Errorf("nothing appended yet: waited %v, want 0", d)
		}
		w.lastAppend.Store(time.Now().UnixNano())
		if d := took(); d != fillPause {
			t.Errorf("changes just appended: waited %v, want %v", d, fillPause)
		}
		time.Sleep(fillPause) // the fake clock of the bubble: the watcher quiet since
		if d := took(); d != 0 {
			t.Errorf("quiet for %v: waited %v, want 0", fillPause, d)
		}
		w.lastAppend.Store(time.Now().UnixNano())
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		start := time.Now()
		w.yieldToChanges(ctx)
		if d := time.Since(start); d != 0 {
			t.Errorf("cancelled: waited %v, want 0", d)
		}
	})
}
