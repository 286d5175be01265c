// Package api is the hub's HTTP router: the /v1 routes of the event feed
// behind bearer-token authentication, request body limits, JSON errors for
// unknown routes and methods, and panic recovery.
//
//	if err := api.CheckListen(addr, tokens); err != nil { return err }
//	h := api.New(src, feed.New(src, feed.Options{}), api.Options{Tokens: tokens})
//	srv := &http.Server{Addr: addr, Handler: h}
//
// With an [events.Locker] (Options.Locker, or src itself when it is one,
// as the hub is) it also serves writes and locks:
//
//	PUT    /v1/workspaces/{ws}/files/{path…}   body = content (≤ 16 MiB); X-Filecast-Lock-Token,
//	                                           X-Filecast-Fencing-Token → 200 WriteResult; 423 locked, 409 stale
//	DELETE /v1/workspaces/{ws}/files/{path…}   the same rules → 200 WriteResult; 404 when missing
//	POST   /v1/workspaces/{ws}/locks           LockBody → 201 lease with lock_token; 409 lock_conflict
//	GET    /v1/workspaces/{ws}/locks           → LockList (holders and expiries, no tokens)
//	PATCH  /v1/workspaces/{ws}/locks/{token}   {"ttl_seconds"} → 200 lease
//	DELETE /v1/workspaces/{ws}/locks/{token}   → 200 {"released": true}; 403 not_holder
//
// Writes are made as actor "api:<token name>" ("api" without tokens); a
// lock's holder defaults to the token name ("api"). Lock errors name the
// holder and expiry in the error body (see feed.ErrorDetail).
//
// Later routes (webhooks, the dashboard) are added with Options.Extra and
// get the same authentication and limits.
package api

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"

	"github.com/filecast/filecast/events"
	"github.com/filecast/filecast/events/feed"
)

// DefaultMaxBody bounds a request body when Options.MaxBody is zero.
const DefaultMaxBody = 1 << 20

// ErrOpenListen is returned by CheckListen for a listen address reachable
// from other machines when no token protects it.
var ErrOpenListen = errors.New("api: refusing to serve without a token on a non-loopback address")

// Token is a bearer token the hub accepts; Name identifies its holder
// (actor "api:<name>"), Secret is what the client sends.
type Token struct {
	Name, Secret string
}

// Options configures the router; the zero value serves without
// authentication and with the default body limit.
type Options struct {
	// Tokens accepted in "Authorization: Bearer <secret>"; none means no
	// authentication. Tokens with an empty Secret are ignored.
	Tokens []Token
	// MaxBody bounds request bodies in bytes; default 1 MiB. A file write
	// (PUT) may always carry up to events.MaxReadSize bytes.
	MaxBody int64
	// Locker serves the write and lock routes; nil means src, when src is
	// an events.Locker, else those routes are not served.
	Locker events.Locker
	// Logger receives the router's logs; nil discards them.
	Logger *slog.Logger
	// Public, when set, names GET paths served without a token besides
	// /healthz: static assets a browser loads before it can send one.
	Public func(path string) bool
	// Extra, when set, adds routes to the mux after the built-in ones.
	// Use method patterns; for a page at the root use "GET /{$}" so that
	// unknown paths still answer 404.
	Extra func(mux *http.ServeMux)
}

type ctxKey struct{}

// TokenName returns the name of the token that authenticated the request
// carrying ctx, or "" when the hub has no tokens.
func TokenName(ctx context.Context) string {
	name, _ := ctx.Value(ctxKey{}).(string)
	return name
}

// New returns the hub's HTTP handler serving src through fd; a nil fd is
// replaced by feed.New(src, feed.Options{Logger: opts.Logger}). The handler
// is safe for concurrent use.
func New(src events.Source, fd *feed.Feed, opts Options) http.Handler {
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if fd == nil {
		fd = feed.New(src, feed.Options{Logger: log})
	}
	if opts.MaxBody <= 0 {
		opts.MaxBody = DefaultMaxBody
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		_, _ = w.Write([]byte(`{"status":"ok"}` + "\n"))
	})
	mux.HandleFunc("GET /v1/workspaces", fd.Workspaces)
	mux.HandleFunc("GET /v1/workspaces/{ws}/events", fd.Events)
	mux.HandleFunc("GET /v1/workspaces/{ws}/changes", fd.Changes)
	mux.HandleFunc("GET /v1/workspaces/{ws}/files", fd.Files)
	mux.HandleFunc("GET /v1/workspaces/{ws}/files/{path...}", fd.File)
	locker := opts.Locker
	if locker == nil {
		locker, _ = src.(events.Locker)
	}
	if locker != nil {
		(&lockRoutes{locker: locker, log: log.With("component", "api")}).register(mux)
	}
	if opts.Extra != nil {
		opts.Extra(mux)
	}
	r := &router{mux: mux, maxBody: opts.MaxBody, public: opts.Public, log: log.With("component", "api")}
	for _, t := range opts.Tokens {
		if t.Secret != "" {
			r.tokens = append(r.tokens, t)
		}
	}
	return r
}

