package feed

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sourcegraph/conc"
	sse "github.com/tmaxmax/go-sse"

	"github.com/filecast/filecast/events"
	"github.com/filecast/filecast/events/wire"
)

// Events answers GET /v1/workspaces/{ws}/events with a Server-Sent Events
// stream of the workspace's events.
//
// The stream starts after the position given by the Last-Event-ID header,
// else by the cursor or last_event_id query parameter (a seq or a cursor's
// text form); with none it starts at the head. Repeated path parameters
// (globs) and type parameters ("file.created" or "created", "locked", …)
// select events; without type parameters every type is sent. Errors found
// before the stream starts — a bad position or filter, an unknown workspace,
// an expired cursor — are JSON errors; after that the stream just ends and
// the client resumes from its last id.
//
// The handler owns the subscription: it calls Source.Subscribe itself and
// returns when the client goes, a write stalls for WriteTimeout, the
// subscription ends (the source may end the subscription of a client too
// slow to keep up) or the Feed closes. Events wait for the writer in a
// short queue, so that a slow client holds back only its own subscription.
// An idle stream costs no goroutine beyond the handler's own: writes run
// on a goroutine started when there is something to send.
func (f *Feed) Events(w http.ResponseWriter, r *http.Request) {
	ws := r.PathValue("ws")
	filter, err := parseFilter(r.URL.Query())
	if err != nil {
		f.fail(w, r, err)
		return
	}
	after, resume, err := parseResume(ws, r)
	if err != nil {
		f.fail(w, r, err)
		return
	}
	if f.closeCtx.Err() != nil {
		wire.WriteErrorCode(w, http.StatusServiceUnavailable, wire.CodeUnavailable, "the event feed is shutting down; reconnect later")
		return
	}
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	defer context.AfterFunc(f.closeCtx, cancel)()

	// The frames' newest seq is read before the head, so that one past the
	// head can only come from a log since reset.
	frames, seen := f.frames.peek(ws)
	head, err := f.head(ctx, ws)
	if err != nil {
		f.fail(w, r, err)
		return
	}
	if frames == nil || seen > head {
		frames = f.frames.replace(ws, frames)
	}
	if !resume {
		after = head
	} else if err := f.checkPosition(ctx, ws, after, head); err != nil {
		f.fail(w, r, err)
		return
	}

	sess, err := sse.Upgrade(w, r)
	if err != nil {
		f.fail(w, r, fmt.Errorf("upgrade to event stream: %w", err))
		return
	}
	h := w.Header()
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Accel-Buffering", "no")

	f.subscribers.Add(1)
	defer f.subscribers.Add(-1)

	s := &stream{
		f:      f,
		ws:     ws,
		sess:   sess,
		w:      w,
		rc:     http.NewResponseController(w),
		frames: frames,
		ctx:    ctx,
		cancel: cancel,
	}
	// The first message tells the client where it stands, so that a
	// reconnection before any event resumes from here rather than from a
	// later head.
	hello := &sse.Message{ID: seqID(after), Retry: retryHint}
	hello.AppendComment(fmt.Sprintf("filecast %s after %d", ws, after))
	if err := s.hello(hello); err != nil {
		return
	}

	f.beats.add(s)
	err = f.src.Subscribe(ctx, ws, after, func(ev events.Event) error {
		if !filter.Match(ev) {
			return nil
		}
		// Waiting here is how a slow client slows its own subscription
		// down; a client that stops reading is cut by the write deadline,
		// which cancels ctx.
		return s.push(ev)
	})
	f.beats.remove(s)
	s.end()
	if err != nil && ctx.Err() == nil {
		f.log.Warn("event stream ended", "workspace", ws, "err", err)
	}
}

// headGrace is how long a resume position past the head may take to
// become the head before it is refused.
const headGrace = 2 * time.Second

