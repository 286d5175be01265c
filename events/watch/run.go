package watch

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/fsnotify/fsnotify"
	"github.com/oklog/ulid/v2"
	"github.com/sourcegraph/conc"

	"github.com/filecast/filecast/events"
	"github.com/filecast/filecast/events/workspace"
)

// state is everything Run's goroutine owns besides the index.
type state struct {
	fsw        *fsnotify.Watcher
	dirs       map[string]fileID          // watched folders ("" is the root)
	unwatched  map[string]bool            // folders whose watch could not be added
	creates    map[string]*pending        // new files waiting to settle
	updates    map[string]*pending        // known files to look at again once quiet (big, truncated, or written while read)
	deletes    map[string]*pending        // known files removed, reported once the path has stayed gone for the settle time
	renames    map[string]*pendingRename  // renamed-away paths waiting for their Create
	byID       map[fileID]string          // renames by inode
	links      map[string]map[string]bool // link target → links to it
	next       time.Time                  // no deadline is before it; zero when nothing is pending
	dirty      bool                       // the index changed since it was saved
	saves      chan<- *indexFile          // to the saver goroutine
	saveFailed atomic.Bool                // set by the saver
	saved      time.Time                  // when save last ran
	retries    map[string]*retry          // paths that could not be read, to read again (see retryLater)

	shortWarned  bool // the lack of descriptors was logged and has not ended
	watchWarned  bool // a folder that could not be watched was logged, and some still cannot be
	pubRetrying  int  // what publishCounts last added to Counters
	pubUnwatched int

	// Events handed to Appender.AppendBatch at the next flush, and the
	// paths they touch: the index learns of them (and their seqs) then.
	ctx    context.Context
	queued []queuedEvent
	busy   map[string]bool
	err    error // a flush that failed outside emit; Run returns it

	root  rootState // the workspace folder itself; see vanish.go
	held  heldState // changes the log had no room for; see hold.go
	sweep bool      // the first walk removes leftover temporary files (Options.Leftover)
}

// queuedEvent is an event waiting to be appended and applied to the index.
type queuedEvent struct {
	ev  events.Event
	rel string
	e   *entry
}

// pending is a path waiting to be quiet; first bounds the wait, so that a
// file written without pause is still reported.
type pending struct{ first, deadline time.Time }

// wait (re)sets the deadline of a pending path to now+d, at most
// maxSettle (or d, if longer) after it started waiting.
func (w *Watcher) wait(m map[string]*pending, rel string, d time.Duration) {
	now := time.Now()
	p := m[rel]
	if p == nil {
		p = &pending{first: now}
		m[rel] = p
	}
	p.deadline = now.Add(d)
	if limit := p.first.Add(max(maxSettle, d)); p.deadline.After(limit) {
		p.deadline = limit
	}
	w.due(p.deadline)
}

type pendingRename struct {
	id       fileID
	dir      bool
	deadline time.Time
}

func under(rel, prefix string) bool {
	return prefix == "" || rel == prefix || len(rel) > len(prefix) && rel[len(prefix)] == '/' && rel[:len(prefix)] == prefix
}

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
	fsw, err := fsnotify.NewBufferedWatcher(eventBuffer)
	if err != nil {
		return fmt.Errorf("start watcher: %w", err)
	}
	defer fsw.Close()
	w.st = &state{
		fsw:       fsw,
		dirs:      map[string]fileID{},
		unwatched: map[string]bool{},
		creates:   map[string]*pending{},
		updates:   map[string]*pending{},
		deletes:   map[string]*pending{},
		renames:   map[string]*pendingRename{},
		byID:      map[fileID]string{},
		links:     map[string]map[string]bool{},
		ctx:       ctx,
		busy:      map[string]bool{},
		retries:   map[string]*retry{},
	}
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
	return &indexFile{Format: indexFormat, Workspace: w.ws.Name, Root: w.ws.Dir, Seq: w.seq, Saved: time.Now().UTC(), Files: maps.Clone(w.files)}
}

