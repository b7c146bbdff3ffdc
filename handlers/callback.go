package handlers

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"strings"
	"time"
)

// DefaultCallbackResolveTimeout bounds the name resolution of a callback_url at submit.
const DefaultCallbackResolveTimeout = 2 * time.Second

// CallbackPolicy decides, at submit, whether a job's callback_url may be used: https only
// unless AllowHTTP, and unless AllowPrivate no host that is, or resolves to, a loopback,
// private, link-local (cloud metadata), multicast or otherwise internal address. The webhook
// sender checks the address again when it connects, so a name that later rebinds to an
// internal address is still refused. The zero value is the strict policy; it is safe for
// concurrent use.
type CallbackPolicy struct {
	AllowHTTP    bool
	AllowPrivate bool
	// Resolver resolves host names; nil is net.DefaultResolver.
	Resolver *net.Resolver
	// Timeout bounds resolution. Default 2s.
	Timeout time.Duration
}

// blockedCallbackPrefixes are internal ranges netip.Addr's predicates do not cover.
var blockedCallbackPrefixes = []netip.Prefix{
	netip.MustParsePrefix("0.0.0.0/8"),
	netip.MustParsePrefix("100.64.0.0/10"), // carrier-grade NAT; Alibaba Cloud metadata 100.100.100.200
	netip.MustParsePrefix("192.0.0.0/24"),
	netip.MustParsePrefix("198.18.0.0/15"),
	netip.MustParsePrefix("240.0.0.0/4"),
	netip.MustParsePrefix("fec0::/10"),
}

var (
	nat64Prefix  = netip.MustParsePrefix("64:ff9b::/96")
	metadataIPv4 = netip.MustParseAddr("169.254.169.254")
	metadataIPv6 = netip.MustParseAddr("fd00:ec2::254")
)

// internalAddr names the kind of internal address ip is, or returns "" for a public one.
func internalAddr(ip netip.Addr) string {
	ip = ip.Unmap().WithZone("")
	switch {
	case !ip.IsValid():
		return "an invalid address"
	case ip == metadataIPv4 || ip == metadataIPv6:
		return "the cloud metadata address"
	case ip.IsLoopback():
		return "a loopback address"
	case ip.IsPrivate():
		return "a private address"
	case ip.IsUnspecified():
		return "the unspecified address"
	case ip.IsLinkLocalUnicast():
		return "a link-local address"
	case ip.IsMulticast(), ip.IsLinkLocalMulticast(), ip.IsInterfaceLocalMulticast():
		return "a multicast address"
	}
	for _, p := range blockedCallbackPrefixes {
		if p.Contains(ip) {
			return "a reserved address"
		}
	}
	if nat64Prefix.Contains(ip) {
		b := ip.As16()
		return internalAddr(netip.AddrFrom4([4]byte(b[12:])))
	}
	return ""
}

// Check returns nil when raw may be used as a callback URL, or an error saying why not, fit
// to show to the client.
func (c CallbackPolicy) Check(ctx context.Context, raw string) error {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return errors.New("is not an absolute URL")
	}
	switch u.Scheme {
	case "https":
	case "http":
		if !c.AllowHTTP {
			return errors.New("must use https (notify.webhook.allow_http allows http)")
		}
	default:
		return fmt.Errorf("has scheme %q; use https", u.Scheme)
	}
	if u.User != nil {
		return errors.New("must not carry user information")
	}
	if c.AllowPrivate {
		return nil
	}
	host := strings.TrimSuffix(strings.ToLower(u.Hostname()), ".")
	if ip, err := netip.ParseAddr(host); err == nil {
		if kind := internalAddr(ip); kind != "" {
			return fmt.Errorf("points at %s (%s); webhooks go to public addresses only", kind, ip)
		}
		return nil
	}
	if ip := net.ParseIP(host); ip != nil {
		// Forms netip does not read but net does (e.g. leading zeros).
		return errors.New("has an IP address in an unusual form; write it in dotted decimal")
	}
	if looksNumericHost(host) {
		return errors.New("has a numeric host that resolvers read differently; write the address in dotted decimal")
	}
	if host == "localhost" || strings.HasSuffix(host, ".localhost") {
		return errors.New("points at a loopback address (localhost); webhooks go to public addresses only")
	}
	res := c.Resolver
	if res == nil {
		res = net.DefaultResolver
	}
	rctx, cancel := context.WithTimeout(ctx, cmpDuration(c.Timeout, DefaultCallbackResolveTimeout))
	defer cancel()
	addrs, err := res.LookupNetIP(rctx, "ip", host)
	if err != nil || len(addrs) == 0 {
		return fmt.Errorf("has host %s, which does not resolve; use a name with public DNS", host)
	}
	for _, ip := range addrs {
		if kind := internalAddr(ip); kind != "" {
			return fmt.Errorf("has host %s, which resolves to %s (%s); webhooks go to public addresses only", host, kind, ip)
		}
	}
	return nil
}

func cmpDuration(d, def time.Duration) time.Duration {
	if d > 0 {
		return d
	}
	return def
}

// looksNumericHost reports whether host is made only of decimal or 0x-hex labels, as the
// numeric IPv4 spellings inet_aton accepts ("2130706433", "0x7f.1").
func looksNumericHost(host string) bool {
	if host == "" {
		return false
	}
	for _, label := range strings.Split(host, ".") {
		l := strings.TrimPrefix(strings.TrimPrefix(label, "0x"), "0X")
		if l == "" {
			return false
		}
		hex := label != l
		for _, r := range l {
			isDigit := r >= '0' && r <= '9'
			isHex := hex && (r >= 'a' && r <= 'f' || r >= 'A' && r <= 'F')
			if !isDigit && !isHex {
				return false
			}
		}
	}
	return true
}
