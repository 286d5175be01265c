package watch

import (
	"context"
	"errors"
	"fmt"
	"syscall"

	"github.com/fsnotify/fsnotify"
)

// The kernel side of the Watcher: fsnotify watches folders (one by one,
// not recursively) and tells what happens in them. This file is all that
// knows it: past notice, a notification is an absolute path and an op,
// whatever told it, and what the Watcher makes of it (handle.go, the waits
// of pending.go) depends on nothing else.

// op is what a notification says happened at a path; one notification
// may say several things.
type op uint8

const (
	opCreate op = 1 << iota // the path appeared: created, or renamed there
	opWrite                 // the file's content changed
	opRemove                // the path was removed
	opRename                // the path was renamed away
)

func (o op) has(x op) bool { return o&x != 0 }

// kernel watches folders, one at a time.
type kernel interface {
	// Add watches a folder (not what is under it).
	Add(dir string) error
	// Remove stops watching a folder; it fails when the kernel already
	// dropped the watch (the folder is gone).
	Remove(dir string) error
	// Close stops every watch and closes the channels of the notifier.
	Close() error
}

// notifier is a kernel and what it delivers, read by Run's goroutine
// only: notifications, and errors meaning that some may have been lost.
type notifier struct {
	kernel
	events <-chan fsnotify.Event
	errors <-chan error
}

// openKernel returns fsnotify's watcher, with a generous buffer: room for
// bursts while a file is hashed.
func openKernel() (notifier, error) {
	fsw, err := fsnotify.NewBufferedWatcher(eventBuffer)
	if err != nil {
		return notifier{}, err
	}
	return notifier{kernel: fsw, events: fsw.Events, errors: fsw.Errors}, nil
}

// opOf translates fsnotify's ops (Chmod is no op of ours).
func opOf(o fsnotify.Op) op {
	var out op
	if o.Has(fsnotify.Create) {
		out |= opCreate
	}
	if o.Has(fsnotify.Write) {
		out |= opWrite
	}
	if o.Has(fsnotify.Remove) {
		out |= opRemove
	}
	if o.Has(fsnotify.Rename) {
		out |= opRename
	}
	return out
}

// notice hands one notification to handle.
func (w *Watcher) notice(ctx context.Context, ev fsnotify.Event) error {
	return w.handle(ctx, ev.Name, opOf(ev.Op))
}

// pending reports how many notifications wait to be read: a burst is
// going on while there are.
func (n notifier) pending() int { return len(n.events) }

// errKernelClosed is returned by Run when the notifications stop coming.
var errKernelClosed = fsnotify.ErrClosed

// overflowed reports whether a watcher error says that notifications were
// dropped for want of room in the kernel's queue.
func overflowed(err error) bool { return errors.Is(err, fsnotify.ErrEventOverflow) }

// drain handles the notifications already queued, so that deadlines are
// judged against everything that has happened.
func (w *Watcher) drain(ctx context.Context) error {
	for range w.st.kern.pending() + 1 {
		select {
		case ev := <-w.st.kern.events:
			if err := w.notice(ctx, ev); err != nil {
				return err
			}
		case e := <-w.st.kern.errors:
			if err := w.lost(ctx, e); err != nil {
				return err
			}
		default:
			return nil
		}
	}
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
	add := st.kern.Add
	if w.addHook != nil {
		add = func(name string) error { return w.addHook(name, st.kern.Add) }
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
			_ = st.kern.Remove(w.ws.Abs(d)) // fails when the kernel already dropped it
			delete(st.dirs, d)
		}
	}
	for d := range st.unwatched {
		if under(d, prefix) {
			delete(st.unwatched, d)
		}
	}
}

// kernelClosed is the error of a notifier that stopped delivering.
func (w *Watcher) kernelClosed() error {
	return fmt.Errorf("watch %s: %w", w.ws.Name, errKernelClosed)
}
