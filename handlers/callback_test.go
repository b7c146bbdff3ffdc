package handlers

import (
	"context"
	"encoding/binary"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"testing"
)

// startDNS runs a small UDP DNS server answering A queries from records (name -> IPv4, the
// name without the trailing dot) and every other query with no answer, and returns a resolver
// that asks only it.
func startDNS(t *testing.T, records map[string]netip.Addr) *net.Resolver {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	t.Cleanup(func() { _ = pc.Close() })
	go func() {
		buf := make([]byte, 512)
		for {
			n, addr, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			if resp := dnsAnswer(buf[:n], records); resp != nil {
				_, _ = pc.WriteTo(resp, addr)
			}
		}
	}()
	return &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "udp", pc.LocalAddr().String())
	}}
}

// dnsAnswer answers one query message (one question, no compression in the question).
func dnsAnswer(q []byte, records map[string]netip.Addr) []byte {
	if len(q) < 12 {
		return nil
	}
	var labels []string
	i := 12
	for i < len(q) && q[i] != 0 {
		l := int(q[i])
		if i+1+l > len(q) {
			return nil
		}
		labels = append(labels, strings.ToLower(string(q[i+1:i+1+l])))
		i += 1 + l
	}
	end := i + 5 // the zero label, type and class
	if end > len(q) {
		return nil
	}
	qtype := binary.BigEndian.Uint16(q[i+1:])
	resp := append([]byte(nil), q[:end]...)
	resp[2] = 0x81 // response, recursion desired
	resp[3] = 0x80 // recursion available, NOERROR
	binary.BigEndian.PutUint16(resp[6:], 0)
	binary.BigEndian.PutUint16(resp[8:], 0)
	binary.BigEndian.PutUint16(resp[10:], 0)
	ip, ok := records[strings.Join(labels, ".")]
	if !ok || qtype != 1 {
		return resp
	}
	binary.BigEndian.PutUint16(resp[6:], 1)
	a := ip.As4()
	resp = append(resp, 0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4)
	return append(resp, a[:]...)
}

func TestCallbackPolicy(t *testing.T) {
	t.Parallel()
	res := startDNS(t, map[string]netip.Addr{
		"public.test":   netip.MustParseAddr("93.184.215.14"),
		"rebind.test":   netip.MustParseAddr("127.0.0.1"),
		"intranet.test": netip.MustParseAddr("10.1.2.3"),
		"meta.test":     netip.MustParseAddr("169.254.169.254"),
	})
	strict := CallbackPolicy{Resolver: res}
	for _, tc := range []struct {
		url  string
		want string // "" for allowed, else part of the reason
	}{
		{"https://public.test/hook", ""},
		{"https://93.184.215.14/hook", ""},
		{"http://public.test/hook", "must use https"},
		{"ftp://public.test/hook", "scheme"},
		{"https://user:pw@public.test/hook", "user information"},
		{"/relative", "absolute"},
		{"https://127.0.0.1/hook", "loopback"},
		{"https://[::1]/hook", "loopback"},
		{"https://localhost:8443/hook", "loopback"},
		{"https://10.0.0.5/hook", "private"},
		{"https://192.168.1.1/hook", "private"},
		{"https://169.254.169.254/latest/meta-data", "metadata"},
		{"https://[fd00:ec2::254]/", "metadata"},
		{"https://224.0.0.1/", "multicast"},
		{"https://[::ffff:127.0.0.1]/", "loopback"},
		{"https://[::127.0.0.1]/", "loopback"},
		{"https://[::7f00:1]/", "loopback"},
		{"https://[2002:7f00:1::]/", "6to4 address embedding 127.0.0.1, a loopback address"},
		{"https://[64:ff9b::a9fe:a9fe]/", "metadata"},
		{"https://[64:ff9b:1::808:808]/", "local-use NAT64"},
		{"https://[2001:0:4136:e378:8000:63bf:80ff:fffe]/", "Teredo address whose client is 127.0.0.1"},
		{"https://[2001:0:a00:1::]/", "Teredo address whose server is 10.0.0.1"},
		{"https://100.64.0.1/", "carrier-grade NAT"},
		{"https://198.51.100.7/", "documentation"},
		{"https://[2002:808:808::1]/hook", ""},
		{"https://[64:ff9b::808:808]/hook", ""},
		{"https://0x7f.1/", "numeric"},
		{"https://2130706433/", "numeric"},
		{"https://rebind.test/hook", "resolves to a loopback address"},
		{"https://intranet.test/hook", "resolves to a private address"},
		{"https://meta.test/hook", "resolves to the cloud metadata address"},
		{"https://nowhere.test/hook", "does not resolve"},
	} {
		err := strict.Check(t.Context(), tc.url)
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%s: refused: %v", tc.url, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("%s: error %v, want one containing %q", tc.url, err, tc.want)
		}
	}
	loose := CallbackPolicy{AllowHTTP: true, AllowPrivate: true, Resolver: res}
	for _, u := range []string{"http://127.0.0.1:9000/hook", "https://rebind.test/hook"} {
		if err := loose.Check(t.Context(), u); err != nil {
			t.Errorf("allow_private and allow_http: %s refused: %v", u, err)
		}
	}
}

// At submit, a refused callback_url is a 400 naming the field and the reason, also on an
// open API.
func TestSubmitRefusesInternalCallback(t *testing.T) {
	t.Parallel()
	guarded := setup(t, func(c *APIConfig) { c.Jobs = GuardJobs(newMemJobs(), GuardConfig{}) })
	for _, u := range []string{"https://127.0.0.1/x", "https://10.0.0.1/x", "https://169.254.169.254/x", "https://localhost/x", "http://example.com/x",
		"https://[::127.0.0.1]/x", "https://[::7f00:1]/x", "https://[2002:7f00:1::]/x"} {
		resp := guarded.do(t, http.MethodPost, "/v1/jobs", `{"task":"summarize","input":{"text":"x"},"callback_url":"`+u+`"}`)
		p := readProblem(t, resp, http.StatusBadRequest, SlugInvalidBody)
		if len(p.Errors) != 1 || p.Errors[0].Field != "callback_url" || p.Errors[0].Message == "" {
			t.Errorf("%s: problem %+v, want one callback_url error", u, p)
		}
	}
}
