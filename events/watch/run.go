package watch

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/sourcegraph/conc"

	"github.com/filecast/filecast/events/workspace"
)

// Run loads the persisted index, brings it up to date from Options.Log,
// reports what changed in the folder since (nothing on the very first
// start), closes Ready, then watches the workspace until ctx is done, when
// it saves the index and returns ctx.Err(). It returns early with an error
// when the watcher cannot start, the Log cannot be read or the Appender
// fails. Run must be called once; it owns every goroutine it starts and
// they have stopped when it returns.
func (w *Watcher) Run(ctx context.Context) error {
	if !w.started.CompareAndSwap(false, true) {
		return ErrRunning
	}
	src, err := w.openSource(ctx) // notifications, polling, or both; see choose.go
	if err != nil {
		return fmt.Errorf("start watcher: %w", err)
	}
	defer src.close()
	w.st = newState(ctx, src.kern)
	w.st.poll = src.poll
	defer w.publishCounts(0, 0)
	idx, found, lerr := loadIndex(w.path)
	if lerr != nil {
		if w.logr != nil {
			w.log.Warn("the persisted index cannot be read; rebuilding it from the event log", "path", w.path, "err", lerr)
		} else {
			w.log.Warn("the persisted index cannot be read; indexing silently, changes made while filecast was stopped are not reported", "path", w.path, "err", lerr)
		}
	}
	if found {
		w.mu.Lock()
		for rel, e := range idx.Files {
			if c, err := workspace.Clean(rel); err == nil && c == rel && e != nil {
				w.put(rel, e)
			}
		}
		w.seq = idx.Seq
		w.mu.Unlock()
		w.kmu.Lock()
		w.keep.kept = idx.Kept
		w.kmu.Unlock()
	}
	// The index is saved on a goroutine of its own, so that a slow fsync
	// never holds up notifications; the last save happens on the way out.
	var saver conc.WaitGroup
	saves := make(chan *indexFile, 1)
	w.st.saves = saves
	saver.Go(func() {
		failing := false // logged once until a save works again
		for idx := range saves {
			err := saveIndex(w.path, idx)
			if err != nil {
				w.st.saveFailed.Store(true)
				if !failing {
					w.log.Warn("cannot save the index; trying again every half second", "path", w.path, "err", err)
				}
			} else if failing {
				w.log.Info("the index is saved again", "path", w.path)
			}
			failing = err != nil
		}
	})
	defer func() {
		close(saves)
		saver.Wait()
		if w.st.saveFailed.Load() {
			w.st.dirty = true
		}
		if w.path != "" && w.st.dirty {
			if err := saveIndex(w.path, w.snapshot()); err != nil {
				w.log.Warn("cannot save the index", "path", w.path, "err", err)
			}
		}
	}()
	held := false
	if w.logr != nil {
		if held, err = w.catchUp(ctx); err != nil {
			return w.exitErr(ctx, err)
		}
	}
	first := !found && !held
	if err := w.firstSync(ctx, first); err != nil {
		return w.exitErr(ctx, err)
	}
	if err := w.flush(ctx); err != nil {
		return w.exitErr(ctx, err)
	}
	if first && w.path != "" && !w.st.root.gone {
		// Saved before any event can be appended: a process killed from
		// now on leaves an index to compare the folder with, and is not
		// taken for a first start again.
		if err := saveIndex(w.path, w.snapshot()); err != nil {
			w.log.Warn("cannot save the index", "path", w.path, "err", err)
		} else {
			w.st.dirty = false
		}
	}
	w.publishCounts(len(w.st.retries), len(w.st.unwatched))
	close(w.ready)
	if w.contents != nil {
		kctx, stopKeeper := context.WithCancel(ctx)
		var keeper conc.WaitGroup
		keeper.Go(func() { w.keeper(kctx) })
		defer keeper.Wait()
		defer stopKeeper()
	}
	return w.exitErr(ctx, w.loop(ctx))
}

func (w *Watcher) exitErr(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	return err
}

// snapshot copies the index for saving; entries are never changed in
// place, so a shallow copy is enough.
func (w *Watcher) snapshot() *indexFile {
	w.mu.RLock()
	defer w.mu.RUnlock()
	return &indexFile{Format: indexFormat, Workspace: w.ws.Name, Root: w.ws.Dir, Seq: w.seq, Saved: time.Now().UTC(), Kept: w.keptEpoch(), Files: maps.Clone(w.files)}
}

