package watch

import (
	"context"
	"os"
	"path/filepath"
	"time"
)

// A workspace folder may go away while it is watched: removed (rm -rf),
// renamed away, or on a disk that is unmounted. The Watcher then keeps its
// index as it was (the log is unchanged: the files are not reported
// deleted, since the folder is missing rather than empty), stops watching
// anything under it, reports the folder missing (Missing), and watches its
// parent folder, and looks every pollEvery, for its return. When the
// folder is back it is watched again and compared with the index as at a
// start: files gone meanwhile are file.deleted, new ones file.created,
// changed ones file.updated, moved ones file.moved, unchanged ones nothing.
// Removals seen before the folder went (rm -rf removes the files first)
// are reported as they happen.

// rootState is Run's view of the workspace folder itself.
type rootState struct {
	gone   bool   // the folder is missing: nothing under it is watched
	parent string // the parent folder watched for its return; "" when none is
	first  bool   // missing on the very first start: indexed silently when back
}

// Missing reports whether the workspace folder is missing (removed or
// moved away), and since when. It is safe for concurrent use and does no
// I/O (it satisfies hub.Presence).
func (w *Watcher) Missing() (since time.Time, missing bool) {
	if p := w.missing.Load(); p != nil {
		return *p, true
	}
	return time.Time{}, false
}

// rootThere reports whether the workspace folder is a folder now.
func (w *Watcher) rootThere() bool {
	fi, err := os.Stat(w.ws.Dir)
	return err == nil && fi.IsDir()
}

// firstSync is the sync of Run's start: the whole tree, silent on the very
// first start, removing the leftovers of interrupted writes as it lists
// the folders. A folder missing at the start is watched for instead.
func (w *Watcher) firstSync(ctx context.Context, first bool) error {
	if !w.rootThere() {
		w.st.root.first = first
		w.gone()
		return nil
	}
	w.st.sweep = w.leftover != nil
	defer func() { w.st.sweep = false }()
	return w.sync(ctx, "", first)
}

// outside handles a notification (o at abs) about a path that is not
// under the folder: the folder itself, or (while it is missing) an entry
// of its parent.
func (w *Watcher) outside(ctx context.Context, abs string, o op) error {
	if abs != w.ws.Dir {
		return nil
	}
	switch {
	case w.st.root.gone && o.has(opCreate):
		return w.checkRoot(ctx)
	case !w.st.root.gone && o.has(opRemove|opRename):
		return w.vanished(ctx)
	}
	return nil
}

// checkRoot looks at the folder (every pollEvery, and when its parent
// says it came back): a folder that is back is watched again and
// reconciled with the index; one that went without a notification (or
// was replaced by another folder) is handled as gone.
func (w *Watcher) checkRoot(ctx context.Context) error {
	st := w.st
	fi, err := os.Stat(w.ws.Dir)
	there := err == nil && fi.IsDir()
	switch {
	case st.root.gone && there:
		return w.reappeared(ctx)
	case st.root.gone:
		if st.root.parent == "" {
			w.watchParent() // the parent may be back
		}
		return nil
	case !there:
		return w.vanished(ctx)
	}
	if id, ok := st.dirs[""]; ok && id != idOf(fi) {
		// Replaced by another folder while no notification told.
		if err := w.vanished(ctx); err != nil {
			return err
		}
	}
	return nil
}

// vanished handles the folder going away.
func (w *Watcher) vanished(ctx context.Context) error {
	st := w.st
	if st.root.gone {
		return nil
	}
	// Removals seen before the folder went happened while it was there.
	if err := w.settleDeletes(ctx, ""); err != nil {
		return err
	}
	if err := w.flush(ctx); err != nil {
		return err
	}
	w.gone()
	w.log.Warn("the workspace folder is missing (removed or moved away): reads, writes, listings and new locks of it are refused until it is back; what changed meanwhile is reported then",
		"path", w.ws.Dir)
	return w.checkRoot(ctx) // back already?
}

// gone forgets everything pending under the folder, stops watching it and
// watches its parent for its return.
func (w *Watcher) gone() {
	st := w.st
	st.forget("")
	w.unwatch("")
	st.root.gone = true
	now := time.Now()
	w.missing.Store(&now)
	w.watchParent()
}

// watchParent watches the folder's parent, so that its return is noticed
// at once; without it (the parent is missing too), checkRoot's polling
// notices.
func (w *Watcher) watchParent() {
	parent := filepath.Dir(w.ws.Dir)
	if parent == w.ws.Dir {
		return
	}
	if err := w.st.kern.Add(parent); err == nil {
		w.st.root.parent = parent
	}
}

// reappeared watches the folder again and reports what changed while it
// was missing.
func (w *Watcher) reappeared(ctx context.Context) error {
	st := w.st
	if st.root.parent != "" {
		_ = st.kern.Remove(st.root.parent)
		st.root.parent = ""
	}
	st.root.gone = false
	first := st.root.first
	st.root.first = false
	since, _ := w.Missing()
	w.log.Info("the workspace folder is back; reporting what changed while it was missing", "path", w.ws.Dir, "missing_for", time.Since(since).Round(time.Millisecond))
	if err := w.sync(ctx, "", first); err != nil {
		return err
	}
	if err := w.flush(ctx); err != nil {
		return err
	}
	w.missing.Store(nil)
	return nil
}
