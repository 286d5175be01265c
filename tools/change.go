package tools

import (
	"context"
	"encoding/json"
	"time"

	"github.com/filecast/filecast/events"
	"github.com/filecast/filecast/events/delta"
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

// compactEvent is the compact form of an event.
type compactEvent struct {
	Seq       uint64           `json:"seq"`
	Type      events.Type      `json:"type"`
	Workspace string           `json:"workspace,omitempty"`
	Path      string           `json:"path"`
	OldPath   string           `json:"old_path,omitempty"`
	Size      *int64           `json:"size,omitempty"`
	Actor     string           `json:"actor,omitempty"`
	Lock      *events.LockInfo `json:"lock,omitempty"`
	Conflict  bool             `json:"conflict,omitempty"`
	ExpiresAt string           `json:"expires_at,omitempty"`
	Time      string           `json:"timestamp"`
	delta.Diff
}

// MarshalJSON writes the event in the result's detail.
func (c change) MarshalJSON() ([]byte, error) {
	if c.enc.detail != DetailFull {
		out := compact(c.ev, c.enc)
		out.Diff = c.diff
		return marshal(out)
	}
	b, err := json.Marshal(c.ev)
	if err != nil || c.diff == (delta.Diff{}) {
		return b, err
	}
	d, err := marshal(c.diff)
	if err != nil {
		return nil, err
	}
	// The event's members, then the diff's.
	return append(append(b[:len(b)-1], ','), d[1:]...), nil
}

// compact returns the compact form of ev.
func compact(ev events.Event, enc encoding) compactEvent {
	out := compactEvent{
		Seq: ev.Seq, Type: ev.Type, Path: ev.Path, OldPath: ev.OldPath,
		Actor: ev.Actor, Lock: ev.Lock, Conflict: ev.Conflict, Time: formatTime(ev.Time),
	}
	if enc.workspace {
		out.Workspace = ev.Workspace
	}
	if ev.HasContent() {
		size := ev.Size
		out.Size = &size
	}
	if !ev.ExpiresAt.IsZero() {
		out.ExpiresAt = formatTime(ev.ExpiresAt)
	}
	return out
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
