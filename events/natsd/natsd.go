// Package natsd provides the NATS connection the rest of filecast uses: an
// embedded, in-process nats-server with JetStream (the default), or a
// connection to an external JetStream-enabled cluster. It is the only
// package that imports nats-server.
//
// In embedded mode no network port is opened: the server does not listen,
// and the connection is an in-process pipe. The server's own logs go to the
// injected logger at warning level and above; nothing is ever written to
// stdout, which carries MCP messages.
//
// A sketch:
//
//	srv, err := natsd.Start(ctx, natsd.Options{StoreDir: filepath.Join(data, "nats"), Logger: log})
//	if err != nil { ... }
//	defer srv.Close()
//	js, err := jetstream.New(srv.Conn())
package natsd

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Sentinel errors of the package; match them with errors.Is.
var (
	ErrNoStoreDir  = errors.New("natsd: no store folder given for the embedded server")
	ErrNotReady    = errors.New("natsd: embedded NATS server did not become ready")
	ErrNoJetStream = errors.New("natsd: JetStream is not enabled on the NATS server")
)

const (
	// ServerName is the name of the embedded server and of the connection.
	ServerName = "filecast"

	readyTimeout  = 10 * time.Second
	reconnectWait = 500 * time.Millisecond
	drainTimeout  = 5 * time.Second
)

// Options configures Start. The zero value is not usable: either StoreDir
// (embedded) or URL (external) must be set.
type Options struct {
	// StoreDir is the JetStream store of the embedded server, a folder
	// under filecast's data folder. Ignored when URL is set.
	StoreDir string
	// URL, if set, is an external JetStream-enabled NATS server or cluster
	// ("nats://host:4222", several separated by commas) to connect to
	// instead of embedding a server.
	URL string
	// Logger receives warnings and errors; nil discards them.
	Logger *slog.Logger
}

// Server is a running NATS connection, backed by an embedded server or an
// external one. Its methods are safe for concurrent use. The connection is
// owned by the Server: callers must not close it; Close does.
type Server struct {
	ns     *server.Server // nil when external
	nc     *nats.Conn
	closed chan struct{} // closed by the connection's ClosedHandler
	log    *slog.Logger

	closeOnce sync.Once
	closeErr  error
}

// Start starts an embedded server and connects to it in-process, or, when
// opts.URL is set, connects to that external server. It blocks until the
// connection is established (at most about 10 s for the embedded server)
// and checks that JetStream is available.
func Start(ctx context.Context, opts Options) (*Server, error) {
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	log = log.With("component", "natsd")
	s := &Server{log: log, closed: make(chan struct{})}
	var err error
	if opts.URL != "" {
		err = s.connectExternal(opts.URL)
	} else {
		err = s.startEmbedded(opts.StoreDir)
	}
	if err != nil {
		return nil, fmt.Errorf("start nats: %w", err)
	}
	if err := s.checkJetStream(ctx); err != nil {
		_ = s.Close()
		return nil, fmt.Errorf("start nats: %w", err)
	}
	return s, nil
}

func (s *Server) startEmbedded(storeDir string) error {
	if storeDir == "" {
		return ErrNoStoreDir
	}
	ns, err := server.NewServer(&server.Options{
		ServerName: ServerName,
		DontListen: true,
		JetStream:  true,
		StoreDir:   storeDir,
		NoSigs:     true,
	})
	if err != nil {
		return fmt.Errorf("create embedded server: %w", err)
	}
	ns.SetLogger(serverLogger{s.log}, false, false)
	ns.Start()
	if !ns.ReadyForConnections(readyTimeout) {
		ns.Shutdown()
		ns.WaitForShutdown()
		return fmt.Errorf("%w within %v (store %s)", ErrNotReady, readyTimeout, storeDir)
	}
	s.ns = ns
	nc, err := nats.Connect("", s.connOptions(nats.InProcessServer(ns))...)
	if err != nil {
		ns.Shutdown()
		ns.WaitForShutdown()
		return fmt.Errorf("connect in-process: %w", err)
	}
	s.nc = nc
	return nil
}

func (s *Server) connectExternal(url string) error {
	nc, err := s.connectURL(url)
	if err != nil {
		return fmt.Errorf("connect to %s: %w", url, err)
	}
	s.nc = nc
	return nil
}

func (s *Server) connectURL(url string) (*nats.Conn, error) {
	return nats.Connect(url, s.connOptions(
		nats.MaxReconnects(-1),
		nats.ReconnectWait(reconnectWait),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			if err != nil {
				s.log.Warn("disconnected from NATS", "err", err)
			}
		}),
		nats.ReconnectHandler(func(nc *nats.Conn) {
			s.log.Warn("reconnected to NATS", "url", nc.ConnectedUrlRedacted())
		}),
	)...)
}

func (s *Server) connOptions(extra ...nats.Option) []nats.Option {
	return append([]nats.Option{
		nats.Name(ServerName),
		nats.DrainTimeout(drainTimeout),
		nats.ClosedHandler(func(*nats.Conn) { close(s.closed) }),
		nats.ErrorHandler(func(_ *nats.Conn, sub *nats.Subscription, err error) {
			subj := ""
			if sub != nil {
				subj = sub.Subject
			}
			s.log.Warn("NATS async error", "subject", subj, "err", err)
		}),
	}, extra...)
}

func (s *Server) checkJetStream(ctx context.Context) error {
	js, err := jetstream.New(s.nc)
	if err != nil {
		return fmt.Errorf("open jetstream: %w", err)
	}
	if _, err := js.AccountInfo(ctx); err != nil {
		return fmt.Errorf("%w: %w", ErrNoJetStream, err)
	}
	return nil
}

// Conn returns the connection. It stays valid until Close; with an
// external server it reconnects by itself after a network failure.
func (s *Server) Conn() *nats.Conn { return s.nc }

// Embedded reports whether the server runs in this process.
func (s *Server) Embedded() bool { return s.ns != nil }

// Close drains and closes the connection, then shuts the embedded server
// down and waits for it to finish, so that its store can be opened again.
// It blocks until that is done. It is safe to call more than once; later
// calls return the first result.
func (s *Server) Close() error {
	s.closeOnce.Do(func() { s.closeErr = s.close() })
	return s.closeErr
}

func (s *Server) close() error {
	if s.nc != nil {
		if err := s.nc.Drain(); err != nil && !errors.Is(err, nats.ErrConnectionClosed) {
			s.nc.Close()
		}
		select {
		case <-s.closed:
		case <-time.After(drainTimeout + time.Second):
			s.nc.Close()
		}
	}
	if s.ns != nil {
		s.ns.Shutdown()
		s.ns.WaitForShutdown()
	}
	return nil
}

// serverLogger routes nats-server logs to slog: warnings and errors only.
type serverLogger struct{ log *slog.Logger }

func (l serverLogger) Noticef(string, ...any) {}
func (l serverLogger) Debugf(string, ...any)  {}
func (l serverLogger) Tracef(string, ...any)  {}

func (l serverLogger) Warnf(format string, v ...any) {
	l.log.Warn(fmt.Sprintf(format, v...), "source", "nats-server")
}

func (l serverLogger) Errorf(format string, v ...any) {
	l.log.Error(fmt.Sprintf(format, v...), "source", "nats-server")
}

func (l serverLogger) Fatalf(format string, v ...any) {
	l.log.Error(fmt.Sprintf(format, v...), "source", "nats-server", "fatal", true)
}
