package watch

import (
	"context"
	"slices"
	"time"

	"github.com/filecast/filecast/events"
)

// What a notification means: handle turns each one into a change of the
// index and an event, now or once the path has settled (see pending.go);
// expire acts on what has settled. Everything here runs on Run's
// goroutine.

// handle turns one notification — o happened at the absolute path abs —
// into index changes and events.
func (w *Watcher) handle(ctx context.Context, abs string, o op) error {
	rel, ok := w.rel(abs)
	if !ok {
		w.vcsNoticed(abs)
		return w.outside(ctx, abs, o)
	}
	if w.st.root.gone {
		return nil // from before the folder went; compared when it is back
	}
	switch {
	case o.has(opCreate):
		return w.onCreate(ctx, rel, o.has(opMoved))
	case o.has(opWrite):
		return w.onWrite(ctx, rel)
	case o.has(opClosed):
		return w.onClosed(ctx, rel)
	case o.has(opRemove):
		return w.onRemove(ctx, rel)
	case o.has(opRename):
		w.onRename(rel)
	}
	return nil
}

// known returns the index entry of rel, after appending a queued event
// that touches it. It runs on Run's goroutine, which owns the queue.
func (w *Watcher) known(rel string) *entry {
	if w.st != nil && w.st.busy[rel] {
		w.flushLater()
	}
	return w.indexed(rel)
}

// indexed returns the index entry of rel as it stands; it is safe for
// concurrent use (the scan's workers hash files beside Run's goroutine).
func (w *Watcher) indexed(rel string) *entry {
	w.mu.RLock()
	defer w.mu.RUnlock()
	return w.files[rel]
}

// onCreate handles a path that appeared (moved: by a rename): a folder is
// watched and walked (or is the other end of a folder's rename), a file
// is the other end of a rename, replaces a removed one, is saved by rename
// onto a known one, or is new. A new or replacing file is looked at once
// it is whole: at once when it arrived by a rename (or is a symlink),
// else when its writer closes it (onClosed) or, failing that, once it has
// been quiet for the settle time.
func (w *Watcher) onCreate(ctx context.Context, rel string, moved bool) error {
	st := w.st
	_, replaced := st.deletes[rel]
	delete(st.deletes, rel)
	delete(st.gone, rel)
	if len(st.rm.quick) > 0 && st.rm.created(rel, w.settle, time.Now()) {
		w.log.Debug("a file removed and created again was reported as two changes; removals wait out the settle time for a while", "path", rel, "for", replaceHold)
	}
	s := w.lstat(rel)
	switch s.kind {
	case kindNone:
		return nil // gone already (a later event says so), or not indexed
	case kindDir:
		if w.ignored(rel, true) {
			return nil
		}
		if w.known(rel) != nil {
			if err := w.emit(ctx, events.FileDeleted, rel, "", nil); err != nil {
				return err
			}
		}
		if old, ok := st.renamedFrom(s.id, true, rel); ok {
			return w.moveDir(ctx, old, rel)
		}
		return w.newDir(rel)
	}
	if w.ignored(rel, false) {
		return nil
	}
	if _, ok := st.dirs[rel]; ok {
		if err := w.deleteTree(ctx, rel); err != nil {
			return err
		}
	}
	if old, ok := st.renamedFrom(s.id, false, rel); ok {
		st.dropRename(old)
		e, err := w.hashKeep(s)
		if err != nil {
			// It moved on again already, or cannot be read now (it is
			// then read again and reported as created): the old name is
			// gone for good.
			if transient(err) {
				w.retryLater(rel, err, false)
			}
			return w.emit(ctx, events.FileDeleted, old, "", nil)
		}
		return w.emit(ctx, events.FileMoved, rel, old, e)
	}
	whole := moved || s.link != ""
	if _, ok := st.renames[rel]; ok || replaced {
		// Renamed away or removed, and replaced (an editor's
		// backup-and-write save, git checkout): once whole, compare with
		// what the index holds.
		st.dropRename(rel)
		if whole {
			return w.checkStat(ctx, rel, s, true)
		}
		w.pend(rel)
		return nil
	}
	if whole || w.known(rel) != nil && !st.kern.closes {
		// Moved in whole, or (where a creation and a rename are not told
		// apart) a rename onto a known file: a save by rename. Where they
		// are, a known file created again (its removal settled already,
		// as it came back) settles as a new one.
		return w.checkStat(ctx, rel, s, true)
	}
	w.pend(rel)
	return nil
}

