package daemon

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strconv"
	"time"

	"github.com/sourcegraph/conc"
)

// tmpSuffix names the socket while it is being set up, before it is
// renamed into place with its final permissions.
const tmpSuffix = ".new"

// ownerPath is the liveness route the owner serves on its socket beside
// the hub API: it answers with the owner's PID and then stays open,
// sending a heartbeat, for as long as the owner serves.
const ownerPath = "/daemon/owner"

// ownerHeader carries the owner's PID on the liveness route.
const ownerHeader = "Filecast-Owner"

// heartbeat is the interval of the liveness route's keep-alive bytes;
// silence tells a client that the owner hangs.
const (
	heartbeat   = time.Second
	silentLimit = 5 * heartbeat
)

// requestGrace is how long requests in progress may go on when the owner
// stops before they are ended.
const requestGrace = 250 * time.Millisecond

// own runs the hub as its owner, holding lock, until ctx is done or the
// stack fails; it releases everything before it returns.
func (s *Shared) own(ctx context.Context, lock *Lock) (err error) {
	defer func() {
		if rerr := lock.Release(); rerr != nil && err == nil {
			err = fmt.Errorf("release data folder: %w", rerr)
		}
	}()
	if err := removeStale(s.socket); err != nil {
		return err
	}
	s.log.Debug("starting the hub")
	o, err := s.opts.Become(ctx)
	if err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return fmt.Errorf("start hub: %w", err)
	}
	if o == nil || o.Backend == nil || o.Handler == nil || o.Run == nil {
		if o != nil && o.Close != nil {
			o.Close()
		}
		return fmt.Errorf("%w: Become returned an Owner without Backend, Handler or Run", ErrOptions)
	}
	if o.Close != nil {
		defer o.Close()
	}
	ln, err := listen(s.socket)
	if err != nil {
		return err
	}

	// life ends when ctx is done or something fails; the stack runs on
	// until the server has stopped, so that no request sees it closing.
	life, fail := context.WithCancelCause(ctx)
	defer fail(nil)
	runCtx, stopStack := context.WithCancel(context.WithoutCancel(ctx))
	defer stopStack()
	reqCtx, endRequests := context.WithCancel(context.WithoutCancel(ctx))
	defer endRequests()
	srv := &http.Server{
		Handler:           s.ownerHandler(o.Handler, life, reqCtx),
		ReadHeaderTimeout: 10 * time.Second,
		BaseContext:       func(net.Listener) context.Context { return reqCtx },
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelDebug),
	}
	var wg conc.WaitGroup
	wg.Go(func() {
		err := o.Run(runCtx)
		switch {
		case err != nil && life.Err() == nil:
			fail(fmt.Errorf("run hub: %w", err))
		case err == nil && life.Err() == nil:
			fail(ErrOwnerStopped)
		default:
			fail(nil)
		}
	})
	wg.Go(func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			fail(fmt.Errorf("serve hub socket: %w", err))
		}
	})
	t := s.set(o.Backend, true)
	s.log.Info("serving the hub on the data folder's socket", "pid", os.Getpid())

	<-life.Done()
	s.clear(t)
	// Stop serving first: from here on a client's dial fails at once and its
	// flock attempt waits for the release below.
	if err := os.Remove(s.socket); err != nil && !errors.Is(err, os.ErrNotExist) {
		s.log.Warn("remove socket", "err", err)
	}
	s.shutdown(srv, endRequests, &wg)
	stopStack()
	wg.Wait()
	if cause := context.Cause(life); cause != nil && !(ctx.Err() != nil && errors.Is(cause, ctx.Err())) {
		return cause
	}
	return nil
}

