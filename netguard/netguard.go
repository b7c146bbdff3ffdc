// Package netguard decides whether an IP address, or the host of a URL, is a public
// destination that infleet may send a request to on a client's say-so (a job's callback_url).
// It is the one rule set for the check at submit (handlers) and the check at connect time (the
// webhook sender's dialer), so the two cannot disagree.
//
// An address is refused when it is, or when an IPv6 form embeds or maps an IPv4 address that
// is: loopback, private (RFC 1918, fc00::/7), link-local, a cloud metadata address,
// unspecified, multicast, carrier-grade NAT (100.64.0.0/10), "this network" (0.0.0.0/8),
// documentation, benchmarking or otherwise reserved. The IPv6 forms looked through are
// IPv4-mapped (::ffff:a.b.c.d), IPv4-compatible (::a.b.c.d), 6to4 (2002::/16), NAT64
// (64:ff9b::/96) and Teredo (2001::/32, server and client). IPv4-compatible addresses and the
// local-use NAT64 prefix 64:ff9b:1::/48 are refused whatever they embed: the first are
// deprecated, and the second's embedding depends on a prefix length only the local network
// knows. Outside 2000::/3, the global unicast space, every IPv6 address is refused.
//
// It is a leaf package: it imports only the standard library, so the core, the handlers and
// every adapter may use it.
package netguard

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"
)

// Kind names a class of non-public address, as a phrase that completes "points at ...".
type Kind string

// The kinds of address Check refuses.
const (
	KindInvalid         Kind = "an invalid address"
	KindUnspecified     Kind = "the unspecified address"
	KindLoopback        Kind = "a loopback address"
	KindPrivate         Kind = "a private address"
	KindLinkLocal       Kind = "a link-local address"
	KindMetadata        Kind = "the cloud metadata address"
	KindMulticast       Kind = "a multicast address"
	KindSharedNAT       Kind = "a carrier-grade NAT address"
	KindDocumentation   Kind = "a documentation address"
	KindBenchmarking    Kind = "a benchmarking address"
	KindReserved        Kind = "a reserved address"
	KindIPv4Compatible  Kind = "a deprecated IPv4-compatible address"
	KindLocalNAT64      Kind = "a local-use NAT64 address"
	KindNotGlobalIPv6   Kind = "an IPv6 address outside the global unicast space"
	KindLocalhostDomain Kind = "a loopback name"
)

// Form names the IPv6 form through which Check found a refused IPv4 address.
type Form string

// The IPv6 forms that embed or map an IPv4 address.
const (
	FormIPv4Mapped     Form = "IPv4-mapped"
	FormIPv4Compatible Form = "IPv4-compatible"
	Form6to4           Form = "6to4"
	FormNAT64          Form = "NAT64"
	FormTeredoServer   Form = "Teredo server"
	FormTeredoClient   Form = "Teredo client"
)

// Refusal is the error Check and CheckHost return for a destination that is not public. It
// says what the destination is, and, for an IPv6 form embedding a refused IPv4 address,
// which form and which address.
type Refusal struct {
	// Host is the destination as checked: the address in its canonical form (without zone),
	// or the host name.
	Host string
	// Kind is what Host is or, when Form is set, what Embedded is.
	Kind Kind
	// Form is the IPv6 form of Host that embeds Embedded; empty when Host itself is of Kind.
	Form Form
	// Embedded is the IPv4 address found in Host; valid only when Form is set.
	Embedded netip.Addr
}

// Reason says what the destination is, without naming it: "a loopback address", or "a 6to4
// address embedding 127.0.0.1, a loopback address".
func (r *Refusal) Reason() string {
	switch r.Form {
	case "":
		return string(r.Kind)
	case FormTeredoServer:
		return fmt.Sprintf("a Teredo address whose server is %s, %s", r.Embedded, r.Kind)
	case FormTeredoClient:
		return fmt.Sprintf("a Teredo address whose client is %s, %s", r.Embedded, r.Kind)
	case FormIPv4Mapped, FormIPv4Compatible:
		return fmt.Sprintf("an %s address of %s, %s", r.Form, r.Embedded, r.Kind)
	case FormNAT64:
		return fmt.Sprintf("a NAT64 address embedding %s, %s", r.Embedded, r.Kind)
	default:
		return fmt.Sprintf("a %s address embedding %s, %s", r.Form, r.Embedded, r.Kind)
	}
}

// Error says which destination is refused and why.
func (r *Refusal) Error() string {
	return r.Host + " is " + r.Reason()
}

