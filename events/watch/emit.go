package watch

import (
	"context"
	"fmt"
	"time"

	"github.com/oklog/ulid/v2"

	"github.com/filecast/filecast/events"
)

// Every change the Watcher reports goes through emit, which appends it to
// the log and then applies it to the index, so that the index never holds
// what the log does not (see the package doc). A change to distinct files
// during a burst is queued and appended in one batch by flush, when the
// Appender can (BatchAppender); anything that must see the index up to
// date first (a move, a link, a second change to a queued path) flushes.

// queuedEvent is an event waiting to be appended and applied to the index.
type queuedEvent struct {
	ev  events.Event
	rel string
	e   *entry
}

// emit appends one event and applies it to the index. e carries the new
// content for every type but deleted.
func (w *Watcher) emit(ctx context.Context, typ events.Type, rel, old string, e *entry) error {
	ev := events.Event{
		ID:        ulid.Make().String(),
		Type:      typ,
		Workspace: w.ws.Name,
		Path:      rel,
		OldPath:   old,
		Actor:     events.ActorFS,
		Time:      time.Now().UTC(),
	}
	if typ != events.FileDeleted {
		ev.Size, ev.SHA256 = e.Size, e.SHA256
	}
	if w.st.busy[rel] || old != "" && w.st.busy[old] {
		// The index must hold the queued change to this path first.
		if err := w.flush(ctx); err != nil {
			return err
		}
	}
	done, typ := w.fulfil(typ, rel, e)
	if done {
		// The hub made this change itself and reports it.
		return w.refreshLinks(ctx, rel)
	}
	ev.Type = typ
	if typ == events.FileMoved {
		w.forgetExpects(rel, old)
	}
	w.before(&ev, e)
	if w.holding() {
		w.hold(rel, old) // the log has no room: reported once it has
		return nil
	}
	if w.batch != nil && typ != events.FileMoved && len(w.st.links) == 0 && (e == nil || e.Link == "") {
		// Queued: the loop flushes when the burst is over, or now when
		// the batch is full.
		if w.st.err != nil {
			return w.st.err
		}
		w.st.queued = append(w.st.queued, queuedEvent{ev: ev, rel: rel, e: e})
		w.st.busy[rel] = true
		if len(w.st.queued) >= maxBatch {
			return w.flush(ctx)
		}
		return nil
	}
	if err := w.flush(ctx); err != nil {
		return err
	}
	if w.holding() {
		w.hold(rel, old)
		return nil
	}
	defer w.appending()()
	got, err := w.app.Append(ctx, ev)
	if refused(err) {
		w.hold(rel, old)
		return nil
	}
	if err != nil {
		return fmt.Errorf("append %s %s: %w", typ, rel, err)
	}
	w.mu.Lock()
	switch typ {
	case events.FileDeleted:
		w.drop(rel)
	case events.FileMoved:
		w.drop(old)
		fallthrough
	default:
		ne := *e
		ne.Version = got.Seq
		w.put(rel, &ne)
	}
	w.seq = max(w.seq, got.Seq)
	w.mu.Unlock()
	w.st.dirty = true
	if err := w.refreshLinks(ctx, rel); err != nil {
		return err
	}
	if old != "" {
		return w.refreshLinks(ctx, old)
	}
	return nil
}

// before fills in what an event says of the content the file had before
// (PrevSHA256), notes the content it replaces (see keep.go) and keeps its
// new content e. The index holds every change reported before ev.
func (w *Watcher) before(ev *events.Event, e *entry) {
	from := ev.Path
	if ev.Type == events.FileMoved {
		from = ev.OldPath
	}
	w.mu.RLock()
	prev := w.files[from]
	w.mu.RUnlock()
	switch {
	case ev.Type == events.FileDeleted:
		w.replaced(prev, "")
		return
	case prev != nil && prev.SHA256 != e.SHA256 && ev.Type != events.FileCreated:
		ev.PrevSHA256 = prev.SHA256
		w.replaced(prev, e.SHA256)
	case prev != nil && ev.Type == events.FileMoved:
		return // the same content, kept already
	}
	w.offer(ev.Path, e)
}

// flush appends the queued events in one batch and applies them to the
// index, in order. A change the hub reported meanwhile with a later seq
// (Applied) is not overwritten.
func (w *Watcher) flush(ctx context.Context) error {
	st := w.st
	if len(st.queued) == 0 {
		return nil
	}
	q := st.queued
	st.queued = nil
	clear(st.busy)
	defer w.appending()()
	evs := make([]events.Event, len(q))
	for i := range q {
		evs[i] = q[i].ev
	}
	got, err := w.batch.AppendBatch(ctx, evs)
	if refused(err) && len(got) <= len(q) {
		// The log had no room for the rest: hold them, and take in
		// those it stored.
		w.holdQueued(q[len(got):])
		q, err = q[:len(got)], nil
	}
	if err == nil && len(got) != len(q) {
		err = fmt.Errorf("%d events stored of %d", len(got), len(evs))
	}
	if err != nil {
		return fmt.Errorf("append %d events: %w", len(evs), err)
	}
	w.mu.Lock()
	for i, x := range q {
		seq := got[i].Seq
		if cur := w.files[x.rel]; cur == nil || cur.Version <= seq {
			if x.ev.Type == events.FileDeleted {
				w.drop(x.rel)
			} else {
				ne := *x.e
				ne.Version = seq
				w.put(x.rel, &ne)
			}
		}
		w.seq = max(w.seq, seq)
	}
	w.mu.Unlock()
	st.dirty = true
	return nil
}

// appending marks changes being appended, until the returned func is
// called once they are in the index. The log hands them to subscribers
// before it returns, so a listing asked for meanwhile waits for them
// (awaitAppend); and the keeper's first fill yields to them
// (yieldToChanges).
func (w *Watcher) appending() (inIndex func()) {
	w.lastAppend.Store(time.Now().UnixNano())
	ch := make(chan struct{})
	w.inFlight.Store(&ch)
	return func() {
		w.inFlight.CompareAndSwap(&ch, nil)
		close(ch)
	}
}

// appendWait bounds how long a listing waits for changes being appended
// to reach the index: a log that is slow to take them (a cluster electing
// a leader) does not hold listings up, whose cursor says what they
// reflect.
const appendWait = 100 * time.Millisecond

// awaitAppend waits, at most appendWait, until the changes being
// appended, if any, are in the index: an agent that lists right after
// seeing an event finds its file.
func (w *Watcher) awaitAppend() {
	p := w.inFlight.Load()
	if p == nil {
		return
	}
	t := time.NewTimer(appendWait)
	defer t.Stop()
	select {
	case <-*p:
	case <-t.C:
	}
}

// flushLater flushes from a place that cannot return an error; the loop
// returns it.
func (w *Watcher) flushLater() {
	if err := w.flush(w.st.ctx); err != nil && w.st.err == nil {
		w.st.err = err
	}
}