// save hands a snapshot of a changed index to the saver, unless it is
// still busy with the previous one.
func (w *Watcher) save() {
	st := w.st
	if st.saveFailed.Swap(false) || w.keptChanged() {
		st.dirty = true
	}
	if w.path == "" || !st.dirty {
		return
	}
	select {
	case st.saves <- w.snapshot():
		st.dirty = false
	default:
	}
}

// loop is Run's goroutine once the watcher is ready: it reads the
// notifications, acts on the deadlines of pending.go, saves the index and
// runs the periodic work (poll), until ctx is done or something fails.
// What a burst leaves queued for the log is appended once it is over.
func (w *Watcher) loop(ctx context.Context) error {
	st := w.st
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	var armed time.Time
	saveT := time.NewTicker(saveEvery)
	defer saveT.Stop()
	pollT := time.NewTicker(pollEvery)
	defer pollT.Stop()
	for {
		if st.nothingDue() {
			st.next = time.Time{} // what was due was settled by a notification
		}
		if !st.next.Equal(armed) {
			armed = st.next
			if armed.IsZero() {
				timer.Stop()
			} else {
				timer.Reset(time.Until(armed))
			}
		}
		var err error
		select {
		case <-ctx.Done():
			return ctx.Err()
		case b, ok := <-st.kern.batches:
			if !ok {
				return w.kernelClosed()
			}
			err = w.handleBatch(ctx, b)
		case f := <-w.inject:
			if err = w.flush(ctx); err == nil {
				err = f(ctx)
			}
		case <-timer.C:
			armed = time.Time{}
			if err = w.drain(ctx); err == nil {
				err = w.expire(ctx, time.Now())
			}
		case now := <-saveT.C:
			// Not in the middle of a burst (encoding a large index costs
			// as much as the burst), unless the last save is old.
			if !st.kern.busy() || now.Sub(st.saved) >= saveMax {
				w.retireUnused()
				w.save()
				st.saved = now
			}
		case <-pollT.C:
			err = w.poll(ctx)
		case <-st.poll.tick():
			err = w.pollRound(ctx)
		}
		if err == nil {
			err = st.err
		}
		if err == nil && len(st.queued) > 0 && !st.kern.busy() {
			// Idle: whatever a burst left queued goes out now.
			err = w.flush(ctx)
		}
		w.publishCounts(len(st.retries), len(st.unwatched))
		clear(st.captured)
		if err != nil {
			return err
		}
	}
}

// lost handles a watcher error: anything may have been missed, so rescan.
func (w *Watcher) lost(ctx context.Context, err error) error {
	if w.st.root.gone {
		return w.checkRoot(ctx) // nothing under it is watched
	}
	if overflowed(err) {
		w.log.Warn("file notifications overflowed; rescanning the workspace to report what changed", "err", err)
	} else {
		w.log.Warn("file watcher error; rescanning the workspace to report what changed", "err", err)
	}
	return w.sync(ctx, "", false)
}

// poll looks at the workspace folder itself, retries the folders whose
// watch could not be added, rescanning them, and reports the changes held
// while the log had no room once it has.
func (w *Watcher) poll(ctx context.Context) error {
	if err := w.checkRoot(ctx); err != nil || w.st.root.gone {
		return err
	}
	if err := w.recheckNow(ctx); err != nil {
		return err
	}
	if err := w.retryHeld(ctx); err != nil {
		return err
	}
	if len(w.st.unwatched) == 0 {
		w.watchRecovered() // the last ones may have gone
		return nil
	}
	var top []string
	for _, d := range slices.Sorted(maps.Keys(w.st.unwatched)) {
		if len(top) == 0 || !under(d, top[len(top)-1]) {
			top = append(top, d)
		}
	}
	for _, d := range top {
		for u := range w.st.unwatched {
			if under(u, d) {
				delete(w.st.unwatched, u) // the walk marks again what still fails
			}
		}
		if err := w.sync(ctx, d, false); err != nil {
			return err
		}
	}
	w.watchRecovered()
	return nil
}
