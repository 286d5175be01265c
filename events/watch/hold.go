package watch

import (
	"context"
	"errors"
	"maps"
	"slices"
	"time"

	"github.com/filecast/filecast/events"
)

// When the log cannot take an event (its disk is full or its storage limit
// reached: the Appender fails with events.ErrInsufficientStorage), the
// Watcher keeps running and holds the change instead: it remembers the
// path and leaves the index as it was, which is what the log says. Changes
// seen while it holds are held without trying the log. A path changed many
// times is held once; beyond maxHeld paths the Watcher remembers only that
// the whole tree must be compared. Every pollEvery (backing off to
// heldRetryMax after a refusal in a row) — and only when the Appender, if
// it can tell (the hub can: Room), says the log has room — the held paths
// are compared with the index as at a start and what changed is reported:
// each path once, with its content at that time, in order. A process
// stopped meanwhile finds the same changes at its next start, since the
// index never took them in.

// heldRetryMax is the longest pause between two tries while the log
// refuses.
const heldRetryMax = 30 * time.Second

// maxHeld is how many paths are held one by one; beyond, the whole tree
// is compared. A variable for the tests.
var maxHeld = 16384

// heldState is what Run holds while the log is full.
type heldState struct {
	holding bool            // the log refused: changes are held without trying it
	paths   map[string]bool // held paths
	rescan  bool            // more than maxHeld paths were held: compare the whole tree
	pause   time.Duration   // before the next try; doubles with each refusal in a row
	retryAt time.Time
}

// roomer is an Appender that can tell whether the log has room (the hub
// is one).
type roomer interface {
	Room() error
}

// HeldChanges reports how many changed paths the Watcher holds because
// the log has no room for their events, and whether it held so many that
// it will compare the whole tree instead. Safe for concurrent use.
func (w *Watcher) HeldChanges() (paths int, rescan bool) {
	n := w.heldCount.Load()
	if n < 0 {
		return 0, true
	}
	return int(n), false
}

// refused reports whether an append failed for want of room in the log.
func refused(err error) bool { return errors.Is(err, events.ErrInsufficientStorage) }

// holding reports whether changes are being held.
func (w *Watcher) holding() bool { return w.st.held.holding }

// hold remembers changed paths whose events the log cannot take now.
func (w *Watcher) hold(paths ...string) {
	h := &w.st.held
	if !h.holding {
		h.holding = true
		if h.pause == 0 {
			h.pause = pollEvery
			w.log.Warn("the event log has no room: changes are held and reported once it has room")
		}
		h.retryAt = time.Now().Add(h.pause)
	}
	for _, p := range paths {
		if p == "" || h.rescan {
			continue
		}
		if h.paths == nil {
			h.paths = map[string]bool{}
		}
		if !h.paths[p] && len(h.paths) >= maxHeld {
			w.log.Warn("too many changes held: the whole workspace is compared with the index once the log has room", "held", len(h.paths))
			h.paths, h.rescan = nil, true
			continue
		}
		h.paths[p] = true
	}
	w.countHeld()
}

func (w *Watcher) countHeld() {
	h := &w.st.held
	switch {
	case h.rescan:
		w.heldCount.Store(-1)
	default:
		w.heldCount.Store(int64(len(h.paths)))
	}
}

// holdQueued holds the queued events the log did not take.
func (w *Watcher) holdQueued(q []queuedEvent) {
	paths := make([]string, 0, len(q))
	for _, x := range q {
		paths = append(paths, x.rel)
	}
	w.hold(paths...)
}

// retryHeld reports the held changes once the log has room; it runs every
// pollEvery on Run's goroutine.
func (w *Watcher) retryHeld(ctx context.Context) error {
	h := &w.st.held
	if !h.holding || time.Now().Before(h.retryAt) {
		return nil
	}
	if r, ok := w.app.(roomer); ok && r.Room() != nil {
		return nil // still full: wait without trying
	}
	paths, rescan := h.paths, h.rescan
	held := len(paths)
	*h = heldState{pause: h.pause}
	if rescan {
		if err := w.sync(ctx, "", false); err != nil {
			return err
		}
	} else {
		todo := slices.Sorted(maps.Keys(paths))
		for i, p := range todo {
			if h.holding {
				w.hold(todo[i:]...) // refused again: keep the rest
				break
			}
			if err := w.sync(ctx, p, false); err != nil {
				return err
			}
		}
	}
	if err := w.flush(ctx); err != nil {
		return err
	}
	w.countHeld()
	if h.holding {
		h.pause = min(2*h.pause, heldRetryMax)
		h.retryAt = time.Now().Add(h.pause)
		return nil
	}
	h.pause = 0
	w.log.Info("the event log has room again: the held changes are reported", "paths", held, "whole_tree", rescan)
	return nil
}
