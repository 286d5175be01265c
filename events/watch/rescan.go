package watch

import (
	"context"
	"maps"
	"slices"
	"time"

	"github.com/filecast/filecast/events"
)

// sync walks the tree under prefix and brings the index in line with it.
// When silent (the very first start) it reports nothing; otherwise it
// reports each difference: a file gone at one path whose content appeared
// at another is moved, then updates, creations and deletions follow.
func (w *Watcher) sync(ctx context.Context, prefix string, silent bool) error {
	w.st.forget(prefix) // the walk finds what waited
	w.vcsForget(prefix) // a repository made or removed may have gone unnoticed
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
		if !silent && (old == nil || old.SHA256 != e.SHA256) && w.midWrite(rel, s, e, old) {
			continue // looked at again once quiet; the index keeps what it knows
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

// midWrite reports whether a rescan found rel being written — changed
// while it was read, or a known file just emptied (most likely the
// truncation that starts a rewrite) — and if so has it looked at again
// once quiet, as a notification of the same would (see onWrite and
// checkStat): a rescan reports no half-written file either. s is the
// file's lstat before it was read, e what the read found, old the index
// entry (nil for a new file).
func (w *Watcher) midWrite(rel string, s stat, e, old *entry) bool {
	switch {
	case s.size != e.Size || !s.mtime.Equal(e.ModTime):
		if old == nil {
			w.pend(rel)
		} else {
			w.again(rel, w.settle)
		}
	case old != nil && e.Size == 0 && old.Size > 0 && time.Since(e.ModTime) < truncQuiet:
		w.again(rel, max(truncQuiet, w.settle))
	default:
		return false
	}
	return true
}
