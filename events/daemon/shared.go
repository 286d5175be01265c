package daemon

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/filecast/filecast/events"
	"github.com/filecast/filecast/events/internal/wait"
)

// File names inside the data folder.
const (
	// SocketName is the unix socket the owner serves the hub API on.
	SocketName = "hub.sock"
	// LockName is the file whose flock makes a process the owner.
	LockName = "LOCK"
)

// maxSocketPath is the longest socket path every unix system accepts
// (sun_path is 104 bytes on macOS and the BSDs, 108 on Linux, NUL included).
const maxSocketPath = 103

const (
	// minRetry and maxRetry bound the delay between tries to reach an
	// owner that holds the flock but does not answer yet.
	minRetry = 20 * time.Millisecond
	maxRetry = 250 * time.Millisecond
	// retryGrace is how long a call that failed on a connection error
	// waits for the owner to be declared gone before it retries on the
	// same backend.
	retryGrace = 300 * time.Millisecond
	// checkTimeout bounds Options.Check.
	checkTimeout = 15 * time.Second
	// closeTimeout bounds the graceful end of the owner's HTTP server.
	closeTimeout = 2 * time.Second
)

// Errors of a Shared hub. Match them with errors.Is.
var (
	// ErrStopped is returned by the Source and Locker methods of a Shared
	// whose Run has returned. It wraps events.ErrClosed.
	ErrStopped = fmt.Errorf("daemon: shared hub stopped: %w", events.ErrClosed)
	// ErrRunning is returned by a second call of Run.
	ErrRunning = errors.New("daemon: Run was already called")
	// ErrOptions reports invalid Options.
	ErrOptions = errors.New("daemon: invalid options")
	// ErrOwnerStopped reports an owner stack whose Run returned before it
	// was asked to stop.
	ErrOwnerStopped = errors.New("daemon: the hub stopped on its own")
	// ErrOwnerGone ends a subscription whose backend stopped being
	// current: subscribe again to continue on the next one.
	ErrOwnerGone = errors.New("daemon: the hub's owner changed")
)

// Backend is what a process needs of a hub, local or remote.
type Backend interface {
	events.Source
	events.Locker
}

// Owner is what becoming the owner produces: the embedded stack, built by
// the caller of [NewShared], who knows how to start it.
type Owner struct {
	// Backend serves this process's own calls.
	Backend Backend
	// Handler is the hub API, served to the other processes on the socket.
	Handler http.Handler
	// Run runs the stack's loops; it blocks until ctx is done.
	Run func(ctx context.Context) error
	// Close releases the stack; it is called once, after Run returned.
	Close func()
}

// Options configures a [Shared].
type Options struct {
	// Dir is the data folder: the socket is Dir/hub.sock and the guard
	// Dir/LOCK (see [Acquire]). Required.
	Dir string
	// Become starts the embedded stack. It is called while this process
	// holds the flock, so it may open the log and the lock store; it must
	// not call Acquire itself. Required.
	Become func(ctx context.Context) (*Owner, error)
	// Connect builds a client of the owner's socket (for example a
	// remote.Client whose transport is [Transport](socket)). If the
	// Backend it returns implements io.Closer, Close is called when the
	// backend is replaced. Required.
	Connect func(socket string) (Backend, error)
	// Check, if set, verifies that the owner serves what this process
	// needs (for example the same workspaces). It is called each time this
	// process connects to an owner; an error other than a lost connection
	// ends Run, which returns it as is.
	Check func(ctx context.Context, b Backend) error
	// BusyTimeout bounds how long Run waits while the flock is held but
	// nobody answers on the socket (an owner that is starting, or a process
	// that guards the folder without sharing its hub) before it gives up
	// with the *BusyError naming that process. Default DefaultBusyTimeout.
	BusyTimeout time.Duration
	// Logger receives the logs; nil discards them.
	Logger *slog.Logger
}

// DefaultBusyTimeout is the default of Options.BusyTimeout.
const DefaultBusyTimeout = 30 * time.Second

