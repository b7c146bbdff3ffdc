package config

import (
	"cmp"
	"math"
	"strconv"
	"time"
)

// Defaults of the auth section, applied by ApplyDefaults (and so by Load) to every setting left
// unset.
const (
	DefaultJWTTenantClaim     = "tenant"
	DefaultJWTTaskScopePrefix = "task:"
	DefaultJWTOperatorScope   = "operator"
	DefaultJWTLeeway          = 30 * time.Second
)

// Auth turns on authentication. With no API keys and no JWT issuer the API is open.
type Auth struct {
	APIKeys []APIKey `yaml:"api_keys,omitempty"`
	JWT     JWT      `yaml:"jwt,omitempty"`
}

// Enabled reports whether requests must authenticate.
func (a Auth) Enabled() bool { return len(a.APIKeys) > 0 || a.JWT.JWKSURL != "" }

// Quota periods (auth.api_keys[].quota_period, auth.jwt.quota_period).
const (
	QuotaDay   = "day"
	QuotaMonth = "month"
)

// Roles of a credential (auth.api_keys[].role).
const (
	RoleClient   = "client"
	RoleOperator = "operator"
)

// JWT accepts bearer tokens signed by an OIDC provider (Cognito or any other).
type JWT struct {
	// Issuer is the required iss claim. Required with JWKSURL.
	Issuer string `yaml:"issuer,omitempty"`
	// Audience is the required aud claim (or client_id, as Cognito access tokens carry). Default
	// none (not checked).
	Audience string `yaml:"audience,omitempty"`
	// JWKSURL serves the signing keys; setting it turns JWT authentication on.
	JWKSURL string `yaml:"jwks_url,omitempty"`
	// TenantClaim names the claim holding the tenant. Default "tenant".
	TenantClaim string `yaml:"tenant_claim,omitempty"`
	// TaskScopePrefix prefixes the scopes that allow a task ("task:summarize", "task:*").
	// Default "task:".
	TaskScopePrefix string `yaml:"task_scope_prefix,omitempty"`
	// OperatorScope is the scope that grants the operator role. Default "operator".
	OperatorScope string `yaml:"operator_scope,omitempty"`
	// Leeway is the clock skew allowed on exp and nbf. Default 30s.
	Leeway time.Duration `yaml:"leeway,omitempty"`
	// Rate, Burst, Quota and QuotaPeriod limit each tenant's token holders together, as for
	// an API key. Default unlimited.
	Rate        float64 `yaml:"rate,omitempty"`
	Burst       int     `yaml:"burst,omitempty"`
	Quota       int64   `yaml:"quota,omitempty"`
	QuotaPeriod string  `yaml:"quota_period,omitempty"`
}

// APIKey is one client credential (x-api-key) and what it may do.
type APIKey struct {
	// Key is the secret the client sends, in plain text (development). Never log it.
	Key string `yaml:"key,omitempty"`
	// KeySHA256 is the lowercase hex SHA-256 of the secret (production); give it or Key.
	KeySHA256 string `yaml:"key_sha256,omitempty"`
	// Role is client (its tenant's jobs only) or operator (every job, operator routes).
	// Default client.
	Role string `yaml:"role,omitempty"`
	// Tenant owns the jobs created with this key; other tenants cannot see them.
	Tenant string `yaml:"tenant,omitempty"`
	// Rate is requests per second. Default 0 (unlimited).
	Rate float64 `yaml:"rate,omitempty"`
	// Burst of requests above Rate. Default max(1, Rate rounded up) when Rate is set.
	Burst int `yaml:"burst,omitempty"`
	// Quota is the number of jobs the key may create per QuotaPeriod. Default 0 (unlimited).
	Quota int64 `yaml:"quota,omitempty"`
	// QuotaPeriod is day or month (UTC calendar periods). Default month.
	QuotaPeriod string `yaml:"quota_period,omitempty"`
	// Tasks the key may submit; "*" allows any. Default (empty) any.
	Tasks []string `yaml:"tasks,omitempty"`
	// Models the key may ask for by name; "*" allows any. Default (empty) any.
	Models []string `yaml:"models,omitempty"`
}

// applyDefaults fills the unset settings of every API key, on a copy of the list, and of JWT
// authentication when it is on.
func (a *Auth) applyDefaults() {
	if len(a.APIKeys) > 0 {
		a.APIKeys = append([]APIKey(nil), a.APIKeys...)
		for i := range a.APIKeys {
			k := &a.APIKeys[i]
			k.Burst = defaultBurst(k.Rate, k.Burst)
			k.Role = cmp.Or(k.Role, RoleClient)
			k.QuotaPeriod = cmp.Or(k.QuotaPeriod, QuotaMonth)
		}
	}
	if j := &a.JWT; j.JWKSURL != "" {
		j.TenantClaim = cmp.Or(j.TenantClaim, DefaultJWTTenantClaim)
		j.TaskScopePrefix = cmp.Or(j.TaskScopePrefix, DefaultJWTTaskScopePrefix)
		j.OperatorScope = cmp.Or(j.OperatorScope, DefaultJWTOperatorScope)
		j.Leeway = cmp.Or(j.Leeway, DefaultJWTLeeway)
		j.QuotaPeriod = cmp.Or(j.QuotaPeriod, QuotaMonth)
		j.Burst = defaultBurst(j.Rate, j.Burst)
	}
}

// checkAuth checks that every API key gives exactly one secret, its own, and names configured
// models, and that JWT authentication names its issuer.
func (c *Config) checkAuth(p *problems) {
	keys := map[string]int{}
	for i, k := range c.Auth.APIKeys {
		field := "auth.api_keys[" + strconv.Itoa(i) + "]"
		if (k.Key == "") == (k.KeySHA256 == "") {
			p.add(field+".key", "give exactly one of key (plain text, for development) and key_sha256 (its SHA-256 in hex)")
		}
		if k.Key != "" {
			if j, dup := keys[k.Key]; dup {
				p.add(field+".key", "is the same as auth.api_keys[%d].key; give every client its own key", j)
			}
			keys[k.Key] = i
		}
		for j, m := range k.Models {
			if _, ok := c.Model(m); m != "*" && !ok {
				p.add(field+".models["+strconv.Itoa(j)+"]", "names model %s, which is not configured; use \"*\" or %s", m, c.modelHint())
			}
		}
	}

	if j := c.Auth.JWT; j.JWKSURL != "" && j.Issuer == "" {
		p.add("auth.jwt.issuer", "is required with auth.jwt.jwks_url; set it to the iss claim of the tokens")
	}
}

// defaultBurst is a credential's burst: as given, or, when unset with a rate, one second's worth
// of requests (at least 1). API keys and JWT callers share the rule.
func defaultBurst(rate float64, burst int) int {
	if rate > 0 && burst == 0 {
		return max(1, int(math.Ceil(rate)))
	}
	return burst
}
