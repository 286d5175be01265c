package feed

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/sourcegraph/conc"
	sse "github.com/tmaxmax/go-sse"

	"github.com/filecast/filecast/events"
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
		WriteErrorCode(w, http.StatusServiceUnavailable, CodeUnavailable, "the event feed is shutting down; reconnect later")
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
		sess:   sess,
		w:      w,
		rc:     http.NewResponseController(w),
		frames: frames,
		ch:     make(chan events.Event, queueLen),
	}
	// The first message tells the client where it stands, so that a
	// reconnection before any event resumes from here rather than from a
	// later head.
	hello := &sse.Message{ID: seqID(after), Retry: retryHint}
	hello.AppendComment(fmt.Sprintf("filecast %s after %d", ws, after))
	if err := s.write(hello); err != nil {
		return
	}

	var wg conc.WaitGroup
	wg.Go(func() {
		if err := s.run(ctx); err != nil {
			f.log.Debug("stream write failed", "workspace", ws, "err", err)
			cancel()
		}
	})
	err = f.src.Subscribe(ctx, ws, after, func(ev events.Event) error {
		if !filter.Match(ev) {
			return nil
		}
		// Waiting here is how a slow client slows its own subscription
		// down; a client that stops reading is cut by the write deadline,
		// which cancels ctx.
		select {
		case s.ch <- ev:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	})
	close(s.ch)
	wg.Wait()
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

// stream is the writing side of one event stream. Only run writes after
// the first message. Events are written to w directly, as the messages
// cached in frames, once the first message has gone through sess (which
// sends the response headers).
type stream struct {
	f      *Feed
	sess   *sse.Session
	w      http.ResponseWriter
	rc     *http.ResponseController
	frames *frames
	ch     chan events.Event
}

// maxBatch bounds the events written before a flush.
const maxBatch = 64

// run writes queued events and heartbeats until the queue is closed and
// drained, ctx is done, or a write fails.
func (s *stream) run(ctx context.Context) error {
	tick := time.NewTicker(s.f.heartbeat)
	defer tick.Stop()
	beat := &sse.Message{}
	beat.AppendComment("heartbeat")
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
			if err := s.write(beat); err != nil {
				return err
			}
		case ev, ok := <-s.ch:
			if !ok {
				return nil
			}
			if err := s.writeBatch(ev); err != nil {
				return err
			}
		}
	}
}

// writeBatch writes ev and whatever else is queued, up to maxBatch, then
// flushes once.
func (s *stream) writeBatch(ev events.Event) error {
	if err := s.deadline(); err != nil {
		return err
	}
	for n := 0; ; n++ {
		msg, err := s.frames.get(&ev)
		if err != nil {
			return err
		}
		if _, err := s.w.Write(msg); err != nil {
			return fmt.Errorf("send event %d: %w", ev.Seq, err)
		}
		if n+1 == maxBatch {
			break
		}
		var ok bool
		select {
		case ev, ok = <-s.ch:
		default:
		}
		if !ok {
			break
		}
	}
	if err := s.sess.Flush(); err != nil {
		return fmt.Errorf("flush events: %w", err)
	}
	return nil
}

// write sends one message and flushes it within the write timeout.
func (s *stream) write(m *sse.Message) error {
	if err := s.deadline(); err != nil {
		return err
	}
	if err := s.sess.Send(m); err != nil {
		return fmt.Errorf("send message: %w", err)
	}
	if err := s.sess.Flush(); err != nil {
		return fmt.Errorf("flush message: %w", err)
	}
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
	data, err := json.Marshal(ev)
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
