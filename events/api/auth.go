package api

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"math"
	"net/http"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"github.com/filecast/filecast/events"
	"github.com/filecast/filecast/events/wire"
)

// Rate limits: requests per second with a burst of twice as many.
const (
	// DefaultRate is the rate of a token whose Rate is zero.
	DefaultRate = 100
	// DefaultClientRate is the rate per client IP address of requests that
	// no token authenticates, when Options.ClientRate is zero. It is higher
	// than a token's because one address often stands for many clients:
	// every local agent of a hub without tokens, or a NAT.
	DefaultClientRate = 1000
	// MaxRate bounds a token's rate= option.
	MaxRate = 1_000_000
	// maxClients bounds the per-address limiters kept at once.
	maxClients = 10_000
)

// Limits of a token spec (see [ParseToken]).
const (
	MinSecretLen = 16
	MaxSecretLen = 4096
	MaxNameLen   = 64
)

// Error codes the router adds to the wire codes (see wire.ErrorCode).
const (
	CodeForbidden       = "forbidden"
	CodeRateLimited     = "rate_limited"
	CodeURITooLong      = "uri_too_long"
	CodeHeadersTooLarge = "headers_too_large"
)

// ErrBadToken is the sentinel of a token spec [ParseToken] cannot read.
var ErrBadToken = errors.New("api: bad token")

// Token is a bearer token the hub accepts. Name identifies its holder
// (actor "api:<name>", the default lock holder); Secret is what the client
// sends as "Authorization: Bearer <secret>".
type Token struct {
	Name, Secret string
	// Workspaces, when not empty, are the only workspaces the token may
	// use: other workspaces' routes answer 403, GET /v1/workspaces lists
	// only these, and routes outside a workspace (webhooks, metrics) are
	// refused.
	Workspaces []string
	// ReadOnly tokens may only GET, HEAD and OPTIONS: writes, deletes,
	// locks and webhook changes answer 403.
	ReadOnly bool
	// Rate is the token's requests per second, with a burst of twice as
	// many; 0 means DefaultRate and a negative rate no limit. An event
	// stream counts once, when it connects.
	Rate float64
}

// String describes t without its secret.
func (t Token) String() string {
	var b strings.Builder
	b.WriteString(t.Name)
	if b.Len() == 0 {
		b.WriteString("(unnamed)")
	}
	if len(t.Workspaces) > 0 {
		b.WriteString(",ws=" + strings.Join(t.Workspaces, "+"))
	}
	if t.ReadOnly {
		b.WriteString(",ro")
	}
	if t.Rate != 0 {
		b.WriteString(",rate=" + strconv.FormatFloat(t.Rate, 'g', -1, 64))
	}
	return b.String()
}

// Scoped reports whether t is limited to some workspaces or read-only.
func (t Token) Scoped() bool { return len(t.Workspaces) > 0 || t.ReadOnly }

// allows reports whether t may use workspace ws.
func (t Token) allows(ws string) bool {
	return len(t.Workspaces) == 0 || slices.Contains(t.Workspaces, ws)
}

// ParseToken reads a token spec as given to --token:
//
//	[NAME=]SECRET[,OPTION]…
//	OPTION = ro | ws=WORKSPACE[+WORKSPACE]… | rate=REQUESTS_PER_SECOND
//
// for example "ci=0123456789abcdef,ws=docs+src,ro,rate=20". NAME uses
// letters, digits, '.', '_' and '-' (at most 64); without it Name is
// empty. SECRET has 16 to 4096 characters and no spaces or commas; a secret
// that itself contains '=' needs a NAME in front of it. Errors wrap
// ErrBadToken and never contain the secret.
func ParseToken(spec string) (Token, error) {
	spec = strings.TrimSpace(spec)
	head, opts, hasOpts := strings.Cut(spec, ",")
	var t Token
	if name, secret, ok := strings.Cut(head, "="); ok && secret != "" && validName(name) {
		t.Name, t.Secret = name, secret
	} else {
		t.Secret = head
	}
	who := "token"
	if t.Name != "" {
		who = "token " + strconv.Quote(t.Name)
	}
	switch {
	case len(t.Secret) < MinSecretLen:
		return Token{}, fmt.Errorf("%w: %s: use a secret of at least %d characters (e.g. openssl rand -hex 32)", ErrBadToken, who, MinSecretLen)
	case len(t.Secret) > MaxSecretLen:
		return Token{}, fmt.Errorf("%w: %s: the secret is longer than %d characters", ErrBadToken, who, MaxSecretLen)
	case strings.IndexFunc(t.Secret, func(r rune) bool { return r <= ' ' || r == 0x7f }) >= 0:
		return Token{}, fmt.Errorf("%w: %s: the secret contains a space or control character", ErrBadToken, who)
	case strings.Contains(t.Name, t.Secret):
		return Token{}, fmt.Errorf("%w: the name of a token is shown in events; it may not contain the secret", ErrBadToken)
	}
	if !hasOpts {
		return t, nil
	}
	for opt := range strings.SplitSeq(opts, ",") {
		key, val, hasVal := strings.Cut(opt, "=")
		switch {
		case (key == "ro" || key == "readonly") && !hasVal:
			t.ReadOnly = true
		case key == "ws" && hasVal:
			for ws := range strings.SplitSeq(val, "+") {
				if err := events.ValidWorkspaceName(ws); err != nil {
					return Token{}, fmt.Errorf("%w: %s: ws=%s: %q is not a workspace name", ErrBadToken, who, val, ws)
				}
				if !slices.Contains(t.Workspaces, ws) {
					t.Workspaces = append(t.Workspaces, ws)
				}
			}
		case key == "rate" && hasVal:
			r, err := strconv.ParseFloat(val, 64)
			if err != nil || math.IsNaN(r) || r <= 0 || r > MaxRate {
				return Token{}, fmt.Errorf("%w: %s: rate=%s: want requests per second, more than 0 and at most %d", ErrBadToken, who, val, MaxRate)
			}
			t.Rate = r
		default:
			if len(opt) > 40 {
				opt = opt[:40] + "…"
			}
			return Token{}, fmt.Errorf("%w: %s: unknown option %q: want ro, ws=NAME[+NAME…] or rate=N (a secret may not contain ',')", ErrBadToken, who, opt)
		}
	}
	return t, nil
}