// ErrAmbiguousHost is returned by CheckHost for a host spelled with numbers that is not an IP
// address in standard form ("2130706433", "0x7f.1", "0177.0.0.1"): resolvers and C libraries
// read such spellings as IPv4 addresses in ways that differ, so they are refused outright.
var ErrAmbiguousHost = errors.New("numeric host that resolvers read differently " +
	"(write an IPv4 address in dotted decimal, or an IPv6 address in standard form)")

// Cloud metadata services, reachable from the instance only: AWS, GCP, Azure and Oracle
// (169.254.169.254, fd00:ec2::254 for AWS over IPv6), Alibaba Cloud (100.100.100.200) and
// Azure's WireServer (168.63.129.16, a public address served by the host).
var metadataAddrs = []netip.Addr{
	netip.MustParseAddr("169.254.169.254"),
	netip.MustParseAddr("fd00:ec2::254"),
	netip.MustParseAddr("100.100.100.200"),
	netip.MustParseAddr("168.63.129.16"),
}

type rangeKind struct {
	prefix netip.Prefix
	kind   Kind
}

// v4Ranges are the IPv4 ranges refused, from the IANA special-purpose address registry; the
// first match names the kind. Multicast and broadcast are in 224.0.0.0/3.
var v4Ranges = []rangeKind{
	{netip.MustParsePrefix("0.0.0.0/32"), KindUnspecified},
	{netip.MustParsePrefix("0.0.0.0/8"), KindReserved}, // "this network"
	{netip.MustParsePrefix("10.0.0.0/8"), KindPrivate},
	{netip.MustParsePrefix("100.64.0.0/10"), KindSharedNAT},
	{netip.MustParsePrefix("127.0.0.0/8"), KindLoopback},
	{netip.MustParsePrefix("169.254.0.0/16"), KindLinkLocal},
	{netip.MustParsePrefix("172.16.0.0/12"), KindPrivate},
	{netip.MustParsePrefix("192.0.0.0/24"), KindReserved}, // IETF protocol assignments
	{netip.MustParsePrefix("192.0.2.0/24"), KindDocumentation},
	{netip.MustParsePrefix("192.88.99.0/24"), KindReserved}, // deprecated 6to4 relay anycast
	{netip.MustParsePrefix("192.168.0.0/16"), KindPrivate},
	{netip.MustParsePrefix("198.18.0.0/15"), KindBenchmarking},
	{netip.MustParsePrefix("198.51.100.0/24"), KindDocumentation},
	{netip.MustParsePrefix("203.0.113.0/24"), KindDocumentation},
	{netip.MustParsePrefix("224.0.0.0/4"), KindMulticast},
	{netip.MustParsePrefix("240.0.0.0/4"), KindReserved}, // with broadcast 255.255.255.255
}

// v6Ranges are the IPv6 ranges refused inside or beside 2000::/3 that are not embeddings;
// the first match names the kind.
var v6Ranges = []rangeKind{
	{netip.MustParsePrefix("::/128"), KindUnspecified},
	{netip.MustParsePrefix("::1/128"), KindLoopback},
	{netip.MustParsePrefix("64:ff9b:1::/48"), KindLocalNAT64},
	{netip.MustParsePrefix("fc00::/7"), KindPrivate},
	{netip.MustParsePrefix("fe80::/10"), KindLinkLocal},
	{netip.MustParsePrefix("fec0::/10"), KindReserved}, // deprecated site-local
	{netip.MustParsePrefix("ff00::/8"), KindMulticast},
	{netip.MustParsePrefix("2001:2::/48"), KindBenchmarking},
	{netip.MustParsePrefix("2001:10::/28"), KindReserved}, // deprecated ORCHID
	{netip.MustParsePrefix("2001:db8::/32"), KindDocumentation},
	{netip.MustParsePrefix("3fff::/20"), KindDocumentation},
}

var (
	ipv4Compatible = netip.MustParsePrefix("::/96")
	nat64          = netip.MustParsePrefix("64:ff9b::/96")
	sixToFour      = netip.MustParsePrefix("2002::/16")
	teredo         = netip.MustParsePrefix("2001::/32")
	globalUnicast  = netip.MustParsePrefix("2000::/3")
)

// Check returns nil when ip is a public address, or a *Refusal saying what it is. A zone
// ("fe80::1%eth0") is ignored. It is a pure function, safe for concurrent use.
func Check(ip netip.Addr) error {
	if r := check(ip); r != nil {
		return r
	}
	return nil
}

// IsPublic reports whether Check(ip) is nil.
func IsPublic(ip netip.Addr) bool { return check(ip) == nil }

