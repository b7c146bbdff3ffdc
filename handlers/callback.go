package handlers

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"
	"time"

	"github.com/infleet/infleet/netguard"
)

// DefaultCallbackResolveTimeout bounds the name resolution of a callback_url at submit.
const DefaultCallbackResolveTimeout = 2 * time.Second

// CallbackPolicy decides, at submit, whether a job's callback_url may be used: https only
// unless AllowHTTP, and unless AllowPrivate no host that is, or resolves to, a loopback,
// private, link-local (cloud metadata), multicast or otherwise internal address, written
// plainly or inside an IPv6 form (the rules of package netguard). The webhook sender checks
// the address again, with the same rules, when it connects, so a name that later rebinds to
// an internal address is still refused. The zero value is the strict policy; it is safe for
// concurrent use.
type CallbackPolicy struct {
	AllowHTTP    bool
	AllowPrivate bool
	// Resolver resolves host names; nil is net.DefaultResolver.
	Resolver *net.Resolver
	// Timeout bounds resolution. Default 2s.
	Timeout time.Duration
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
	ip, err := netguard.CheckHost(u.Hostname())
	var refusal *netguard.Refusal
	switch {
	case errors.As(err, &refusal):
		return fmt.Errorf("points at %s (%s); webhooks go to public addresses only", refusal.Reason(), refusal.Host)
	case errors.Is(err, netguard.ErrAmbiguousHost):
		return errors.New("has a numeric host that resolvers read differently; write an IPv4 address in dotted decimal, or an IPv6 address in standard form")
	case err != nil:
		return fmt.Errorf("has a host that cannot be used: %v", err)
	case ip.IsValid():
		return nil
	}
	host := strings.TrimSuffix(strings.ToLower(u.Hostname()), ".")
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
		if errors.As(netguard.Check(ip), &refusal) {
			return fmt.Errorf("has host %s, which resolves to %s (%s); webhooks go to public addresses only", host, refusal.Reason(), refusal.Host)
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
