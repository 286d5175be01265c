// Package api is the hub's HTTP router: the /v1 routes of the event feed
// behind bearer-token authentication, per-token scopes and rate limits,
// request size limits, JSON errors for unknown routes and methods, and
// panic recovery.
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
// Writes are made as actor "api:<token name>" ("api" without tokens), or,
// with Options.TrustActor, as the "mcp:…" actor the X-Filecast-Actor
// header names; a lock's holder defaults to the token name ("api"). Lock errors name the
// holder and expiry in the error body (see wire.ErrorDetail).
//
// Later routes (webhooks, the dashboard) are added with Options.Extra and
// get the same authentication and limits.
//
// Access control, in the order the router applies it (every refusal is a
// JSON error body, see wire.ErrorBody):
//
//   - web pages are kept out by a [Guard] before anything else: without
//     tokens a Host that is not a loopback name answers 421
//     misdirected_request (DNS rebinding); with or without tokens a
//     request from a page of another site (its Origin is neither the
//     hub's own, nor loopback, nor in Options.AllowedOrigins) answers 403
//     forbidden;
//   - a request target over MaxURLLen answers 414 uri_too_long, headers
//     over MaxHeaderBytes 431 headers_too_large, more than MaxQueryValues
//     query parameters 400 bad_request;
//   - with tokens, a request without a known one answers 401 unauthorized
//     (/healthz and Options.Public paths excepted). The token goes in the
//     Authorization header; only the event stream, which a browser's
//     EventSource opens without headers, also takes it as the
//     access_token query parameter;
//   - each token has a rate limit (Token.Rate, default DefaultRate per
//     second, burst twice that), requests no token authenticates one per
//     client address (Options.ClientRate): over it, 429 rate_limited with
//     Retry-After in seconds. An SSE stream counts once, when it connects;
//   - a read-only token (Token.ReadOnly) gets 403 forbidden for any method
//     but GET, HEAD and OPTIONS; a token limited to workspaces
//     (Token.Workspaces) gets 403 for other workspaces' routes and for
//     routes outside a workspace (webhooks, metrics), and GET
//     /v1/workspaces lists only its workspaces;
//   - with Options.Streams, an event stream beyond the hub's cap answers
//     503 too_many_streams, beyond its token's or address's cap 429
//     too_many_streams, both with Retry-After (see StreamLimits);
//   - bodies over Options.MaxBody answer 413 too_large; glob, path and
//     cursor limits are the events package's (400 bad_glob, bad_path).
//
// [ParseToken] reads the token specs of the command line, and
// [RequireToken] puts the same authentication and rate limits in front of
// another handler (the HTTP MCP endpoint).
package api

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/filecast/filecast/events"
	"github.com/filecast/filecast/events/feed"
	"github.com/filecast/filecast/events/wire"
)

// DefaultMaxBody bounds a request body when Options.MaxBody is zero.
const DefaultMaxBody = 1 << 20

// ErrOpenListen is returned by CheckListen for a listen address reachable
// from other machines when no token protects it.
var ErrOpenListen = errors.New("api: refusing to serve without a token on a non-loopback address")

// Request limits the router applies before a handler runs.
const (
	// MaxURLLen bounds the request target (path and query) in bytes: room
	// for a path of workspace.MaxPathLen bytes percent-encoded. Longer
	// ones answer 414.
	MaxURLLen = 16 << 10
	// MaxHeaderBytes bounds the request headers; larger ones answer 431.
	// Servers should also set http.Server.MaxHeaderBytes to it.
	MaxHeaderBytes = 64 << 10
	// MaxQueryValues bounds the query parameters of a request (room for
	// events.MaxGlobs path filters and the rest); more answer 400.
	MaxQueryValues = events.MaxGlobs + 64
)

