package watch

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"syscall"
	"time"
)

// The kernel side of the Watcher: a kernel watches folders (one by one,
// not recursively) and tells what happens in them, a read of its queue at
// a time. This file is the seam: past it, a notification is an absolute
// path and an op, whatever told it, and what the Watcher makes of it
// (handle.go, the waits of pending.go, emit.go) depends only on the
// notifier's few capabilities below. On Linux the kernel is inotify,
// read directly (inotify_linux.go); elsewhere, and in tests that ask for
// it, fsnotify (fsnotify.go).

// op is what a notification says happened at a path; one notification
// may say several things.
type op uint8

const (
	opCreate op = 1 << iota // the path appeared: created, or renamed there
	opWrite                 // the file's content changed
	opRemove                // the path was removed
	opRename                // the path was renamed away
	opClosed                // a writer closed the file: what it wrote is complete (inotify's IN_CLOSE_WRITE)
	opMoved                 // with opCreate: the path appeared by a rename, whole
)

func (o op) has(x op) bool { return o&x != 0 }

// notification is one thing a kernel said happened.
type notification struct {
	path string // absolute
	op   op
}

// batch is what one read of the kernel's queue brought, in order, and
// err when notifications may have been lost after them (the queue
// overflowed, the kernel failed): then the workspace is rescanned.
type batch struct {
	notes []notification
	err   error
}

// kernel watches folders, one at a time.
type kernel interface {
	// Add watches a folder (not what is under it).
	Add(dir string) error
	// Remove stops watching a folder; it fails when the kernel already
	// dropped the watch (the folder is gone).
	Remove(dir string) error
	// Close stops every watch and closes the batches channel of the
	// notifier.
	Close() error
}

// notifier is a kernel and what it delivers, read by Run's goroutine
// only, with what it can tell beyond the notifications themselves.
type notifier struct {
	kernel
	// batches brings the notifications, a read of the kernel's queue at
	// a time; it is closed when the kernel stops.
	batches <-chan batch
	// done gives back a batch once handled (nil: nothing to give back).
	done func(batch)
	// waiting reports whether notifications wait to be handled: a burst
	// is going on (nil: none ever do; see busy).
	waiting func() bool
	// quiet waits up to d for the next notification, blocking, and
	// reports whether none came (nothing read and not yet handled
	// either). nil: the kernel cannot tell, and renames away and new
	// files wait out their times instead.
	quiet func(d time.Duration) bool
	// closes is set when the kernel says when a writer closes a file
	// (opClosed): a new or rewritten file is then looked at when its
	// writer closes it, and the settle time is only the fallback for a
	// writer that keeps it open.
	closes bool
}

// busy reports whether notifications wait to be handled.
func (n notifier) busy() bool { return n.waiting != nil && n.waiting() }

// errOverflow reports that the kernel's queue overflowed and dropped
// notifications.
var errOverflow = errors.New("watch: the kernel's notification queue overflowed")

// errKernelClosed is returned by Run when the notifications stop coming.
var errKernelClosed = errors.New("watch: the file notifications stopped")

// handleBatch hands the notifications of one read to handle, then, when
// the kernel can tell, settles the renames away the read left without
// their pair, and the new files closed, once no other notification
// follows them.
func (w *Watcher) handleBatch(ctx context.Context, b batch) error {
	st := w.st
	for _, n := range b.notes {
		if err := w.handle(ctx, n.path, n.op); err != nil {
			if st.kern.done != nil {
				st.kern.done(b)
			}
			return err
		}
	}
	if st.kern.done != nil {
		st.kern.done(b)
	}
	if b.err != nil {
		if err := w.lost(ctx, b.err); err != nil {
			return err
		}
	}
	return w.settleQuiet(ctx)
}

// settleQuiet settles what the last read left waiting — a path renamed
// away (to where?), a new file its writer closed (to be renamed onto its
// real name, or written again?), a file removed (to be created again?) —
// once the kernel says no notification follows: the rest of such a story
// comes right after (a rename is two notifications queued together, an
// atomic save renames its temporary file as soon as it is closed), so a
// quiet queue means there is none. A removal is the exception where the
// rest may be a while coming; removal.go says when it waits anyway. The
// times of pending.go remain the fallback while notifications keep
// coming.
func (w *Watcher) settleQuiet(ctx context.Context) error {
	st := w.st
	if !st.quietDue || st.kern.quiet == nil {
		return nil
	}
	if w.quiet > maxBlockingQuiet {
		// Too long to block for: the loop's timer looks at it then.
		st.quietAt = time.Now().Add(w.quiet)
		st.due(st.quietAt)
		return nil
	}
	if !st.kern.quiet(w.quiet) {
		if !st.kern.busy() {
			// Cut short with nothing on its way (a signal, a read that
			// found the queue empty and took its time): the loop's
			// timer looks again, unless a read comes first.
			st.quietAt = time.Now().Add(w.quiet)
			st.due(st.quietAt)
		}
		return nil // the next read may bring the rest; looked at again after it
	}
	return w.settleNow(ctx)
}

// settleNow settles what waited for the kernel to be quiet.
func (w *Watcher) settleNow(ctx context.Context) error {
	st := w.st
	st.quietDue = false
	st.quietAt = time.Time{}
	if len(st.gone) > 0 {
		if err := w.settleGone(ctx); err != nil {
			return err
		}
	}
	for _, p := range st.sortedRenames() {
		if err := w.renameGone(ctx, p); err != nil {
			return err
		}
	}
	for _, p := range slices.Sorted(maps.Keys(st.whole)) {
		delete(st.whole, p)
		if _, ok := st.creates[p]; !ok {
			continue
		}
		delete(st.creates, p)
		if err := w.check(ctx, p, true); err != nil {
			return err
		}
	}
	return nil
}

// drain handles the notifications already read, so that deadlines are
// judged against everything that has happened.
func (w *Watcher) drain(ctx context.Context) error {
	for range len(w.st.kern.batches) + 1 {
		select {
		case b, ok := <-w.st.kern.batches:
			if !ok {
				return w.kernelClosed()
			}
			if err := w.handleBatch(ctx, b); err != nil {
				return err
			}
		default:
			return nil
		}
	}
	return nil
}

// overflowed reports whether a watcher error says that notifications were
// dropped for want of room in the kernel's queue.
func overflowed(err error) bool { return errors.Is(err, errOverflow) || fsnotifyOverflow(err) }

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
		w.vcsForget(rel) // a new folder, perhaps a repository already
	case errors.Is(err, syscall.ENOENT), errors.Is(err, syscall.ENOTDIR):
	default:
		w.watchFailed(rel, err)
	}
}

// unwatch forgets every folder under prefix.
func (w *Watcher) unwatch(prefix string) {
	st := w.st
	w.vcsForget(prefix)
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
