package webhook

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"syscall"
	"time"
)

// Resolver looks up the addresses of a host name; *net.Resolver satisfies
// it. It must be safe for concurrent use.
type Resolver interface {
	LookupIPAddr(ctx context.Context, host string) ([]net.IPAddr, error)
}

const (
	maxURLLen      = 2048
	resolveTimeout = 5 * time.Second
	dialTimeout    = 5 * time.Second
)

// blockedRange is a range of addresses filecast does not call, and what it is.
type blockedRange struct {
	prefix netip.Prefix
	kind   string
}

// blocked lists the ranges refused unless AllowPrivate is set, the more
// specific first. IPv4-mapped IPv6 addresses are unmapped before the check,
// and the IPv4 address inside a NAT64 or 6to4 address is checked too.
var blocked = func() []blockedRange {
	list := []struct{ cidr, kind string }{
		{"169.254.169.254/32", "cloud metadata"},
		{"169.254.170.2/32", "cloud metadata"},
		{"100.100.100.200/32", "cloud metadata"},
		{"fd00:ec2::254/128", "cloud metadata"},
		{"0.0.0.0/8", "unspecified (this network)"},
		{"10.0.0.0/8", "private"},
		{"100.64.0.0/10", "CGNAT (shared address space)"},
		{"127.0.0.0/8", "loopback"},
		{"169.254.0.0/16", "link-local"},
		{"172.16.0.0/12", "private"},
		{"192.0.0.0/24", "IETF protocol assignment"},
		{"192.0.2.0/24", "documentation"},
		{"192.88.99.0/24", "6to4 relay anycast"},
		{"192.168.0.0/16", "private"},
		{"198.18.0.0/15", "benchmarking"},
		{"198.51.100.0/24", "documentation"},
		{"203.0.113.0/24", "documentation"},
		{"224.0.0.0/4", "multicast"},
		{"240.0.0.0/4", "reserved"},
		{"::/128", "unspecified"},
		{"::1/128", "loopback"},
		{"::/96", "IPv4-compatible"},
		{"100::/64", "discard-only"},
		{"2001::/32", "Teredo"},
		{"2001:db8::/32", "documentation"},
		{"fc00::/7", "unique-local"},
		{"fe80::/10", "link-local"},
		{"fec0::/10", "site-local"},
		{"ff00::/8", "multicast"},
	}
	out := make([]blockedRange, len(list))
	for i, r := range list {
		out[i] = blockedRange{netip.MustParsePrefix(r.cidr), r.kind}
	}
	return out
}()

var (
	nat64   = netip.MustParsePrefix("64:ff9b::/96")
	nat64v2 = netip.MustParsePrefix("64:ff9b:1::/48")
	sixTo4  = netip.MustParsePrefix("2002::/16")
)

// classify returns what kind of forbidden address ip is, or "" when
// filecast may call it.
func classify(ip netip.Addr) string {
	ip = ip.Unmap().WithZone("")
	if !ip.IsValid() {
		return "invalid"
	}
	for _, r := range blocked {
		if r.prefix.Contains(ip) {
			return r.kind
		}
	}
	if ip.Is6() {
		b := ip.As16()
		var inner netip.Addr
		switch {
		case nat64.Contains(ip):
			inner = netip.AddrFrom4([4]byte(b[12:16]))
		case nat64v2.Contains(ip):
			inner = netip.AddrFrom4([4]byte(b[12:16]))
		case sixTo4.Contains(ip):
			inner = netip.AddrFrom4([4]byte(b[2:6]))
		}
		if inner.IsValid() {
			if k := classify(inner); k != "" {
				return k + " (embedded in " + ip.String() + ")"
			}
		}
	}
	return ""
}

// checkIP returns an *AddressError when ip may not be called.
func checkIP(host string, ip netip.Addr) error {
	if k := classify(ip); k != "" {
		return &AddressError{Host: host, IP: ip.Unmap().String(), Kind: k}
	}
	return nil
}

// guard checks URLs at registration and addresses at connect time.
type guard struct {
	allowPrivate bool
	resolver     Resolver // nil means the system resolver
}

// parseURL checks the form of a webhook URL: absolute http or https, a
// host, no credentials, no fragment.
func parseURL(raw string) (*url.URL, error) {
	if raw == "" {
		return nil, badURL("url is required")
	}
	if len(raw) > maxURLLen {
		return nil, badURL("longer than %d bytes", maxURLLen)
	}
	u, err := url.Parse(raw)
	if err != nil {
		return nil, badURL("%q cannot be parsed: %v", truncate(raw, 200), errors.Unwrap(err))
	}
	switch {
	case u.Scheme != "http" && u.Scheme != "https":
		return nil, badURL("%q: only http and https URLs are supported", truncate(raw, 200))
	case u.Opaque != "" || u.Host == "" || u.Hostname() == "":
		return nil, badURL("%q has no host", truncate(raw, 200))
	case u.User != nil:
		return nil, badURL("credentials in the URL are not allowed; authenticate requests by their signature")
	case u.Fragment != "" || strings.Contains(raw, "#"):
		return nil, badURL("%q has a fragment, which is never sent; drop it", truncate(raw, 200))
	}
	return u, nil
}