// Options configures the router; the zero value serves without
// authentication and with the default limits.
type Options struct {
	// Tokens accepted in "Authorization: Bearer <secret>" (or, by the
	// event stream only, an access_token query parameter); none means no
	// authentication. Tokens with an empty Secret are ignored.
	Tokens []Token
	// ClientRate limits, per client IP address (an IPv6 client by its /64),
	// the requests no token authenticates: every request when there are no
	// tokens, else failed attempts and public paths. Requests per second
	// with a burst of twice as many; 0 means DefaultClientRate, negative no
	// limit. Requests over a unix socket and /healthz are never limited.
	ClientRate float64
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
	// AllowedOrigins are the sites whose pages may call the hub besides
	// its own origin and loopback ones (see [Guard]); without tokens only
	// loopback Host names are served.
	AllowedOrigins []string
	// Streams, when set, caps the event streams open at once (see
	// StreamLimits); several routers may share one. nil means no cap.
	Streams *StreamLimits
	// Extra, when set, adds routes to the mux after the built-in ones.
	// Use method patterns; for a page at the root use "GET /{$}" so that
	// unknown paths still answer 404.
	Extra func(mux *http.ServeMux)
	// TrustActor makes a write that names its actor in the HeaderActor
	// header ("mcp:<client>#<session>") be recorded as made by it, rather
	// than by "api:<token name>". Only for a listener that nobody but this
	// user's filecast processes can reach: the data folder's unix socket,
	// through which an MCP server that joined a shared hub writes.
	TrustActor bool
	// Health, when set, returns what keeps the hub from serving
	// everything (see events.Problem): /healthz then answers 503 with
	// them instead of 200. It must be safe for concurrent use and quick.
	Health func() []events.Problem
}

// HealthBody is the JSON of GET /healthz: status "ok" (200), or
// "degraded" (503) with the problems. Without a token, a hub that has
// tokens names no workspace in them.
type HealthBody struct {
	Status   string           `json:"status"`
	Problems []events.Problem `json:"problems,omitempty"`
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
	rt := &router{
		mux:     mux,
		src:     src,
		public:  opts.Public,
		maxBody: opts.MaxBody,
		log:     log.With("component", "api"),
		health:  opts.Health,
	}
	mux.HandleFunc("GET /healthz", rt.healthz)
	mux.HandleFunc(routeWorkspaces, fd.Workspaces)
	mux.HandleFunc(routeEvents, fd.Events)
	mux.HandleFunc("GET /v1/workspaces/{ws}/changes", fd.Changes)
	mux.HandleFunc("GET /v1/workspaces/{ws}/files", fd.Files)
	mux.HandleFunc("GET /v1/workspaces/{ws}/files/{path...}", fd.File)
	mux.HandleFunc("GET /v1/workspaces/{ws}/content/{sha256}", fd.Content)
	locker := opts.Locker
	if locker == nil {
		locker, _ = src.(events.Locker)
	}
	if locker != nil {
		(&lockRoutes{locker: locker, log: log.With("component", "api"), trustActor: opts.TrustActor}).register(mux)
	}
	if opts.Extra != nil {
		opts.Extra(mux)
	}
	clientRate := opts.ClientRate
	if clientRate == 0 {
		clientRate = DefaultClientRate
	}
	rt.guard = NewGuard(opts.Tokens, opts.AllowedOrigins)
	rt.auth = newAuthenticator(opts.Tokens, clientRate)
	rt.streams = opts.Streams
	return rt
}

// routeWorkspaces lists the workspaces; a token limited to some sees those.
const routeWorkspaces = "GET /v1/workspaces"

// routeEvents is the event stream, capped by Options.Streams: the one
// route that accepts its token as the access_token query parameter.
const routeEvents = "GET /v1/workspaces/{ws}/events"

// isPublic reports whether r may be served without a token.
func (rt *router) isPublic(r *http.Request) bool {
	return rt.public != nil && (r.Method == http.MethodGet || r.Method == http.MethodHead) && rt.public(r.URL.Path)
}

type router struct {
	guard   Guard
	mux     *http.ServeMux
	src     events.Source
	auth    *authenticator
	public  func(string) bool
	maxBody int64
	streams *StreamLimits
	log     *slog.Logger
	health  func() []events.Problem
}

