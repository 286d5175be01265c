package watch

import (
	"context"
	"errors"
	"strings"

	"github.com/fsnotify/fsnotify"
)

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

// PollRound runs one round of polling (see poll.go) on the running
// watcher's goroutine and returns its error. The watcher must poll.
func (w *Watcher) PollRound(ctx context.Context) error {
	return w.do(ctx, func(ctx context.Context) error {
		if w.st.poll == nil {
			return errors.New("the watcher polls nothing")
		}
		return w.pollRound(ctx)
	})
}

// FS is a file system of type Type mounted on the absolute folder Dir.
type FS struct{ Dir, Type string }

// SetFileSystems makes the watcher take the file systems of its
// workspace from f (the workspace folder's first, then those mounted
// under it) instead of the system. Call it before Run.
func (w *Watcher) SetFileSystems(f func(root string) []FS) {
	w.mounts = func(root string) ([]mount, error) {
		var out []mount
		for _, m := range f(root) {
			out = append(out, mount{dir: m.Dir, fsType: m.Type})
		}
		return out, nil
	}
}

// BudgetOf returns a Budget of n: inotify watches, or with files
// descriptors as kqueue takes them.
func BudgetOf(n int, files bool) *Budget {
	if files {
		return DescriptorBudget(uint64(2*n + DescriptorReserve))
	}
	return inotifyBudget(n)
}

// Left returns what is left of the Budget; -1 for no limit.
func (b *Budget) Left() int { return b.left() }

// ParseMountinfo, MountsUnder, RemoteFS and KeepsDirTimes are the parts
// of choose.go that read the system's answers.
func ParseMountinfo(text string) ([]FS, error) {
	ms, err := parseMountinfo(strings.NewReader(text))
	var out []FS
	for _, m := range ms {
		out = append(out, FS{Dir: m.dir, Type: m.fsType})
	}
	return out, err
}

func MountsUnder(table []FS, root string) ([]FS, bool) {
	var in []mountEntry
	for _, m := range table {
		in = append(in, mountEntry{dir: m.Dir, fsType: m.Type})
	}
	ms, ok := mountsUnder(in, root)
	var out []FS
	for _, m := range ms {
		out = append(out, FS{Dir: m.dir, Type: m.fsType})
	}
	return out, ok
}

var (
	NextRound     = nextRound
	RemoteFS      = remoteFS
	KeepsDirTimes = keepsDirTimes
)

// Kernel stands in for fsnotify in a test that says itself what happened
// (inside a testing/synctest bubble, where fsnotify's reader, blocked in a
// system call, would keep the clock from moving). Every folder is watched
// at once; notifications are queued, in order, until the Watcher reads
// them.
type Kernel struct {
	events chan fsnotify.Event
	errors chan error
}

// UseKernel makes the Watcher take its notifications from the returned
// Kernel instead of fsnotify. Call it before Run.
func (w *Watcher) UseKernel() *Kernel {
	k := &Kernel{events: make(chan fsnotify.Event, 1<<10), errors: make(chan error, 16)}
	w.openKernel = func() (notifier, error) {
		return notifier{kernel: noWatches{}, events: k.events, errors: k.errors}, nil
	}
	return k
}

// noWatches is a kernel whose watches always succeed.
type noWatches struct{}

func (noWatches) Add(string) error    { return nil }
func (noWatches) Remove(string) error { return nil }
func (noWatches) Close() error        { return nil }

// Created, Wrote, Removed and Renamed notify that this happened at the
// absolute path.
func (k *Kernel) Created(path string) { k.events <- fsnotify.Event{Name: path, Op: fsnotify.Create} }
func (k *Kernel) Wrote(path string)   { k.events <- fsnotify.Event{Name: path, Op: fsnotify.Write} }
func (k *Kernel) Removed(path string) { k.events <- fsnotify.Event{Name: path, Op: fsnotify.Remove} }
func (k *Kernel) Renamed(path string) { k.events <- fsnotify.Event{Name: path, Op: fsnotify.Rename} }

// Lost reports err as fsnotify reports a failure: notifications may have
// been lost.
func (k *Kernel) Lost(err error) { k.errors <- err }

// Timing constants, for tests that check when things happen.
const (
	MaxSettle  = maxSettle
	TruncQuiet = truncQuiet
	BigQuiet   = bigQuiet
	PairWindow = pairWindow
	PollEvery  = pollEvery
	RetryFirst = retryFirst
	ExpectTTL  = expectTTL
	FullEvery  = fullEvery
	DutyFactor = dutyFactor
)
