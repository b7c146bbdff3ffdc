package handlers

import (
	"crypto/ed25519"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// FuzzParseAPIKey: any header value either parses to a trimmed key of 8 to 512 printable
// bytes or fails with an error that does not repeat it; only the configured key is accepted.
func FuzzParseAPIKey(f *testing.F) {
	for _, s := range []string{"k_live_123", "  k_live_123  ", "short", "k_live\x00123", strings.Repeat("k", 600), "k_live_1234"} {
		f.Add(s)
	}
	keys, err := NewAPIKeys([]APIKeySpec{{Key: "k_live_123", Principal: Principal{Tenant: "acme"}}})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, v string) {
		key, err := ParseAPIKey(v)
		if err != nil {
			if len(v) >= minAPIKeyLen && strings.Contains(err.Error(), v) {
				t.Fatalf("error %q repeats the key", err)
			}
			return
		}
		if len(key) < minAPIKeyLen || len(key) > maxAPIKeyLen || key != strings.TrimSpace(key) {
			t.Fatalf("ParseAPIKey(%q) = %q", v, key)
		}
		r := httptest.NewRequest("GET", "/v1/jobs", nil)
		r.Header.Set(HeaderAPIKey, v)
		p, err := keys.Verify(r)
		if (err == nil) != (key == "k_live_123") || (err == nil && p.Tenant != "acme") {
			t.Fatalf("Verify(%q) = %+v, %v", v, p, err)
		}
	})
}

// FuzzBearer: any Authorization value either yields a three-part token, says there is no
// bearer credential, or fails; no token that was not signed by the configured key passes.
func FuzzBearer(f *testing.F) {
	seed := ed25519.NewKeyFromSeed(make([]byte, ed25519.SeedSize))
	tok := jwt.NewWithClaims(jwt.SigningMethodEdDSA, jwt.MapClaims{"iss": "i", "tenant": "acme", "exp": time.Now().Add(time.Hour).Unix()})
	good, err := tok.SignedString(seed)
	if err != nil {
		f.Fatal(err)
	}
	none := jwt.NewWithClaims(jwt.SigningMethodNone, jwt.MapClaims{"iss": "i", "tenant": "acme", "exp": time.Now().Add(time.Hour).Unix()})
	unsigned, _ := none.SignedString(jwt.UnsafeAllowNoneSignatureType)
	for _, s := range []string{"Bearer " + good, "bearer " + unsigned, "Basic abc", "Bearer a.b.c", "Bearer", "Bearer  x.y"} {
		f.Add(s)
	}
	v, err := NewJWTVerifier(JWTConfig{
		Keyfunc:     func(*jwt.Token) (any, error) { return seed.Public(), nil },
		Issuer:      "i",
		TenantClaim: "tenant",
	})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, h string) {
		token, err := ParseBearer(h)
		if err != nil {
			return
		}
		if strings.Count(token, ".") != 2 || len(token) > maxBearerLen {
			t.Fatalf("ParseBearer(%q) = %q", h, token)
		}
		p, err := v.VerifyToken(token)
		if err != nil {
			return
		}
		// Only a token signed with seed can pass; check by its signature.
		parts := strings.Split(token, ".")
		sig, derr := jwt.NewParser().DecodeSegment(parts[2])
		if derr != nil || !ed25519.Verify(seed.Public().(ed25519.PublicKey), []byte(parts[0]+"."+parts[1]), sig) || p.Tenant == "" {
			t.Fatalf("accepted a token not signed by the key: %q -> %+v", token, p)
		}
	})
}
