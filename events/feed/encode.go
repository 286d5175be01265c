package feed

import (
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/filecast/filecast/events"
)

// frameSlots is the number of recent encoded events kept per workspace:
// the window below the newest seq seen. Streams within it share the
// encodings; one further behind encodes for itself without evicting the
// window, which costs time but nothing else.
const frameSlots = 4096

// frame is an event and its encoded stream message.
type frame struct {
	ev  events.Event
	msg []byte
}

// frames caches the encoded messages of a workspace's recent events, so
// that an event is encoded once for all the streams that send it. A slot
// holds an event whose seq is its index modulo frameSlots; a hit needs the
// whole event to match, so a source that reuses seqs never gets a stale
// encoding. It is safe for concurrent use.
type frames struct {
	newest atomic.Uint64 // the highest seq stored
	slots  [frameSlots]atomic.Pointer[frame]
}

// get returns the stream message of ev, encoding it when no slot holds it.
// The returned bytes are shared and must not be modified.
func (c *frames) get(ev *events.Event) ([]byte, error) {
	slot := &c.slots[ev.Seq%frameSlots]
	if fr := slot.Load(); fr != nil && fr.ev == *ev {
		return fr.msg, nil
	}
	msg, err := eventMessage(*ev)
	if err != nil {
		return nil, err
	}
	b, err := msg.MarshalText()
	if err != nil {
		return nil, fmt.Errorf("encode event %d: %w", ev.Seq, err)
	}
	// Only events in the window are stored: within it seqs map to distinct
	// slots, so a stream far behind cannot evict what the others share.
	newest := c.newest.Load()
	if ev.Seq+frameSlots > newest {
		slot.Store(&frame{ev: *ev, msg: b})
		for newest < ev.Seq && !c.newest.CompareAndSwap(newest, ev.Seq) {
			newest = c.newest.Load()
		}
	}
	return b, nil
}

// frameCache holds the frames of every workspace that has had a stream.
type frameCache struct {
	m sync.Map // workspace name → *frames
}

// peek returns the frames of ws, nil if it has none, and the highest seq
// they hold.
func (c *frameCache) peek(ws string) (*frames, uint64) {
	v, ok := c.m.Load(ws)
	if !ok {
		return nil, 0
	}
	fr := v.(*frames)
	return fr, fr.newest.Load()
}

// replace puts empty frames in place of old (nil: none) for ws, unless
// another stream did first, and returns the current frames. Callers
// replace frames that held a seq past a head read after them: the log was
// reset, and its new events must not wait to pass the old seqs to be
// cached. Only call it for a known workspace: frames are never dropped.
func (c *frameCache) replace(ws string, old *frames) *frames {
	if old == nil {
		c.m.LoadOrStore(ws, new(frames))
	} else {
		c.m.CompareAndSwap(ws, old, new(frames))
	}
	v, _ := c.m.Load(ws)
	return v.(*frames)
}