func check(ip netip.Addr) *Refusal {
	ip = ip.WithZone("")
	if !ip.IsValid() {
		return &Refusal{Host: "the zero address", Kind: KindInvalid}
	}
	host := ip.String()
	if ip.Is4() {
		if k := kind4(ip); k != "" {
			return &Refusal{Host: host, Kind: k}
		}
		return nil
	}
	b := ip.As16()
	embedded := func(f Form, v4 netip.Addr) *Refusal {
		if k := kind4(v4); k != "" {
			return &Refusal{Host: host, Kind: k, Form: f, Embedded: v4}
		}
		return nil
	}
	switch {
	case ip.Is4In6():
		return embedded(FormIPv4Mapped, ip.Unmap())
	case ip == netip.IPv6Unspecified():
		return &Refusal{Host: host, Kind: KindUnspecified}
	case ip == netip.IPv6Loopback():
		return &Refusal{Host: host, Kind: KindLoopback}
	case ipv4Compatible.Contains(ip):
		if r := embedded(FormIPv4Compatible, netip.AddrFrom4([4]byte(b[12:]))); r != nil {
			return r
		}
		return &Refusal{Host: host, Kind: KindIPv4Compatible}
	case nat64.Contains(ip):
		return embedded(FormNAT64, netip.AddrFrom4([4]byte(b[12:])))
	case sixToFour.Contains(ip):
		return embedded(Form6to4, netip.AddrFrom4([4]byte(b[2:6])))
	case teredo.Contains(ip):
		if r := embedded(FormTeredoServer, netip.AddrFrom4([4]byte(b[4:8]))); r != nil {
			return r
		}
		return embedded(FormTeredoClient, netip.AddrFrom4([4]byte{^b[12], ^b[13], ^b[14], ^b[15]}))
	}
	for _, m := range metadataAddrs {
		if ip == m {
			return &Refusal{Host: host, Kind: KindMetadata}
		}
	}
	for _, r := range v6Ranges {
		if r.prefix.Contains(ip) {
			return &Refusal{Host: host, Kind: r.kind}
		}
	}
	if !globalUnicast.Contains(ip) {
		return &Refusal{Host: host, Kind: KindNotGlobalIPv6}
	}
	return nil
}

// kind4 returns the kind of a refused IPv4 address, or "" for a public one.
func kind4(ip netip.Addr) Kind {
	for _, m := range metadataAddrs {
		if ip == m {
			return KindMetadata
		}
	}
	for _, r := range v4Ranges {
		if r.prefix.Contains(ip) {
			return r.kind
		}
	}
	return ""
}

// CheckHost checks a URL's host as url.URL.Hostname returns it (no brackets, no port), before
// any name resolution. Case and a trailing dot are ignored.
//
//   - An IP address in standard form: it returns the address and Check's verdict.
//   - "localhost" or a name under it: a *Refusal of KindLocalhostDomain.
//   - Any other spelling made of numbers (decimal, octal or hex IPv4 forms): ErrAmbiguousHost.
//   - Any other name: the zero Addr and nil. The caller must then check every address the name
//     resolves to with Check, at the time it connects.
//
// For a valid address a, CheckHost(a.String()) and CheckHost(a.StringExpanded()) refuse
// exactly when Check(a) does.
func CheckHost(host string) (netip.Addr, error) {
	host = strings.TrimSuffix(strings.ToLower(host), ".")
	if ip, err := netip.ParseAddr(host); err == nil {
		return ip, Check(ip)
	}
	if host == "localhost" || strings.HasSuffix(host, ".localhost") {
		return netip.Addr{}, &Refusal{Host: host, Kind: KindLocalhostDomain}
	}
	if looksNumeric(host) {
		return netip.Addr{}, ErrAmbiguousHost
	}
	return netip.Addr{}, nil
}

// looksNumeric reports whether host could be read as an address rather than a name: made
// only of decimal or 0x-hex labels, as the numeric IPv4 spellings inet_aton accepts
// ("2130706433", "0x7f.1", "0177.1"), or of hex digits, colons and dots, as an IPv6 spelling
// netip does not accept. A name has a letter outside such labels in at least one label.
func looksNumeric(host string) bool {
	if host == "" {
		return false
	}
	if strings.Contains(host, ":") {
		return true // not a DNS name; an unusual IPv6 spelling
	}
	for _, label := range strings.Split(host, ".") {
		l := strings.TrimPrefix(label, "0x")
		if l == "" {
			return false
		}
		hex := label != l
		for _, r := range l {
			isDigit := r >= '0' && r <= '9'
			isHex := hex && r >= 'a' && r <= 'f'
			if !isDigit && !isHex {
				return false
			}
		}
	}
	return true
}
