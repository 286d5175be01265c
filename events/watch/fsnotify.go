package watch

import (
	"errors"

	"github.com/fsnotify/fsnotify"
	"github.com/sourcegraph/conc"
)

// openFsnotify returns fsnotify's watcher as a kernel, with a generous
// buffer: room for bursts while a file is hashed. fsnotify hands over one
// notification at a time and says nothing of writers closing files, so
// with it a new file settles for Options.Settle and a removal waits as
// long for the path's return. Run uses it where there is no inotify.
func openFsnotify() (notifier, error) {
	fsw, err := fsnotify.NewBufferedWatcher(eventBuffer)
	if err != nil {
		return notifier{}, err
	}
	out := make(chan batch, 64)
	k := &fsnotifyKernel{Watcher: fsw, quit: make(chan struct{})}
	k.wg.Go(func() {
		defer close(out)
		for {
			var b batch
			select {
			case ev, ok := <-fsw.Events:
				if !ok {
					return
				}
				b.notes = append(b.notes, notification{path: ev.Name, op: opOf(ev.Op)})
				// Whatever else is queued goes in the same batch.
				for len(b.notes) < maxBatch {
					select {
					case ev, ok := <-fsw.Events:
						if ok {
							b.notes = append(b.notes, notification{path: ev.Name, op: opOf(ev.Op)})
							continue
						}
					default:
					}
					break
				}
			case err, ok := <-fsw.Errors:
				if !ok {
					return
				}
				b.err = err
			}
			select {
			case out <- b:
			case <-k.quit:
				return
			}
		}
	})
	return notifier{
		kernel:  k,
		batches: out,
		waiting: func() bool { return len(fsw.Events) > 0 || len(out) > 0 },
	}, nil
}

// fsnotifyKernel is fsnotify's watcher and the goroutine that batches
// its notifications; Close stops both.
type fsnotifyKernel struct {
	*fsnotify.Watcher
	quit chan struct{}
	wg   conc.WaitGroup
}

func (k *fsnotifyKernel) Close() error {
	close(k.quit)
	err := k.Watcher.Close()
	k.wg.Wait()
	return err
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

// fsnotifyOverflow reports whether err is fsnotify's queue overflow.
func fsnotifyOverflow(err error) bool { return errors.Is(err, fsnotify.ErrEventOverflow) }