// checkPosition reports ErrCursorExpired when the log no longer holds the
// events after after, or never held after itself (a reset log).
func (f *Feed) checkPosition(ctx context.Context, ws string, after, head uint64) error {
	// A hub learns of its own appends a moment after they are stored, and
	// one that has just started may not have read its log yet: give the
	// head a little time to reach after before calling the log reset.
	deadline := time.Now().Add(headGrace)
	for after > head && time.Now().Before(deadline) {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(10 * time.Millisecond):
		}
		h, err := f.head(ctx, ws)
		if err != nil {
			return err
		}
		head = h
	}
	if after > head {
		return &events.Error{Kind: events.ErrCursorExpired, Value: strconv.FormatUint(after, 10),
			Why: fmt.Sprintf("it is past the head of the log (%d); the log was reset", head)}
	}
	_, err := f.src.Changes(ctx, ws, after, 1, 0)
	return err
}

// stream is the writing side of one event stream.
//
// An idle stream holds no goroutine of its own and no buffer: the handler's
// goroutine waits in Source.Subscribe, and a writer goroutine runs only
// while there is something to write. push queues an event and starts the
// writer if none runs; the Feed's heartbeat ticker does the same with a
// heartbeat. The writer takes the whole queue at once, writes it, flushes,
// and exits when the queue is empty, dropping its buffers. At most one
// writer runs at a time, so writes are never concurrent.
//
// Events are written to w directly, as the messages cached in frames, once
// the first message has gone through sess (which sends the response
// headers).
type stream struct {
	f      *Feed
	ws     string
	sess   *sse.Session
	w      http.ResponseWriter
	rc     *http.ResponseController
	frames *frames
	ctx    context.Context // the handler's; cancelled when a write fails
	cancel context.CancelFunc
	wg     conc.WaitGroup // the writer

	lastWrite atomic.Int64 // f.clock() of the last flush

	mu      sync.Mutex
	queue   *eventBuf     // waiting for the writer, at most queueLen; nil while idle
	spare   *eventBuf     // the emptied batch, reused as the next queue while busy
	beat    bool          // a heartbeat is due
	writing bool          // a writer goroutine runs
	ended   bool          // the handler is returning: start no more writers
	space   chan struct{} // closed when the writer takes the queue; nil unless push waits
}

// maxBatch bounds the events written between flushes (and per write
// deadline).
const maxBatch = 64

// eventBuf is a queue's backing array. The buffers of busy streams come
// from and go back to bufPool, so that an idle stream holds none and a
// busy one does not allocate per burst.
type eventBuf struct{ evs []events.Event }

var bufPool = sync.Pool{New: func() any { return &eventBuf{evs: make([]events.Event, 0, 16)} }}

func putBuf(b *eventBuf) {
	if b != nil {
		clear(b.evs)
		b.evs = b.evs[:0]
		bufPool.Put(b)
	}
}

func (b *eventBuf) len() int {
	if b == nil {
		return 0
	}
	return len(b.evs)
}

// push queues ev for the writer, waiting while the queue is full. It
// returns an error only when the stream ends (ctx is done).
func (s *stream) push(ev events.Event) error {
	s.mu.Lock()
	for s.queue.len() >= queueLen {
		if s.space == nil {
			s.space = make(chan struct{})
		}
		space := s.space
		s.mu.Unlock()
		select {
		case <-space:
		case <-s.ctx.Done():
			return s.ctx.Err()
		}
		s.mu.Lock()
	}
	if err := s.ctx.Err(); err != nil {
		s.mu.Unlock()
		return err
	}
	if s.queue == nil {
		s.queue = bufPool.Get().(*eventBuf)
	}
	s.queue.evs = append(s.queue.evs, ev)
	s.startLocked()
	s.mu.Unlock()
	return nil
}

// heartbeat asks the writer for a heartbeat.
func (s *stream) heartbeat() {
	s.mu.Lock()
	s.beat = true
	s.startLocked()
	s.mu.Unlock()
}

// startLocked starts the writer unless it runs or the stream is ending.
// s.mu must be held.
func (s *stream) startLocked() {
	if s.writing || s.ended {
		return
	}
	s.writing = true
	s.wg.Go(s.run)
}

// end stops starting writers and waits for the running one, which first
// writes what is queued unless ctx is done.
func (s *stream) end() {
	s.mu.Lock()
	s.ended = true
	s.mu.Unlock()
	s.wg.Wait()
}