// pend delays a new file until it has been quiet for the settle time, or
// where the kernel tells when its writer closes it, until then, or quiet
// for openQuiet at the latest.
func (w *Watcher) pend(rel string) { w.st.wait(w.st.creates, rel, w.openWait(), time.Now()) }

// openWait is how long a file written to must be quiet before it is read
// while its writer has not closed it: the settle time, or where the
// kernel tells when a writer closes a file, openQuiet if longer — a
// writer that still has to compute what it writes (git inflates the blob
// between creating a file and writing it) is not read half-written on a
// loaded machine, and one that keeps its file open is reported anyway.
func (w *Watcher) openWait() time.Duration {
	if w.st.kern.closes {
		return max(w.settle, openQuiet)
	}
	return w.settle
}

// again has a known file looked at again once it has been quiet for d.
func (w *Watcher) again(rel string, d time.Duration) { w.st.wait(w.st.updates, rel, d, time.Now()) }

// onWrite handles a file written to: a new one settles again. A known one
// is looked at when its writer closes it, where the kernel tells (the
// settle time is then the fallback for a writer that keeps it open);
// elsewhere it is compared with the index at once, unless it is big or
// just emptied (then once quiet).
func (w *Watcher) onWrite(ctx context.Context, rel string) error {
	if _, ok := w.st.creates[rel]; ok {
		delete(w.st.whole, rel) // written again
		w.pend(rel)
		return nil
	}
	old := w.known(rel)
	if old == nil {
		// A file whose creation was missed.
		return w.onCreate(ctx, rel, false)
	}
	if w.st.kern.closes {
		d := w.openWait()
		if old.Size >= bigFile {
			d = max(bigQuiet, d)
		}
		w.again(rel, d)
		return nil
	}
	s := w.lstat(rel)
	switch {
	case s.kind == kindFile && s.size >= bigFile:
		// Hash a big file once it is quiet, not on every write.
		w.again(rel, max(bigQuiet, w.settle))
		return nil
	case s.kind == kindFile && s.size == 0 && old.Size > 0:
		// Most likely the truncation that starts a rewrite (O_TRUNC): wait
		// for the write that follows rather than report an empty file,
		// unless the file stays empty for truncQuiet (a loaded machine can
		// deschedule a writer between its truncate and its write).
		w.again(rel, max(truncQuiet, w.settle))
		return nil
	}
	delete(w.st.updates, rel)
	return w.checkStat(ctx, rel, s, true)
}

// onClosed handles a file whose writer closed it: a new or written file
// waiting to be looked at is now whole. A new one is looked at once the
// kernel is quiet (settleQuiet), so that a temporary file renamed onto its
// real name at once (an atomic save) is folded into that save.
func (w *Watcher) onClosed(ctx context.Context, rel string) error {
	st := w.st
	if _, ok := st.creates[rel]; ok {
		if st.kern.quiet != nil {
			st.whole[rel] = true
			st.awaitQuiet()
			return nil
		}
		delete(st.creates, rel)
		return w.check(ctx, rel, true)
	}
	if _, ok := st.updates[rel]; ok {
		s := w.lstat(rel)
		if old := w.known(rel); old != nil && old.Size > 0 && s.kind == kindFile && s.size == 0 {
			// Emptied since it was closed: most likely the truncation
			// that starts the next rewrite (O_TRUNC), whose write and
			// close follow; reported after truncQuiet if it stays empty.
			w.again(rel, max(truncQuiet, w.settle))
			return nil
		}
		delete(st.updates, rel)
		return w.checkStat(ctx, rel, s, true)
	}
	return nil
}

