package server

import (
	"fmt"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
)

// MaxRequestBody bounds the body of a request to the HTTP endpoint: room
// for a write_file of events.MaxReadSize bytes as base64 in JSON. A larger
// declared body answers 413; a longer streamed one is cut and answered
// with a JSON-RPC parse error.
const MaxRequestBody = 32 << 20

// checkOrigin refuses, with 403, browser requests from other sites: a
// request whose Origin header names a host that is neither loopback nor in
// Options.AllowedOrigins. Requests without an Origin (agents, curl) pass.
// It also bounds the body to MaxRequestBody.
func (s *Server) checkOrigin(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if origin := r.Header.Get("Origin"); origin != "" && !s.originAllowed(origin) {
			http.Error(w, "Forbidden: requests from origin "+origin+" are not allowed", http.StatusForbidden)
			return
		}
		if r.ContentLength > MaxRequestBody {
			http.Error(w, fmt.Sprintf("Request Entity Too Large: the limit is %d bytes", MaxRequestBody), http.StatusRequestEntityTooLarge)
			return
		}
		if r.Body != nil && r.Body != http.NoBody {
			r.Body = http.MaxBytesReader(w, r.Body, MaxRequestBody)
		}
		next.ServeHTTP(w, r)
	})
}

func (s *Server) originAllowed(origin string) bool {
	u, err := url.Parse(origin)
	if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
		return false // includes the opaque origin "null"
	}
	host := u.Hostname()
	if strings.EqualFold(host, "localhost") {
		return true
	}
	if ip, err := netip.ParseAddr(host); err == nil && ip.IsLoopback() {
		return true
	}
	for _, a := range s.opts.AllowedOrigins {
		a = strings.TrimSuffix(a, "/")
		if strings.EqualFold(a, origin) || strings.EqualFold(a, u.Host) || strings.EqualFold(a, host) {
			return true
		}
	}
	return false
}