// run writes queued events and heartbeats until the queue is empty, ctx is
// done or a write fails (which cancels ctx).
func (s *stream) run() {
	for {
		s.mu.Lock()
		batch, beat := s.queue, s.beat
		if s.ctx.Err() != nil || (batch.len() == 0 && !beat) {
			// Idle: hold nothing until the next event.
			spare := s.spare
			s.queue, s.spare, s.writing = nil, nil, false
			s.mu.Unlock()
			putBuf(batch)
			putBuf(spare)
			return
		}
		s.queue, s.spare, s.beat = s.spare, nil, false
		if s.space != nil {
			close(s.space)
			s.space = nil
		}
		s.mu.Unlock()

		var err error
		if batch.len() > 0 {
			err = s.writeEvents(batch.evs)
		} else {
			err = s.writeHeartbeat()
		}
		if err != nil {
			s.f.log.Debug("stream write failed", "workspace", s.ws, "err", err)
			s.cancel()
		}
		if batch != nil {
			clear(batch.evs)
			batch.evs = batch.evs[:0]
		}
		s.mu.Lock()
		if s.spare == nil {
			s.spare, batch = batch, nil
		}
		s.mu.Unlock()
		putBuf(batch)
	}
}

// writeEvents writes batch, flushing every maxBatch events.
func (s *stream) writeEvents(batch []events.Event) error {
	for len(batch) > 0 {
		n := min(len(batch), maxBatch)
		if err := s.deadline(); err != nil {
			return err
		}
		for i := range batch[:n] {
			msg, err := s.frames.get(&batch[i])
			if err != nil {
				return err
			}
			if _, err := s.w.Write(msg); err != nil {
				return fmt.Errorf("send event %d: %w", batch[i].Seq, err)
			}
		}
		if err := s.sess.Flush(); err != nil {
			return fmt.Errorf("flush events: %w", err)
		}
		s.lastWrite.Store(s.f.clock())
		batch = batch[n:]
	}
	return nil
}

// heartbeatFrame is the encoded heartbeat comment.
var heartbeatFrame = func() []byte {
	m := &sse.Message{}
	m.AppendComment("heartbeat")
	b, err := m.MarshalText()
	if err != nil {
		panic(err)
	}
	return b
}()

func (s *stream) writeHeartbeat() error {
	if err := s.deadline(); err != nil {
		return err
	}
	if _, err := s.w.Write(heartbeatFrame); err != nil {
		return fmt.Errorf("send heartbeat: %w", err)
	}
	if err := s.sess.Flush(); err != nil {
		return fmt.Errorf("flush heartbeat: %w", err)
	}
	s.lastWrite.Store(s.f.clock())
	return nil
}

// hello sends the first message, which also sends the response headers,
// on the handler's goroutine before any writer can run.
func (s *stream) hello(m *sse.Message) error {
	if err := s.deadline(); err != nil {
		return err
	}
	if err := s.sess.Send(m); err != nil {
		return fmt.Errorf("send message: %w", err)
	}
	if err := s.sess.Flush(); err != nil {
		return fmt.Errorf("flush message: %w", err)
	}
	s.lastWrite.Store(s.f.clock())
	return nil
}

func (s *stream) deadline() error {
	err := s.rc.SetWriteDeadline(time.Now().Add(s.f.writeTimeout))
	if err != nil && !errors.Is(err, http.ErrNotSupported) {
		return fmt.Errorf("set write deadline: %w", err)
	}
	return nil
}

// eventMessage encodes ev: id is the seq, event the type (only when it is
// one of the known types), data the JSON on a single line.
func eventMessage(ev events.Event) (*sse.Message, error) {
	data, err := ev.MarshalJSON() // not json.Marshal, which checks and copies the bytes again
	if err != nil {
		return nil, fmt.Errorf("encode event %d: %w", ev.Seq, err)
	}
	m := &sse.Message{ID: seqID(ev.Seq)}
	if ev.Type.Valid() {
		m.Type = sse.Type(string(ev.Type))
	}
	m.AppendData(string(data))
	return m, nil
}

func seqID(seq uint64) sse.EventID { return sse.ID(strconv.FormatUint(seq, 10)) }
