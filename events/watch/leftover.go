package watch

import (
	"errors"
	"io/fs"
	"os"
)

// removeLeftover removes rel, an entry the first walk found, when it is a
// regular file Options.Leftover names and it was last changed before
// Options.Since: a temporary file a write left when its process was
// killed. A write in progress (changed since this process started) is
// left alone. It reports whether rel is gone.
func (w *Watcher) removeLeftover(rel string, d fs.DirEntry) bool {
	if !d.Type().IsRegular() || !w.leftover(d.Name()) {
		return false
	}
	abs := w.ws.Abs(rel)
	fi, err := os.Lstat(abs)
	if err != nil || !fi.Mode().IsRegular() || !w.since.IsZero() && !fi.ModTime().Before(w.since) {
		return err != nil && errors.Is(err, fs.ErrNotExist)
	}
	if err := os.Remove(abs); err != nil && !errors.Is(err, fs.ErrNotExist) {
		w.log.Warn("cannot remove a temporary file an interrupted write left", "path", rel, "err", err)
		return false
	}
	w.log.Info("removed a temporary file an interrupted write left", "path", rel, "size", fi.Size())
	return true
}
