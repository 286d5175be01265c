package hub

import (
	"sync"
	"sync/atomic"

	"github.com/filecast/filecast/events"
	"github.com/filecast/filecast/events/workspace"
)

// wsState is one workspace's ring, head and live subscribers.
type wsState struct {
	w      workspace.Workspace
	index  atomic.Pointer[indexBox]
	liveCh chan struct{} // closed when the follower first starts

	mu     sync.Mutex
	live   bool // the follower feeds ring and head
	head   uint64
	ring   ring
	subs   map[*queue]struct{}
	notify chan struct{}            // closed at the next event; nil until someone waits
	early  map[uint64]*events.Event // appended here, waiting for head to reach seq-1

	writeMu sync.Mutex // serialises WriteFile

	relay atomic.Pointer[relayBox] // used while index is nil

	missing missingSince // when the folder was found missing, without a Presence index
}

// publish adds ev to the ring and queues it to every live subscriber
// without blocking; a subscriber whose queue is full is dropped from the
// live set and catches up from the log by itself.
//
// The follower's events (fromLog) come in log order and go out at once.
// An event the hub appended itself goes out at once only when it is the
// next seq; one stored after a seq the hub has not seen yet (another
// append's acknowledgement still on its way, or another hub's event) waits
// in early until the gap is filled, by the follower at the latest, so the
// ring and every subscriber see seqs in order.
func (h *Hub) publish(st *wsState, p *events.Event, fromLog bool) {
	var fanned, over uint64
	st.mu.Lock()
	if !st.live || p.Seq <= st.head {
		st.mu.Unlock()
		return
	}
	if !fromLog && p.Seq != st.head+1 {
		if len(st.early) < maxEarly {
			if st.early == nil {
				st.early = map[uint64]*events.Event{}
			}
			st.early[p.Seq] = p
		}
		st.mu.Unlock()
		return
	}
	for p != nil {
		st.ring.push(p)
		st.head = p.Seq
		for q := range st.subs {
			if q.push(p) {
				fanned++
			} else {
				delete(st.subs, q)
				over++
			}
		}
		p = st.nextEarly()
	}
	if st.notify != nil {
		close(st.notify)
		st.notify = nil
	}
	st.mu.Unlock()
	h.fannedOut.Add(fanned)
	if over > 0 {
		h.overflows.Add(over)
	}
}

// nextEarly takes the held-back event that follows head, if any, and
// forgets those head has passed. st.mu must be held.
func (st *wsState) nextEarly() *events.Event {
	if len(st.early) == 0 {
		return nil
	}
	if p, ok := st.early[st.head+1]; ok {
		delete(st.early, st.head+1)
		return p
	}
	for seq := range st.early {
		if seq <= st.head {
			delete(st.early, seq)
		}
	}
	return nil
}

// seen reports whether seq is already in the ring (or before it): the
// follower then need not decode it.
func (st *wsState) seen(seq uint64) bool {
	st.mu.Lock()
	defer st.mu.Unlock()
	return seq <= st.head
}

func (st *wsState) currentHead() uint64 {
	st.mu.Lock()
	defer st.mu.Unlock()
	return st.head
}

// waitCh returns a channel closed at the next event; st.mu must be held.
func (st *wsState) waitCh() chan struct{} {
	if st.notify == nil {
		st.notify = make(chan struct{})
	}
	return st.notify
}
