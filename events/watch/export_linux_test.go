//go:build linux

package watch

import (
	"sync"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// ReadGate stands between the Watcher and its inotify instance: while it
// is held, the Watcher reads nothing, so that what happens meanwhile comes
// in one read once it is released.
type ReadGate struct {
	mu       sync.Mutex
	overflow bool
}

// UseReadGate makes the Watcher read inotify through the returned gate.
// Call it before Run.
func (w *Watcher) UseReadGate() *ReadGate {
	g := &ReadGate{}
	w.openKernel = func() (notifier, error) {
		return openInotify(func(fd int, buf []byte) (int, error) {
			g.mu.Lock()
			defer g.mu.Unlock()
			n, err := unix.Read(fd, buf)
			if err == nil && g.overflow {
				// What was read is dropped, as the kernel drops what its
				// full queue has no room for, and says so.
				g.overflow = false
				*(*unix.InotifyEvent)(unsafe.Pointer(&buf[0])) = unix.InotifyEvent{Wd: -1, Mask: unix.IN_Q_OVERFLOW}
				return unix.SizeofInotifyEvent, nil
			}
			return n, err
		})
	}
	return g
}

// Hold stops the Watcher's reads; Release lets them go on.
func (g *ReadGate) Hold()    { g.mu.Lock() }
func (g *ReadGate) Release() { g.mu.Unlock() }

// ReleaseOverflowed lets the reads go on, the next one losing what was
// queued and telling that the queue overflowed (IN_Q_OVERFLOW).
func (g *ReadGate) ReleaseOverflowed() {
	g.overflow = true
	g.mu.Unlock()
}

// UseSlowEmptyReads makes every read of inotify that finds its queue
// empty take d, as when the reader's thread is descheduled in it. Call it
// before Run.
func (w *Watcher) UseSlowEmptyReads(d time.Duration) {
	w.openKernel = func() (notifier, error) {
		return openInotify(func(fd int, buf []byte) (int, error) {
			n, err := unix.Read(fd, buf)
			if err == unix.EAGAIN {
				time.Sleep(d)
			}
			return n, err
		})
	}
}
