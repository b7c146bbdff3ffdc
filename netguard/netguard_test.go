package netguard_test

import (
	"errors"
	"net/netip"
	"net/url"
	"strings"
	"testing"

	"github.com/infleet/infleet/netguard"
)

func TestCheck(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		addr string
		kind netguard.Kind // "" for public
		form netguard.Form
	}{
		// IPv4.
		{"127.0.0.1", netguard.KindLoopback, ""},
		{"127.1.2.3", netguard.KindLoopback, ""},
		{"10.1.2.3", netguard.KindPrivate, ""},
		{"172.16.0.1", netguard.KindPrivate, ""},
		{"172.31.255.255", netguard.KindPrivate, ""},
		{"192.168.1.1", netguard.KindPrivate, ""},
		{"169.254.169.254", netguard.KindMetadata, ""},
		{"169.254.0.1", netguard.KindLinkLocal, ""},
		{"100.100.100.200", netguard.KindMetadata, ""},
		{"168.63.129.16", netguard.KindMetadata, ""},
		{"100.64.0.1", netguard.KindSharedNAT, ""},
		{"100.127.255.255", netguard.KindSharedNAT, ""},
		{"0.0.0.0", netguard.KindUnspecified, ""},
		{"0.1.2.3", netguard.KindReserved, ""},
		{"192.0.0.8", netguard.KindReserved, ""},
		{"192.88.99.1", netguard.KindReserved, ""},
		{"192.0.2.1", netguard.KindDocumentation, ""},
		{"198.51.100.7", netguard.KindDocumentation, ""},
		{"203.0.113.9", netguard.KindDocumentation, ""},
		{"198.18.0.1", netguard.KindBenchmarking, ""},
		{"198.19.255.255", netguard.KindBenchmarking, ""},
		{"224.0.0.1", netguard.KindMulticast, ""},
		{"239.255.255.250", netguard.KindMulticast, ""},
		{"240.0.0.1", netguard.KindReserved, ""},
		{"255.255.255.255", netguard.KindReserved, ""},
		{"8.8.8.8", "", ""},
		{"1.1.1.1", "", ""},
		{"93.184.216.34", "", ""},
		{"172.32.0.1", "", ""},
		{"100.63.255.255", "", ""},
		{"100.128.0.0", "", ""},
		{"198.20.0.1", "", ""},

		// Plain IPv6.
		{"::", netguard.KindUnspecified, ""},
		{"::1", netguard.KindLoopback, ""},
		{"fe80::1", netguard.KindLinkLocal, ""},
		{"fe80::1%eth0", netguard.KindLinkLocal, ""},
		{"fc00::1", netguard.KindPrivate, ""},
		{"fd12:3456::1", netguard.KindPrivate, ""},
		{"fd00:ec2::254", netguard.KindMetadata, ""},
		{"fec0::1", netguard.KindReserved, ""},
		{"ff02::1", netguard.KindMulticast, ""},
		{"ff05::1:3", netguard.KindMulticast, ""},
		{"2001:db8::1", netguard.KindDocumentation, ""},
		{"3fff::1", netguard.KindDocumentation, ""},
		{"2001:2::1", netguard.KindBenchmarking, ""},
		{"2001:10::1", netguard.KindReserved, ""},
		{"100::1", netguard.KindNotGlobalIPv6, ""},
		{"::ffff:0:7f00:1", netguard.KindNotGlobalIPv6, ""}, // SIIT IPv4-translated
		{"4000::1", netguard.KindNotGlobalIPv6, ""},
		{"2606:4700:4700::1111", "", ""},
		{"2001:4860:4860::8888", "", ""},
		{"2a00:1450:4001:80b::200e", "", ""},

		// IPv4-mapped.
		{"::ffff:127.0.0.1", netguard.KindLoopback, netguard.FormIPv4Mapped},
		{"::ffff:7f00:1", netguard.KindLoopback, netguard.FormIPv4Mapped},
		{"::ffff:169.254.169.254", netguard.KindMetadata, netguard.FormIPv4Mapped},
		{"::ffff:10.0.0.1", netguard.KindPrivate, netguard.FormIPv4Mapped},
		{"::ffff:0.0.0.0", netguard.KindUnspecified, netguard.FormIPv4Mapped},
		{"::ffff:93.184.216.34", "", ""},

		// IPv4-compatible: refused whatever they embed.
		{"::127.0.0.1", netguard.KindLoopback, netguard.FormIPv4Compatible},
		{"::7f00:1", netguard.KindLoopback, netguard.FormIPv4Compatible},
		{"::a9fe:a9fe", netguard.KindMetadata, netguard.FormIPv4Compatible},
		{"::10.1.2.3", netguard.KindPrivate, netguard.FormIPv4Compatible},
		{"::8.8.8.8", netguard.KindIPv4Compatible, ""},

		// 6to4: 2002:AABB:CCDD::/48 for AA.BB.CC.DD.
		{"2002:7f00:1::", netguard.KindLoopback, netguard.Form6to4},
		{"2002:7f00:1:1234:5678:9abc:def0:1", netguard.KindLoopback, netguard.Form6to4},
		{"2002:a9fe:a9fe::1", netguard.KindMetadata, netguard.Form6to4},
		{"2002:c0a8:101::1", netguard.KindPrivate, netguard.Form6to4},
		{"2002:6440:1::", netguard.KindSharedNAT, netguard.Form6to4},
		{"2002::", netguard.KindUnspecified, netguard.Form6to4},
		{"2002:808:808::1", "", ""},

		// NAT64, well-known prefix: looked through.
		{"64:ff9b::7f00:1", netguard.KindLoopback, netguard.FormNAT64},
		{"64:ff9b::127.0.0.1", netguard.KindLoopback, netguard.FormNAT64},
		{"64:ff9b::a9fe:a9fe", netguard.KindMetadata, netguard.FormNAT64},
		{"64:ff9b::a00:1", netguard.KindPrivate, netguard.FormNAT64},
		{"64:ff9b::808:808", "", ""},
		// NAT64, local-use prefix: refused whatever it embeds.
		{"64:ff9b:1::7f00:1", netguard.KindLocalNAT64, ""},
		{"64:ff9b:1:7f00:0:100::", netguard.KindLocalNAT64, ""},
		{"64:ff9b:1::808:808", netguard.KindLocalNAT64, ""},

		// Teredo: 2001:0:SSSS:SSSS:flags:port:CCCC:CCCC, client bits inverted.
		{"2001:0:a00:1::", netguard.KindPrivate, netguard.FormTeredoServer},
		{"2001:0:7f00:1:8000:63bf:f7f7:f7f7", netguard.KindLoopback, netguard.FormTeredoServer},
		{"2001:0:4136:e378:8000:63bf:80ff:fffe", netguard.KindLoopback, netguard.FormTeredoClient},
		{"2001:0:4136:e378:8000:63bf:5601:5601", netguard.KindMetadata, netguard.FormTeredoClient},
		{"2001:0:4136:e378:8000:63bf:f5ff:fffe", netguard.KindPrivate, netguard.FormTeredoClient},
		{"2001:0:4136:e378:8000:63bf:ffff:ffff", netguard.KindUnspecified, netguard.FormTeredoClient},
		{"2001:0:4136:e378:8000:63bf:f7f7:f7f7", "", ""}, // server 65.54.227.120, client 8.8.8.8
	} {
		ip := netip.MustParseAddr(tc.addr)
		err := netguard.Check(ip)
		if tc.kind == "" {
			if err != nil {
				t.Errorf("Check(%s) = %v, want nil", tc.addr, err)
			}
			if !netguard.IsPublic(ip) {
				t.Errorf("IsPublic(%s) = false", tc.addr)
			}
			continue
		}
		var r *netguard.Refusal
		if !errors.As(err, &r) {
			t.Errorf("Check(%s) = %v, want a Refusal of %q", tc.addr, err, tc.kind)
			continue
		}
		if r.Kind != tc.kind || r.Form != tc.form {
			t.Errorf("Check(%s): kind %q form %q, want kind %q form %q", tc.addr, r.Kind, r.Form, tc.kind, tc.form)
		}
		if r.Form != "" && netguard.Check(r.Embedded) == nil {
			t.Errorf("Check(%s): embedded %s is public", tc.addr, r.Embedded)
		}
		if netguard.IsPublic(ip) {
			t.Errorf("IsPublic(%s) = true", tc.addr)
		}
	}
}

