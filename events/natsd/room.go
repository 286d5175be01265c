package natsd

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// ErrNoRoom is returned by Room while the embedded store cannot take more.
var ErrNoRoom = errors.New("natsd: the event store has no room")

// roomCache is how long Room reuses its last measure: writers ask before
// every append, and a measure reads the file system and JetStream's usage.
const roomCache = 250 * time.Millisecond

// Space is what the embedded server's store has left.
type Space struct {
	Free    int64 // bytes free on the store's disk for this process; -1 when unknown
	MinFree int64 // the space Room keeps free (Options.MinFree); 0 when it does not check
	Used    int64 // bytes JetStream's file storage uses
	Limit   int64 // JetStream's file storage limit (Options.MaxStore, or its default)
}

// Space returns what the embedded server's store has left, as Room last
// measured it (at most a quarter of a second ago); ok is false for an
// external server, whose limits are its operator's.
func (s *Server) Space() (sp Space, ok bool) {
	if s.ns == nil {
		return Space{}, false
	}
	sp, _ = s.room.check()
	return sp, true
}

// Room returns nil while the embedded server's store can take more, and
// otherwise an error wrapping ErrNoRoom that says why: JetStream's storage
// limit is reached, the disk has less than Options.MinFree free, or the
// store failed a write for want of space (it then refuses every later one
// until it is opened again, which the Server does by itself once the disk
// has room). Callers ask before they store anything, so that the store
// never fills the disk to the last byte. It measures at most every quarter
// of a second and is safe for concurrent use. It is always nil for an
// external server: its refusals come with its answers.
func (s *Server) Room() error {
	if s.ns == nil {
		return nil
	}
	_, err := s.room.check()
	return err
}

// roomCheck measures the embedded store's room; its zero value (an
// external server) is never used.
type roomCheck struct {
	ns      *server.Server
	dir     string
	minFree int64

	mu   sync.Mutex // serialises measures
	last atomic.Pointer[measure]

	failed    atomic.Pointer[string] // a write the store failed for want of space
	broken    chan struct{}          // signalled when failed is set; see Server.mend
	reopening atomic.Bool            // the store is being opened again
	reopened  atomic.Int64           // times it was
}

// measure is one look at the store's room.
type measure struct {
	at    time.Time
	space Space
	err   error
}

func (r *roomCheck) init(ns *server.Server, dir string, minFree int64) {
	if minFree == 0 {
		minFree = DefaultMinFree
	}
	r.ns, r.dir, r.minFree = ns, dir, max(minFree, 0)
	r.broken = make(chan struct{}, 1)
}

// sawError is told every error the server logs; one that says the disk is
// full means the store will refuse every later write until it is opened
// again.
func (r *roomCheck) sawError(msg string) {
	if r == nil || r.ns == nil {
		return
	}
	if strings.Contains(msg, "no space left on device") || strings.Contains(msg, "disk quota exceeded") {
		r.failed.CompareAndSwap(nil, &msg)
		r.signalBroken()
	}
}

// signalBroken wakes Server.mend.
func (r *roomCheck) signalBroken() {
	select {
	case r.broken <- struct{}{}:
	default:
	}
}

func (r *roomCheck) check() (Space, error) {
	if m := r.last.Load(); m != nil && time.Since(m.at) < roomCache {
		return m.space, m.err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	m := r.last.Load()
	if m == nil || time.Since(m.at) >= roomCache {
		m = &measure{at: time.Now()}
		m.space, m.err = r.measure()
		r.last.Store(m)
	}
	return m.space, m.err
}

func (r *roomCheck) measure() (Space, error) {
	sp := Space{Free: -1, MinFree: r.minFree}
	if free, ok := diskFree(r.dir); ok {
		sp.Free = free
	}
	if r.reopening.Load() {
		return sp, errReopening
	}
	if !r.ns.JetStreamEnabled() {
		r.signalBroken() // stopped by the server itself
		return sp, fmt.Errorf("%w: JetStream stopped after a store error; it starts again by itself once the disk of the data folder has %s free", ErrNoRoom, size(max(r.minFree, reopenFree)))
	}
	if info, err := r.ns.Jsz(&server.JSzOptions{}); err == nil && info != nil {
		sp.Used, sp.Limit = int64(info.Store), info.Config.MaxStore //nolint:gosec // usage fits in int64
	}
	switch {
	case r.failed.Load() != nil:
		return sp, fmt.Errorf("%w: the store failed a write because the disk was full, and refuses every later one until it is opened again, which happens by itself once the disk of the data folder has %s free; free some space", ErrNoRoom, size(max(r.minFree, reopenFree)))
	case sp.Limit > 0 && sp.Used >= sp.Limit:
		return sp, fmt.Errorf("%w: its storage limit is reached (%s of %s used); free space on the disk of the data folder, or let retention drop old events", ErrNoRoom, size(sp.Used), size(sp.Limit))
	case r.minFree > 0 && sp.Free >= 0 && sp.Free < r.minFree:
		return sp, fmt.Errorf("%w: the disk of the data folder has %s free, less than the %s filecast keeps free; free some space", ErrNoRoom, size(sp.Free), size(r.minFree))
	}
	return sp, nil
}

// size writes a byte count for people: 512 B, 3.2 KiB, 64 MiB, 1.5 GiB.
func size(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit && exp < 4; m /= unit {
		div *= unit
		exp++
	}
	v := float64(n) / float64(div)
	if v == float64(int64(v)) {
		return fmt.Sprintf("%d %ciB", int64(v), "KMGTP"[exp])
	}
	return fmt.Sprintf("%.1f %ciB", v, "KMGTP"[exp])
}
