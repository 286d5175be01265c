package api

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"

	"github.com/filecast/filecast/events/wire"
)

// CodeMisdirected is the wire code of a request whose Host names another
// server (421).
const CodeMisdirected = "misdirected_request"

// ErrBadOrigin is the sentinel of an --allow-origin value [ParseOrigin]
// cannot read.
var ErrBadOrigin = errors.New("api: bad origin")

// Guard keeps web pages from driving a filecast server through the
// user's browser. It is the one check in front of the hub's API (see
// Options.AllowedOrigins) and of the HTTP MCP endpoint, applied before
// anything is read or written:
//
//   - DNS rebinding: unless AnyHost is set, a request that came over TCP
//     must name a loopback host in its Host header ("localhost",
//     127.0.0.0/8, "::1", with any port); another name answers
//     421 misdirected_request. A page of evil.example whose name was
//     rebound to 127.0.0.1 sends "Host: evil.example".
//   - Cross-site requests: a request with an Origin header that is not the
//     server's own origin (the Host it was sent to), not loopback and not
//     listed in AllowedOrigins answers 403 forbidden, as does a
//     cross-site request without Origin (Sec-Fetch-Site: cross-site) that
//     is not a top-level navigation. The opaque origin "null" is refused.
//     Requests from programs (no Origin) pass.
//   - CORS: pages of a site listed in AllowedOrigins may read the answers:
//     they carry Access-Control-Allow-Origin, and preflight requests
//     (OPTIONS with Access-Control-Request-Method) are answered with
//     204. Loopback origins may send requests but get no CORS headers.
//
// A Guard is safe for concurrent use; the zero value checks Host and
// Origin and allows no other site.
type Guard struct {
	// AllowedOrigins are sites whose pages may call the server besides
	// its own: an origin ("https://app.example"), a host with its port
	// ("app.example:8443") or a host name ("app.example"), as
	// [ParseOrigin] reads them.
	AllowedOrigins []string
	// AnyHost accepts any Host header: set it when every request needs a
	// token, so that a page cannot use the server without one and the
	// server may be reached by any name (behind a proxy).
	AnyHost bool
}

// NewGuard returns the Guard of a server with these tokens: any Host is
// accepted when one has a secret, otherwise only loopback names.
func NewGuard(tokens []Token, allowedOrigins []string) Guard {
	g := Guard{AllowedOrigins: allowedOrigins}
	for _, t := range tokens {
		if t.Secret != "" {
			g.AnyHost = true
		}
	}
	return g
}

// Wrap returns next behind the guard.
func (g Guard) Wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if g.Check(w, r) {
			next.ServeHTTP(w, r)
		}
	})
}

// Check applies the guard to r. When it returns false it has answered r:
// 421, 403, or 204 to a preflight request of an allowed site.
func (g Guard) Check(w http.ResponseWriter, r *http.Request) bool {
	if !g.AnyHost && overTCP(r) && r.Host != "" && !loopbackHost(r.Host) {
		wire.WriteErrorCode(w, http.StatusMisdirectedRequest, CodeMisdirected, fmt.Sprintf(
			"this server answers only to a loopback name (localhost, 127.0.0.1, [::1]), not to Host %q: a page whose name resolves to this machine may not use it; open it by a loopback address, or serve it with --token to reach it by another name",
			truncate(r.Host)))
		return false
	}
	origin := r.Header.Get("Origin")
	if origin == "" {
		if r.Header.Get("Sec-Fetch-Site") == "cross-site" && r.Header.Get("Sec-Fetch-Mode") != "navigate" {
			forbidden(w, "a page of another site may not use this server (Sec-Fetch-Site: cross-site)")
			return false
		}
		return true
	}
	u, ok := parseOrigin(origin)
	if !ok {
		forbidden(w, fmt.Sprintf("requests from origin %q are not allowed: only pages of this server's own origin, of loopback addresses or of sites listed with --allow-origin may use it", truncate(origin)))
		return false
	}
	listed := g.listed(origin, u)
	if !listed && !sameHost(u, r.Host) && !loopbackHost(u.Host) {
		forbidden(w, fmt.Sprintf("requests from pages of %s are not allowed: only pages of this server's own origin, of loopback addresses or of sites listed with --allow-origin may use it", truncate(origin)))
		return false
	}
	if listed && !sameHost(u, r.Host) {
		h := w.Header()
		h.Set("Access-Control-Allow-Origin", origin)
		h.Add("Vary", "Origin")
		if r.Method == http.MethodOptions && r.Header.Get("Access-Control-Request-Method") != "" {
			h.Set("Access-Control-Allow-Methods", "GET, HEAD, POST, PUT, PATCH, DELETE")
			if req := r.Header.Get("Access-Control-Request-Headers"); req != "" {
				h.Set("Access-Control-Allow-Headers", req)
			}
			h.Set("Access-Control-Max-Age", "600")
			w.WriteHeader(http.StatusNoContent)
			return false
		}
		h.Set("Access-Control-Expose-Headers", "*")
	}
	return true
}

