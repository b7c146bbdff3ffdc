package webhook

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/infleet/infleet/messages"
	"github.com/infleet/infleet/pipeline"
)

// TestDialGuard checks the connect-time guard on the addresses a dialer may hand it,
// including IPv6 forms that embed an internal IPv4 address.
func TestDialGuard(t *testing.T) {
	t.Parallel()
	for addr, refused := range map[string]bool{
		"127.0.0.1":                            true,
		"10.1.2.3":                             true,
		"169.254.169.254":                      true,
		"100.100.100.200":                      true,
		"0.1.2.3":                              true,
		"255.255.255.255":                      true,
		"198.51.100.7":                         true,
		"::1":                                  true,
		"fe80::1%eth0":                         true,
		"fd00:ec2::254":                        true,
		"::ffff:127.0.0.1":                     true,
		"::127.0.0.1":                          true, // IPv4-compatible
		"::7f00:1":                             true,
		"2002:7f00:1::":                        true, // 6to4 of 127.0.0.1
		"2002:a9fe:a9fe::1":                    true, // 6to4 of 169.254.169.254
		"64:ff9b::a9fe:a9fe":                   true, // NAT64 of 169.254.169.254
		"64:ff9b:1::a00:1":                     true, // local-use NAT64
		"2001:0:a00:1::":                       true, // Teredo, server 10.0.0.1
		"2001:0:4136:e378:8000:63bf:80ff:fffe": true, // Teredo, client 127.0.0.1
		"8.8.8.8":                              false,
		"93.184.216.34":                        false,
		"::ffff:93.184.216.34":                 false,
		"64:ff9b::808:808":                     false,
		"2002:808:808::1":                      false,
		"2606:4700:4700::1111":                 false,
	} {
		ap := netip.AddrPortFrom(netip.MustParseAddr(addr), 443)
		err := dialGuard("tcp", ap.String(), nil)
		if got := errors.Is(err, ErrForbiddenAddress); got != refused {
			t.Errorf("dialGuard(%s) = %v, want refused %v", ap, err, refused)
		}
	}
	if err := dialGuard("tcp", "not an address", nil); !errors.Is(err, ErrForbiddenAddress) {
		t.Errorf("dialGuard of an unparsable address = %v, want ErrForbiddenAddress", err)
	}
}

// TestDefaultClientGuardsAtConnect sends through the default client without the spelling
// check, so only the dialer's guard stands between a resolved name and the loopback server.
func TestDefaultClientGuardsAtConnect(t *testing.T) {
	t.Parallel()
	var hits atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { hits.Add(1) }))
	t.Cleanup(srv.Close)
	port := srv.URL[strings.LastIndex(srv.URL, ":")+1:]

	guarded := newClient(false)
	for _, u := range []string{srv.URL, "http://localhost:" + port} {
		resp, err := guarded.Get(u)
		if err == nil {
			_ = resp.Body.Close()
		}
		if !errors.Is(err, ErrForbiddenAddress) {
			t.Errorf("GET %s: err = %v, want ErrForbiddenAddress", u, err)
		}
	}
	if hits.Load() != 0 {
		t.Fatalf("%d requests reached the server through the guard", hits.Load())
	}

	resp, err := newClient(true).Get("http://localhost:" + port)
	if err != nil {
		t.Fatalf("unguarded client: %v", err)
	}
	_ = resp.Body.Close()
	if hits.Load() != 1 {
		t.Fatalf("unguarded client: %d requests arrived, want 1", hits.Load())
	}
}

// recordSleeps makes n record its waits instead of sleeping.
func recordSleeps(n *Notifier) func() []time.Duration {
	var mu sync.Mutex
	var waits []time.Duration
	n.sleep = func(_ context.Context, d time.Duration) error {
		mu.Lock()
		defer mu.Unlock()
		waits = append(waits, d)
		return nil
	}
	return func() []time.Duration {
		mu.Lock()
		defer mu.Unlock()
		return append([]time.Duration(nil), waits...)
	}
}

func TestRetryAfterIsHonoured(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)
	tests := []struct {
		name      string
		header    string
		wantWaits []time.Duration
		wantErr   bool
		wantCalls int32
	}{
		{"seconds", "7", []time.Duration{7 * time.Second}, false, 2},
		{"http date", now.Add(12 * time.Second).Format(http.TimeFormat), []time.Duration{12 * time.Second}, false, 2},
		{"zero", "0", []time.Duration{0}, false, 2},
		{"beyond the limit", "3600", nil, true, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var calls atomic.Int32
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
				if calls.Add(1) == 1 {
					w.Header().Set("Retry-After", tt.header)
					w.WriteHeader(http.StatusTooManyRequests)
				}
			}))
			t.Cleanup(srv.Close)
			n, err := New(Config{URL: srv.URL, AllowPrivate: true, InitialBackoff: time.Hour})
			if err != nil {
				t.Fatal(err)
			}
			n.now = func() time.Time { return now }
			waits := recordSleeps(n)
			err = n.Notify(context.Background(), pipeline.Notification{Event: messages.Event{JobID: "j", Type: messages.EventFailed}})
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, want error %v", err, tt.wantErr)
			}
			if got := waits(); !equalDurations(got, tt.wantWaits) {
				t.Errorf("waits = %v, want %v", got, tt.wantWaits)
			}
			if calls.Load() != tt.wantCalls {
				t.Errorf("%d requests, want %d", calls.Load(), tt.wantCalls)
			}
		})
	}
}

func TestBackoffIsBoundedFullJitter(t *testing.T) {
	t.Parallel()
	n, err := New(Config{InitialBackoff: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	for attempt, ceiling := range map[int]time.Duration{
		1: 100 * time.Millisecond, 2: 200 * time.Millisecond, 3: 400 * time.Millisecond,
		9: 25600 * time.Millisecond, 10: MaxBackoff, 60: MaxBackoff,
	} {
		var largest time.Duration
		for range 200 {
			d := n.backoff(attempt)
			if d < 0 || d >= ceiling {
				t.Fatalf("backoff(%d) = %s, outside [0, %s)", attempt, d, ceiling)
			}
			largest = max(largest, d)
		}
		if largest < ceiling/2 {
			t.Errorf("backoff(%d): 200 draws all below %s; not spread up to %s", attempt, largest, ceiling)
		}
	}
}

func TestRetryAfterParsing(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for v, want := range map[string]time.Duration{
		"":    -1,
		"abc": -1,
		"-5":  -1,
		"0":   0,
		"120": 2 * time.Minute,
		now.Add(-time.Minute).Format(http.TimeFormat): 0,
		now.Add(time.Minute).Format(http.TimeFormat):  time.Minute,
	} {
		if got := retryAfter(v, now); got != want {
			t.Errorf("retryAfter(%q) = %s, want %s", v, got, want)
		}
	}
}

func equalDurations(a, b []time.Duration) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
