package hub

import (
	"context"
	"fmt"
	"time"

	"github.com/oklog/ulid/v2"

	"github.com/filecast/filecast/events"
	"github.com/filecast/filecast/events/workspace"
)

// Append checks ev (known workspace, valid type, clean paths), fills its
// ID and Time when empty, and appends it to the log. It returns the event
// as stored, with its Seq. It does not wait for subscribers.
//
// A file event without Lock gets the lock held on its path at this moment
// (see the package doc): with a lock manager, a change appended here to a
// path someone holds exclusively is flagged Conflict, since it did not go
// through WriteFile.
func (h *Hub) Append(ctx context.Context, ev events.Event) (events.Event, error) {
	h.annotateClean(&ev)
	return h.appendEvent(ctx, ev)
}

// annotateClean is annotate for an event whose paths are not clean yet: a
// file event without Lock whose paths are valid gets them cleaned and the
// lock held on them. Invalid paths are left for prepare to refuse.
func (h *Hub) annotateClean(ev *events.Event) {
	if !ev.Type.IsFile() || ev.Lock != nil {
		return
	}
	rel, err := workspace.Clean(ev.Path)
	if err != nil {
		return
	}
	ev.Path = rel
	if old, err := workspace.Clean(ev.OldPath); err == nil {
		ev.OldPath = old
	}
	h.annotate(ev)
}

// appendEvent is Append without the lock annotation.
func (h *Hub) appendEvent(ctx context.Context, ev events.Event) (events.Event, error) {
	st, ev, err := h.prepare(ev)
	if err != nil {
		return events.Event{}, err
	}
	if h.direct == nil {
		out, err := h.log.Append(ctx, ev)
		if err != nil {
			return events.Event{}, fmt.Errorf("append event to %s: %w", ev.Workspace, err)
		}
		h.appended.add(ev.Type)
		return out, nil
	}
	out, stored, err := h.direct.AppendStored(ctx, ev)
	if err != nil {
		return events.Event{}, fmt.Errorf("append event to %s: %w", ev.Workspace, err)
	}
	h.appended.add(ev.Type)
	if stored {
		h.publishOwn(st, out)
	}
	return out, nil
}

// publishOwn publishes a copy of an event this hub stored: the caller's
// copy must not alias what subscribers get.
func (h *Hub) publishOwn(st *wsState, ev events.Event) {
	p := new(events.Event)
	*p = ev
	if p.Lock != nil {
		l := *p.Lock
		p.Lock = &l
	}
	h.publish(st, p, false)
}

// prepare checks ev and fills in its ID and Time, as appendEvent does.
func (h *Hub) prepare(ev events.Event) (*wsState, events.Event, error) {
	st, err := h.state(ev.Workspace)
	if err != nil {
		return nil, ev, err
	}
	if !ev.Type.Valid() {
		return nil, ev, &events.Error{Kind: events.ErrBadType, Value: string(ev.Type), Why: "not one of the known event types"}
	}
	ev.Path, err = workspace.Clean(ev.Path)
	if err != nil {
		return nil, ev, err
	}
	if ev.OldPath != "" {
		if ev.OldPath, err = workspace.Clean(ev.OldPath); err != nil {
			return nil, ev, err
		}
	}
	if ev.Type == events.FileMoved && ev.OldPath == "" {
		return nil, ev, &events.Error{Kind: events.ErrBadPath, Value: ev.Path, Why: "a file.moved event needs old_path"}
	}
	ev.Seq = 0
	if ev.ID == "" {
		ev.ID = ulid.Make().String()
	}
	if ev.Time.IsZero() {
		ev.Time = time.Now().UTC()
	}
	return st, ev, nil
}

// AppendBatch is Append for several events of one workspace, stored in
// the order given: when the log is a BatchLog, it publishes them all, then
// waits for their acknowledgements, which costs about one round trip for
// the whole batch. It returns the events as stored, in order. On error it
// returns those known to be stored, a prefix of evs (later ones may have
// been stored too). Safe for concurrent use, though callers that need
// their events in order call it serially.
func (h *Hub) AppendBatch(ctx context.Context, evs []events.Event) ([]events.Event, error) {
	bl, ok := h.direct.(BatchLog)
	if !ok || len(evs) < 2 {
		out := make([]events.Event, 0, len(evs))
		for _, ev := range evs {
			got, err := h.Append(ctx, ev)
			if err != nil {
				return out, err
			}
			out = append(out, got)
		}
		return out, nil
	}
	in := make([]events.Event, len(evs))
	var st *wsState
	for i, ev := range evs {
		if i > 0 && ev.Workspace != evs[0].Workspace {
			return nil, &events.Error{Kind: events.ErrUnknownWorkspace, Value: ev.Workspace, Why: "a batch holds events of one workspace"}
		}
		h.annotateClean(&ev)
		var err error
		if st, ev, err = h.prepare(ev); err != nil {
			return nil, err
		}
		in[i] = ev
	}
	out, stored, err := bl.AppendStoredBatch(ctx, in)
	if err != nil {
		err = fmt.Errorf("append events to %s: %w", evs[0].Workspace, err)
	}
	for i := range out {
		h.appended.add(out[i].Type)
		if stored[i] {
			h.publishOwn(st, out[i])
		}
	}
	return out, err
}