// listed reports whether origin is one of g.AllowedOrigins.
func (g Guard) listed(origin string, u *url.URL) bool {
	for _, a := range g.AllowedOrigins {
		a = strings.TrimSuffix(a, "/")
		if strings.EqualFold(a, origin) || strings.EqualFold(a, u.Host) || strings.EqualFold(a, u.Hostname()) {
			return true
		}
	}
	return false
}

// ParseOrigin checks an --allow-origin value: an origin
// ("https://app.example", "http://10.0.0.5:3000"), a host with a port or a
// host name. It returns it without a trailing "/"; errors wrap
// ErrBadOrigin.
func ParseOrigin(s string) (string, error) {
	s = strings.TrimSuffix(strings.TrimSpace(s), "/")
	bad := func(why string) (string, error) {
		return "", fmt.Errorf("%w %q: %s", ErrBadOrigin, truncate(s), why)
	}
	switch {
	case s == "":
		return bad("empty")
	case s == "*" || strings.EqualFold(s, "null"):
		return bad("name each site whose pages may call filecast, e.g. https://app.example")
	case strings.Contains(s, "://"):
		u, ok := parseOrigin(s)
		if !ok || u.Path != "" || u.RawQuery != "" || u.Fragment != "" || u.User != nil {
			return bad("want an origin such as https://app.example or http://127.0.0.1:3000: http or https, a host, an optional port and nothing else")
		}
		return s, nil
	}
	u, err := url.Parse("http://" + s)
	if err != nil || u.Host != s || u.Hostname() == "" {
		return bad("want an origin such as https://app.example, a host such as app.example or a host and port such as app.example:8443")
	}
	return s, nil
}

// parseOrigin reads an Origin header value: http or https with a host.
func parseOrigin(origin string) (*url.URL, bool) {
	u, err := url.Parse(origin)
	if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
		return nil, false // includes the opaque origin "null"
	}
	return u, true
}

// overTCP reports whether r came over a TCP connection (not a unix socket,
// and not a handler called without a server).
func overTCP(r *http.Request) bool {
	_, ok := r.Context().Value(http.LocalAddrContextKey).(*net.TCPAddr)
	return ok
}

// loopbackHost reports whether hostport (a Host header or an origin's
// host, with or without a port) names the local machine: "localhost" or a
// loopback address.
func loopbackHost(hostport string) bool {
	host := hostport
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		host = h
	}
	host = strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
	host = strings.TrimSuffix(host, ".")
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.Unmap().IsLoopback()
}

// sameHost reports whether origin u is the origin of a request sent to
// host (its Host header): the same host and port, a missing port being
// the default one of u's scheme.
func sameHost(u *url.URL, host string) bool {
	return host != "" && strings.EqualFold(withoutDefaultPort(u.Host, u.Scheme), withoutDefaultPort(host, u.Scheme))
}

func withoutDefaultPort(hostport, scheme string) string {
	switch {
	case scheme == "http":
		return strings.TrimSuffix(hostport, ":80")
	case scheme == "https":
		return strings.TrimSuffix(hostport, ":443")
	}
	return hostport
}

// truncate bounds a header value quoted in an error message.
func truncate(s string) string {
	if len(s) > 200 {
		return s[:200] + "…"
	}
	return s
}