func TestRefusalText(t *testing.T) {
	t.Parallel()
	for addr, want := range map[string]string{
		"127.0.0.1":                            "127.0.0.1 is a loopback address",
		"2002:7f00:1::":                        "2002:7f00:1:: is a 6to4 address embedding 127.0.0.1, a loopback address",
		"::ffff:127.0.0.1":                     "::ffff:127.0.0.1 is an IPv4-mapped address of 127.0.0.1, a loopback address",
		"::7f00:1":                             "::7f00:1 is an IPv4-compatible address of 127.0.0.1, a loopback address",
		"64:ff9b::a9fe:a9fe":                   "64:ff9b::a9fe:a9fe is a NAT64 address embedding 169.254.169.254, the cloud metadata address",
		"2001:0:4136:e378:8000:63bf:80ff:fffe": "2001:0:4136:e378:8000:63bf:80ff:fffe is a Teredo address whose client is 127.0.0.1, a loopback address",
		"2001:0:a00:1::":                       "2001:0:a00:1:: is a Teredo address whose server is 10.0.0.1, a private address",
	} {
		if got := netguard.Check(netip.MustParseAddr(addr)).Error(); got != want {
			t.Errorf("Check(%s):\n got %q\nwant %q", addr, got, want)
		}
	}
}

func TestCheckHost(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		host    string
		refused bool
		numeric bool
		literal bool
	}{
		{"example.com", false, false, false},
		{"hooks.example.com.", false, false, false},
		{"8.8.8.8", false, false, true},
		{"2606:4700:4700::1111", false, false, true},
		{"127.0.0.1", true, false, true},
		{"::127.0.0.1", true, false, true},
		{"::7f00:1", true, false, true},
		{"2002:7f00:1::", true, false, true},
		{"FE80::1%eth0", true, false, true},
		{"localhost", true, false, false},
		{"LOCALHOST.", true, false, false},
		{"api.localhost", true, false, false},
		{"2130706433", true, true, false},
		{"0x7f.1", true, true, false},
		{"0X7F.0.0.1", true, true, false},
		{"0177.0.0.1", true, true, false},
		{"127.1", true, true, false},
		{"::ffff:127.0.0.1:80", true, true, false},
		{"1e100.net", false, false, false},
		{"0x", false, false, false},
		{"deadbeef", false, false, false},
	} {
		ip, err := netguard.CheckHost(tc.host)
		if (err != nil) != tc.refused {
			t.Errorf("CheckHost(%q) = %v, want refused %v", tc.host, err, tc.refused)
		}
		if errors.Is(err, netguard.ErrAmbiguousHost) != tc.numeric {
			t.Errorf("CheckHost(%q) = %v, want ErrAmbiguousHost %v", tc.host, err, tc.numeric)
		}
		if ip.IsValid() != tc.literal {
			t.Errorf("CheckHost(%q) address %v, want a literal %v", tc.host, ip, tc.literal)
		}
	}
}

