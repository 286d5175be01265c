//go:build linux

package watch

import (
	"bytes"
	"fmt"
	"io/fs"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"

	"github.com/sourcegraph/conc"
	"golang.org/x/sys/unix"
)

// On Linux the Watcher reads inotify itself rather than through fsnotify,
// for what fsnotify leaves out: it says when a writer closes a file
// (IN_CLOSE_WRITE, so a new or rewritten file is read once it is whole,
// without waiting for it to be quiet), and it hands over a whole read of
// the kernel's queue at once (a removal and the creation that replaces
// it — git checkout, an editor's save — come in the same read, so neither
// waits for the other; and there is one hand-over per read rather than
// per notification).

// inotifyMask is what every folder is watched for. IN_ATTRIB (chmod,
// touch) changes no content; IN_DONT_FOLLOW and IN_ONLYDIR make a
// symlink or a file put in a folder's place fail to be watched rather
// than be followed.
const inotifyMask = unix.IN_CREATE | unix.IN_MODIFY | unix.IN_CLOSE_WRITE | unix.IN_DELETE |
	unix.IN_MOVED_FROM | unix.IN_MOVED_TO | unix.IN_DELETE_SELF | unix.IN_MOVE_SELF |
	unix.IN_ONLYDIR | unix.IN_DONT_FOLLOW

// readSpin is how long quiet waits, spinning, for a read under way to
// end before it asks the reader to say when it does.
const readSpin = 10 * time.Microsecond

// inotifyReadAhead bounds the reads handed over and not yet handled: up to
// this many times inotifyBuffer of notifications wait in memory while the
// Watcher is busy (hashing a big file, say), beside the kernel's own
// queue (fs.inotify.max_queued_events).
const (
	inotifyBuffer    = 64 << 10
	inotifyReadAhead = 4096    // reads handed over and not yet handled, at most
	inotifyMaxQueued = 1 << 16 // notifications read and not yet handled, beyond which the reader waits
)

// openKernel returns an inotify instance read by a goroutine of its own.
func openKernel() (notifier, error) { return openInotify(unix.Read) }

// openInotify is openKernel reading the instance with read (a test reads
// it through a hook).
func openInotify(read func(fd int, buf []byte) (int, error)) (notifier, error) {
	fd, err := unix.InotifyInit1(unix.IN_CLOEXEC | unix.IN_NONBLOCK)
	if err != nil {
		return notifier{}, fmt.Errorf("start inotify: %w", err)
	}
	k := &inotify{
		fd:   fd,
		file: os.NewFile(uintptr(fd), "inotify"), // non-blocking: read through the runtime's poller
		wds:  map[int32]string{},
		dirs: map[string]int32{},
		out:  make(chan batch, inotifyReadAhead),
		read: read,
	}
	rc, err := k.file.SyscallConn()
	if err != nil {
		k.file.Close()
		return notifier{}, fmt.Errorf("start inotify: %w", err)
	}
	k.qcond = sync.NewCond(&k.qmu)
	k.wg.Go(func() { k.run(rc) })
	return notifier{
		kernel:  k,
		batches: k.out,
		done:    k.handled,
		waiting: func() bool { return k.inflight.Load() > 0 },
		quiet:   k.quiet,
		closes:  true,
	}, nil
}

// inotify is one inotify instance: the folders it watches, and the
// goroutine that reads it. Add, Remove and quiet are called from Run's
// goroutine; the reader looks names up concurrently.
type inotify struct {
	fd   int
	file *os.File
	out  chan batch
	wg   conc.WaitGroup
	read func(fd int, buf []byte) (int, error)

	// inflight counts the reads under way and the batches read and not
	// yet handled: while it is zero, nothing the kernel told is on its
	// way to the Watcher.
	inflight atomic.Int64
	// wake asks the reader for an empty batch when its read finds the
	// queue empty: quiet gave up waiting for that read (see quiet).
	wake atomic.Bool

	// queued counts the notifications handed over and not yet handled;
	// the reader waits while it is above inotifyMaxQueued (reads of a
	// few notifications each, as a fast writer's are, would otherwise
	// fill the channel long before memory is an issue, and leave the
	// rest to overflow the kernel's queue).
	qmu    sync.Mutex
	qcond  *sync.Cond
	queued int
	closed bool

	mu   sync.Mutex
	wds  map[int32]string // watch descriptor → folder
	dirs map[string]int32
}

