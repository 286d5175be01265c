package daemon

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"syscall"
	"time"

	"github.com/filecast/filecast/events"
)

// dialTimeout bounds connecting to the socket and the owner's first answer.
const dialTimeout = 2 * time.Second

// Transport returns an HTTP transport that reaches the owner's socket
// whatever host a request URL names (use "http://filecast" for example).
// Give it to the client that Options.Connect builds.
func Transport(socket string) *http.Transport {
	return &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			d := net.Dialer{Timeout: dialTimeout}
			return d.DialContext(ctx, "unix", socket)
		},
		MaxIdleConnsPerHost: 16,
		IdleConnTimeout:     90 * time.Second,
	}
}

// watchTransport reaches the liveness route: one fresh connection per
// request, and an owner that does not answer in time counts as absent.
func watchTransport(socket string) *http.Transport {
	t := Transport(socket)
	t.DisableKeepAlives = true
	t.ResponseHeaderTimeout = dialTimeout
	return t
}

var (
	errSilent = errors.New("daemon: the hub's owner stopped answering")
	errEnded  = errors.New("daemon: the hub's owner closed the connection")
)

// liveness is an open request to the owner's liveness route; it ends when
// the owner goes away.
type liveness struct {
	pid    string
	body   io.ReadCloser
	ctx    context.Context
	cancel context.CancelCauseFunc
	silent *time.Timer
}

// dialOwner opens the liveness route on the socket; an error means that no
// owner answers.
func (s *Shared) dialOwner(ctx context.Context) (*liveness, error) {
	ctx, cancel := context.WithCancelCause(ctx)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://filecast"+ownerPath, nil)
	if err != nil {
		cancel(nil)
		return nil, err
	}
	res, err := s.client.Do(req)
	if err != nil {
		cancel(nil)
		return nil, err
	}
	if res.StatusCode != http.StatusOK || res.Header.Get(ownerHeader) == "" {
		res.Body.Close()
		cancel(nil)
		return nil, fmt.Errorf("daemon: %s answered %s, not as a filecast hub owner", s.socket, res.Status)
	}
	return &liveness{pid: res.Header.Get(ownerHeader), body: res.Body, ctx: ctx, cancel: cancel}, nil
}

// wait blocks until the owner goes away or the ctx given to dialOwner is
// done, and says why. An owner silent for silentLimit counts as gone.
func (w *liveness) wait() error {
	w.silent = time.AfterFunc(silentLimit, func() { w.cancel(errSilent) })
	buf := make([]byte, 64)
	for {
		n, err := w.body.Read(buf)
		if n > 0 {
			w.silent.Reset(silentLimit)
		}
		if err != nil {
			if errors.Is(err, io.EOF) {
				return errEnded
			}
			if cause := context.Cause(w.ctx); cause != nil {
				return cause
			}
			return err
		}
	}
}

func (w *liveness) close() {
	if w.silent != nil {
		w.silent.Stop()
	}
	w.cancel(nil)
	_ = w.body.Close()
}

// connError reports whether err, returned by a client of the owner's
// socket, says that the owner could not be reached, dropped the
// connection or is closing, rather than answering the request.
func connError(err error) bool {
	if err == nil {
		return false
	}
	var op *net.OpError
	return errors.As(err, &op) ||
		errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE) ||
		errors.Is(err, events.ErrClosed)
}

// dialError reports whether err, returned by a client of the owner's
// socket, says that the request never reached the owner: connecting to
// the socket failed.
func dialError(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) && op.Op == "dial"
}