// validName reports whether s is a token name: like a workspace name.
func validName(s string) bool {
	return len(s) <= MaxNameLen && events.ValidWorkspaceName(s) == nil
}

type ctxKey struct{}

// TokenName returns the name of the token that authenticated the request
// carrying ctx, or "" when no token did (the hub has none).
func TokenName(ctx context.Context) string {
	t, _ := ctx.Value(ctxKey{}).(*Token)
	if t == nil {
		return ""
	}
	return t.Name
}

// tokenFrom returns the token that authenticated the request, if any.
func tokenFrom(ctx context.Context) *Token {
	t, _ := ctx.Value(ctxKey{}).(*Token)
	return t
}

// authenticator checks bearer tokens and applies the rate limits: per token
// for authenticated requests, per client address for the others. It is
// safe for concurrent use.
type authenticator struct {
	tokens  []authToken
	clients *clientLimits
}

type authToken struct {
	tok *Token
	lim *rate.Limiter // nil: unlimited
}

// newAuthenticator accepts the tokens with a secret; clientRate limits each
// client address's unauthenticated requests (≤ 0: no limit).
func newAuthenticator(tokens []Token, clientRate float64) *authenticator {
	a := &authenticator{clients: newClientLimits(clientRate)}
	for _, t := range tokens {
		if t.Secret == "" {
			continue
		}
		t.Workspaces = slices.Clone(t.Workspaces)
		r := t.Rate
		if r == 0 {
			r = DefaultRate
		}
		at := authToken{tok: &t}
		if r > 0 {
			at.lim = newLimiter(r)
		}
		a.tokens = append(a.tokens, at)
	}
	return a
}

func newLimiter(r float64) *rate.Limiter {
	return rate.NewLimiter(rate.Limit(r), max(1, int(math.Ceil(2*r))))
}

// enabled reports whether requests need a token.
func (a *authenticator) enabled() bool { return len(a.tokens) > 0 }

// check authenticates r (unless public) and charges its rate limit; with
// inURL a GET or HEAD may carry its token as the access_token query
// parameter. When it returns false it has answered r with 401 or 429;
// otherwise the returned request carries the token for TokenName.
func (a *authenticator) check(w http.ResponseWriter, r *http.Request, public, inURL bool) (*http.Request, bool) {
	if !a.enabled() || public {
		return r, a.clients.allow(w, r)
	}
	at := a.find(r, inURL)
	if at == nil {
		// Guessing counts against the guesser's address.
		if !a.clients.allow(w, r) {
			return nil, false
		}
		w.Header().Set("WWW-Authenticate", `Bearer realm="filecast"`)
		msg := "missing or unknown token: send Authorization: Bearer <token>"
		if q := r.URL.Query(); !inURL && (q.Has("access_token") || q.Has("token")) && r.Header.Get("Authorization") == "" {
			msg = "a token in the URL is accepted only by the event stream (GET /v1/workspaces/{ws}/events?access_token=…), since URLs end up in logs and browser history: send Authorization: Bearer <token>"
		}
		wire.WriteErrorCode(w, http.StatusUnauthorized, wire.CodeUnauthorized, msg)
		return nil, false
	}
	if at.lim != nil {
		if ok, wait := reserve(at.lim); !ok {
			tooMany(w, wait, fmt.Sprintf("token %q made more than %g requests per second (burst %d)",
				at.tok.Name, float64(at.lim.Limit()), at.lim.Burst()))
			return nil, false
		}
	}
	return r.WithContext(context.WithValue(r.Context(), ctxKey{}, at.tok)), true
}

