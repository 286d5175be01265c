package hub

import (
	"sort"

	"github.com/filecast/filecast/events"
)

// ring keeps the newest events of one workspace, oldest first. It holds
// every event with a seq greater than floor, up to the newest one pushed;
// seqs increase but need not be contiguous. It is not safe for concurrent
// use: the workspace lock guards it.
type ring struct {
	buf   []*events.Event
	start int    // index of the oldest event
	n     int    // events held
	floor uint64 // every event with seq > floor is held
}

func newRing(size int) ring { return ring{buf: make([]*events.Event, size)} }

// reset empties the ring so that it covers every seq after floor.
func (r *ring) reset(floor uint64) {
	clear(r.buf)
	r.start, r.n, r.floor = 0, 0, floor
}

// push adds the newest event, evicting the oldest when full.
func (r *ring) push(ev *events.Event) {
	if r.n == len(r.buf) {
		r.floor = r.buf[r.start].Seq
		r.buf[r.start] = ev
		r.start = (r.start + 1) % len(r.buf)
		return
	}
	r.buf[(r.start+r.n)%len(r.buf)] = ev
	r.n++
}

func (r *ring) at(i int) *events.Event { return r.buf[(r.start+i)%len(r.buf)] }

// covers reports whether the ring holds every event after after.
func (r *ring) covers(after uint64) bool { return after >= r.floor }

// after returns the index of the first event with seq greater than after.
func (r *ring) after(after uint64) int {
	return sort.Search(r.n, func(i int) bool { return r.at(i).Seq > after })
}
