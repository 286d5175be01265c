package hub

import (
	"context"

	"github.com/filecast/filecast/events"
)

// Log is the durable event log (satisfied by *journal.Journal). Its
// methods are safe for concurrent use.
type Log interface {
	// Append stores ev and returns it with Seq assigned.
	Append(ctx context.Context, ev events.Event) (events.Event, error)
	// Read returns up to limit events of ws with seq greater than after,
	// in order; events.ErrCursorExpired when retention dropped some of
	// them. An empty result means the log holds none after after.
	Read(ctx context.Context, ws string, after uint64, limit int) ([]events.Event, error)
	// Head returns the seq of the newest event of ws, 0 if none.
	Head(ctx context.Context, ws string) (uint64, error)
	// Follow calls fn with every event of ws after after, in order, first
	// the stored ones and then live ones. It blocks until ctx is done or
	// fn or the log fails.
	Follow(ctx context.Context, ws string, after uint64, fn func(events.Event) error) error
}

// DirectLog is a Log that lets the hub fan out its own appends directly
// (satisfied by *journal.Journal). With one, an event the hub appends goes
// to the ring and the subscribers as soon as the log has stored it, on the
// appending goroutine, instead of after the follower has read it back;
// the follower then only brings, in order, what this hub did not append
// itself (other hubs sharing the log) and skips the rest undecoded.
type DirectLog interface {
	Log
	// AppendStored is Append that also reports whether this call stored
	// ev; when it did, the event returned is exactly what Read and Follow
	// return for its seq.
	AppendStored(ctx context.Context, ev events.Event) (events.Event, bool, error)
	// FollowSkipping is Follow without decoding, nor calling fn for, the
	// seqs for which skip returns true.
	FollowSkipping(ctx context.Context, ws string, after uint64, skip func(seq uint64) bool, fn func(events.Event) error) error
}

// BatchLog is a DirectLog that can also append several events of one
// workspace with one wait for all their acknowledgements.
type BatchLog interface {
	// AppendStoredBatch is AppendStored for every event of evs, in order,
	// with one wait for all the acknowledgements. On error it returns the
	// events known to be stored, a prefix of evs.
	AppendStoredBatch(ctx context.Context, evs []events.Event) ([]events.Event, []bool, error)
}
