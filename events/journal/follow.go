package journal

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/filecast/filecast/events"
)

const (
	// consumerInactive lets the server remove a consumer left behind (its
	// owner died) soon; a live ordered consumer re-creates itself.
	consumerInactive = time.Minute
	// followBuffer is how many events a follower has in flight.
	followBuffer = 256
	// followHeartbeat is how often an idle follower hears from the
	// server; two missed ones and the ordered consumer is made again from
	// the last event read, so that a follower whose consumer lived on a
	// NATS node that died resumes within seconds.
	followHeartbeat = time.Second
	followExpiry    = 5 * time.Second
	deleteTimeout   = 2 * time.Second
)

// Follow calls fn with every event of ws whose seq is greater than after, in
// seq order: first those already in the log, then live ones as they are
// appended, with no gap and no duplicate. It blocks until ctx is done
// (returning ctx.Err()), fn returns an error (returned as is), the journal
// is closed (events.ErrClosed) or the subscription fails. When the events
// right after after are no longer held, or a slow follower falls so far
// behind that retention drops events before it reads them, it returns an
// error matching events.ErrCursorExpired. The log of ws is created if it
// does not exist yet. With an external server it resumes by itself after a
// reconnect.
//
// fn runs on the caller's goroutine and must not block for long: the next
// events wait for it.
func (j *Journal) Follow(ctx context.Context, ws string, after uint64, fn func(events.Event) error) error {
	return j.FollowSkipping(ctx, ws, after, nil, fn)
}

// FollowSkipping is Follow for a reader that already has some of the
// events: fn is not called for a seq for which skip (if not nil) returns
// true, and that event is not even decoded. skip and fn run on the
// caller's goroutine, in seq order.
func (j *Journal) FollowSkipping(ctx context.Context, ws string, after uint64, skip func(seq uint64) bool, fn func(events.Event) error) error {
	j.mu.Lock()
	if j.closed() {
		j.mu.Unlock()
		return events.ErrClosed
	}
	j.follows.Add(1)
	j.mu.Unlock()
	defer j.follows.Done()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stop := context.AfterFunc(j.closing, cancel)
	defer stop()

	err := j.follow(ctx, ws, after, skip, fn)
	var cbErr callbackError
	switch {
	case errors.As(err, &cbErr):
		return cbErr.err
	case err == nil:
		return nil
	case ctx.Err() != nil && j.closed():
		return events.ErrClosed
	case ctx.Err() != nil:
		return ctx.Err()
	}
	return fmt.Errorf("follow events: %w", err)
}

// callbackError carries fn's error out of follow, unwrapped.
type callbackError struct{ err error }

func (e callbackError) Error() string { return e.err.Error() }

func (j *Journal) follow(ctx context.Context, ws string, after uint64, skip func(uint64) bool, fn func(events.Event) error) error {
	if err := j.ensured(ctx, ws); err != nil {
		return err
	}
	// Fail at once rather than at the next append when the events right
	// after the cursor are gone.
	info, err := j.info(ctx, ws)
	if err != nil {
		return err
	}
	if info != nil && dropped(after, info) {
		return cursorExpired(ws, after, info.State.FirstSeq)
	}
	cctx, ccancel := withTimeout(ctx)
	cons, err := j.js.OrderedConsumer(cctx, StreamName(ws), orderedConfig(after))
	ccancel()
	if err != nil {
		return err
	}
	defer j.deleteConsumer(ws, cons)
	iter, err := cons.Messages(jetstream.PullMaxMessages(followBuffer),
		jetstream.PullExpiry(followExpiry), jetstream.PullHeartbeat(followHeartbeat))
	if err != nil {
		return err
	}
	defer iter.Stop()
	last := after
	for {
		msg, err := iter.Next(jetstream.NextContext(ctx))
		if err != nil {
			return err
		}
		md, err := msg.Metadata()
		if err != nil {
			return err
		}
		seq := md.Sequence.Stream
		if seq <= last {
			continue // already delivered; cannot happen with an ordered consumer
		}
		if seq != last+1 {
			// Retention dropped the events after last, or these seqs
			// never held one (see dropped).
			info, err := j.info(ctx, ws)
			if err != nil {
				return err
			}
			if info == nil || dropped(last, info) {
				return cursorExpired(ws, last, seq)
			}
		}
		if skip != nil && skip(seq) {
			last = seq
			continue
		}
		ev, err := decode(msg.Data(), seq)
		if err != nil {
			return err
		}
		last = seq
		if err := fn(ev); err != nil {
			return callbackError{err}
		}
	}
}

// deleteConsumer removes the server side of an ordered consumer that is no
// longer used, best effort: the inactivity threshold removes it otherwise.
func (j *Journal) deleteConsumer(ws string, cons jetstream.Consumer) {
	info := cons.CachedInfo()
	if info == nil || j.nc.IsClosed() {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), deleteTimeout)
	defer cancel()
	if err := j.js.DeleteConsumer(ctx, StreamName(ws), info.Name); err != nil && !errors.Is(err, jetstream.ErrConsumerNotFound) {
		j.log.Debug("delete consumer", "workspace", ws, "consumer", info.Name, "err", err)
	}
}
