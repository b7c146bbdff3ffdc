package handlers

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// maxBearerLen bounds a bearer token; real ones are a few kilobytes.
const maxBearerLen = 16 << 10

// Verified tokens are remembered (by their SHA-256) for at most jwtCacheTTL and never past
// their exp, so that a client sending the same token again skips the signature check; the
// cache is emptied when it reaches jwtCacheMax entries.
const (
	jwtCacheTTL = time.Minute
	jwtCacheMax = 10000
)

type cachedPrincipal struct {
	p     Principal
	until time.Time
}

// jwtMethods are the signature algorithms accepted (never "none", never HMAC: the keys come
// from a JWKS of public keys).
var jwtMethods = []string{"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"}

// JWTConfig configures a JWTVerifier.
type JWTConfig struct {
	// Keyfunc returns the verification key of a token, typically from a cached JWKS
	// (github.com/MicahParks/keyfunc/v3). Required.
	Keyfunc jwt.Keyfunc
	// Issuer is the required iss claim. Required.
	Issuer string
	// Audience, when set, must be in aud or equal client_id (as in Cognito access tokens).
	Audience string
	// TenantClaim names the string claim holding the tenant. Required.
	TenantClaim string
	// TaskScopePrefix prefixes scopes naming allowed tasks ("task:summarize", "task:*").
	TaskScopePrefix string
	// OperatorScope grants the operator role.
	OperatorScope string
	// Leeway is the clock skew allowed on exp, nbf and iat.
	Leeway time.Duration
	// Limit is applied per tenant (its Key is replaced by "jwt:" + tenant).
	Limit Limit
	// Now is the clock; default time.Now.
	Now func() time.Time
}

// JWTVerifier verifies Authorization: Bearer tokens: signature against the configured keys,
// iss, aud, exp (required) and nbf with leeway; the tenant from a claim; allowed tasks and the
// operator role from the scope (space-separated) or scp (list) claim. Models are not limited.
// Safe for concurrent use.
type JWTVerifier struct {
	cfg    JWTConfig
	parser *jwt.Parser
	now    func() time.Time

	mu    sync.Mutex
	cache map[[sha256.Size]byte]cachedPrincipal
}

var _ Verifier = (*JWTVerifier)(nil)

// NewJWTVerifier returns a verifier of cfg.
func NewJWTVerifier(cfg JWTConfig) (*JWTVerifier, error) {
	var errs []error
	if cfg.Keyfunc == nil {
		errs = append(errs, errors.New("jwt: no key function (configure auth.jwt.jwks_url)"))
	}
	if cfg.Issuer == "" {
		errs = append(errs, errors.New("jwt: no issuer (set auth.jwt.issuer)"))
	}
	if cfg.TenantClaim == "" {
		errs = append(errs, errors.New("jwt: no tenant claim (set auth.jwt.tenant_claim)"))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	opts := []jwt.ParserOption{
		jwt.WithValidMethods(jwtMethods),
		jwt.WithIssuer(cfg.Issuer),
		jwt.WithLeeway(cfg.Leeway),
		jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(),
	}
	now := time.Now
	if cfg.Now != nil {
		now = cfg.Now
		opts = append(opts, jwt.WithTimeFunc(cfg.Now))
	}
	return &JWTVerifier{cfg: cfg, parser: jwt.NewParser(opts...), now: now,
		cache: map[[sha256.Size]byte]cachedPrincipal{}}, nil
}

// ParseBearer returns the token of an Authorization header value "Bearer TOKEN" (the scheme
// in any case), ErrNoCredentials for another scheme or none. The error never contains the token.
func ParseBearer(v string) (string, error) {
	scheme, token, ok := strings.Cut(strings.TrimSpace(v), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", ErrNoCredentials
	}
	token = strings.TrimSpace(token)
	if token == "" || len(token) > maxBearerLen {
		return "", fmt.Errorf("a bearer token has 1 to %d characters", maxBearerLen)
	}
	if strings.Count(token, ".") != 2 {
		return "", errors.New("the bearer token is not a JWT (header.payload.signature)")
	}
	return token, nil
}

// Verify implements Verifier for the Authorization header.
func (v *JWTVerifier) Verify(r *http.Request) (Principal, error) {
	token, err := ParseBearer(r.Header.Get("Authorization"))
	if err != nil {
		return Principal{}, err
	}
	return v.VerifyToken(token)
}

// VerifyToken checks one token and returns its principal. A token verified in the last minute
// and not yet expired is answered from a cache.
func (v *JWTVerifier) VerifyToken(token string) (Principal, error) {
	sum := sha256.Sum256([]byte(token))
	now := v.now()
	v.mu.Lock()
	c, ok := v.cache[sum]
	v.mu.Unlock()
	if ok && now.Before(c.until) {
		return c.p, nil
	}
	p, exp, err := v.verify(token)
	if err != nil {
		return Principal{}, err
	}
	until := now.Add(jwtCacheTTL)
	if exp.Before(until) {
		until = exp
	}
	v.mu.Lock()
	if len(v.cache) >= jwtCacheMax {
		clear(v.cache)
	}
	v.cache[sum] = cachedPrincipal{p: p, until: until}
	v.mu.Unlock()
	return p, nil
}

// verify checks the token's signature and claims.
func (v *JWTVerifier) verify(token string) (Principal, time.Time, error) {
	claims := jwt.MapClaims{}
	if _, err := v.parser.ParseWithClaims(token, claims, v.cfg.Keyfunc); err != nil {
		return Principal{}, time.Time{}, fmt.Errorf("bearer token: %w", err)
	}
	if aud := v.cfg.Audience; aud != "" {
		auds, _ := claims.GetAudience()
		clientID, _ := claims["client_id"].(string)
		if !slices.Contains(auds, aud) && clientID != aud {
			return Principal{}, time.Time{}, errors.New("bearer token: it is not for this audience")
		}
	}
	tenant, _ := claims[v.cfg.TenantClaim].(string)
	if tenant == "" {
		return Principal{}, time.Time{}, fmt.Errorf("bearer token: it has no %q claim naming the tenant", v.cfg.TenantClaim)
	}
	sub, _ := claims.GetSubject()
	p := Principal{ID: "jwt:" + sub, Tenant: tenant, Models: []string{"*"}, Limit: v.cfg.Limit}
	p.Limit.Key = "jwt:" + tenant
	for _, s := range scopes(claims) {
		switch {
		case s == v.cfg.OperatorScope && s != "":
			p.Operator = true
		case v.cfg.TaskScopePrefix != "" && strings.HasPrefix(s, v.cfg.TaskScopePrefix):
			p.Tasks = append(p.Tasks, strings.TrimPrefix(s, v.cfg.TaskScopePrefix))
		}
	}
	if p.Operator {
		p.Tasks = append(p.Tasks, "*")
	}
	exp, err := claims.GetExpirationTime()
	if err != nil || exp == nil {
		return Principal{}, time.Time{}, errors.New("bearer token: it has no exp claim")
	}
	return p, exp.Add(v.cfg.Leeway), nil
}

// scopes reads the "scope" claim (space-separated, OAuth 2) or the "scp" claim (a list or a
// string).
func scopes(c jwt.MapClaims) []string {
	var out []string
	for _, name := range []string{"scope", "scp"} {
		switch v := c[name].(type) {
		case string:
			out = append(out, strings.Fields(v)...)
		case []any:
			for _, s := range v {
				if s, ok := s.(string); ok {
					out = append(out, s)
				}
			}
		}
	}
	return out
}
