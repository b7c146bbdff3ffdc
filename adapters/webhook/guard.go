package webhook

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"strings"
	"syscall"
)

// ErrForbiddenAddress is matched (errors.Is) by the error of a delivery refused because its
// target is, or resolves to, an internal address. Such deliveries are not retried.
var ErrForbiddenAddress = errors.New("webhook target is a loopback, private, link-local or otherwise internal address " +
	"(use a public URL, or set notify.webhook.allow_private: true to allow internal targets)")

// blockedPrefixes are internal ranges that netip.Addr's predicates do not cover.
var blockedPrefixes = []netip.Prefix{
	netip.MustParsePrefix("0.0.0.0/8"),     // "this network"
	netip.MustParsePrefix("100.64.0.0/10"), // carrier-grade NAT; Alibaba Cloud metadata 100.100.100.200
	netip.MustParsePrefix("192.0.0.0/24"),  // IETF protocol assignments
	netip.MustParsePrefix("198.18.0.0/15"), // benchmarking
	netip.MustParsePrefix("240.0.0.0/4"),   // reserved, with broadcast 255.255.255.255
	netip.MustParsePrefix("fec0::/10"),     // deprecated site-local
}

// nat64 is the well-known NAT64 prefix, which embeds an IPv4 address in its last 32 bits.
var nat64 = netip.MustParsePrefix("64:ff9b::/96")

// forbiddenAddr reports whether ip is loopback, private (RFC 1918, fc00::/7), link-local
// (169.254/16 with the cloud metadata address 169.254.169.254, fe80::/10), multicast,
// unspecified, or one of blockedPrefixes, looking through IPv4-mapped and NAT64 forms.
func forbiddenAddr(ip netip.Addr) bool {
	ip = ip.Unmap().WithZone("")
	if !ip.IsValid() {
		return true
	}
	if ip.IsLoopback() || ip.IsPrivate() || ip.IsUnspecified() ||
		ip.IsLinkLocalUnicast() || ip.IsLinkLocalMulticast() ||
		ip.IsInterfaceLocalMulticast() || ip.IsMulticast() {
		return true
	}
	for _, p := range blockedPrefixes {
		if p.Contains(ip) {
			return true
		}
	}
	if nat64.Contains(ip) {
		b := ip.As16()
		return forbiddenAddr(netip.AddrFrom4([4]byte(b[12:])))
	}
	return false
}

// dialGuard is a net.Dialer Control function refusing connections to forbidden addresses. It
// runs after name resolution, on the address actually dialled, so a name that resolves (or
// rebinds) to an internal address is refused as well as a literal one. It fails closed.
func dialGuard(_, address string, _ syscall.RawConn) error {
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return fmt.Errorf("%w: cannot parse dialled address %q", ErrForbiddenAddress, address)
	}
	if forbiddenAddr(ap.Addr()) {
		return fmt.Errorf("%w: %s", ErrForbiddenAddress, ap.Addr())
	}
	return nil
}

// checkHost refuses, before any connection, a URL whose host is a forbidden literal address
// or a name that always means this machine. Names are checked at connect time by dialGuard.
func checkHost(u *url.URL) error {
	host := strings.TrimSuffix(strings.ToLower(u.Hostname()), ".")
	if host == "localhost" || strings.HasSuffix(host, ".localhost") {
		return fmt.Errorf("%w: %s", ErrForbiddenAddress, host)
	}
	if ip, err := netip.ParseAddr(host); err == nil && forbiddenAddr(ip) {
		return fmt.Errorf("%w: %s", ErrForbiddenAddress, ip)
	}
	// Forms such as "0x7f.1" or "2130706433" that some resolvers read as IPv4.
	if ip := net.ParseIP(host); ip == nil && looksNumeric(host) {
		return fmt.Errorf("%w: numeric host %q is ambiguous (write the address in dotted decimal)", ErrForbiddenAddress, host)
	}
	return nil
}

// looksNumeric reports whether host has no letters outside hexadecimal notation, as in the
// numeric IPv4 spellings inet_aton accepts.
func looksNumeric(host string) bool {
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
