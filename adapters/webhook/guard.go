package webhook

import (
	"errors"
	"fmt"
	"net/netip"
	"net/url"
	"syscall"

	"github.com/infleet/infleet/netguard"
)

// ErrForbiddenAddress is matched (errors.Is) by the error of a delivery refused because its
// target is, or resolves to, an internal address. Such deliveries are not retried.
var ErrForbiddenAddress = errors.New("webhook target is a loopback, private, link-local or otherwise internal address " +
	"(use a public URL, or set notify.webhook.allow_private: true to allow internal targets)")

// dialGuard is a net.Dialer Control function refusing connections to addresses that are not
// public by the rules of package netguard, the rules the submit check applies to a
// callback_url (loopback, private, link-local, cloud metadata, multicast, unspecified,
// reserved, and IPv6 forms embedding any of them). It runs after name resolution, on the
// address actually dialled, so a name that resolves (or rebinds) to an internal address is
// refused as well as a literal one. It fails closed.
func dialGuard(_, address string, _ syscall.RawConn) error {
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return fmt.Errorf("%w: cannot parse dialled address %q", ErrForbiddenAddress, address)
	}
	if err := netguard.Check(ap.Addr()); err != nil {
		return fmt.Errorf("%w: %w", ErrForbiddenAddress, err)
	}
	return nil
}

// checkHost refuses, before any connection, a URL whose host is a forbidden literal address,
// a name that always means this machine, or a numeric spelling resolvers read differently.
// Other names are checked at connect time by dialGuard.
func checkHost(u *url.URL) error {
	if _, err := netguard.CheckHost(u.Hostname()); err != nil {
		return fmt.Errorf("%w: %w", ErrForbiddenAddress, err)
	}
	return nil
}
