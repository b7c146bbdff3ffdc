package handlers

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/infleet/infleet/adapters/sqlite"
)

// BenchmarkAuthLatency is POST /v1/jobs (an in-memory Jobs) on the open API beside the same
// request authenticated by an API key or an ES256 bearer token, with and without the fleet
// limits (a rate bucket and a quota counter in a SQLite file, never exhausted). It reports
// the per-request p50 and p99 in microseconds; the difference to "open" is what authentication
// and limiting add.
func BenchmarkAuthLatency(b *testing.B) {
	const key = "k_bench_0123456789"
	ecKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		b.Fatal(err)
	}
	tok := jwt.NewWithClaims(jwt.SigningMethodES256, jwt.MapClaims{
		"iss": "https://issuer.test", "sub": "bench", "tenant": "acme", "scope": "task:*",
		"exp": time.Now().Add(time.Hour).Unix(),
	})
	bearer, err := tok.SignedString(ecKey)
	if err != nil {
		b.Fatal(err)
	}
	limits, err := sqlite.OpenLimits(b.Context(), sqlite.Config{Path: filepath.Join(b.TempDir(), "limits.db")})
	if err != nil {
		b.Fatal(err)
	}
	defer limits.Close()
	lim := Limit{Rate: 1e9, Burst: 1 << 30, Quota: 1 << 50, QuotaPeriod: "month"}
	principal := func(l Limit) Principal {
		return Principal{Tenant: "acme", Tasks: []string{"*"}, Models: []string{"*"}, Limit: l}
	}
	keys := func(l Limit) Verifier {
		k, err := NewAPIKeys([]APIKeySpec{{Key: key, Principal: principal(l)}})
		if err != nil {
			b.Fatal(err)
		}
		return k
	}
	jwtv := func(l Limit) Verifier {
		v, err := NewJWTVerifier(JWTConfig{Keyfunc: func(*jwt.Token) (any, error) { return &ecKey.PublicKey, nil },
			Issuer: "https://issuer.test", TenantClaim: "tenant", TaskScopePrefix: "task:", Limit: l})
		if err != nil {
			b.Fatal(err)
		}
		return v
	}
	for _, bc := range []struct {
		name     string
		verifier Verifier
		limited  bool
		header   [2]string
	}{
		{"open", nil, false, [2]string{}},
		{"api_key", keys(Limit{}), false, [2]string{HeaderAPIKey, key}},
		{"api_key+limits", keys(lim), true, [2]string{HeaderAPIKey, key}},
		{"jwt_es256", jwtv(Limit{}), false, [2]string{"Authorization", "Bearer " + bearer}},
		{"jwt_es256+limits", jwtv(lim), true, [2]string{"Authorization", "Bearer " + bearer}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			cfg := APIConfig{Jobs: benchJobs{}}
			if bc.verifier != nil {
				ac := AuthConfig{Verifiers: []Verifier{bc.verifier}}
				gc := GuardConfig{}
				if bc.limited {
					ac.Limits, gc.Limits = limits, limits
				}
				cfg.Jobs = GuardJobs(benchJobs{}, gc)
				cfg.Middleware = []func(http.Handler) http.Handler{Authenticate(ac)}
			}
			h, err := NewAPI(cfg)
			if err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			lat := make([]time.Duration, 0, b.N)
			w := &discardWriter{h: http.Header{}}
			for b.Loop() {
				r := httptest.NewRequest(http.MethodPost, "/v1/jobs", strings.NewReader(benchBody))
				r.Header.Set("Content-Type", "application/json")
				if bc.header[0] != "" {
					r.Header.Set(bc.header[0], bc.header[1])
				}
				clear(w.h)
				w.code = 0
				start := time.Now()
				h.ServeHTTP(w, r)
				lat = append(lat, time.Since(start))
				if w.code != http.StatusAccepted {
					b.Fatalf("status %d", w.code)
				}
			}
			slices.Sort(lat)
			if len(lat) > 0 {
				b.ReportMetric(float64(lat[len(lat)/2].Nanoseconds())/1e3, "p50-µs")
				b.ReportMetric(float64(lat[len(lat)*99/100].Nanoseconds())/1e3, "p99-µs")
			}
		})
	}
}
