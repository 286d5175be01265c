package watch

import (
	"context"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"time"
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

// InjectError hands err to the running watcher as if the kernel had reported it.
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
// Its counters are published before it returns.
func (w *Watcher) Poll(ctx context.Context) error {
	return w.do(ctx, func(ctx context.Context) error {
		err := w.poll(ctx)
		w.publishCounts(len(w.st.retries), len(w.st.unwatched))
		return err
	})
}

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

// Kernel stands in for the kernel in a test that says itself what
// happened (inside a testing/synctest bubble, where a reader blocked in a
// system call would keep the clock from moving). Every folder is watched
// at once; notifications are queued, in order, until the Watcher reads
// them, each call one read of the queue unless Batch groups them.
type Kernel struct {
	batches chan batch
	told    chan struct{} // a batch was queued
	sent    atomic.Int64  // batches queued
	handled atomic.Int64  // batches handled
	group   *batch        // the read being made by Batch
	cut     atomic.Int64  // quiet waits still to be cut short

	mu     sync.Mutex
	kernq  []batch // told, and not read yet (see Unread)
	unread bool
}

// Unread makes the notifications told within f wait in the kernel's
// queue, not read yet, until Read: the Watcher's quiet wait sees them,
// nothing else does.
func (k *Kernel) Unread(f func()) {
	k.mu.Lock()
	k.unread = true
	k.mu.Unlock()
	f()
	k.mu.Lock()
	k.unread = false
	k.mu.Unlock()
}

// Read hands over what waits in the kernel's queue. The batches count as
// on their way before they leave the queue, as inotify's reader counts a
// read before it makes it: a wait for quiet never finds them in neither.
func (k *Kernel) Read() {
	k.mu.Lock()
	q := k.kernq
	k.kernq = nil
	k.sent.Add(int64(len(q)))
	k.mu.Unlock()
	for _, b := range q {
		k.deliver(b)
	}
}

// CutShort makes the next n waits for quiet end at once as not quiet,
// with nothing on its way, as a signal cuts inotify's short.
func (k *Kernel) CutShort(n int) { k.cut.Store(int64(n)) }

// UseKernel makes the Watcher take its notifications from the returned
// Kernel instead of the system's. With inotify, the Kernel tells what
// inotify tells beside the notifications (Closed, and whether more are
// queued, see settleQuiet); without, it is fsnotify as it is elsewhere
// than on Linux. Call it before Run.
func (w *Watcher) UseKernel(inotify bool) *Kernel {
	k := &Kernel{batches: make(chan batch, 1<<10), told: make(chan struct{}, 1)}
	w.openKernel = func() (notifier, error) {
		n := notifier{
			kernel:  noWatches{},
			batches: k.batches,
			done:    func(batch) { k.handled.Add(1) },
			waiting: k.waiting,
		}
		if inotify {
			n.closes = true
			n.quiet = k.quiet
		}
		return n, nil
	}
	return k
}

// waiting reports whether batches wait to be handled.
func (k *Kernel) waiting() bool { return k.sent.Load() > k.handled.Load() }

// quiet waits up to d for a batch, as inotify's does.
func (k *Kernel) quiet(d time.Duration) bool {
	if k.cut.Add(-1) >= 0 {
		return false
	}
	k.cut.Store(0)
	deadline := time.Now().Add(d)
	for {
		k.mu.Lock()
		queued := len(k.kernq) > 0
		k.mu.Unlock()
		if queued || k.waiting() {
			return false
		}
		left := time.Until(deadline)
		if left <= 0 {
			return true
		}
		t := time.NewTimer(left)
		select {
		case <-k.told: // perhaps of a batch handled already: look again
		case <-t.C:
		}
		t.Stop()
	}
}

// UseFsnotify makes the Watcher read its notifications through fsnotify,
// as it does elsewhere than on Linux. Call it before Run.
func (w *Watcher) UseFsnotify() { w.openKernel = openFsnotify }

// noWatches is a kernel whose watches always succeed.
type noWatches struct{}

func (noWatches) Add(string) error    { return nil }
func (noWatches) Remove(string) error { return nil }
func (noWatches) Close() error        { return nil }

func (k *Kernel) tell(path string, o op) {
	if k.group != nil {
		k.group.notes = append(k.group.notes, notification{path: path, op: o})
		return
	}
	k.send(batch{notes: []notification{{path: path, op: o}}})
}

func (k *Kernel) send(b batch) {
	k.mu.Lock()
	if k.unread {
		k.kernq = append(k.kernq, b)
		k.mu.Unlock()
		return
	}
	k.mu.Unlock()
	k.sendNow(b)
}

func (k *Kernel) sendNow(b batch) {
	k.sent.Add(1)
	k.deliver(b)
}

// deliver hands over a batch already counted as sent.
func (k *Kernel) deliver(b batch) {
	k.batches <- b
	select {
	case k.told <- struct{}{}:
	default:
	}
}

// Created, Wrote, Closed, Removed and Renamed notify that this happened at
// the absolute path; Moved that the path appeared by a rename.
func (k *Kernel) Created(path string) { k.tell(path, opCreate) }
func (k *Kernel) Moved(path string)   { k.tell(path, opCreate|opMoved) }
func (k *Kernel) Wrote(path string)   { k.tell(path, opWrite) }
func (k *Kernel) Closed(path string)  { k.tell(path, opClosed) }
func (k *Kernel) Removed(path string) { k.tell(path, opRemove) }
func (k *Kernel) Renamed(path string) { k.tell(path, opRename) }

// Batch makes the notifications f tells one read of the queue.
func (k *Kernel) Batch(f func()) {
	k.group = &batch{}
	f()
	b := *k.group
	k.group = nil
	k.send(b)
}

// Lost reports err as a kernel reports a failure: notifications may have
// been lost.
func (k *Kernel) Lost(err error) { k.send(batch{err: err}) }

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

	ReplaceHold = replaceHold
	LockFresh   = lockFresh
)