// healthz answers GET /healthz: 200 {"status":"ok"}, or 503 with the
// problems (see HealthBody). It needs no token; a caller without one on a
// hub that has tokens learns what is wrong but not which workspace, and a
// token limited to workspaces sees only theirs.
func (rt *router) healthz(w http.ResponseWriter, r *http.Request) {
	var probs []events.Problem
	if rt.health != nil {
		probs = rt.health()
	}
	if len(probs) == 0 {
		wire.WriteJSON(w, http.StatusOK, HealthBody{Status: "ok"})
		return
	}
	if rt.auth.enabled() {
		var tok *Token
		if at := rt.auth.find(r, false); at != nil {
			tok = at.tok
		}
		shown := make([]events.Problem, 0, len(probs))
		for _, p := range probs {
			switch {
			case p.Workspace == "":
			case tok == nil:
				p.Workspace, p.Message = "", "a workspace is unavailable: its folder is missing (send a token to see which)"
			case !tok.allows(p.Workspace):
				continue
			}
			shown = append(shown, p)
		}
		probs = shown
		if len(probs) == 0 {
			wire.WriteJSON(w, http.StatusOK, HealthBody{Status: "ok"})
			return
		}
	}
	wire.WriteJSON(w, http.StatusServiceUnavailable, HealthBody{Status: "degraded", Problems: probs})
}

func (rt *router) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	defer rt.recoverPanic(w, r)
	if !rt.guard.Check(w, r) {
		return
	}
	if !rt.withinLimits(w, r) {
		return
	}
	h, pattern := rt.mux.Handler(r)
	if r.URL.Path != "/healthz" {
		var ok bool
		// EventSource in a browser cannot set headers: the event stream
		// alone takes its token from the URL.
		if r, ok = rt.auth.check(w, r, rt.isPublic(r), pattern == routeEvents); !ok {
			return
		}
	}
	if pattern == "" {
		rt.noRoute(w, r, h)
		return
	}
	tok := tokenFrom(r.Context())
	if tok != nil && !rt.permit(w, r, tok, pattern) {
		return
	}
	limit := rt.maxBody
	if pattern == routeWrite {
		limit = max(limit, events.MaxReadSize)
	}
	if r.ContentLength > limit {
		wire.WriteError(w, &http.MaxBytesError{Limit: limit})
		return
	}
	if r.Body != nil && r.Body != http.NoBody {
		r.Body = http.MaxBytesReader(w, r.Body, limit)
	}
	if tok != nil && len(tok.Workspaces) > 0 && pattern == routeWorkspaces {
		rt.workspaces(w, r, tok)
		return
	}
	if pattern == routeEvents && rt.streams != nil {
		release, ok := rt.streams.acquire(w, r, tok)
		if !ok {
			return
		}
		defer release()
	}
	rt.mux.ServeHTTP(w, r)
}

// withinLimits answers 414, 431 or 400 for a request target, headers or
// query over the limits.
func (rt *router) withinLimits(w http.ResponseWriter, r *http.Request) bool {
	target := r.RequestURI
	if target == "" {
		target = r.URL.RequestURI()
	}
	if len(target) > MaxURLLen {
		wire.WriteErrorCode(w, http.StatusRequestURITooLong, CodeURITooLong,
			fmt.Sprintf("the request target has %d bytes; the limit is %d", len(target), MaxURLLen))
		return false
	}
	size := 0
	for k, vs := range r.Header {
		for _, v := range vs {
			size += len(k) + len(v) + 4 // ": " and CRLF
		}
	}
	if size > MaxHeaderBytes {
		wire.WriteErrorCode(w, http.StatusRequestHeaderFieldsTooLarge, CodeHeadersTooLarge,
			fmt.Sprintf("the request headers have %d bytes; the limit is %d", size, MaxHeaderBytes))
		return false
	}
	if q := r.URL.RawQuery; q != "" {
		if n := strings.Count(q, "&") + 1; n > MaxQueryValues {
			wire.WriteErrorCode(w, http.StatusBadRequest, wire.CodeBadRequest,
				fmt.Sprintf("the query has %d parameters; the limit is %d", n, MaxQueryValues))
			return false
		}
	}
	return true
}

