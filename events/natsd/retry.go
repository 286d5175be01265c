package natsd

import (
	"context"
	"errors"
	"math/rand/v2"
	"time"

	"github.com/filecast/filecast/events/internal/wait"
)

// Bounds of RetryOpen's attempts.
const (
	openTry    = time.Second // the first attempt's bound, doubled for each next one up to openTryMax
	openTryMax = 5 * time.Second
	openTries  = 8
)

// RetryOpen runs open (which creates or checks streams and buckets) with
// a bound per attempt (1 s, doubling up to 5 s), again after a short
// random pause when it timed out, 8 attempts at most: on a JetStream
// cluster, processes starting together create the same streams at once,
// and the server may then leave every one of those requests unanswered
// (nats-server#3677); once a stream exists, the next attempt finds it.
// Other errors, and the last attempt's, are returned as open returned
// them.
func RetryOpen(ctx context.Context, open func(context.Context) error) error {
	for attempt := 1; ; attempt++ {
		actx, cancel := context.WithTimeout(ctx, min(openTry<<(attempt-1), openTryMax))
		err := open(actx)
		cancel()
		if err == nil || ctx.Err() != nil || attempt == openTries || !errors.Is(err, context.DeadlineExceeded) {
			return err
		}
		if !wait.Sleep(ctx, time.Duration(100+rand.IntN(400))*time.Millisecond) {
			return err
		}
	}
}
