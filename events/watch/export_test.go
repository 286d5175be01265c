package watch

import "context"

// Do runs f on the running watcher's goroutine and returns its error.
func (w *Watcher) do(ctx context.Context, f func(context.Context) error) error {
	done := make(chan error, 1)
	select {
	case w.inject <- func(ctx context.Context) error { err := f(ctx); done <- err; return err }:
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// InjectError hands err to the running watcher as if fsnotify had reported it.
func (w *Watcher) InjectError(ctx context.Context, err error) error {
	return w.do(ctx, func(ctx context.Context) error { return w.lost(ctx, err) })
}

// DropWatch removes the watch of a folder without telling the index, so that
// changes in it are missed, as after a lost notification. With poll, the
// folder is also marked as one that could not be watched.
func (w *Watcher) DropWatch(ctx context.Context, rel string, poll bool) error {
	return w.do(ctx, func(context.Context) error {
		_ = w.st.kern.Remove(w.ws.Abs(rel))
		delete(w.st.dirs, rel)
		if poll {
			w.st.unwatched[rel] = true
		}
		return nil
	})
}

// SetReadFault makes every open of a file or folder (by its absolute
// path) fail with what f returns, when not nil. Call it before Run; f is
// called from several goroutines.
func (w *Watcher) SetReadFault(f func(path string) error) { w.readFault = f }

// SetAddWatch makes the watcher add its folder watches through f, which
// may call add (fsnotify's) or fail. Call it before Run; f is called from
// Run's goroutine.
func (w *Watcher) SetAddWatch(f func(name string, add func(string) error) error) { w.addHook = f }

// SetMaxHeld sets how many paths a Watcher holds one by one while the log
// has no room, for the test, and restores it when the test ends.
func SetMaxHeld(t interface{ Cleanup(func()) }, n int) {
	old := maxHeld
	maxHeld = n
	t.Cleanup(func() { maxHeld = old })
}

// Poll runs one round of the running watcher's periodic work (the folder
// itself, paths to look at again, held changes) and returns its error.
func (w *Watcher) Poll(ctx context.Context) error { return w.do(ctx, w.poll) }