// The fuzz seeds: an IPv4 address followed by 16 bytes that fill the rest of each IPv6 form.
var fuzzSeeds = [][]byte{
	{127, 0, 0, 1},
	{169, 254, 169, 254, 0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1},
	{10, 0, 0, 1, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff},
	{8, 8, 8, 8, 0x41, 0x36, 0xe3, 0x78, 0x80, 0, 0x63, 0xbf, 0, 0, 0, 0, 0, 0, 0, 0},
	{100, 64, 0, 1},
	{192, 0, 2, 1},
	{0, 0, 0, 0},
}

// FuzzCheck checks the rule set's invariants on arbitrary addresses and host strings:
//   - an IPv4 address refused by Check is refused in every IPv6 form that embeds or maps it
//     (IPv4-mapped, IPv4-compatible, 6to4, NAT64 at the well-known and the local-use prefix,
//     Teredo server and client), whatever the rest of the address holds;
//   - a public IPv4 address stays public when IPv4-mapped, NAT64-embedded at 64:ff9b::/96 or
//     6to4-embedded (the forms a dual-stack or DNS64 network may present);
//   - the verdict on an address is the same for the address, its canonical and expanded
//     strings, its string in a URL, and with a zone;
//   - on any host string CheckHost does not panic, and agrees with Check when the host parses.
func FuzzCheck(f *testing.F) {
	for _, s := range fuzzSeeds {
		f.Add(s, "")
	}
	for _, h := range []string{"::127.0.0.1", "::7f00:1", "2002:7f00:1::", "[::1]", "0x7f.1", "localhost.", "example.com", "fe80::1%25eth0", "::ffff:1.2.3.4"} {
		f.Add([]byte{}, h)
	}
	f.Fuzz(func(t *testing.T, raw []byte, host string) {
		if len(raw) >= 4 {
			checkEmbeddings(t, [4]byte(raw[:4]), pad16(raw[4:]))
		}
		if len(raw) >= 16 {
			checkStringForms(t, netip.AddrFrom16([16]byte(raw[:16])))
		}
		checkHostString(t, host)
	})
}

