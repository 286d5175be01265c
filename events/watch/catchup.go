package watch

import (
	"context"
	"errors"
	"fmt"

	"github.com/filecast/filecast/events"
	"github.com/filecast/filecast/events/workspace"
)

// Log is the durable event log that the index is a cache of (satisfied by
// *journal.Journal). The Watcher reads it only while it starts, from Run's
// goroutine.
//
// A Log that also has a method First(ctx, ws string) (uint64, error),
// returning the seq of the oldest event it still holds (0 if none), lets
// the Watcher take in what the log still holds when retention dropped
// events the index never saw; *journal.Journal has it.
type Log interface {
	// Read returns up to limit events of ws with seq greater than after, in
	// seq order; an error matching events.ErrCursorExpired when retention
	// dropped some of them.
	Read(ctx context.Context, ws string, after uint64, limit int) ([]events.Event, error)
}

// firster is the optional part of a Log; see Log.
type firster interface {
	First(ctx context.Context, ws string) (uint64, error)
}

const (
	// logPage is how many events one Read asks for while catching up.
	logPage = 1000
	// refold is how many events before the index's seq are read again:
	// the hub appends its own changes before the Watcher hears of them
	// (Applied), so an index saved just then may claim a seq beyond an
	// event it does not reflect yet.
	refold = 100
	// expiredRetries bounds the restarts of a catch-up that retention
	// keeps overtaking.
	expiredRetries = 3
)

// catchUp folds into the index every file event of the workspace that the
// log holds after the index's seq (less refold), so that the index
// describes the workspace as the log does: what the diff against the
// folder finds next is exactly what the log does not have yet. It reports
// whether the log holds any file event of the workspace, or dropped events
// the index never saw: either way the start is not a first start. It runs
// on Run's goroutine before the watches are in place; the caller holds no
// lock.
//
// When retention dropped events after the index's seq, the index cannot
// be brought up to date event by event. The events the log still holds are
// then folded on top of the stale index, which is taken as the state
// before them: a change among the dropped events shows up in the diff and
// is reported again, and nothing is lost. Without Log.First the stale
// index is used as it is.
func (w *Watcher) catchUp(ctx context.Context) (held bool, err error) {
	w.mu.RLock()
	base := w.seq
	w.mu.RUnlock()
	after := base - min(base, refold)
	folded := 0
	for retries := 0; ; {
		evs, err := w.logr.Read(ctx, w.ws.Name, after, logPage)
		if errors.Is(err, events.ErrCursorExpired) {
			next, ok := w.firstHeld(ctx, after)
			if retries++; !ok || retries > expiredRetries {
				return true, nil
			}
			if next > base {
				w.log.Warn("the event log no longer holds every event after the saved index; folding in what it holds, changes among the dropped events are reported again",
					"index_seq", base, "first_held", next+1)
			}
			after, held = next, true
			continue
		}
		if err != nil {
			return held, fmt.Errorf("read event log: %w", err)
		}
		if len(evs) == 0 || evs[len(evs)-1].Seq <= after {
			if folded > 0 {
				w.st.dirty = true
				w.log.Info("index brought up to date from the event log", "events", folded, "seq", after)
			}
			return held, nil
		}
		w.mu.Lock()
		for _, ev := range evs {
			if ev.Seq <= after {
				continue
			}
			if w.fold(ev) {
				held = true
				folded++
			}
			w.seq = max(w.seq, ev.Seq)
		}
		w.mu.Unlock()
		after = evs[len(evs)-1].Seq
	}
}

// firstHeld returns the cursor to read on from after retention overtook
// after: the seq before the oldest event the log holds. ok is false when
// the log cannot tell, or holds nothing more.
func (w *Watcher) firstHeld(ctx context.Context, after uint64) (uint64, bool) {
	f, ok := w.logr.(firster)
	if !ok {
		w.log.Warn("the event log no longer holds every event after the saved index and cannot tell which it holds; comparing the folder with the saved index")
		return 0, false
	}
	first, err := f.First(ctx, w.ws.Name)
	if err != nil || first == 0 || first-1 <= after {
		w.log.Warn("the event log no longer holds the events after the saved index; comparing the folder with the saved index", "err", err)
		return 0, false
	}
	return first - 1, true
}

// fold applies one event of the log to the index and reports whether it
// was a file event of this workspace. Entries it makes have no mtime nor
// inode, so the diff that follows hashes their files. The caller holds
// w.mu.
func (w *Watcher) fold(ev events.Event) bool {
	if !ev.Type.IsFile() || ev.Workspace != w.ws.Name {
		return false
	}
	rel, err := workspace.Clean(ev.Path)
	if err != nil || rel == "" {
		return false
	}
	switch ev.Type {
	case events.FileDeleted:
		w.drop(rel)
		return true
	case events.FileMoved:
		if old, err := workspace.Clean(ev.OldPath); err == nil && old != "" {
			w.drop(old)
		}
	}
	w.put(rel, &entry{Size: ev.Size, SHA256: ev.SHA256, Version: ev.Seq})
	return true
}
