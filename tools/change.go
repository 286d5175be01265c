package tools

import (
	"context"
	"time"

	"github.com/filecast/filecast/events"
	"github.com/filecast/filecast/events/delta"
	"github.com/filecast/filecast/events/jsonenc"
)

// Details of list_changes: how much of each event a result carries.
const (
	// DetailCompact is what a model acts on: seq, type, path, old_path,
	// size, actor, lock and conflict when set, expires_at of lock events,
	// and the time to the millisecond; the workspace only when the result
	// spans several.
	DetailCompact = "compact"
	// DetailFull is the whole event, as the hub's SSE stream and webhooks
	// carry it.
	DetailFull = "full"
)

// TimeFormat is the form of the times tool results carry: RFC 3339 in
// UTC with exactly three fractional digits, "2026-11-27T10:00:00.123Z".
const TimeFormat = "2006-01-02T15:04:05.000Z"

// formatTime renders t in TimeFormat.
func formatTime(t time.Time) string { return t.UTC().Format(TimeFormat) }

// encoding says how a result encodes its events.
type encoding struct {
	detail    string // DetailCompact or DetailFull; "" is compact
	workspace bool   // compact events name their workspace
}

// change is one event as a list_changes result carries it, encoded by
// its encoding. It is where whatever a result adds to an event belongs.
type change struct {
	ev   events.Event
	enc  encoding
	diff delta.Diff // with "diff": true; the zero Diff adds nothing
}

// MarshalJSON writes the event in the result's detail.
func (c change) MarshalJSON() ([]byte, error) {
	return c.appendJSON(nil)
}

// appendJSON appends the event in the result's detail to b, as
// encoding/json would write it from the tags of compactEvent (in the
// tests), or from events.Event with the diff's members after its own.
// Compact events escape no HTML (see marshal); full ones are the event
// as SSE and webhooks carry it.
func (c change) appendJSON(b []byte) ([]byte, error) {
	if c.enc.detail == DetailFull {
		b, err := c.ev.AppendJSON(b)
		if err != nil || c.diff == (delta.Diff{}) {
			return b, err
		}
		return appendDiff(b[:len(b)-1], c.diff), nil
	}
	ev := c.ev
	b = append(b, `{"seq":`...)
	b = jsonenc.Uint(b, ev.Seq)
	b = append(b, `,"type":`...)
	b = jsonenc.String(b, string(ev.Type), false)
	if c.enc.workspace && ev.Workspace != "" {
		b = append(b, `,"workspace":`...)
		b = jsonenc.String(b, ev.Workspace, false)
	}
	b = append(b, `,"path":`...)
	b = jsonenc.String(b, ev.Path, false)
	if ev.OldPath != "" {
		b = append(b, `,"old_path":`...)
		b = jsonenc.String(b, ev.OldPath, false)
	}
	if ev.HasContent() {
		b = append(b, `,"size":`...)
		b = jsonenc.Int(b, ev.Size)
	}
	if ev.Actor != "" {
		b = append(b, `,"actor":`...)
		b = jsonenc.String(b, ev.Actor, false)
	}
	if l := ev.Lock; l != nil {
		b = append(b, `,"lock":{"holder":`...)
		b = jsonenc.String(b, l.Holder, false)
		b = append(b, `,"fencing_token":`...)
		b = jsonenc.Uint(b, l.FencingToken)
		if l.Mode != "" {
			b = append(b, `,"mode":`...)
			b = jsonenc.String(b, l.Mode, false)
		}
		b = append(b, '}')
	}
	if ev.Conflict {
		b = append(b, `,"conflict":true`...)
	}
	if !ev.ExpiresAt.IsZero() {
		b = append(b, `,"expires_at":"`...)
		b = appendTime(b, ev.ExpiresAt)
		b = append(b, '"')
	}
	b = append(b, `,"timestamp":"`...)
	b = appendTime(b, ev.Time)
	b = append(b, '"')
	if c.diff == (delta.Diff{}) {
		return append(b, '}'), nil
	}
	return appendDiff(b, c.diff), nil
}

// appendDiff appends the members of d that are set, and the closing
// brace, to b, an object missing its closing brace.
func appendDiff(b []byte, d delta.Diff) []byte {
	if d.Text != "" {
		b = append(b, `,"diff":`...)
		b = jsonenc.String(b, d.Text, false)
	}
	if d.Truncated {
		b = append(b, `,"diff_truncated":true`...)
	}
	if d.Unavailable != "" {
		b = append(b, `,"diff_unavailable":`...)
		b = jsonenc.String(b, d.Unavailable, false)
	}
	return append(b, '}')
}

// appendTime appends t in TimeFormat (it needs no escaping).
func appendTime(b []byte, t time.Time) []byte { return t.UTC().AppendFormat(b, TimeFormat) }

// appendJSON appends r as encoding/json would write it from its tags,
// escaping no HTML (see marshal).
func (r changesResult) appendJSON(b []byte) ([]byte, error) {
	b = append(b, `{"events":[`...)
	for i, c := range r.Events {
		if i > 0 {
			b = append(b, ',')
		}
		var err error
		if b, err = c.appendJSON(b); err != nil {
			return nil, err
		}
	}
	b = append(b, `],"cursor":`...)
	b = jsonenc.String(b, r.Cursor, false)
	if r.HasMore {
		b = append(b, `,"has_more":true`...)
	}
	if r.Overflowed {
		b = append(b, `,"overflowed":true`...)
	}
	return append(b, '}'), nil
}

// changes encodes evs for a result whose cursor is cur: compact events
// name their workspace when cur spans several. With diffs, each file
// event also carries what it changed, or why that cannot be said.
func (t *toolset) changes(ctx context.Context, evs []events.Event, detail string, diffs bool, cur events.Cursor) ([]change, error) {
	enc := encoding{detail: detail, workspace: len(cur) > 1}
	out := make([]change, len(evs))
	for i, ev := range evs {
		out[i] = change{ev: ev, enc: enc}
	}
	if !diffs || len(evs) == 0 {
		return out, nil
	}
	ds, err := delta.Events(ctx, t.src, evs, delta.Options{})
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if err != nil {
		// The events concerned say not_stored; the result is still good.
		t.log.Warn("some diffs could not be read", "err", err)
	}
	for i := range out {
		out[i].diff = ds[i]
	}
	return out, nil
}
