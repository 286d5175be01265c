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
// With an external cluster (Options.URL, several seed URLs separated by
// commas) the connection authenticates with a credentials file, a user and
// password or a token, optionally over TLS with a private CA and a client
// certificate, and reconnects forever with a capped exponential backoff,
// moving to another server of the cluster when one goes away.
// Options.Replicas is how many copies callers should ask JetStream to keep
// of their streams and buckets; Server.Replicas returns the validated value.
//
// The embedded server's store is bounded by its disk: Server.Room tells
// callers, before they store anything, whether the disk still has
// Options.MinFree free (and JetStream its room), so that writers stop
// before the disk is full — a JetStream store that fails a write for want
// of space refuses every later one until it is opened again, which the
// Server does by itself, in process, once the disk has room. NoRoom
// recognises a server's refusals for want of room, and
// CreateOrUpdateStream and CreateOrUpdateKeyValue open what exists when a
// full disk refuses to rewrite their settings, so that a process starts on
// a full disk and serves what the store holds.
//
// A sketch:
//
//	srv, err := natsd.Start(ctx, natsd.Options{StoreDir: filepath.Join(data, "nats"), Logger: log})
//	if err != nil { ... }
//	defer srv.Close()
//	js, err := jetstream.New(srv.Conn())
//
// or, on a three-node cluster:
//
//	srv, err := natsd.Start(ctx, natsd.Options{
//		URL:       "nats://a:4222,nats://b:4222,nats://c:4222",
//		CredsFile: "/etc/filecast/hub.creds",
//		TLSCA:     "/etc/filecast/ca.pem",
//		Replicas:  3,
//	})
//	j, err := journal.Open(ctx, srv.Conn(), journal.Options{Replicas: srv.Replicas()})
package natsd

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/url"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/sourcegraph/conc"
)

// Sentinel errors of the package; match them with errors.Is.
var (
	ErrNoStoreDir  = errors.New("natsd: no store folder given for the embedded server")
	ErrNotReady    = errors.New("natsd: embedded NATS server did not become ready")
	ErrNoJetStream = errors.New("natsd: JetStream is not enabled on the NATS server")
	ErrBadOptions  = errors.New("natsd: invalid options")
)

const (
	// ServerName is the name of the embedded server and of the connection.
	ServerName = "filecast"

	// MaxReplicas is the largest replica count JetStream allows.
	MaxReplicas = 5

	readyTimeout  = 10 * time.Second
	drainTimeout  = 5 * time.Second
	connectWait   = 5 * time.Second
	pingInterval  = 5 * time.Second
	maxPingsOut   = 3
	reconnectWait = 500 * time.Millisecond // first pause after every server was tried
	reconnectMax  = 5 * time.Second        // cap of the exponential backoff
)