// permit enforces a token's scope on the route pattern r matched: a
// read-only token may only read, a token limited to workspaces may only use
// their routes and the workspace list. When it returns false it has
// answered 403.
func (rt *router) permit(w http.ResponseWriter, r *http.Request, tok *Token, pattern string) bool {
	switch r.Method {
	case http.MethodGet, http.MethodHead, http.MethodOptions:
	default:
		if tok.ReadOnly {
			forbidden(w, fmt.Sprintf("token %q is read-only: %s %s would change something", tok.Name, r.Method, r.URL.Path))
			return false
		}
	}
	if len(tok.Workspaces) == 0 {
		return true
	}
	ws, ok := patternValue(pattern, r, "ws")
	switch {
	case !ok && pattern == routeWorkspaces:
		return true
	case !ok:
		forbidden(w, fmt.Sprintf("token %q is limited to workspace %s; %s %s needs a token for every workspace",
			tok.Name, strings.Join(tok.Workspaces, ", "), r.Method, r.URL.Path))
		return false
	case !tok.allows(ws):
		forbidden(w, fmt.Sprintf("token %q may use workspace %s, not %q", tok.Name, strings.Join(tok.Workspaces, ", "), ws))
		return false
	}
	return true
}

func forbidden(w http.ResponseWriter, msg string) {
	wire.WriteErrorCode(w, http.StatusForbidden, CodeForbidden, msg)
}

// patternValue returns the value of wildcard {name} of pattern in r's path,
// as the mux that matched pattern sees it (segments split on the escaped
// path, then unescaped); ok is false when pattern has no such wildcard.
func patternValue(pattern string, r *http.Request, name string) (value string, ok bool) {
	p := pattern
	if i := strings.IndexAny(p, " \t"); i >= 0 {
		p = strings.TrimLeft(p[i:], " \t")
	}
	if i := strings.IndexByte(p, '/'); i > 0 { // a host
		p = p[i:]
	}
	idx := slices.Index(strings.Split(p, "/"), "{"+name+"}")
	if idx < 0 {
		return "", false
	}
	segs := strings.Split(r.URL.EscapedPath(), "/")
	if idx >= len(segs) {
		return "", true
	}
	v, err := url.PathUnescape(segs[idx])
	if err != nil {
		return "", true
	}
	return v, true
}

// workspaces answers GET /v1/workspaces for a token limited to some: only
// those are listed.
func (rt *router) workspaces(w http.ResponseWriter, r *http.Request, tok *Token) {
	list, err := rt.src.Workspaces(r.Context())
	if err != nil {
		if status, _ := wire.ErrorCode(err); status >= 500 && !wire.Degraded(err) {
			rt.log.Error("request failed", "method", r.Method, "path", r.URL.Path, "err", err)
		}
		wire.WriteError(w, err)
		return
	}
	out := []events.WorkspaceInfo{}
	for _, info := range list {
		if tok.allows(info.Name) {
			out = append(out, info)
		}
	}
	wire.WriteJSON(w, http.StatusOK, wire.WorkspaceList{Workspaces: out})
}

// noRoute answers a request that no pattern matches with the status the
// mux chose (404 or 405 with Allow) as a JSON error.
func (rt *router) noRoute(w http.ResponseWriter, r *http.Request, h http.Handler) {
	rec := &statusRecorder{header: http.Header{}}
	h.ServeHTTP(rec, r)
	if rec.status == http.StatusMethodNotAllowed {
		w.Header().Set("Allow", rec.header.Get("Allow"))
		wire.WriteErrorCode(w, http.StatusMethodNotAllowed, wire.CodeMethodNotAllowed,
			fmt.Sprintf("%s is not allowed on %s; allowed: %s", r.Method, r.URL.Path, rec.header.Get("Allow")))
		return
	}
	wire.WriteErrorCode(w, http.StatusNotFound, wire.CodeNoRoute, "no such route: "+r.Method+" "+r.URL.Path)
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
	wire.WriteErrorCode(w, http.StatusInternalServerError, wire.CodeInternal, "internal error")
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