// shutdown ends the HTTP server: requests get requestGrace to finish on
// their own, then the rest (event streams, long polls) are ended; a long
// poll that has not answered yet is cut without an answer, so that its
// client retries it on the next owner.
func (s *Shared) shutdown(srv *http.Server, endRequests context.CancelFunc, wg *conc.WaitGroup) {
	ctx, cancel := context.WithTimeout(context.Background(), closeTimeout)
	defer cancel()
	done := make(chan struct{})
	wg.Go(func() {
		defer close(done)
		if err := srv.Shutdown(ctx); err != nil {
			_ = srv.Close()
		}
	})
	timer := time.NewTimer(requestGrace)
	defer timer.Stop()
	select {
	case <-done:
	case <-timer.C:
	}
	endRequests()
	<-done
}

// removeStale removes a socket file left behind by an owner that died; the
// caller holds the flock, so no live owner serves on it.
func removeStale(socket string) error {
	for _, p := range []string{socket, socket + tmpSuffix} {
		if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("remove stale socket: %w", err)
		}
	}
	return nil
}

// listen binds the socket under a temporary name, restricts it to the
// user and renames it into place, so that it never appears with wider
// permissions.
func listen(socket string) (*net.UnixListener, error) {
	tmp := socket + tmpSuffix
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: tmp, Net: "unix"})
	if err != nil {
		return nil, fmt.Errorf("listen on hub socket: %w", err)
	}
	ln.SetUnlinkOnClose(false) // it is renamed; own removes it
	if err := os.Chmod(tmp, 0o600); err != nil {
		_ = ln.Close()
		_ = os.Remove(tmp)
		return nil, fmt.Errorf("restrict hub socket: %w", err)
	}
	if err := os.Rename(tmp, socket); err != nil {
		_ = ln.Close()
		_ = os.Remove(tmp)
		return nil, fmt.Errorf("publish hub socket: %w", err)
	}
	return ln, nil
}

// ownerHandler serves the liveness route and hands everything else to
// the hub API. Liveness requests end as soon as the owner stops (life);
// API answers are cut once requests are being ended (ending).
func (s *Shared) ownerHandler(api http.Handler, life, ending context.Context) http.Handler {
	pid := strconv.Itoa(os.Getpid())
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != ownerPath {
			api.ServeHTTP(&abortWriter{ResponseWriter: w, stopping: ending}, r)
			return
		}
		if r.Method != http.MethodGet {
			w.Header().Set("Allow", http.MethodGet)
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		rc := http.NewResponseController(w)
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Header().Set("Cache-Control", "no-store")
		w.Header().Set(ownerHeader, pid)
		w.WriteHeader(http.StatusOK)
		tick := time.NewTicker(heartbeat)
		defer tick.Stop()
		for {
			_ = rc.SetWriteDeadline(time.Now().Add(silentLimit))
			if _, err := w.Write([]byte("\n")); err != nil {
				return
			}
			if err := rc.Flush(); err != nil {
				return
			}
			select {
			case <-r.Context().Done():
				return
			case <-life.Done():
				return
			case <-tick.C:
			}
		}
	})
}

// abortWriter cuts the connection instead of answering once the owner is
// stopping: a request ended by the shutdown (a long poll) must look like a
// lost connection to its client, not like an empty answer.
type abortWriter struct {
	http.ResponseWriter
	stopping context.Context
	started  bool
}

func (a *abortWriter) start() {
	if a.started {
		return
	}
	if a.stopping.Err() != nil {
		panic(http.ErrAbortHandler)
	}
	a.started = true
}

func (a *abortWriter) WriteHeader(code int) {
	a.start()
	a.ResponseWriter.WriteHeader(code)
}

func (a *abortWriter) Write(b []byte) (int, error) {
	a.start()
	return a.ResponseWriter.Write(b)
}

// Flush sends the header and any buffered body.
func (a *abortWriter) Flush() {
	a.start()
	_ = http.NewResponseController(a.ResponseWriter).Flush()
}

// Unwrap gives http.ResponseController the underlying writer.
func (a *abortWriter) Unwrap() http.ResponseWriter { return a.ResponseWriter }