func (k *inotify) Add(dir string) error {
	wd, err := unix.InotifyAddWatch(k.fd, dir, inotifyMask)
	if err != nil {
		return &fs.PathError{Op: "watch", Path: dir, Err: err}
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	w := int32(wd)
	if old, ok := k.wds[w]; ok && old != dir && k.dirs[old] == w {
		delete(k.dirs, old) // the same folder, renamed
	}
	k.wds[w] = dir
	k.dirs[dir] = w
	return nil
}

func (k *inotify) Remove(dir string) error {
	k.mu.Lock()
	w, ok := k.dirs[dir]
	if ok {
		delete(k.dirs, dir)
		delete(k.wds, w)
	}
	k.mu.Unlock()
	if !ok {
		return &fs.PathError{Op: "unwatch", Path: dir, Err: syscall.EINVAL}
	}
	if _, err := unix.InotifyRmWatch(k.fd, uint32(w)); err != nil {
		return &fs.PathError{Op: "unwatch", Path: dir, Err: err}
	}
	return nil
}

// Close stops the reader and closes the instance (which drops every
// watch) and the batches channel.
func (k *inotify) Close() error {
	k.qmu.Lock()
	k.closed = true
	k.qcond.Broadcast()
	k.qmu.Unlock()
	err := k.file.Close() // ends a read waiting in the poller
	// A reader blocked handing over a batch is let go.
	for range k.out {
	}
	k.wg.Wait()
	return err
}

// run reads the instance until it is closed: each read, as many whole
// notifications as are queued (up to inotifyBuffer), is one batch.
func (k *inotify) run(rc syscall.RawConn) {
	defer close(k.out)
	buf := make([]byte, inotifyBuffer)
	for {
		k.qmu.Lock()
		for k.queued > inotifyMaxQueued && !k.closed {
			k.qcond.Wait()
		}
		k.qmu.Unlock()
		var n int
		var rerr error
		err := rc.Read(func(fd uintptr) bool {
			k.inflight.Add(1)
			for {
				n, rerr = k.read(int(fd), buf)
				if rerr != unix.EINTR {
					break
				}
			}
			if rerr == unix.EAGAIN {
				// The read ends before the request is looked at: a quiet
				// that asks after this sees no read under way and
				// takes its request back (see quiet), one that asked
				// before gets its empty batch.
				k.inflight.Add(-1)
				if k.wake.Swap(false) {
					k.inflight.Add(1) // counted until handled
					select {
					case k.out <- batch{}:
						return false
					default: // batches wait to be handled: quiet is asked again after them
						k.inflight.Add(-1)
					}
				}
				return false // nothing queued: wait in the poller
			}
			return true
		})
		if err != nil {
			return // closed
		}
		b := batch{}
		switch {
		case rerr != nil:
			b.err = fmt.Errorf("read inotify: %w", rerr)
		case n < unix.SizeofInotifyEvent:
			b.err = fmt.Errorf("read inotify: short read of %d bytes", n)
		default:
			b = k.parse(buf[:n])
		}
		k.qmu.Lock()
		k.queued += len(b.notes)
		k.qmu.Unlock()
		k.out <- b
		if rerr != nil {
			// Reading inotify fails only when it is closed or broken: the
			// Watcher rescans, then stops (the channel closes).
			return
		}
	}
}

// handled gives back a batch the Watcher handled.
func (k *inotify) handled(b batch) {
	k.qmu.Lock()
	k.queued -= len(b.notes)
	k.qcond.Signal()
	k.qmu.Unlock()
	k.inflight.Add(-1)
}

// parse turns the notifications of one read into a batch.
func (k *inotify) parse(buf []byte) batch {
	var b batch
	b.notes = make([]notification, 0, len(buf)/(unix.SizeofInotifyEvent+16))
	k.mu.Lock()
	defer k.mu.Unlock()
	for off := 0; off+unix.SizeofInotifyEvent <= len(buf); {
		ev := (*unix.InotifyEvent)(unsafe.Pointer(&buf[off]))
		end := off + unix.SizeofInotifyEvent + int(ev.Len)
		if end > len(buf) {
			break
		}
		name := buf[off+unix.SizeofInotifyEvent : end]
		off = end
		mask := ev.Mask
		if mask&unix.IN_Q_OVERFLOW != 0 {
			b.err = errOverflow
			continue
		}
		dir, ok := k.wds[ev.Wd]
		if !ok {
			continue // a watch removed since
		}
		if mask&unix.IN_IGNORED != 0 {
			// The kernel dropped the watch: the folder is gone.
			delete(k.wds, ev.Wd)
			if k.dirs[dir] == ev.Wd {
				delete(k.dirs, dir)
			}
			continue
		}
		path := dir
		if i := bytes.IndexByte(name, 0); i >= 0 {
			name = name[:i]
		}
		if len(name) > 0 {
			path = dir + "/" + string(name)
		}
		var o op
		switch {
		case mask&unix.IN_CREATE != 0:
			o = opCreate
		case mask&unix.IN_MOVED_TO != 0:
			o = opCreate | opMoved
		case mask&unix.IN_MODIFY != 0:
			o = opWrite
		case mask&unix.IN_CLOSE_WRITE != 0:
			o = opClosed
		case mask&(unix.IN_DELETE|unix.IN_DELETE_SELF) != 0:
			o = opRemove
		case mask&(unix.IN_MOVED_FROM|unix.IN_MOVE_SELF) != 0:
			o = opRename
		default:
			continue
		}
		b.notes = append(b.notes, notification{path: path, op: o})
	}
	return b
}

// quiet waits up to d for a notification, blocking the caller's thread
// (which lets a process preempted in the middle of a change — removed a
// file, about to create it again — run), and reports whether none came.
//
// The wait is a raw system call: d is at most maxBlockingQuiet, and the
// runtime's bookkeeping of a blocking call (another thread woken to take
// over the processor, the monitor polling until it returns) costs about
// as much CPU again as the wait itself on a virtual machine. A signal that
// interrupts it (the runtime's preemption) ends it as not quiet: what
// waited is settled after the next read, or by the fallback.
//
// A read under way is waited out first, briefly: the reader tries a
// read before it waits in the poller, so right after it hands a batch
// over it is usually in a read that finds the queue empty, which ends
// within microseconds; one that finds notifications hands them over. A
// read that takes longer (parsing a full buffer, its thread descheduled)
// is asked to hand over an empty batch if it finds nothing, so that what
// waits for quiet is looked at again then rather than after the
// fallback.
func (k *inotify) quiet(d time.Duration) bool {
	start := time.Now()
	for k.inflight.Load() > 0 {
		if len(k.out) > 0 {
			return false // handled next
		}
		if time.Since(start) >= min(d, readSpin) {
			k.wake.Store(true)
			if k.inflight.Load() > 0 || !k.wake.Swap(false) {
				return false // a batch, perhaps empty, is on its way
			}
			break // the read ended meanwhile, without the request
		}
		runtime.Gosched()
	}
	d = max(d-time.Since(start), 0)
	fd := unix.PollFd{Fd: int32(k.fd), Events: unix.POLLIN}
	ts := unix.NsecToTimespec(int64(d))
	n, _, errno := syscall.RawSyscall6(unix.SYS_PPOLL, uintptr(unsafe.Pointer(&fd)), 1, uintptr(unsafe.Pointer(&ts)), 0, 0, 0)
	return errno == 0 && n == 0 && k.inflight.Load() == 0
}
