package remote

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"mime"
	"net/http"
	"strconv"
	"time"

	sse "github.com/tmaxmax/go-sse"

	"github.com/filecast/filecast/events"
)

var (
	errIdle  = errors.New("remote: the event stream stayed silent too long")
	errEnded = errors.New("remote: the event stream ended")
)

// fnError carries an error of the subscriber's callback, returned as is.
type fnError struct{ err error }

func (e fnError) Error() string { return e.err.Error() }

// Subscribe implements [events.Source]. It streams the events of ws after
// after from the hub and calls fn with each, in seq order and once each:
// when the connection drops (the hub restarts, the network fails) it
// reconnects with exponential backoff and jitter between MinBackoff and
// MaxBackoff, resuming with Last-Event-ID from the last event delivered,
// until ctx is done. It returns at once — without retrying — an error
// wrapping events.ErrCursorExpired or events.ErrUnknownWorkspace when the
// hub answers so, ErrUnauthorized when the hub refuses the token, and
// ErrProtocol when the answer is not a filecast event stream. fn runs on
// the caller's goroutine.
func (c *Client) Subscribe(ctx context.Context, ws string, after uint64, fn func(events.Event) error) error {
	last := after
	delay := c.min
	for {
		progressed, err := c.stream(ctx, ws, &last, fn)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if fe, ok := errors.AsType[fnError](err); ok {
			return fe.err
		}
		if permanent(err) {
			return fmt.Errorf("subscribe to %s: %w", ws, err)
		}
		if progressed {
			delay = c.min
		}
		wait := min(delay+rand.N(delay/2+1), c.max)
		delay = min(2*delay, c.max)
		c.log.Debug("event stream lost; reconnecting", "workspace", ws, "after", last, "in", wait, "err", err)
		timer := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			timer.Stop()
			return ctx.Err()
		case <-timer.C:
		}
	}
}

// permanent reports whether reconnecting cannot help.
func permanent(err error) bool {
	if errors.Is(err, ErrProtocol) || errors.Is(err, ErrUnauthorized) {
		return true
	}
	if e, ok := errors.AsType[*Error](err); ok {
		return e.Status >= 400 && e.Status < 500 && e.Status != http.StatusRequestTimeout && e.Status != http.StatusTooManyRequests
	}
	return false
}

// stream runs one connection, delivering new events and advancing *last.
// progressed reports that the hub answered with a stream.
func (c *Client) stream(ctx context.Context, ws string, last *uint64, fn func(events.Event) error) (progressed bool, err error) {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	req, err := c.newRequest(ctx, c.endpoint(nil, "v1", "workspaces", ws, "events"))
	if err != nil {
		return false, err
	}
	req.Header.Set("Accept", "text/event-stream")
	req.Header.Set("Cache-Control", "no-cache")
	req.Header.Set("Last-Event-ID", strconv.FormatUint(*last, 10))
	res, err := c.http.Do(req)
	if err != nil {
		return false, err
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		return false, responseError(res)
	}
	if mt, _, _ := mime.ParseMediaType(res.Header.Get("Content-Type")); mt != "text/event-stream" {
		return false, fmt.Errorf("%w: content type %q", ErrProtocol, res.Header.Get("Content-Type"))
	}
	idle := time.AfterFunc(idleTimeout, func() { cancel(errIdle) })
	defer idle.Stop()
	body := &idleReader{r: res.Body, idle: idle}

	for msg, err := range sse.Read(body, &sse.ReadConfig{MaxEventSize: maxEventSize}) {
		if err != nil {
			if errors.Is(err, bufio.ErrTooLong) {
				return progressed, fmt.Errorf("%w: an event is larger than %d bytes", ErrProtocol, maxEventSize)
			}
			if cause := context.Cause(ctx); cause != nil {
				return progressed, cause
			}
			return progressed, err
		}
		progressed = true
		if msg.Data == "" {
			continue // a position marker or a retry hint
		}
		ev, err := decodeEvent(msg)
		if err != nil {
			return progressed, err
		}
		if ev.Seq <= *last {
			continue // replayed after a reconnection
		}
		if ev.Workspace == "" {
			ev.Workspace = ws
		}
		if err := fn(ev); err != nil {
			return progressed, fnError{err}
		}
		*last = ev.Seq
	}
	if cause := context.Cause(ctx); cause != nil {
		return progressed, cause
	}
	return progressed, errEnded
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
