package watch

import (
	"context"
	"slices"

	"github.com/filecast/filecast/events"
)

// Folders produce no events of their own: a folder moved inside the
// workspace is a file.moved per file under it, one removed (or moved out)
// a file.deleted per file. Both run on Run's goroutine.

// moveDir reports a folder renamed inside the workspace: one file.moved
// per file, then whatever changed inside it meanwhile.
func (w *Watcher) moveDir(ctx context.Context, old, rel string) error {
	if err := w.settleDeletes(ctx, old); err != nil {
		return err
	}
	w.unwatch(old)
	w.st.forget(old) // the rescan of the new folder reports what waited
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
	w.unwatch(rel)
	w.st.forget(rel) // the removals waiting are reported below
	for _, p := range w.paths(rel) {
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