// Shared is the one hub of a data folder, shared by every process that
// uses the folder: the first one to take the flock owns the hub and serves
// it on a unix socket, the others connect to it, and when the owner goes
// away one of them takes over. Every [events.Source] and [events.Locker]
// method delegates to the current backend; the calls survive a change of
// owner where a retry is safe, and a subscription ends with its owner
// (see the methods' docs). Its methods are safe for concurrent use; Run
// must be called once, and the other methods wait for a backend (bounded
// by their ctx) until Run provides one.
type Shared struct {
	dir     string
	socket  string
	opts    Options
	log     *slog.Logger
	client  *http.Client // reaches the owner's liveness route
	running atomic.Bool
	owner   atomic.Bool

	ready     chan struct{}
	readyOnce sync.Once

	mu      sync.Mutex
	cur     *term         // nil while no backend is usable
	gen     uint64        // generation of the newest term
	changed chan struct{} // closed and replaced whenever cur or stopped changes
	stopped bool
}

// term is one backend for as long as it is current.
type term struct {
	b      Backend
	owner  bool
	gen    uint64
	ctx    context.Context // done once b is no longer current
	cancel context.CancelFunc
}

var _ Backend = (*Shared)(nil)

// NewShared checks opts and returns a Shared hub that does nothing until
// Run is called.
func NewShared(opts Options) (*Shared, error) {
	switch {
	case opts.Dir == "":
		return nil, fmt.Errorf("%w: Dir is required", ErrOptions)
	case opts.Become == nil:
		return nil, fmt.Errorf("%w: Become is required", ErrOptions)
	case opts.Connect == nil:
		return nil, fmt.Errorf("%w: Connect is required", ErrOptions)
	}
	dir, err := filepath.Abs(opts.Dir)
	if err != nil {
		return nil, fmt.Errorf("resolve data folder: %w", err)
	}
	socket := filepath.Join(dir, SocketName)
	if len(socket)+len(tmpSuffix) > maxSocketPath {
		return nil, fmt.Errorf("%w: the socket path %s is longer than unix sockets allow (%d bytes); use a shorter --data folder", ErrOptions, socket, maxSocketPath-len(tmpSuffix))
	}
	if opts.BusyTimeout <= 0 {
		opts.BusyTimeout = DefaultBusyTimeout
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Shared{
		dir:     dir,
		socket:  socket,
		opts:    opts,
		log:     log.With("component", "daemon", "socket", socket),
		client:  &http.Client{Transport: watchTransport(socket)},
		ready:   make(chan struct{}),
		changed: make(chan struct{}),
	}, nil
}

// Socket returns the path of the unix socket the owner serves on.
func (s *Shared) Socket() string { return s.socket }

// Ready returns a channel closed once this process is connected to the
// hub or owns it for the first time. It is never closed if Run fails
// before that.
func (s *Shared) Ready() <-chan struct{} { return s.ready }

// IsOwner reports whether this process owns the hub right now.
func (s *Shared) IsOwner() bool { return s.owner.Load() }

// Run connects to the owner of the data folder or becomes it, and keeps
// doing so until ctx is done: it dials the socket; if nobody answers it
// takes the flock and becomes the owner (removing a stale socket, serving
// Owner.Handler on the socket with 0600 permissions and running
// Owner.Run); if the flock is busy, the owner is starting and it dials
// again with backoff, for at most Options.BusyTimeout. As a client it holds a liveness request open to the
// owner and, the moment the owner goes away, races for the flock again.
// When ctx is done an owner stops serving, removes the socket, ends
// Owner.Run, calls Owner.Close and releases the flock, in that order.
//
// Run returns nil when ctx is done, or an error when becoming the owner
// fails, the owner's stack fails, Options.Check refuses the owner, or the
// flock stays busy with nobody answering (a *BusyError). Calls
// of the Source and Locker methods waiting for a backend then fail with
// ErrStopped.
func (s *Shared) Run(ctx context.Context) error {
	if !s.running.CompareAndSwap(false, true) {
		return ErrRunning
	}
	defer s.stop()
	delay := minRetry
	var busySince time.Time // zero unless the last tries found the flock busy
	for ctx.Err() == nil {
		w, err := s.dialOwner(ctx)
		if err == nil {
			busySince = time.Time{}
			began := time.Now()
			if err := s.follow(ctx, w); err != nil {
				return err
			}
			// An owner that lets go at once, again and again, must not
			// make this loop spin.
			if time.Since(began) > time.Second {
				delay = minRetry
			} else if !wait.Sleep(ctx, delay) {
				break
			} else {
				delay = min(2*delay, maxRetry)
			}
			continue
		}
		if ctx.Err() != nil {
			break
		}
		s.log.Debug("no owner answers", "err", err)
		lock, err := Acquire(s.dir)
		if errors.Is(err, ErrBusy) {
			// The owner is starting or stopping: it will answer or let go.
			if busySince.IsZero() {
				busySince = time.Now()
			} else if time.Since(busySince) > s.opts.BusyTimeout {
				return fmt.Errorf("wait for the hub's owner: %w", err)
			}
			if !wait.Sleep(ctx, delay) {
				break
			}
			delay = min(2*delay, maxRetry)
			continue
		}
		if err != nil {
			return err
		}
		return s.own(ctx, lock)
	}
	return nil
}

// follow uses the owner reached through w until it goes away (nil), ctx
// is done (nil) or Options.Check refuses it (that error).
func (s *Shared) follow(ctx context.Context, w *liveness) error {
	defer w.close()
	b, err := s.opts.Connect(s.socket)
	if err != nil {
		return fmt.Errorf("connect to hub socket: %w", err)
	}
	defer closeBackend(b)
	if s.opts.Check != nil {
		cctx, cancel := context.WithTimeout(ctx, checkTimeout)
		err := s.opts.Check(cctx, b)
		cancel()
		switch {
		case err == nil:
		case ctx.Err() != nil:
			return nil
		case connError(err) || !s.answers(ctx):
			s.log.Debug("owner went away while being checked", "err", err)
			return nil
		default:
			return err
		}
	}
	t := s.set(b, false)
	s.log.Info("connected to the hub of another process", "pid", w.pid)
	err = w.wait()
	s.clear(t)
	if ctx.Err() == nil {
		s.log.Info("the hub's owner went away; taking over or reconnecting", "pid", w.pid, "err", err)
	}
	return nil
}

// answers reports whether an owner answers on the socket.
func (s *Shared) answers(ctx context.Context) bool {
	w, err := s.dialOwner(ctx)
	if err != nil {
		return false
	}
	w.close()
	return true
}

func closeBackend(b Backend) {
	if c, ok := b.(io.Closer); ok {
		_ = c.Close()
	}
}

// set makes b the current backend and wakes the calls waiting for one.
func (s *Shared) set(b Backend, owner bool) *term {
	ctx, cancel := context.WithCancel(context.Background())
	s.mu.Lock()
	s.gen++
	t := &term{b: b, owner: owner, gen: s.gen, ctx: ctx, cancel: cancel}
	s.cur = t
	s.owner.Store(owner)
	s.broadcast()
	s.mu.Unlock()
	s.readyOnce.Do(func() { close(s.ready) })
	return t
}

// clear ends term t: calls in progress on it are told, new ones wait.
func (s *Shared) clear(t *term) {
	s.mu.Lock()
	if s.cur == t {
		s.cur = nil
		s.owner.Store(false)
		s.broadcast()
	}
	s.mu.Unlock()
	t.cancel()
}

// stop marks Run as returned: waiting calls fail with ErrStopped.
func (s *Shared) stop() {
	s.mu.Lock()
	t := s.cur
	s.cur = nil
	s.stopped = true
	s.owner.Store(false)
	s.broadcast()
	s.mu.Unlock()
	if t != nil {
		t.cancel()
	}
}

// broadcast wakes every waiter; s.mu must be held.
func (s *Shared) broadcast() {
	close(s.changed)
	s.changed = make(chan struct{})
}

// await returns the current term once its generation is at least
// minGen. If stale is set and is still current after retryGrace, stale
// itself is returned: the owner is still there.
func (s *Shared) await(ctx context.Context, minGen uint64, stale *term) (*term, error) {
	var grace <-chan time.Time
	if stale != nil {
		timer := time.NewTimer(retryGrace)
		defer timer.Stop()
		grace = timer.C
	}
	for {
		s.mu.Lock()
		cur, stopped, changed := s.cur, s.stopped, s.changed
		s.mu.Unlock()
		if cur != nil && cur.gen >= minGen {
			return cur, nil
		}
		if stopped {
			return nil, ErrStopped
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-changed:
		case <-grace:
			grace = nil
			if cur != nil && cur == stale {
				return cur, nil
			}
		}
	}
}