// save hands a snapshot of a changed index to the saver, unless it is
// still busy with the previous one.
func (w *Watcher) save() {
	st := w.st
	if st.saveFailed.Swap(false) {
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
		case ev, ok := <-st.fsw.Events:
			if !ok {
				return fmt.Errorf("watch %s: %w", w.ws.Name, fsnotify.ErrClosed)
			}
			err = w.handle(ctx, ev)
		case e := <-st.fsw.Errors:
			err = w.lost(ctx, e)
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
			if len(st.fsw.Events) == 0 || now.Sub(st.saved) >= saveMax {
				w.save()
				st.saved = now
			}
		case <-pollT.C:
			err = w.poll(ctx)
		}
		if err == nil {
			err = st.err
		}
		if err == nil && len(st.queued) > 0 && len(st.fsw.Events) == 0 {
			// Idle: whatever a burst left queued goes out now.
			err = w.flush(ctx)
		}
		w.publishCounts(len(st.retries), len(st.unwatched))
		if err != nil {
			return err
		}
	}
}

// drain handles the notifications already queued, so that deadlines are
// judged against everything that has happened.
func (w *Watcher) drain(ctx context.Context) error {
	for range len(w.st.fsw.Events) + 1 {
		select {
		case ev := <-w.st.fsw.Events:
			if err := w.handle(ctx, ev); err != nil {
				return err
			}
		case e := <-w.st.fsw.Errors:
			if err := w.lost(ctx, e); err != nil {
				return err
			}
		default:
			return nil
		}
	}
	return nil
}

