// Package wait holds the one way filecast's loops pause: for a duration,
// unless their context ends first.
//
//	if !wait.Sleep(ctx, backoff) {
//		return ctx.Err()
//	}
package wait

import (
	"context"
	"time"
)

// Sleep waits for d or until ctx is done, and reports whether d passed.
func Sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