// check refuses a URL whose host is, or resolves to, a forbidden address.
func (g *guard) check(ctx context.Context, u *url.URL) error {
	if g.allowPrivate {
		return nil
	}
	host := u.Hostname()
	if ip, err := netip.ParseAddr(host); err == nil {
		return checkIP(host, ip)
	}
	name := strings.ToLower(strings.TrimSuffix(host, "."))
	if name == "localhost" || strings.HasSuffix(name, ".localhost") {
		return &AddressError{Host: host, IP: host, Kind: "loopback"}
	}
	ips, err := g.lookup(ctx, host)
	if err != nil {
		return badURL("host %q cannot be resolved: %v", host, err)
	}
	for _, ip := range ips {
		if err := checkIP(host, ip); err != nil {
			return err
		}
	}
	return nil
}

func (g *guard) lookup(ctx context.Context, host string) ([]netip.Addr, error) {
	ctx, cancel := context.WithTimeout(ctx, resolveTimeout)
	defer cancel()
	r := g.resolver
	if r == nil {
		r = net.DefaultResolver
	}
	addrs, err := r.LookupIPAddr(ctx, host)
	if err != nil {
		return nil, err
	}
	out := make([]netip.Addr, 0, len(addrs))
	for _, a := range addrs {
		if ip, ok := netip.AddrFromSlice(a.IP); ok {
			out = append(out, ip.Unmap())
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no addresses for %s", host)
	}
	return out, nil
}

// control is the net.Dialer Control function: it sees the address actually
// being dialled, after every resolution, so a name that resolved to a
// public address at registration and to a private one now (DNS rebinding)
// is still refused.
func (g *guard) control(_, address string, _ syscall.RawConn) error {
	host, _, err := net.SplitHostPort(address)
	if err != nil {
		return fmt.Errorf("dial %s: %w", address, err)
	}
	ip, err := netip.ParseAddr(host)
	if err != nil {
		return fmt.Errorf("dial %s: %w", address, err)
	}
	return checkIP("", ip)
}

// dialContext dials with the guard. With a custom resolver it resolves the
// host itself and dials the addresses in turn; the Control function checks
// each one either way.
func (g *guard) dialContext() func(ctx context.Context, network, addr string) (net.Conn, error) {
	d := &net.Dialer{Timeout: dialTimeout, KeepAlive: 30 * time.Second}
	if !g.allowPrivate {
		d.Control = g.control
	}
	if g.resolver == nil {
		return d.DialContext
	}
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		host, port, err := net.SplitHostPort(addr)
		if err != nil {
			return nil, err
		}
		if _, err := netip.ParseAddr(host); err == nil {
			return d.DialContext(ctx, network, addr)
		}
		ips, err := g.lookup(ctx, host)
		if err != nil {
			return nil, err
		}
		var first error
		for _, ip := range ips {
			c, err := d.DialContext(ctx, network, net.JoinHostPort(ip.String(), port))
			if err == nil {
				return c, nil
			}
			if first == nil {
				first = err
			}
		}
		return nil, first
	}
}

// client returns the HTTP client deliveries use: base (or a default) with
// the guarded dialer, no proxy and no redirects followed.
func (g *guard) client(base *http.Client) (*http.Client, error) {
	var c http.Client
	if base != nil {
		c = *base
	}
	c.Timeout = 0 // each attempt has its own context deadline
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	switch t := c.Transport.(type) {
	case nil:
		c.Transport = &http.Transport{
			DialContext:           g.dialContext(),
			ForceAttemptHTTP2:     true,
			MaxIdleConns:          100,
			MaxIdleConnsPerHost:   32, // one kept-alive connection per webhook lane to the host
			IdleConnTimeout:       90 * time.Second,
			TLSHandshakeTimeout:   dialTimeout,
			ExpectContinueTimeout: time.Second,
		}
	case *http.Transport:
		if !g.allowPrivate {
			t = t.Clone()
			t.DialContext = g.dialContext()
			t.DialTLSContext = nil
			t.Proxy = nil // a proxy would be the address checked, not the endpoint
			c.Transport = t
		}
	default:
		if !g.allowPrivate {
			return nil, fmt.Errorf("%w: HTTPClient.Transport must be an *http.Transport (or nil) so that connect-time address checks apply; got %T", ErrBadOptions, t)
		}
	}
	return &c, nil
}
