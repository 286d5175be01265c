package hub

import (
	"context"
	"fmt"
	"time"

	"github.com/filecast/filecast/events"
)

// Workspaces lists the workspaces, sorted by name, with their heads.
func (h *Hub) Workspaces(ctx context.Context) ([]events.WorkspaceInfo, error) {
	out := make([]events.WorkspaceInfo, 0, len(h.names))
	for _, name := range h.names {
		head, err := h.head(ctx, h.ws[name])
		if err != nil {
			return nil, err
		}
		out = append(out, events.WorkspaceInfo{Name: name, Head: head})
	}
	return out, nil
}

// Changes returns up to limit events of ws after after (limit <= 0 means
// 100, at most 1000), from memory when the ring still holds them, else
// from the log. With nothing to return and wait > 0 it blocks until an
// event arrives, wait elapses (an empty page) or ctx is done (ctx.Err());
// before Run, only the timeout ends such a wait.
// Next is the seq of the last event returned, else the head, but never
// less than after.
func (h *Hub) Changes(ctx context.Context, ws string, after uint64, limit int, wait time.Duration) (events.Page, error) {
	st, err := h.state(ws)
	if err != nil {
		return events.Page{}, err
	}
	switch {
	case limit <= 0:
		limit = DefaultLimit
	case limit > MaxLimit:
		limit = MaxLimit
	}
	var timeout <-chan time.Time
	if wait > 0 {
		t := time.NewTimer(wait)
		defer t.Stop()
		timeout = t.C
	}
	for {
		page, notify, err := h.page(ctx, st, after, limit, wait > 0)
		if err != nil || len(page.Events) > 0 || wait <= 0 {
			return page, err
		}
		select {
		case <-notify:
		case <-timeout:
			return page, nil
		case <-h.life.Done():
			return page, nil
		case <-ctx.Done():
			return events.Page{}, ctx.Err()
		}
	}
}

// page reads one page; when asked it also returns a channel closed at the
// next event, taken before reading so that no event slips between.
func (h *Hub) page(ctx context.Context, st *wsState, after uint64, limit int, wantNotify bool) (events.Page, chan struct{}, error) {
	var notify chan struct{}
	st.mu.Lock()
	if wantNotify {
		notify = st.waitCh()
	}
	live, head := st.live, st.head
	if live && st.ring.covers(after) {
		i := st.ring.after(after)
		evs := make([]events.Event, min(limit, st.ring.n-i))
		for j := range evs {
			evs[j] = *st.ring.at(i + j)
		}
		st.mu.Unlock()
		return newPage(evs, after, head), notify, nil
	}
	st.mu.Unlock()
	if !live {
		var err error
		if head, err = h.head(ctx, st); err != nil {
			return events.Page{}, nil, err
		}
	}
	// One more than asked tells whether more exist even when the
	// in-memory head lags behind the log.
	evs, err := h.log.Read(ctx, st.w.Name, after, limit+1)
	if err != nil {
		return events.Page{}, nil, fmt.Errorf("read %s after %d: %w", st.w.Name, after, err)
	}
	more := len(evs) > limit
	if more {
		evs = evs[:limit]
	}
	if evs == nil {
		evs = []events.Event{}
	}
	p := newPage(evs, after, head)
	p.HasMore = p.HasMore || more
	return p, notify, nil
}

func newPage(evs []events.Event, after, head uint64) events.Page {
	p := events.Page{Events: evs, Next: max(head, after)}
	if n := len(evs); n > 0 {
		p.Next = evs[n-1].Seq
		p.HasMore = p.Next < head
	}
	return p
}
