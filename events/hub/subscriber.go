package hub

import (
	"context"
	"fmt"
	"sync"

	"github.com/filecast/filecast/events"
)

// queue is the bounded live queue of one Subscribe call. The workspace's
// follower pushes into it without ever blocking; the subscriber's own loop
// takes everything queued at once. Its buffer is allocated on the first
// push and grows with the backlog, up to max; an idle subscriber holds at
// most two small buffers (see keepCap). When a push finds it full, the queue is
// marked overflowed and takes no more events: the subscriber catches up
// from the log instead.
type queue struct {
	mu         sync.Mutex
	buf        []*events.Event
	max        int
	overflowed bool
	wake       chan struct{} // capacity 1: "something to take"
}

func newQueue(max int) *queue { return &queue{max: max, wake: make(chan struct{}, 1)} }

// push queues ev and reports false when the queue is full (it is then
// marked overflowed). It never blocks.
func (q *queue) push(ev *events.Event) bool {
	q.mu.Lock()
	ok := !q.overflowed && len(q.buf) < q.max
	if ok {
		q.buf = append(q.buf, ev)
	} else {
		q.overflowed = true
	}
	q.mu.Unlock()
	select {
	case q.wake <- struct{}{}:
	default:
	}
	return ok
}

// keepCap is the largest buffer a queue keeps between batches: a burst
// grows the buffers as far as it needs, and they are let go after it, so
// that an idle subscriber does not hold the size of its last burst.
const keepCap = 32

// take returns everything queued and whether the queue overflowed; spare
// (emptied) becomes the new buffer, so two slices alternate. A spare
// larger than keepCap is dropped instead: the queue then starts from nil
// and grows only as far as the next batch needs.
func (q *queue) take(spare []*events.Event) ([]*events.Event, bool) {
	clear(spare)
	if cap(spare) > keepCap {
		spare = nil
	}
	q.mu.Lock()
	batch, over := q.buf, q.overflowed
	q.buf = spare[:0]
	q.mu.Unlock()
	return batch, over
}

// fnError carries an error returned by the subscriber's fn, which
// Subscribe returns as is.
type fnError struct{ err error }

func (e *fnError) Error() string { return e.err.Error() }

// Subscribe calls fn with every event of ws whose seq is greater than
// after, in seq order, first those already logged and then live ones, with
// no gap and no duplicate. It blocks until ctx is done (ctx.Err()), fn
// fails (its error as is), the hub stops (events.ErrClosed) or the log
// fails; it returns events.ErrCursorExpired at once when the log no longer
// holds the events right after after. Called before Run, it waits for Run.
// fn runs on the caller's goroutine and may block: the subscriber then
// falls behind the live stream and catches up from the log afterwards,
// without delaying other subscribers.
func (h *Hub) Subscribe(ctx context.Context, ws string, after uint64, fn func(events.Event) error) error {
	st, err := h.state(ws)
	if err != nil {
		return err
	}
	h.subscribers.Add(1)
	defer h.subscribers.Add(-1)
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	defer context.AfterFunc(h.life, cancel)()

	err = h.stream(sctx, st, after, fn)
	if fe, ok := err.(*fnError); ok {
		return fe.err
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	if h.life.Err() != nil {
		return events.ErrClosed
	}
	return err
}

// stream alternates between attaching to the live stream (after replaying
// what the ring or the log holds) and draining the live queue, until the
// queue overflows, which starts the cycle again from the last seq given to fn.
func (h *Hub) stream(ctx context.Context, st *wsState, after uint64, fn func(events.Event) error) error {
	select {
	case <-st.liveCh:
	case <-ctx.Done():
		return ctx.Err()
	}
	last := after
	deliver := func(p *events.Event) error {
		if p.Seq <= last {
			return nil
		}
		if err := fn(*p); err != nil {
			return &fnError{err}
		}
		last = p.Seq
		return nil
	}
	for {
		q, backlog, err := h.attach(ctx, st, last, deliver)
		if err != nil {
			return err
		}
		err = h.drain(ctx, q, backlog, deliver)
		st.mu.Lock()
		delete(st.subs, q)
		st.mu.Unlock()
		if err != nil {
			return err
		}
		h.logger.Debug("subscriber overflowed, catching up from the log", "workspace", st.w.Name, "after", last)
	}
}

// attach registers a live queue in the same critical section that copies
// what the ring holds after last, so that nothing falls between replay and
// live. While the ring no longer reaches back to last it first replays
// pages of the log, outside the lock.
func (h *Hub) attach(ctx context.Context, st *wsState, last uint64, deliver func(*events.Event) error) (*queue, []*events.Event, error) {
	for {
		if err := ctx.Err(); err != nil {
			return nil, nil, err
		}
		st.mu.Lock()
		if !st.live {
			st.mu.Unlock()
			return nil, nil, events.ErrClosed
		}
		if st.ring.covers(last) {
			i := st.ring.after(last)
			backlog := make([]*events.Event, 0, st.ring.n-i)
			for ; i < st.ring.n; i++ {
				backlog = append(backlog, st.ring.at(i))
			}
			q := newQueue(h.queue)
			st.subs[q] = struct{}{}
			st.mu.Unlock()
			return q, backlog, nil
		}
		floor := st.ring.floor
		st.mu.Unlock()

		page, err := h.log.Read(ctx, st.w.Name, last, readPage)
		if err != nil {
			return nil, nil, fmt.Errorf("read %s after %d: %w", st.w.Name, last, err)
		}
		if len(page) == 0 {
			// The log holds nothing after last, and dropped nothing
			// either (it would have said so): the seqs up to floor hold
			// no event (a write the store failed for want of space
			// leaves such seqs behind).
			last = max(last, floor)
			continue
		}
		for i := range page {
			if err := deliver(&page[i]); err != nil {
				return nil, nil, err
			}
			last = max(last, page[i].Seq)
		}
	}
}

// drain gives fn the backlog, then everything the live queue brings. It
// returns nil when the queue overflowed, else why it stopped.
func (h *Hub) drain(ctx context.Context, q *queue, backlog []*events.Event, deliver func(*events.Event) error) error {
	for _, p := range backlog {
		if err := deliver(p); err != nil {
			return err
		}
	}
	spare := backlog
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		batch, overflowed := q.take(spare)
		for _, p := range batch {
			if err := deliver(p); err != nil {
				return err
			}
		}
		if overflowed {
			return nil
		}
		spare = batch
		if len(batch) == 0 {
			spare = nil // idle: hold no buffer while waiting
			select {
			case <-q.wake:
			case <-ctx.Done():
				return ctx.Err()
			}
		}
	}
}