func pad16(b []byte) [16]byte {
	var out [16]byte
	copy(out[:], b)
	return out
}

func checkEmbeddings(t *testing.T, v4 [4]byte, rest [16]byte) {
	e := netip.AddrFrom4(v4)
	refused := netguard.Check(e) != nil
	checkStringForms(t, e)

	with := func(prefix []byte, at int, v [4]byte) netip.Addr {
		b := rest
		copy(b[:], prefix)
		copy(b[at:], v[:])
		return netip.AddrFrom16(b)
	}
	inverted := [4]byte{^v4[0], ^v4[1], ^v4[2], ^v4[3]}
	mapped := netip.AddrFrom16([16]byte{10: 0xff, 11: 0xff, 12: v4[0], 13: v4[1], 14: v4[2], 15: v4[3]})
	compatible := netip.AddrFrom16([16]byte{12: v4[0], 13: v4[1], 14: v4[2], 15: v4[3]})
	nat64 := netip.AddrFrom16([16]byte{1: 0x64, 2: 0xff, 3: 0x9b, 12: v4[0], 13: v4[1], 14: v4[2], 15: v4[3]})
	forms := map[string]netip.Addr{
		"IPv4-mapped":     mapped,
		"IPv4-compatible": compatible,
		"NAT64":           nat64,
		"local NAT64 /48": with([]byte{0, 0x64, 0xff, 0x9b, 0, 1}, 6, [4]byte{v4[0], v4[1], 0, v4[2]}),
		"local NAT64 /96": with([]byte{0, 0x64, 0xff, 0x9b, 0, 1}, 12, v4),
		"6to4":            with([]byte{0x20, 0x02}, 2, v4),
		"Teredo server":   with([]byte{0x20, 0x01, 0, 0}, 4, v4),
		"Teredo client":   with([]byte{0x20, 0x01, 0, 0}, 12, inverted),
	}
	for form, a := range forms {
		checkStringForms(t, a)
		err := netguard.Check(a)
		if refused && err == nil {
			t.Errorf("%s is refused but its %s form %s is not", e, form, a)
		}
		var r *netguard.Refusal
		if errors.As(err, &r) && r.Form != "" && netguard.Check(r.Embedded) == nil {
			t.Errorf("Check(%s) blames embedded %s, which is public", a, r.Embedded)
		}
	}
	if !refused {
		for _, a := range []netip.Addr{mapped, nat64, forms["6to4"]} {
			if err := netguard.Check(a); err != nil {
				t.Errorf("%s is public but %s is refused: %v", e, a, err)
			}
		}
	}
	if netguard.Check(compatible) == nil {
		t.Errorf("IPv4-compatible %s is not refused", compatible)
	}
}

// checkStringForms checks that a's verdict does not depend on how a is written.
func checkStringForms(t *testing.T, a netip.Addr) {
	want := netguard.Check(a) != nil
	hosts := []string{a.String(), a.StringExpanded(), strings.ToUpper(a.String()) + "."}
	if a.Is6() {
		hosts = append(hosts, a.WithZone("eth0").String())
		u, err := url.Parse("https://[" + a.String() + "]:8443/hook")
		if err != nil {
			t.Fatalf("url of %s: %v", a, err)
		}
		hosts = append(hosts, u.Hostname())
	}
	for _, h := range hosts {
		ip, err := netguard.CheckHost(h)
		if (err != nil) != want {
			t.Errorf("CheckHost(%q) = %v, but Check(%s) refused = %v", h, err, a, want)
		}
		if ip.WithZone("") != a {
			t.Errorf("CheckHost(%q) read %s, want %s", h, ip, a)
		}
	}
}

func checkHostString(t *testing.T, host string) {
	ip, err := netguard.CheckHost(host)
	if ip.IsValid() {
		if got := netguard.Check(ip); (got != nil) != (err != nil) {
			t.Errorf("CheckHost(%q) = %v, but Check(%s) = %v", host, err, ip, got)
		}
		return
	}
	if p, perr := netip.ParseAddr(strings.TrimSuffix(strings.ToLower(host), ".")); perr == nil {
		t.Errorf("CheckHost(%q) did not read the address %s", host, p)
	}
	var r *netguard.Refusal
	if errors.As(err, &r) && r.Kind != netguard.KindLocalhostDomain {
		t.Errorf("CheckHost(%q): a refusal of kind %q without an address", host, r.Kind)
	}
}
