package natsd

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/filecast/filecast/events/internal/wait"
)

// A JetStream file store that fails a write (its disk full) keeps the
// error and refuses every later write until it is opened again; so does
// a server that stopped JetStream after such an error. The embedded
// server mends itself: once the disk of the store has room again, it
// stops JetStream and starts it again on the same store, in process.
// The connection stays; what JetStream held is read back from the disk.
// Its clients see JetStream go away for a moment and come back:
//
//   - a publish sent meanwhile gets no answer or no responders, and is
//     sent again with the same message ID (the journal does), which the
//     stream's duplicate window keeps from being stored twice;
//   - ordered consumers (the journal's followers, key-value watchers) miss
//     their heartbeats and make their consumer again from the last message
//     they had;
//   - durable consumers are read back from the store, with their acks;
//     their pull subscriptions ask again after missed heartbeats.
//
// A write that failed may leave its sequence number without a message:
// a stream's sequence then has a gap, which no event fills.

const (
	// reopenFree is the least free space at which a failed store is
	// opened again when Options.MinFree does not ask for more.
	reopenFree = 1 << 20
	// reopenPoll is how often the disk is looked at while the store is
	// broken; reopenPause is the least time between two reopenings, and
	// doubles, up to reopenPauseMax, when one follows another within
	// reopenCalm (the disk filled again at once).
	reopenPoll     = 500 * time.Millisecond
	reopenPause    = time.Second
	reopenPauseMax = 30 * time.Second
	reopenCalm     = time.Minute
)

// errReopening is why Room refuses while the store is being opened again.
var errReopening = fmt.Errorf("%w: the store is being opened again after a failed write", ErrNoRoom)

// Reopened returns how many times the embedded store was opened again
// after it failed a write for want of space; 0 for an external server.
func (s *Server) Reopened() int64 { return s.room.reopened.Load() }

// mend waits for the store to break (a write it failed for want of space,
// or JetStream stopped) and opens it again once the disk has room. It
// runs on a goroutine of its own from Start until Close.
func (s *Server) mend(ctx context.Context) {
	pause := reopenPause
	var last time.Time
	for {
		select {
		case <-ctx.Done():
			return
		case <-s.room.broken:
		}
		for s.room.needsReopen() {
			if !s.room.diskHasRoom() || time.Since(last) < pause {
				if !wait.Sleep(ctx, reopenPoll) {
					return
				}
				continue
			}
			if !last.IsZero() && time.Since(last) < reopenCalm {
				pause = min(2*pause, reopenPauseMax)
			} else {
				pause = reopenPause
			}
			last = time.Now()
			if err := s.reopen(); err != nil {
				s.log.Error("cannot open the event store again; trying again", "err", err, "retry_in", pause)
				continue
			}
			s.log.Info("the event store failed a write for want of space and is open again: it takes events again", "reopened", s.room.reopened.Load())
		}
	}
}

// reopen stops JetStream and starts it again with the configuration it
// was started with, reading the store back from the disk.
func (s *Server) reopen() error {
	r := &s.room
	r.reopening.Store(true)
	defer func() {
		r.reopening.Store(false)
		r.last.Store(nil)
	}()
	r.last.Store(nil)
	// A write failed during the reopening is seen again.
	r.failed.Store(nil)
	s.log.Warn("opening the event store again after a write it failed for want of space", "store", r.dir)
	if err := s.ns.ShutdownJetStream(); err != nil {
		return fmt.Errorf("stop JetStream: %w", err)
	}
	cfg := s.jsConfig
	if err := s.ns.EnableJetStream(&cfg); err != nil {
		return fmt.Errorf("start JetStream: %w", err)
	}
	if !s.ns.JetStreamEnabled() {
		return errors.New("start JetStream: it did not start")
	}
	r.reopened.Add(1)
	return nil
}

// jetStreamConfig returns what EnableJetStream needs to start JetStream
// again as ns runs it: the store folder as given (EnableJetStream adds
// its own subfolder), the limits it settled on.
func jetStreamConfig(ns *server.Server, storeDir string) server.JetStreamConfig {
	cfg := *ns.JetStreamConfig()
	cfg.StoreDir = storeDir
	return cfg
}

// needsReopen reports whether the store refuses writes until it is
// opened again.
func (r *roomCheck) needsReopen() bool {
	return r.failed.Load() != nil || !r.ns.JetStreamEnabled()
}

// diskHasRoom reports whether the store's disk has room enough to open
// the store again: Options.MinFree, and at least reopenFree. A disk whose
// free space is unknown counts as having room.
func (r *roomCheck) diskHasRoom() bool {
	free, ok := diskFree(r.dir)
	return !ok || free >= max(r.minFree, reopenFree)
}
