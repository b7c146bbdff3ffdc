package netguard_test

import (
	"fmt"
	"net/netip"

	"github.com/infleet/infleet/netguard"
)

func ExampleCheck() {
	for _, a := range []string{"93.184.215.14", "::7f00:1", "2002:7f00:1::", "64:ff9b::a9fe:a9fe", "2606:4700:4700::1111"} {
		if err := netguard.Check(netip.MustParseAddr(a)); err != nil {
			fmt.Println("refused:", err)
			continue
		}
		fmt.Println("public:", a)
	}
	// Output:
	// public: 93.184.215.14
	// refused: ::7f00:1 is an IPv4-compatible address of 127.0.0.1, a loopback address
	// refused: 2002:7f00:1:: is a 6to4 address embedding 127.0.0.1, a loopback address
	// refused: 64:ff9b::a9fe:a9fe is a NAT64 address embedding 169.254.169.254, the cloud metadata address
	// public: 2606:4700:4700::1111
}

func ExampleCheckHost() {
	for _, h := range []string{"hooks.example.com", "localhost", "0x7f.1"} {
		ip, err := netguard.CheckHost(h)
		switch {
		case err != nil:
			fmt.Printf("%s: refused: %v\n", h, err)
		case ip.IsValid():
			fmt.Printf("%s: public address\n", h)
		default:
			fmt.Printf("%s: a name; check what it resolves to when connecting\n", h)
		}
	}
	// Output:
	// hooks.example.com: a name; check what it resolves to when connecting
	// localhost: refused: localhost is a loopback name
	// 0x7f.1: refused: numeric host that resolvers read differently (write an IPv4 address in dotted decimal, or an IPv6 address in standard form)
}