// onRemove handles a path removed: a folder's files are deleted, a known
// file once its path has stayed gone.
func (w *Watcher) onRemove(ctx context.Context, rel string) error {
	st := w.st
	delete(st.creates, rel)
	delete(st.whole, rel)
	delete(st.updates, rel)
	st.dropRename(rel)
	if _, ok := st.dirs[rel]; ok {
		return w.deleteTree(ctx, rel)
	}
	if w.known(rel) != nil {
		// Reported once the path has stayed gone for the settle time, so
		// that a file replaced by delete and create (git checkout, some
		// editors' saves) is one file.updated, or nothing when its
		// content is the same. Where the kernel says that its queue is
		// empty, as soon as it is, unless a replacement may be under way
		// (see removal.go): the creation may then be a while coming.
		// A lock already there spares the wait for quiet (a checkout
		// removes thousands of files); it is looked for again once
		// quiet, as it may come after.
		now := time.Now()
		st.wait(st.deletes, rel, w.settle, now)
		if st.kern.quiet != nil && !now.Before(st.rm.replacing) && !w.vcsBusy(rel, now) {
			st.gone[rel] = true
			st.awaitQuiet()
		} else {
			delete(st.gone, rel)
		}
		return nil
	}
	w.fulfil(events.FileDeleted, rel, nil) // the hub's delete, already applied
	return nil
}

// settleDelete reports a removed file whose path stayed gone, or compares
// what is there now with the index when the path is back.
func (w *Watcher) settleDelete(ctx context.Context, rel string) error {
	return w.settleDeleteStat(ctx, rel, w.lstat(rel))
}

// settleDeleteStat is settleDelete with the path's lstat just taken.
func (w *Watcher) settleDeleteStat(ctx context.Context, rel string, s stat) error {
	if s.exists {
		if w.st.kern.closes && s.kind == kindFile && s.link == "" {
			// Back already, its creation's notifications on their way:
			// it settles as a new file does, once its writer closes it,
			// rather than be read half-written now.
			w.pend(rel)
			return nil
		}
		return w.checkStat(ctx, rel, s, true)
	}
	if w.known(rel) == nil {
		return nil
	}
	return w.emit(ctx, events.FileDeleted, rel, "", nil)
}

// settleDeletes reports at once the removed files under prefix that are
// still waiting, before the folder itself moves or goes.
func (w *Watcher) settleDeletes(ctx context.Context, prefix string) error {
	var due []string
	for p := range w.st.deletes {
		if under(p, prefix) {
			due = append(due, p)
		}
	}
	slices.Sort(due)
	for _, p := range due {
		delete(w.st.deletes, p)
		delete(w.st.gone, p)
		if err := w.settleDelete(ctx, p); err != nil {
			return err
		}
	}
	return nil
}

// onRename handles a path renamed away: it waits for the notification of
// its new name (see settling.renamed).
func (w *Watcher) onRename(rel string) {
	st := w.st
	delete(st.creates, rel) // a new file renamed away before it settled: its Create tells where
	delete(st.whole, rel)
	delete(st.updates, rel)
	if e := w.known(rel); e != nil {
		st.renamed(rel, fileID{e.Dev, e.Ino}, false, time.Now())
		st.awaitQuiet()
	} else if id, ok := st.dirs[rel]; ok {
		if s := w.lstat(rel); s.kind == kindDir && s.id == id {
			// The folder itself is there: a notification of its move
			// (inotify's IN_MOVE_SELF) read after the move was handled
			// and the folder watched under its new name.
			return
		}
		st.renamed(rel, id, true, time.Now())
		st.awaitQuiet()
	}
}

// renameGone reports a path renamed away whose new name never came: it
// left the workspace (or went to an ignored name).
func (w *Watcher) renameGone(ctx context.Context, p string) error {
	st := w.st
	pr := st.renames[p]
	if pr == nil {
		return nil // handled as part of a folder
	}
	st.dropRename(p)
	if pr.dir {
		return w.deleteTree(ctx, p)
	}
	if w.known(p) != nil {
		return w.emit(ctx, events.FileDeleted, p, "", nil)
	}
	return nil
}

// check compares a file with the index and reports a change: created
// when the index does not hold it, else updated when its sha256 differs.
// When mayWait and the file was written to while it was read, it looks
// again once the file is quiet.
func (w *Watcher) check(ctx context.Context, rel string, mayWait bool) error {
	return w.checkStat(ctx, rel, w.lstat(rel), mayWait)
}