// isPublic reports whether r may be served without a token.
func (rt *router) isPublic(r *http.Request) bool {
	if r.URL.Path == "/healthz" {
		return true
	}
	return rt.public != nil && (r.Method == http.MethodGet || r.Method == http.MethodHead) && rt.public(r.URL.Path)
}

type router struct {
	mux     *http.ServeMux
	tokens  []Token
	public  func(string) bool
	maxBody int64
	log     *slog.Logger
}

func (rt *router) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	defer rt.recoverPanic(w, r)
	if len(rt.tokens) > 0 && !rt.isPublic(r) {
		name, ok := rt.authenticate(r)
		if !ok {
			w.Header().Set("WWW-Authenticate", `Bearer realm="filecast"`)
			feed.WriteErrorCode(w, http.StatusUnauthorized, feed.CodeUnauthorized,
				"missing or unknown token: send Authorization: Bearer <token>")
			return
		}
		r = r.WithContext(context.WithValue(r.Context(), ctxKey{}, name))
	}
	h, pattern := rt.mux.Handler(r)
	if pattern == "" {
		rt.noRoute(w, r, h)
		return
	}
	limit := rt.maxBody
	if pattern == routeWrite {
		limit = max(limit, events.MaxReadSize)
	}
	if r.ContentLength > limit {
		feed.WriteError(w, &http.MaxBytesError{Limit: limit})
		return
	}
	if r.Body != nil && r.Body != http.NoBody {
		r.Body = http.MaxBytesReader(w, r.Body, limit)
	}
	rt.mux.ServeHTTP(w, r)
}

// authenticate finds the token the request presents, comparing against
// every secret in constant time.
func (rt *router) authenticate(r *http.Request) (name string, ok bool) {
	secret := ""
	if scheme, v, found := strings.Cut(r.Header.Get("Authorization"), " "); found && strings.EqualFold(scheme, "Bearer") {
		secret = strings.TrimSpace(v)
	} else if r.Method == http.MethodGet || r.Method == http.MethodHead {
		// EventSource in a browser cannot set headers.
		secret = r.URL.Query().Get("access_token")
	}
	if secret == "" {
		return "", false
	}
	for _, t := range rt.tokens {
		if subtle.ConstantTimeCompare([]byte(secret), []byte(t.Secret)) == 1 && !ok {
			name, ok = t.Name, true
		}
	}
	return name, ok
}

// noRoute answers a request that no pattern matches with the status the
// mux chose (404 or 405 with Allow) as a JSON error.
func (rt *router) noRoute(w http.ResponseWriter, r *http.Request, h http.Handler) {
	rec := &statusRecorder{header: http.Header{}}
	h.ServeHTTP(rec, r)
	if rec.status == http.StatusMethodNotAllowed {
		w.Header().Set("Allow", rec.header.Get("Allow"))
		feed.WriteErrorCode(w, http.StatusMethodNotAllowed, feed.CodeMethodNotAllowed,
			fmt.Sprintf("%s is not allowed on %s; allowed: %s", r.Method, r.URL.Path, rec.header.Get("Allow")))
		return
	}
	feed.WriteErrorCode(w, http.StatusNotFound, feed.CodeNoRoute, "no such route: "+r.Method+" "+r.URL.Path)
}

func (rt *router) recoverPanic(w http.ResponseWriter, r *http.Request) {
	v := recover()
	if v == nil {
		return
	}
	if v == http.ErrAbortHandler {
		panic(v)
	}
	rt.log.Error("handler panicked", "method", r.Method, "path", r.URL.Path, "panic", v)
	feed.WriteErrorCode(w, http.StatusInternalServerError, feed.CodeInternal, "internal error")
}

// statusRecorder captures the status and headers of the mux's own 404 and
// 405 handlers and discards their text body.
type statusRecorder struct {
	header http.Header
	status int
}

func (s *statusRecorder) Header() http.Header { return s.header }

func (s *statusRecorder) Write(b []byte) (int, error) {
	if s.status == 0 {
		s.status = http.StatusOK
	}
	return len(b), nil
}

func (s *statusRecorder) WriteHeader(code int) {
	if s.status == 0 {
		s.status = code
	}
}

// CheckListen refuses to serve without a token on an address other
// machines can reach: a listen address whose host is empty (":8080"), an
// unspecified address or anything but a loopback address or "localhost"
// needs at least one token with a secret.
func CheckListen(addr string, tokens []Token) error {
	for _, t := range tokens {
		if t.Secret != "" {
			return nil
		}
	}
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("api: listen address %q: %w", addr, err)
	}
	if strings.EqualFold(host, "localhost") {
		return nil
	}
	if ip := net.ParseIP(strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")); ip != nil && ip.IsLoopback() {
		return nil
	}
	where := host
	if host == "" {
		where = "every interface"
	}
	return fmt.Errorf("%w: %q listens on %s, so anyone on the network could read the workspaces; pass --token, or bind 127.0.0.1 (e.g. --listen 127.0.0.1%s)",
		ErrOpenListen, addr, where, addr[strings.LastIndex(addr, ":"):])
}