// find returns the token r presents, comparing against every secret in
// constant time; with inURL a GET or HEAD may present it as access_token.
func (a *authenticator) find(r *http.Request, inURL bool) *authToken {
	secret := ""
	if scheme, v, found := strings.Cut(r.Header.Get("Authorization"), " "); found && strings.EqualFold(scheme, "Bearer") {
		secret = strings.TrimSpace(v)
	} else if inURL && (r.Method == http.MethodGet || r.Method == http.MethodHead) {
		// EventSource in a browser cannot set headers.
		secret = r.URL.Query().Get("access_token")
	}
	if secret == "" {
		return nil
	}
	var found *authToken
	for i := range a.tokens {
		if subtle.ConstantTimeCompare([]byte(secret), []byte(a.tokens[i].tok.Secret)) == 1 && found == nil {
			found = &a.tokens[i]
		}
	}
	return found
}

// reserve takes one request from lim, or reports how long until one is
// available without taking it.
func reserve(lim *rate.Limiter) (ok bool, wait time.Duration) {
	now := time.Now()
	res := lim.ReserveN(now, 1)
	if !res.OK() {
		return false, time.Second
	}
	if d := res.DelayFrom(now); d > 0 {
		res.CancelAt(now)
		return false, d
	}
	return true, 0
}

// tooMany answers 429 with Retry-After in whole seconds (at least 1).
func tooMany(w http.ResponseWriter, wait time.Duration, why string) {
	secs := max(1, int(math.Ceil(wait.Seconds())))
	w.Header().Set("Retry-After", strconv.Itoa(secs))
	wire.WriteErrorCode(w, http.StatusTooManyRequests, CodeRateLimited,
		fmt.Sprintf("%s; retry after %d s", why, secs))
}

// clientLimits keeps a limiter per client address (an IPv6 client by its
// /64). At most maxClients are kept; idle ones are dropped first.
type clientLimits struct {
	rate float64
	mu   sync.Mutex
	m    map[netip.Addr]*rate.Limiter
}

func newClientLimits(r float64) *clientLimits {
	if r <= 0 {
		return nil
	}
	return &clientLimits{rate: r, m: map[netip.Addr]*rate.Limiter{}}
}

// allow charges r's client address; a request without an IP address (a
// unix socket) is not limited. When it returns false it has answered 429.
func (c *clientLimits) allow(w http.ResponseWriter, r *http.Request) bool {
	if c == nil {
		return true
	}
	addr, ok := clientAddr(r.RemoteAddr)
	if !ok {
		return true
	}
	lim := c.limiter(addr)
	if ok, wait := reserve(lim); !ok {
		tooMany(w, wait, fmt.Sprintf("more than %g requests per second (burst %d) from %s", c.rate, lim.Burst(), addr))
		return false
	}
	return true
}

func (c *clientLimits) limiter(addr netip.Addr) *rate.Limiter {
	c.mu.Lock()
	defer c.mu.Unlock()
	if lim := c.m[addr]; lim != nil {
		return lim
	}
	if len(c.m) >= maxClients {
		now := time.Now()
		for k, lim := range c.m {
			if lim.TokensAt(now) >= float64(lim.Burst()) {
				delete(c.m, k)
			}
		}
		for k := range c.m {
			if len(c.m) < maxClients {
				break
			}
			delete(c.m, k)
		}
	}
	lim := newLimiter(c.rate)
	c.m[addr] = lim
	return lim
}

// clientAddr is the address a client is limited by: its IPv4 address, or
// the /64 prefix of its IPv6 address.
func clientAddr(remote string) (netip.Addr, bool) {
	ap, err := netip.ParseAddrPort(remote)
	if err != nil {
		return netip.Addr{}, false
	}
	a := ap.Addr().Unmap().WithZone("")
	if a.Is6() {
		p, err := a.Prefix(64)
		if err != nil {
			return netip.Addr{}, false
		}
		a = p.Addr()
	}
	return a, true
}

// RequireToken wraps next so that, when tokens has a token with a secret,
// every request needs "Authorization: Bearer <secret>" (401 otherwise) and
// each token gets its rate limit (429 with Retry-After); unauthenticated
// requests are limited per client address at DefaultClientRate. The
// token's name is available to next through TokenName. Without tokens it
// returns next unchanged.
//
// RequireToken checks who is calling, not what they may do: a token's
// Workspaces and ReadOnly are enforced by the router of [New] only, so
// a caller serving another protocol should refuse scoped tokens
// ([Token.Scoped]). It is safe for concurrent use.
func RequireToken(tokens []Token, next http.Handler) http.Handler {
	a := newAuthenticator(tokens, DefaultClientRate)
	if !a.enabled() {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r, ok := a.check(w, r, false, false)
		if !ok {
			return
		}
		next.ServeHTTP(w, r)
	})
}
