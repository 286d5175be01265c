package feed

import (
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/filecast/filecast/events"
	"github.com/filecast/filecast/events/wire"
)

// Limits of the /changes query.
const (
	DefaultLimit = 100
	MaxLimit     = 1000
	MaxWait      = 30 * time.Second
)

// allTypes is what a stream without type parameters carries.
var allTypes = []string{
	string(events.FileCreated), string(events.FileUpdated), string(events.FileDeleted), string(events.FileMoved),
	string(events.LockAcquired), string(events.LockReleased), string(events.LockExpiring), string(events.LockExpired),
}

// parsePosition reads a position in the log of ws: a bare seq or a cursor
// in its text form ("docs:42,src:7").
func parsePosition(ws, s string) (uint64, error) {
	c, err := events.ParseCursor(s)
	if err != nil {
		return 0, err
	}
	return c.For(ws), nil
}

// parseResume finds where an event stream starts: the Last-Event-ID header
// first (a browser reconnecting sends it beside the original URL), then the
// cursor or last_event_id query parameter. ok is false when none is given,
// which means "from the head".
func parseResume(ws string, r *http.Request) (after uint64, ok bool, err error) {
	if h := r.Header.Values("Last-Event-ID"); len(h) > 0 && h[0] != "" {
		after, err = parsePosition(ws, h[0])
		return after, err == nil, err
	}
	q := r.URL.Query()
	for _, name := range []string{"cursor", "last_event_id"} {
		if v := q.Get(name); v != "" {
			after, err = parsePosition(ws, v)
			return after, err == nil, err
		}
	}
	return 0, false, nil
}

// parseFilter builds the stream filter from repeated path and type
// parameters; without type parameters every type passes.
func parseFilter(q url.Values) (events.Filter, error) {
	kinds := q["type"]
	if len(kinds) == 0 {
		kinds = allTypes
	}
	return events.NewFilter("", q["path"], kinds)
}

// parseLimit reads the limit parameter: DefaultLimit when absent, clamped
// to MaxLimit.
func parseLimit(s string) (int, error) {
	if s == "" {
		return DefaultLimit, nil
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 1 {
		return 0, badParam("limit", s, "want a positive integer")
	}
	return int(min(n, MaxLimit)), nil
}

// parseWait reads the wait parameter, a Go duration ("5s") or a number of
// milliseconds, clamped to MaxWait.
func parseWait(s string) (time.Duration, error) {
	if s == "" {
		return 0, nil
	}
	var d time.Duration
	if ms, err := strconv.ParseInt(s, 10, 64); err == nil {
		if ms < 0 {
			return 0, badParam("wait", s, "must not be negative")
		}
		if ms > int64(MaxWait/time.Millisecond) {
			return MaxWait, nil
		}
		d = time.Duration(ms) * time.Millisecond
	} else {
		d, err = time.ParseDuration(s)
		if err != nil {
			return 0, badParam("wait", s, `want a duration such as "5s" or a number of milliseconds`)
		}
		if d < 0 {
			return 0, badParam("wait", s, "must not be negative")
		}
	}
	return min(d, MaxWait), nil
}

func badParam(name, value, why string) error {
	if len(value) > 64 {
		value = value[:64] + "…"
	}
	return &events.Error{Kind: wire.ErrBadRequest, Value: value, Why: name + ": " + why}
}