// Options configures Start. The zero value is not usable: either StoreDir
// (embedded) or URL (external) must be set. The authentication and TLS
// fields apply to an external server only.
type Options struct {
	// StoreDir is the JetStream store of the embedded server, a folder
	// under filecast's data folder. Ignored when URL is set.
	StoreDir string
	// URL, if set, is an external JetStream-enabled NATS server or cluster
	// to connect to instead of embedding a server: one URL or several
	// separated by commas ("nats://a:4222,nats://b:4222"), as given to
	// --nats. The client learns the other servers of a cluster from the
	// first one it reaches, so a few seeds suffice.
	URL string

	// CredsFile is a NATS credentials file (a user JWT and its nkey seed),
	// as given to --nats-creds. It is read again at every reconnect.
	CredsFile string
	// User and Password authenticate with a user name and password; a
	// user and password in URL work as well.
	User, Password string
	// Token authenticates with a token.
	Token string

	// TLSCA is a PEM file of the certificate authorities that sign the
	// servers' certificates (--nats-tls-ca); setting it requires TLS.
	// Without it the system roots are used when the server asks for TLS.
	TLSCA string
	// TLSCert and TLSKey are the PEM files of a client certificate and its
	// key (--nats-tls-cert, --nats-tls-key), for servers that verify
	// clients; both or neither. Setting them requires TLS.
	TLSCert, TLSKey string

	// Replicas is how many copies of each stream and bucket callers should
	// ask for (--replicas): 1 for the embedded server; 1 to MaxReplicas and
	// odd for an external cluster, no more than its number of JetStream
	// servers. Zero means 1.
	Replicas int

	// MaxStore caps the bytes the embedded server's JetStream store may
	// use: beyond it JetStream refuses to store more. Zero means no cap
	// but the disk's while MinFree keeps some of it free (JetStream's own
	// default, three quarters of the space free when it starts, would
	// leave a store started on a full disk full for good), and that
	// default when MinFree is off. Ignored when URL is set.
	MaxStore int64
	// MinFree is the space the embedded server's store keeps free on its
	// disk: while less is free, Room reports that the store has no room,
	// so that writers stop before the disk is full (a store that fails a
	// write for want of space refuses every later one until it is opened
	// again). Zero means DefaultMinFree; negative turns the check off.
	// Ignored when URL is set.
	MinFree int64

	// Logger receives warnings and errors; nil discards them.
	Logger *slog.Logger
}

// DefaultMinFree is Options.MinFree when it is zero.
const DefaultMinFree = 64 << 20

// diskOnly is the embedded store's JetStream limit when only the disk
// (less Options.MinFree) bounds it.
const diskOnly = 1 << 50

// Validate reports the first problem with the options, wrapping
// ErrNoStoreDir or ErrBadOptions. It reads no file.
func (o Options) Validate() error {
	if o.URL == "" {
		switch {
		case o.StoreDir == "":
			return ErrNoStoreDir
		case o.CredsFile != "" || o.User != "" || o.Password != "" || o.Token != "" ||
			o.TLSCA != "" || o.TLSCert != "" || o.TLSKey != "":
			return fmt.Errorf("%w: credentials and TLS apply to an external server (--nats) only", ErrBadOptions)
		case o.Replicas > 1:
			return fmt.Errorf("%w: the embedded server keeps one replica; --replicas %d needs an external cluster (--nats)", ErrBadOptions, o.Replicas)
		case o.Replicas < 0:
			return fmt.Errorf("%w: replicas %d is negative", ErrBadOptions, o.Replicas)
		case o.MaxStore < 0:
			return fmt.Errorf("%w: max store %d is negative", ErrBadOptions, o.MaxStore)
		}
		return nil
	}

	if _, err := splitURLs(o.URL); err != nil {
		return err
	}
	methods := 0
	for _, set := range []bool{o.CredsFile != "", o.User != "" || o.Password != "", o.Token != ""} {
		if set {
			methods++
		}
	}
	switch {
	case methods > 1:
		return fmt.Errorf("%w: give one of a credentials file, a user and password, or a token", ErrBadOptions)
	case o.Password != "" && o.User == "":
		return fmt.Errorf("%w: a password needs a user", ErrBadOptions)
	case (o.TLSCert == "") != (o.TLSKey == ""):
		return fmt.Errorf("%w: a TLS client certificate needs its key and the other way round", ErrBadOptions)
	case o.Replicas < 0 || o.Replicas > MaxReplicas:
		return fmt.Errorf("%w: replicas %d is out of range: use 1 to %d", ErrBadOptions, o.Replicas, MaxReplicas)
	case o.Replicas > 0 && o.Replicas%2 == 0:
		return fmt.Errorf("%w: replicas %d is even: use an odd count (1, 3 or 5) so that a majority survives", ErrBadOptions, o.Replicas)
	}
	return nil
}

