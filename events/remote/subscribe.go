package remote

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strconv"
	"time"

	sse "github.com/tmaxmax/go-sse"

	"github.com/filecast/filecast/events"
)

var (
	errIdle  = fmt.Errorf("%w: it stayed silent too long", ErrStreamLost)
	errEnded = fmt.Errorf("%w: the hub ended it", ErrStreamLost)
)

// fnError carries an error of the subscriber's callback, returned as is.
type fnError struct{ err error }

func (e fnError) Error() string { return e.err.Error() }

// Subscribe implements [events.Source] over one event stream: it streams
// the events of ws after after from the hub (sending after as
// Last-Event-ID) and calls fn with each, in seq order and once each, until
// ctx is done, fn fails (its error returned as is) or the stream ends. It
// does not reconnect: a stream that breaks or ends returns an error
// wrapping ErrStreamLost, and a hub that cannot be reached the dial's
// error; [events.Follow] subscribes again after the last event delivered.
// The hub's refusals keep their meaning: errors.Is works with
// events.ErrCursorExpired, events.ErrUnknownWorkspace, ErrUnauthorized
// and ErrProtocol (see [Permanent]). fn runs on the caller's goroutine.
func (c *Client) Subscribe(ctx context.Context, ws string, after uint64, fn func(events.Event) error) error {
	err := c.stream(ctx, ws, after, fn)
	if fe, ok := errors.AsType[fnError](err); ok {
		return fe.err
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	return fmt.Errorf("subscribe to %s: %w", ws, err)
}

// Permanent reports whether subscribing again cannot help after err, an
// error of Subscribe: the hub refused the token, the workspace or the
// request (a 4xx answer other than 408 and 429), or it does not speak the
// protocol. For [events.FollowOptions].Final.
func Permanent(err error) bool {
	if errors.Is(err, ErrProtocol) || errors.Is(err, ErrUnauthorized) {
		return true
	}
	if e, ok := errors.AsType[*Error](err); ok {
		return e.Status >= 400 && e.Status < 500 && e.Status != http.StatusRequestTimeout && e.Status != http.StatusTooManyRequests
	}
	return false
}

// stream runs one connection, delivering the events after last.
func (c *Client) stream(ctx context.Context, ws string, last uint64, fn func(events.Event) error) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	req, err := c.newRequest(ctx, c.endpoint(nil, "v1", "workspaces", ws, "events"))
	if err != nil {
		return err
	}
	req.Header.Set("Accept", "text/event-stream")
	req.Header.Set("Cache-Control", "no-cache")
	req.Header.Set("Last-Event-ID", strconv.FormatUint(last, 10))
	res, err := c.http.Do(req)
	if err != nil {
		return err
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		return responseError(res)
	}
	if mt, _, _ := mime.ParseMediaType(res.Header.Get("Content-Type")); mt != "text/event-stream" {
		return fmt.Errorf("%w: content type %q", ErrProtocol, res.Header.Get("Content-Type"))
	}
	idle := time.AfterFunc(idleTimeout, func() { cancel(errIdle) })
	defer idle.Stop()
	body := &idleReader{r: res.Body, idle: idle}

	for msg, err := range sse.Read(body, &sse.ReadConfig{MaxEventSize: maxEventSize}) {
		if err != nil {
			if errors.Is(err, bufio.ErrTooLong) {
				return fmt.Errorf("%w: an event is larger than %d bytes", ErrProtocol, maxEventSize)
			}
			if cause := context.Cause(ctx); cause != nil {
				return cause
			}
			return fmt.Errorf("%w: %v", ErrStreamLost, err)
		}
		if msg.Data == "" {
			continue // a position marker or a retry hint
		}
		ev, err := decodeEvent(msg)
		if err != nil {
			return err
		}
		if ev.Seq <= last {
			continue // the hub replayed more than asked
		}
		if ev.Workspace == "" {
			ev.Workspace = ws
		}
		if err := fn(ev); err != nil {
			return fnError{err}
		}
		last = ev.Seq
	}
	if cause := context.Cause(ctx); cause != nil {
		return cause
	}
	return errEnded
}

// decodeEvent reads one stream message: id is the seq, data the event JSON.
func decodeEvent(msg sse.Event) (events.Event, error) {
	seq, err := strconv.ParseUint(msg.LastEventID, 10, 64)
	if err != nil || seq == 0 {
		return events.Event{}, fmt.Errorf("%w: event id %q is not a sequence number", ErrProtocol, msg.LastEventID)
	}
	var ev events.Event
	if err := json.Unmarshal([]byte(msg.Data), &ev); err != nil {
		return events.Event{}, fmt.Errorf("%w: event %d: %v", ErrProtocol, seq, err)
	}
	switch {
	case ev.Seq == 0:
		ev.Seq = seq
	case ev.Seq != seq:
		return events.Event{}, fmt.Errorf("%w: event id %d carries seq %d", ErrProtocol, seq, ev.Seq)
	}
	if msg.Type != "" && msg.Type != string(ev.Type) {
		return events.Event{}, fmt.Errorf("%w: event %d of type %q says %q", ErrProtocol, seq, msg.Type, ev.Type)
	}
	return ev, nil
}

// idleReader restarts the idle timer on every read that returns data.
type idleReader struct {
	r    io.Reader
	idle *time.Timer
}

func (r *idleReader) Read(p []byte) (int, error) {
	n, err := r.r.Read(p)
	if n > 0 {
		r.idle.Reset(idleTimeout)
	}
	return n, err
}