// checkStat is check with the file's lstat just taken.
func (w *Watcher) checkStat(ctx context.Context, rel string, s stat, mayWait bool) error {
	old := w.known(rel)
	switch {
	case s.kind == kindDir:
		if old != nil {
			if err := w.emit(ctx, events.FileDeleted, rel, "", nil); err != nil {
				return err
			}
		}
		return w.newDir(rel)
	case s.kind == kindNone && s.exists && old != nil:
		// Now something that is not indexed, such as a link out of the workspace.
		return w.emit(ctx, events.FileDeleted, rel, "", nil)
	case s.kind == kindNone:
		return nil // removed (its Remove event reports it), or never indexed
	}
	e, err := w.hashKeep(s)
	if err != nil {
		if transient(err) {
			w.retryLater(rel, err, false)
		}
		return nil
	}
	if s2 := w.lstat(rel); mayWait && (s2.size != e.Size || !s2.mtime.Equal(e.ModTime)) {
		// Written to while it was read: look again once it is quiet
		// rather than report a half-written file.
		w.again(rel, w.settle)
		return nil
	}
	if old != nil && e.SHA256 == old.SHA256 {
		if done, _ := w.fulfil(events.FileUpdated, rel, e); done {
			return nil // the hub's change, already in the index by Applied
		}
		e.Version = old.Version
		w.mu.Lock()
		w.put(rel, e)
		w.mu.Unlock()
		return nil
	}
	typ := events.FileUpdated
	if old == nil {
		typ = events.FileCreated
	}
	return w.emit(ctx, typ, rel, "", e)
}

// newDir watches a folder that appeared and everything under it; the files
// in it are new and wait to settle like any new file.
func (w *Watcher) newDir(rel string) error {
	w.walk(rel, func(f string, _ stat) {
		if w.known(f) == nil {
			w.pend(f)
		}
	})
	return nil
}

// expire acts on every deadline that has passed: renames with no Create
// are deletions, settled new files are created, quiet big files hashed.
func (w *Watcher) expire(ctx context.Context, now time.Time) error {
	st := w.st
	due := st.expired(now)
	if st.quietDue && !st.quietAt.IsZero() {
		switch {
		case now.Before(st.quietAt):
			st.due(st.quietAt)
		case !st.kern.quiet(0):
			if !st.kern.busy() {
				// Queued in the kernel, not read yet, or the look was
				// cut short: looked at again.
				st.quietAt = now.Add(w.quiet)
				st.due(st.quietAt)
			}
			// Otherwise handled first, and the wait for quiet starts
			// again after: a read under way that finds nothing was
			// asked by the look to hand over an empty batch, so it
			// cannot end unseen.
		default:
			st.quietAt = time.Time{}
			if err := w.settleNow(ctx); err != nil {
				return err
			}
		}
	}
	for _, p := range due.renames {
		if err := w.renameGone(ctx, p); err != nil {
			return err
		}
	}
	for _, p := range due.deletes {
		if _, ok := st.deletes[p]; !ok {
			continue
		}
		delete(st.deletes, p)
		delete(st.gone, p)
		if err := w.settleDelete(ctx, p); err != nil {
			return err
		}
	}
	for _, p := range due.creates {
		if _, ok := st.creates[p]; !ok {
			continue
		}
		delete(st.creates, p)
		delete(st.whole, p)
		if err := w.check(ctx, p, true); err != nil {
			return err
		}
	}
	for _, p := range due.updates {
		pu := st.updates[p]
		if pu == nil {
			continue
		}
		delete(st.updates, p)
		if st.kern.closes && w.emptied(p, pu, now) {
			continue
		}
		if err := w.check(ctx, p, now.Before(pu.first.Add(maxSettle))); err != nil {
			return err
		}
		if np := st.updates[p]; np != nil {
			np.first = pu.first // still bounded by when it started waiting
		}
	}
	return w.retryDue(ctx, now)
}

// emptied reports whether a known file that is still open for writing
// (its writer has not closed it within the settle time) was emptied by a
// truncation less than truncQuiet ago, most likely the first step of a
// rewrite (O_TRUNC): the write that follows may be on its way (a loaded
// machine can deschedule the writer in between), so it has rel looked at
// again then rather than report an empty file.
func (w *Watcher) emptied(rel string, pu *pending, now time.Time) bool {
	old := w.known(rel)
	if old == nil || old.Size == 0 || now.Sub(pu.first) >= truncQuiet {
		return false
	}
	if s := w.lstat(rel); s.kind != kindFile || s.size != 0 {
		return false
	}
	w.st.updates[rel] = pu
	pu.deadline = pu.first.Add(truncQuiet)
	w.st.due(pu.deadline)
	return true
}
