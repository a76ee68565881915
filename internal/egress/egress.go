// Package egress is plugboard's one rule for calls it makes to addresses a
// tenant chose: the credential proxy, a plugin's test through the host and
// webhook deliveries. Every resolved address is checked at dial time, so a
// name that resolves to a metadata or private address is refused even when
// the URL looked harmless, and redirects are never followed.
package egress

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"syscall"
	"time"
)

// Policy says which address ranges beyond the public internet may be
// reached. Link-local, cloud metadata, unspecified and multicast addresses
// are refused whatever the policy says.
type Policy struct {
	// AllowPrivate lets calls reach private ranges (10/8, 172.16/12,
	// 192.168/16, 100.64/10, fc00::/7): an organization's on-prem targets.
	AllowPrivate bool
	// AllowLoopback lets calls reach 127/8 and ::1 (--dev and tests).
	AllowLoopback bool
}

// DeniedError is a refused address.
type DeniedError struct {
	Host   string
	Addr   netip.Addr
	Reason string
}

func (e *DeniedError) Error() string {
	if e.Host == "" || e.Host == e.Addr.String() {
		return fmt.Sprintf("address %s is not allowed: %s", e.Addr, e.Reason)
	}
	return fmt.Sprintf("host %s resolves to %s, which is not allowed: %s", e.Host, e.Addr, e.Reason)
}

// ErrTooLarge is a request or answer over its size limit.
var ErrTooLarge = errors.New("egress: body over the size limit")

var (
	metadata = []netip.Addr{
		netip.MustParseAddr("169.254.169.254"), // AWS, GCP, Azure, OpenStack
		netip.MustParseAddr("fd00:ec2::254"),   // AWS over IPv6
		netip.MustParseAddr("100.100.100.200"), // Alibaba Cloud
	}
	private = []netip.Prefix{
		netip.MustParsePrefix("10.0.0.0/8"),
		netip.MustParsePrefix("172.16.0.0/12"),
		netip.MustParsePrefix("192.168.0.0/16"),
		netip.MustParsePrefix("100.64.0.0/10"),
		netip.MustParsePrefix("fc00::/7"),
	}
)

// CheckAddr reports whether p lets a call reach a.
func (p Policy) CheckAddr(a netip.Addr) error {
	a = a.Unmap()
	deny := func(reason string) error { return &DeniedError{Addr: a, Reason: reason} }
	for _, m := range metadata {
		if a == m {
			return deny("a cloud metadata address")
		}
	}
	switch {
	case !a.IsValid():
		return deny("not an address")
	case a.IsUnspecified():
		return deny("the unspecified address")
	case a.IsLinkLocalUnicast(), a.IsLinkLocalMulticast():
		return deny("a link-local address")
	case a.IsMulticast():
		return deny("a multicast address")
	case a.IsLoopback():
		if !p.AllowLoopback {
			return deny("a loopback address")
		}
		return nil
	}
	for _, r := range private {
		if r.Contains(a) && !p.AllowPrivate {
			return deny("a private address; the organization does not allow private networks")
		}
	}
	return nil
}

// CheckURL checks a URL up front: http or https, a host, and every address
// the host resolves to allowed. The dial-time check still runs on each call
// (a name may resolve elsewhere later).
func CheckURL(ctx context.Context, raw string, p Policy) error {
	u, err := url.Parse(raw)
	if err != nil {
		return fmt.Errorf("not a URL: %w", err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return fmt.Errorf("the URL must start with http:// or https://")
	}
	host := u.Hostname()
	if host == "" {
		return fmt.Errorf("the URL has no host")
	}
	addrs, err := lookup(ctx, host)
	if err != nil {
		return err
	}
	for _, a := range addrs {
		if err := p.CheckAddr(a); err != nil {
			var d *DeniedError
			if errors.As(err, &d) {
				d.Host = host
			}
			return err
		}
	}
	return nil
}

func lookup(ctx context.Context, host string) ([]netip.Addr, error) {
	if a, err := netip.ParseAddr(host); err == nil {
		return []netip.Addr{a}, nil
	}
	addrs, err := net.DefaultResolver.LookupNetIP(ctx, "ip", host)
	if err != nil {
		return nil, fmt.Errorf("host %s does not resolve: %w", host, err)
	}
	return addrs, nil
}

// ClientOptions are the limits of a client; zero values take the defaults.
type ClientOptions struct {
	// DialTimeout bounds connecting (default 10s).
	DialTimeout time.Duration
	// ResponseHeaderTimeout bounds waiting for the answer's headers after
	// the request is written (default 30s).
	ResponseHeaderTimeout time.Duration
	// Timeout bounds a whole call, body included (default none: callers
	// bound it with their context).
	Timeout time.Duration
	// MaxIdleConnsPerHost keeps connections to one upstream for reuse
	// (default 64).
	MaxIdleConnsPerHost int
}

// NewTransport returns a transport that checks every address it dials
// against p.
func NewTransport(p Policy, o ClientOptions) *http.Transport {
	if o.DialTimeout <= 0 {
		o.DialTimeout = 10 * time.Second
	}
	if o.ResponseHeaderTimeout <= 0 {
		o.ResponseHeaderTimeout = 30 * time.Second
	}
	if o.MaxIdleConnsPerHost <= 0 {
		o.MaxIdleConnsPerHost = 64
	}
	d := &net.Dialer{Timeout: o.DialTimeout, KeepAlive: 30 * time.Second, Control: p.control}
	return &http.Transport{
		Proxy:                 nil, // an environment proxy would bypass the address check
		DialContext:           d.DialContext,
		ForceAttemptHTTP2:     true,
		MaxIdleConns:          4 * o.MaxIdleConnsPerHost,
		MaxIdleConnsPerHost:   o.MaxIdleConnsPerHost,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   10 * time.Second,
		ResponseHeaderTimeout: o.ResponseHeaderTimeout,
		ExpectContinueTimeout: time.Second,
	}
}

// NewClient returns a client on NewTransport that never follows redirects:
// a 3xx comes back as is, so a Location to another host is never called.
func NewClient(p Policy, o ClientOptions) *http.Client {
	return &http.Client{
		Transport: NewTransport(p, o),
		Timeout:   o.Timeout,
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
	}
}

// control runs after name resolution, before each connect, on the very
// address the socket connects to.
func (p Policy) control(_, address string, _ syscall.RawConn) error {
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return &DeniedError{Reason: "unparsable address " + address}
	}
	return p.CheckAddr(ap.Addr())
}