// lost handles a watcher error: anything may have been missed, so rescan.
func (w *Watcher) lost(ctx context.Context, err error) error {
	if w.st.root.gone {
		return w.checkRoot(ctx) // nothing under it is watched
	}
	if errors.Is(err, fsnotify.ErrEventOverflow) {
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

// addWatch watches one folder. A folder that cannot be watched (the
// inotify watch limit, mostly) is rescanned periodically until a watch can
// be added; see watchFailed.
func (w *Watcher) addWatch(rel string, id fileID) {
	st := w.st
	if old, ok := st.dirs[rel]; ok && old == id {
		return
	}
	add := st.fsw.Add
	if w.addHook != nil {
		add = func(name string) error { return w.addHook(name, st.fsw.Add) }
	}
	err := add(w.ws.Abs(rel))
	switch {
	case err == nil:
		st.dirs[rel] = id
		delete(st.unwatched, rel)
	case errors.Is(err, syscall.ENOENT), errors.Is(err, syscall.ENOTDIR):
	default:
		w.watchFailed(rel, err)
	}
}

// unwatch forgets every folder under prefix.
func (w *Watcher) unwatch(prefix string) {
	st := w.st
	for d := range st.dirs {
		if under(d, prefix) {
			_ = st.fsw.Remove(w.ws.Abs(d)) // fails when the kernel already dropped it
			delete(st.dirs, d)
		}
	}
	for d := range st.unwatched {
		if under(d, prefix) {
			delete(st.unwatched, d)
		}
	}
}

func (w *Watcher) due(t time.Time) {
	if w.st.next.IsZero() || t.Before(w.st.next) {
		w.st.next = t
	}
}

// handle turns one notification into index changes and events.
func (w *Watcher) handle(ctx context.Context, ev fsnotify.Event) error {
	rel, ok := w.rel(ev.Name)
	if !ok {
		return w.outside(ctx, ev)
	}
	if w.st.root.gone {
		return nil // from before the folder went; compared when it is back
	}
	switch {
	case ev.Has(fsnotify.Create):
		return w.onCreate(ctx, rel)
	case ev.Has(fsnotify.Write):
		return w.onWrite(ctx, rel)
	case ev.Has(fsnotify.Remove):
		return w.onRemove(ctx, rel)
	case ev.Has(fsnotify.Rename):
		w.onRename(rel)
	}
	return nil
}

func (w *Watcher) known(rel string) *entry {
	if w.st != nil && w.st.busy[rel] {
		w.flushLater()
	}
	w.mu.RLock()
	defer w.mu.RUnlock()
	return w.files[rel]
}

func (w *Watcher) onCreate(ctx context.Context, rel string) error {
	st := w.st
	_, replaced := st.deletes[rel]
	delete(st.deletes, rel)
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
		if old, ok := st.byID[s.id]; ok && st.renames[old] != nil && st.renames[old].dir && old != rel {
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
	if old, ok := st.byID[s.id]; ok && st.renames[old] != nil && !st.renames[old].dir && old != rel {
		w.dropRename(old)
		e, err := w.hash(s)
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
	if _, ok := st.renames[rel]; ok || replaced {
		// Renamed away or removed, and replaced (an editor's
		// backup-and-write save, git checkout): settle, then compare with
		// what the index holds.
		w.dropRename(rel)
		w.pend(rel)
		return nil
	}
	if w.known(rel) != nil {
		// A rename onto a known file: a save by rename.
		return w.check(ctx, rel, true)
	}
	w.pend(rel)
	return nil
}

// pend delays a new file until it has been quiet for the settle time.
// truncQuiet is how long a known file emptied by a truncation may stay
// empty before the empty content is reported.
const truncQuiet = 250 * time.Millisecond

func (w *Watcher) pend(rel string) { w.wait(w.st.creates, rel, w.settle) }

func (w *Watcher) onWrite(ctx context.Context, rel string) error {
	if _, ok := w.st.creates[rel]; ok {
		w.pend(rel)
		return nil
	}
	old := w.known(rel)
	if old == nil {
		// A file whose creation was missed.
		return w.onCreate(ctx, rel)
	}
	s := w.lstat(rel)
	switch {
	case s.kind == kindFile && s.size >= bigFile:
		// Hash a big file once it is quiet, not on every write.
		w.wait(w.st.updates, rel, max(bigQuiet, w.settle))
		return nil
	case s.kind == kindFile && s.size == 0 && old.Size > 0:
		// Most likely the truncation that starts a rewrite (O_TRUNC): wait
		// for the write that follows rather than report an empty file,
		// unless the file stays empty for truncQuiet (a loaded machine can
		// deschedule a writer between its truncate and its write).
		w.wait(w.st.updates, rel, max(truncQuiet, w.settle))
		return nil
	}
	delete(w.st.updates, rel)
	return w.checkStat(ctx, rel, s, true)
}

func (w *Watcher) onRemove(ctx context.Context, rel string) error {
	st := w.st
	delete(st.creates, rel)
	delete(st.updates, rel)
	w.dropRename(rel)
	if _, ok := st.dirs[rel]; ok {
		return w.deleteTree(ctx, rel)
	}
	if w.known(rel) != nil {
		// Reported once the path has stayed gone for the settle time, so
		// that a file replaced by delete and create (git checkout, some
		// editors' saves) is one file.updated, or nothing when its content
		// is the same.
		w.wait(st.deletes, rel, w.settle)
		return nil
	}
	w.fulfil(events.FileDeleted, rel, nil) // the hub's delete, already applied
	return nil
}

// settleDelete reports a removed file whose path stayed gone, or compares
// what is there now with the index when the path is back.
func (w *Watcher) settleDelete(ctx context.Context, rel string) error {
	if s := w.lstat(rel); s.exists {
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
		if err := w.settleDelete(ctx, p); err != nil {
			return err
		}
	}
	return nil
}

func (w *Watcher) onRename(rel string) {
	st := w.st
	delete(st.creates, rel) // a new file renamed away before it settled: its Create tells where
	delete(st.updates, rel)
	if _, ok := st.renames[rel]; ok {
		return
	}
	pr := &pendingRename{deadline: time.Now().Add(pairWindow)}
	if e := w.known(rel); e != nil {
		pr.id = fileID{e.Dev, e.Ino}
	} else if id, ok := st.dirs[rel]; ok {
		pr.id, pr.dir = id, true
	} else {
		return
	}
	st.renames[rel] = pr
	if pr.id != (fileID{}) {
		st.byID[pr.id] = rel
	}
	w.due(pr.deadline)
}

func (w *Watcher) dropRename(rel string) {
	if pr, ok := w.st.renames[rel]; ok {
		delete(w.st.renames, rel)
		if w.st.byID[pr.id] == rel {
			delete(w.st.byID, pr.id)
		}
	}
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
	e, err := w.hash(s)
	if err != nil {
		if transient(err) {
			w.retryLater(rel, err, false)
		}
		return nil
	}
	if s2 := w.lstat(rel); mayWait && (s2.size != e.Size || !s2.mtime.Equal(e.ModTime)) {
		// Written to while it was read: look again once it is quiet
		// rather than report a half-written file.
		w.wait(w.st.updates, rel, w.settle)
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

// moveDir reports a folder renamed inside the workspace: one file.moved
// per file, then whatever changed inside it meanwhile.
func (w *Watcher) moveDir(ctx context.Context, old, rel string) error {
	st := w.st
	if err := w.settleDeletes(ctx, old); err != nil {
		return err
	}
	w.dropRename(old)
	w.unwatch(old)
	for p := range st.creates {
		if under(p, old) {
			delete(st.creates, p) // the rescan of the new folder reports them
		}
	}
	for p := range st.updates {
		if under(p, old) {
			delete(st.updates, p)
		}
	}
	for _, p := range w.paths(old) {
		e := w.known(p)
		if err := w.emit(ctx, events.FileMoved, rel+p[len(old):], p, e); err != nil {
			return err
		}
	}
	return w.sync(ctx, rel, false)
}

// deleteTree reports every file under a folder that is gone.
func (w *Watcher) deleteTree(ctx context.Context, rel string) error {
	st := w.st
	w.unwatch(rel)
	for p := range st.creates {
		if under(p, rel) {
			delete(st.creates, p)
		}
	}
	for p := range st.updates {
		if under(p, rel) {
			delete(st.updates, p)
		}
	}
	for p := range st.deletes {
		if under(p, rel) {
			delete(st.deletes, p) // reported below
		}
	}
	for _, p := range w.paths(rel) {
		w.dropRename(p)
		if err := w.emit(ctx, events.FileDeleted, p, "", nil); err != nil {
			return err
		}
	}
	return nil
}

// paths lists the indexed files under prefix, sorted.
func (w *Watcher) paths(prefix string) []string {
	if w.st != nil && len(w.st.queued) > 0 {
		w.flushLater()
	}
	w.mu.RLock()
	defer w.mu.RUnlock()
	var out []string
	for p := range w.files {
		if under(p, prefix) {
			out = append(out, p)
		}
	}
	slices.Sort(out)
	return out
}

// expire acts on every deadline that has passed: renames with no Create
// are deletions, settled new files are created, quiet big files hashed.
func (w *Watcher) expire(ctx context.Context, now time.Time) error {
	st := w.st
	st.next = time.Time{}
	var renames, deletes, creates, updates []string
	for p, pr := range st.renames {
		if now.Before(pr.deadline) {
			w.due(pr.deadline)
		} else {
			renames = append(renames, p)
		}
	}
	for p, pd := range st.deletes {
		if now.Before(pd.deadline) {
			w.due(pd.deadline)
		} else {
			deletes = append(deletes, p)
		}
	}
	for p, pc := range st.creates {
		if now.Before(pc.deadline) {
			w.due(pc.deadline)
		} else {
			creates = append(creates, p)
		}
	}
	for p, pu := range st.updates {
		if now.Before(pu.deadline) {
			w.due(pu.deadline)
		} else {
			updates = append(updates, p)
		}
	}
	slices.Sort(renames)
	for _, p := range renames {
		pr := st.renames[p]
		if pr == nil {
			continue // handled as part of a folder
		}
		w.dropRename(p)
		var err error
		if pr.dir {
			err = w.deleteTree(ctx, p)
		} else if w.known(p) != nil {
			err = w.emit(ctx, events.FileDeleted, p, "", nil)
		}
		if err != nil {
			return err
		}
	}
	slices.Sort(deletes)
	for _, p := range deletes {
		if _, ok := st.deletes[p]; !ok {
			continue
		}
		delete(st.deletes, p)
		if err := w.settleDelete(ctx, p); err != nil {
			return err
		}
	}
	slices.Sort(creates)
	for _, p := range creates {
		if _, ok := st.creates[p]; !ok {
			continue
		}
		delete(st.creates, p)
		if err := w.check(ctx, p, true); err != nil {
			return err
		}
	}
	slices.Sort(updates)
	for _, p := range updates {
		pu := st.updates[p]
		if pu == nil {
			continue
		}
		delete(st.updates, p)
		if err := w.check(ctx, p, now.Before(pu.first.Add(maxSettle))); err != nil {
			return err
		}
		if np := st.updates[p]; np != nil {
			np.first = pu.first // still bounded by when it started waiting
		}
	}
	return w.retryDue(ctx, now)
}

// sync walks the tree under prefix and brings the index in line with it.
// When silent (the very first start) it reports nothing; otherwise it
// reports each difference: a file gone at one path whose content appeared
// at another is moved, then updates, creations and deletions follow.
func (w *Watcher) sync(ctx context.Context, prefix string, silent bool) error {
	st := w.st
	for p := range st.creates {
		if under(p, prefix) {
			delete(st.creates, p)
		}
	}
	for p := range st.updates {
		if under(p, prefix) {
			delete(st.updates, p)
		}
	}
	for p := range st.deletes {
		if under(p, prefix) {
			delete(st.deletes, p) // the walk finds them gone
		}
	}
	for p := range st.renames {
		if under(p, prefix) {
			w.dropRename(p)
		}
	}
	found, sums, unread, err := w.scan(ctx, prefix)
	if err != nil {
		return err
	}
	for _, d := range slices.Sorted(maps.Keys(unread)) {
		w.retryLater(d, unread[d], silent)
	}

	now := make(map[string]*entry, len(found))
	var created, updated, deleted []string
	for rel, s := range found {
		old := w.known(rel)
		if s.sameAs(old) {
			continue
		}
		e, err := sums.get(w, rel, s)
		if err != nil {
			if transient(err) {
				w.retryLater(rel, err, silent)
				continue // keep what the index knows until it can be read
			}
			delete(found, rel)
			continue
		}
		switch {
		case old == nil:
			created = append(created, rel)
		case old.SHA256 != e.SHA256:
			updated = append(updated, rel)
		default:
			e.Version = old.Version
		}
		now[rel] = e
	}
	for _, p := range w.paths(prefix) {
		if _, ok := found[p]; !ok && !underAny(p, unread) {
			// (A folder that could not be listed is read again later.)
			deleted = append(deleted, p)
		}
	}
	if silent {
		// What changed after Options.Since is reported below.
		if created, updated = w.indexSilently(now, sums, created, updated, deleted); len(created)+len(updated) == 0 {
			return nil
		}
		deleted = nil
	}
	// Entries whose content did not change only get fresh stat data.
	w.mu.Lock()
	for p, e := range now {
		if old := w.files[p]; old != nil && old.SHA256 == e.SHA256 {
			w.put(p, e)
			w.st.dirty = true
		}
	}
	w.mu.Unlock()

	created, updated, later := w.holdFresh(sums, created, updated, deleted)
	slices.Sort(created)
	slices.Sort(updated)
	slices.Sort(deleted)
	goneByHash := map[string][]string{}
	for _, p := range deleted {
		if e := w.known(p); e != nil {
			goneByHash[e.SHA256] = append(goneByHash[e.SHA256], p)
		}
	}
	moved := map[string]bool{}
	for _, p := range created {
		e := now[p]
		if olds := goneByHash[e.SHA256]; len(olds) > 0 {
			goneByHash[e.SHA256] = olds[1:]
			moved[p], moved[olds[0]] = true, true
			if err := w.emit(ctx, events.FileMoved, p, olds[0], e); err != nil {
				return err
			}
		}
	}
	for _, p := range updated {
		if err := w.emit(ctx, events.FileUpdated, p, "", now[p]); err != nil {
			return err
		}
	}
	for _, p := range created {
		if !moved[p] {
			if err := w.emit(ctx, events.FileCreated, p, "", now[p]); err != nil {
				return err
			}
		}
	}
	for _, p := range deleted {
		if !moved[p] {
			if err := w.emit(ctx, events.FileDeleted, p, "", nil); err != nil {
				return err
			}
		}
	}
	return w.reportLater(ctx, now, later)
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

// refreshLinks re-reads the symlinks whose target is rel: their content is
// the target's.
func (w *Watcher) refreshLinks(ctx context.Context, rel string) error {
	links := w.st.links[rel]
	if len(links) == 0 {
		return nil
	}
	for _, l := range slices.Sorted(maps.Keys(links)) {
		if w.known(l) == nil {
			continue
		}
		if err := w.check(ctx, l, true); err != nil {
			return err
		}
	}
	return nil
}

// put and drop change the index; the caller holds w.mu.
func (w *Watcher) put(rel string, e *entry) {
	old := w.files[rel]
	if old != nil && old.Link != "" && old.Link != e.Link {
		w.unlink(rel, old.Link)
	}
	if old != nil && old.SHA256 == e.SHA256 && old.Version > e.Version {
		// The same content was given a newer version meanwhile (Applied).
		ne := *e
		ne.Version = old.Version
		e = &ne
	}
	w.files[rel] = e
	if e.Link != "" {
		m := w.st.links[e.Link]
		if m == nil {
			m = map[string]bool{}
			w.st.links[e.Link] = m
		}
		m[rel] = true
	}
}

func (w *Watcher) drop(rel string) {
	if old := w.files[rel]; old != nil && old.Link != "" {
		w.unlink(rel, old.Link)
	}
	delete(w.files, rel)
}

func (w *Watcher) unlink(rel, target string) {
	if m := w.st.links[target]; m != nil {
		delete(m, rel)
		if len(m) == 0 {
			delete(w.st.links, target)
		}
	}
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

// flushLater flushes from a place that cannot return an error; the loop
// returns it.
func (w *Watcher) flushLater() {
	if err := w.flush(w.st.ctx); err != nil && w.st.err == nil {
		w.st.err = err
	}
}