// splitURLs splits a comma-separated list of server URLs and checks each.
func splitURLs(list string) ([]string, error) {
	var urls []string
	for raw := range strings.SplitSeq(list, ",") {
		raw = strings.TrimSpace(raw)
		if raw == "" {
			return nil, fmt.Errorf("%w: empty server URL in %q", ErrBadOptions, redactList(list))
		}
		u := raw
		if !strings.Contains(u, "://") {
			u = "nats://" + u
		}
		parsed, err := url.Parse(u)
		if err != nil || parsed.Host == "" {
			return nil, fmt.Errorf("%w: bad server URL %q", ErrBadOptions, redact(raw))
		}
		switch parsed.Scheme {
		case "nats", "tls", "ws", "wss":
		default:
			return nil, fmt.Errorf("%w: server URL %q: scheme %q is not nats, tls, ws or wss", ErrBadOptions, redact(raw), parsed.Scheme)
		}
		urls = append(urls, raw)
	}
	return urls, nil
}

// redact hides the password or token in a server URL.
func redact(raw string) string {
	full, prefix := raw, ""
	if !strings.Contains(raw, "://") {
		full, prefix = "nats://"+raw, "nats://"
	}
	u, err := url.Parse(full)
	if err != nil {
		if at := strings.LastIndex(raw, "@"); at >= 0 {
			return "xxxxx" + raw[at:]
		}
		return raw
	}
	if u.User == nil {
		return raw
	}
	if _, ok := u.User.Password(); !ok {
		u.User = url.User("xxxxx") // a lone user part is usually a token
	}
	return strings.TrimPrefix(u.Redacted(), prefix)
}

// redactList redacts every URL of a comma-separated list.
func redactList(list string) string {
	parts := strings.Split(list, ",")
	for i, p := range parts {
		parts[i] = redact(strings.TrimSpace(p))
	}
	return strings.Join(parts, ",")
}

// Server is a running NATS connection, backed by an embedded server or an
// external one. Its methods are safe for concurrent use. The connection is
// owned by the Server: callers must not close it; Close does.
type Server struct {
	ns       *server.Server // nil when external
	nc       *nats.Conn
	replicas int
	closed   chan struct{} // closed by the connection's ClosedHandler
	log      *slog.Logger
	room     roomCheck // the embedded store's room; see Room

	jsConfig server.JetStreamConfig // what the embedded JetStream was started with; see reopen
	stopMend context.CancelFunc     // stops mend; nil when external
	mending  conc.WaitGroup

	closeOnce sync.Once
	closeErr  error
}

