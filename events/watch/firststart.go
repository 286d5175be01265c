package watch

import (
	"context"
	"slices"
	"strings"

	"github.com/filecast/filecast/events"
)

// indexSilently takes what the very first start found into the index
// without an event (now, hashed by the scan that gave sums; created and
// updated are the files the index did not hold, or held with other
// content: the hub's own writes meanwhile), and drops the deleted paths.
// It keeps out, and returns for the caller to report, the created and
// updated files whose ctime is at or after Options.Since: those changed
// after filecast started, while the first index was being built (after an
// agent's first call, perhaps). A file changed after it was hashed is
// reported by its notification instead: its folder was watched before it
// was listed. When it returns any file, the index without them has been
// saved first, so that a process killed once their events are in the log
// is not taken at its next start for one whose every file is new. It runs
// on Run's goroutine.
func (w *Watcher) indexSilently(now map[string]*entry, sums hashed, created, updated, deleted []string) (freshCreated, freshUpdated []string) {
	fresh := func(p string) bool {
		c := sums[p].changed // unknown (zero) for a file hashed after the scan
		return !w.since.IsZero() && !c.IsZero() && !c.Before(w.since)
	}
	keep := map[string]bool{}
	for _, p := range created {
		if fresh(p) {
			freshCreated = append(freshCreated, p)
			keep[p] = true
		}
	}
	for _, p := range updated {
		if fresh(p) {
			freshUpdated = append(freshUpdated, p)
			keep[p] = true
		}
	}
	w.mu.Lock()
	for _, p := range deleted {
		w.drop(p)
	}
	for p, e := range now {
		if !keep[p] {
			w.put(p, e)
		}
	}
	w.mu.Unlock()
	w.st.dirty = true
	if len(keep) == 0 {
		return nil, nil
	}
	w.log.Info("files changed since filecast started are reported", "files", len(keep))
	if w.path != "" {
		if err := saveIndex(w.path, w.snapshot()); err != nil {
			w.log.Warn("cannot save the index", "path", w.path, "err", err)
		}
	}
	return freshCreated, freshUpdated
}

// change is a file event the initial scan holds back; see holdFresh.
type change struct {
	typ events.Type
	rel string
}

// holdFresh takes out of created and updated, while the initial index is
// being built, the files changed at or after Options.Since: they are
// reported (by reportLater) after the changes made while filecast was not
// running, so that those come first, as they happened first. A created
// file whose content is that of a deleted one stays: it is a move. It runs
// on Run's goroutine.
func (w *Watcher) holdFresh(sums hashed, created, updated, deleted []string) (keptCreated, keptUpdated []string, later []change) {
	if w.since.IsZero() {
		return created, updated, nil
	}
	select {
	case <-w.ready:
		return created, updated, nil // a rescan: everything is fresh
	default:
	}
	fresh := func(p string) bool {
		c := sums[p].changed
		return !c.IsZero() && !c.Before(w.since)
	}
	goneSums := map[string]bool{}
	for _, p := range deleted {
		if e := w.known(p); e != nil {
			goneSums[e.SHA256] = true
		}
	}
	for _, p := range created {
		if r, ok := sums[p]; ok && r.e != nil && fresh(p) && !goneSums[r.e.SHA256] {
			later = append(later, change{events.FileCreated, p})
			continue
		}
		keptCreated = append(keptCreated, p)
	}
	for _, p := range updated {
		if fresh(p) {
			later = append(later, change{events.FileUpdated, p})
			continue
		}
		keptUpdated = append(keptUpdated, p)
	}
	slices.SortFunc(later, func(a, b change) int { return strings.Compare(a.rel, b.rel) })
	return keptCreated, keptUpdated, later
}

// reportLater reports what holdFresh held back.
func (w *Watcher) reportLater(ctx context.Context, now map[string]*entry, later []change) error {
	for _, c := range later {
		if err := w.emit(ctx, c.typ, c.rel, "", now[c.rel]); err != nil {
			return err
		}
	}
	return nil
}
