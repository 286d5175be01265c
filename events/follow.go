package events

import (
	"context"
	"errors"
	"log/slog"
	"math/rand/v2"
	"time"

	"github.com/filecast/filecast/events/internal/wait"
)

// Defaults of FollowOptions.
const (
	DefaultMinBackoff = 100 * time.Millisecond
	DefaultMaxBackoff = 5 * time.Second
)

// healthyFor is how long a subscription must have lasted, when it
// delivered nothing, for Follow to resubscribe at once after it ends.
const healthyFor = time.Second

// FollowOptions configure Follow; the zero value means the defaults.
type FollowOptions struct {
	// MinBackoff and MaxBackoff bound the pause before subscribing again
	// after a subscription that failed at once: it starts at MinBackoff
	// and doubles, with jitter, up to MaxBackoff. Defaults
	// DefaultMinBackoff and DefaultMaxBackoff.
	MinBackoff, MaxBackoff time.Duration
	// Final, if set, reports whether a subscription's error ends Follow
	// (which returns it) rather than calling for a new subscription; an
	// error wrapping ErrCursorExpired always does.
	Final func(error) bool
	// Logger receives the resubscriptions: at debug level, at warning
	// level once several in a row have failed. Nil discards them.
	Logger *slog.Logger
}

// Follow is the one place a subscription is resumed. Only the consumer
// knows which event it last accepted, and the layers a subscription goes
// through (a remote hub's stream, the owner of a data folder, the hub on
// an MCP host's roots) each see only their own way of failing, so they
// pass events on and Follow, above them all, resumes. It calls fn with
// every event of ws after after, in seq order and once each, through as
// many subscriptions of src as it takes: a Source passes events on until
// its subscription ends (a hub restarted, a connection lost, the owner of
// a data folder gone), and Follow then subscribes again after the last
// event fn accepted. It subscribes again at once after a subscription that
// delivered events or lasted a while; after one that failed at once it
// pauses with backoff (see FollowOptions).
//
// Follow blocks until ctx is done (returning ctx.Err()), fn fails
// (returning its error as is), or a subscription ends with an error
// wrapping ErrCursorExpired, or one opts.Final accepts (returning that
// error). fn runs on the caller's goroutine.
func Follow(ctx context.Context, src Source, ws string, after uint64, fn func(Event) error, opts FollowOptions) error {
	if opts.MinBackoff <= 0 {
		opts.MinBackoff = DefaultMinBackoff
	}
	if opts.MaxBackoff < opts.MinBackoff {
		opts.MaxBackoff = max(DefaultMaxBackoff, opts.MinBackoff)
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	last := after
	delay := opts.MinBackoff
	failed := 0 // subscriptions in a row that failed at once
	for {
		var fnErr error
		delivered := false
		began := time.Now()
		err := src.Subscribe(ctx, ws, last, func(ev Event) error {
			if ev.Seq <= last {
				return nil // a Source that repeats itself
			}
			if err := fn(ev); err != nil {
				fnErr = err
				return err
			}
			last, delivered = ev.Seq, true
			return nil
		})
		switch {
		case fnErr != nil:
			return fnErr
		case ctx.Err() != nil:
			return ctx.Err()
		case errors.Is(err, ErrCursorExpired), opts.Final != nil && opts.Final(err):
			return err
		}
		if delivered || time.Since(began) >= healthyFor {
			failed, delay = 0, opts.MinBackoff
			log.Debug("event subscription ended; resubscribing", "workspace", ws, "after", last, "err", err)
			continue
		}
		failed++
		pause := min(delay+rand.N(delay/2+1), opts.MaxBackoff)
		delay = min(2*delay, opts.MaxBackoff)
		lvl := slog.LevelDebug
		if failed >= 3 {
			lvl = slog.LevelWarn
		}
		log.Log(ctx, lvl, "event subscription failed; resubscribing", "workspace", ws, "after", last, "err", err, "in", pause, "failures", failed)
		if !wait.Sleep(ctx, pause) {
			return ctx.Err()
		}
	}
}