// Start validates opts, then starts an embedded server and connects to it
// in-process, or, when opts.URL is set, connects to that external server
// or cluster. It blocks until the connection is established (at most about
// 10 s for the embedded server, one pass over the URLs for an external
// one) and checks that JetStream is available.
func Start(ctx context.Context, opts Options) (*Server, error) {
	if err := opts.Validate(); err != nil {
		return nil, fmt.Errorf("start nats: %w", err)
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	log = log.With("component", "natsd")
	s := &Server{log: log, closed: make(chan struct{}), replicas: max(opts.Replicas, 1)}
	var err error
	if opts.URL != "" {
		err = s.connectExternal(opts)
	} else {
		err = s.startEmbedded(opts)
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

func (s *Server) startEmbedded(opts Options) error {
	storeDir := opts.StoreDir
	// The server would log the failure and time out; say it at once.
	if err := os.MkdirAll(storeDir, 0o700); err != nil {
		return fmt.Errorf("create the store folder: %w", err)
	}
	maxStore := opts.MaxStore
	if maxStore == 0 && opts.MinFree >= 0 {
		maxStore = diskOnly
	}
	ns, err := server.NewServer(&server.Options{
		ServerName:        ServerName,
		DontListen:        true,
		JetStream:         true,
		JetStreamMaxStore: maxStore,
		StoreDir:          storeDir,
		NoSigs:            true,
	})
	if err != nil {
		return fmt.Errorf("create embedded server: %w", err)
	}
	s.room.init(ns, storeDir, opts.MinFree)
	ns.SetLogger(serverLogger{s.log, &s.room}, false, false)
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
	if ns.JetStreamEnabled() {
		s.jsConfig = jetStreamConfig(ns, storeDir)
		ctx, cancel := context.WithCancel(context.Background())
		s.stopMend = cancel
		s.mending.Go(func() { s.mend(ctx) })
	}
	return nil
}

func (s *Server) connectExternal(opts Options) error {
	urls, _ := splitURLs(opts.URL) // validated by Start
	extra := []nats.Option{
		nats.Timeout(connectWait),
		nats.PingInterval(pingInterval),
		nats.MaxPingsOutstanding(maxPingsOut),
		nats.MaxReconnects(-1),
		nats.CustomReconnectDelay(reconnectDelay),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			if err != nil {
				s.log.Warn("disconnected from NATS", "err", err)
			}
		}),
		nats.ReconnectHandler(func(nc *nats.Conn) {
			s.log.Warn("reconnected to NATS", "url", nc.ConnectedUrlRedacted())
		}),
	}
	switch {
	case opts.CredsFile != "":
		extra = append(extra, nats.UserCredentials(opts.CredsFile))
	case opts.User != "":
		extra = append(extra, nats.UserInfo(opts.User, opts.Password))
	case opts.Token != "":
		extra = append(extra, nats.Token(opts.Token))
	}
	if opts.TLSCA != "" {
		extra = append(extra, nats.RootCAs(opts.TLSCA))
	}
	if opts.TLSCert != "" {
		extra = append(extra, nats.ClientCert(opts.TLSCert, opts.TLSKey))
	}
	nc, err := nats.Connect(strings.Join(urls, ","), s.connOptions(extra...)...)
	if err != nil {
		return fmt.Errorf("connect to %s: %w", redactList(opts.URL), err)
	}
	s.nc = nc
	return nil
}

// reconnectDelay is the pause after a failed pass over every known
// server: 0.5 s doubling to 5 s, with ±20 % jitter so that many hubs
// do not reconnect in step. Within a pass the client moves from a lost
// server to the next one at once.
func reconnectDelay(attempts int) time.Duration {
	d := reconnectWait << min(max(attempts-1, 0), 4)
	d = min(d, reconnectMax)
	jitter := time.Duration(rand.Int64N(int64(d)*2/5+1)) - d/5
	return d + jitter
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

// Replicas returns how many replicas callers should give their streams
// and key-value buckets: Options.Replicas, or 1 when it was zero.
func (s *Server) Replicas() int { return s.replicas }

// Close drains and closes the connection, then shuts the embedded server
// down and waits for it to finish, so that its store can be opened again.
// It blocks until that is done. It is safe to call more than once; later
// calls return the first result.
func (s *Server) Close() error {
	s.closeOnce.Do(func() { s.closeErr = s.close() })
	return s.closeErr
}

func (s *Server) close() error {
	if s.stopMend != nil {
		s.stopMend()
		s.mending.Wait()
	}
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
// It also tells room about the store's write failures.
type serverLogger struct {
	log  *slog.Logger
	room *roomCheck
}

func (l serverLogger) Noticef(string, ...any) {}
func (l serverLogger) Debugf(string, ...any)  {}
func (l serverLogger) Tracef(string, ...any)  {}

func (l serverLogger) Warnf(format string, v ...any) {
	l.log.Warn(fmt.Sprintf(format, v...), "source", "nats-server")
}

func (l serverLogger) Errorf(format string, v ...any) {
	msg := fmt.Sprintf(format, v...)
	l.room.sawError(msg)
	l.log.Error(msg, "source", "nats-server")
}

func (l serverLogger) Fatalf(format string, v ...any) {
	l.log.Error(fmt.Sprintf(format, v...), "source", "nats-server", "fatal", true)
}
