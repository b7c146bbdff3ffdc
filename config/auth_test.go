package config

import (
	"slices"
	"testing"
	"time"
)

func TestAuthSettings(t *testing.T) {
	t.Parallel()
	c, err := Load(writeConfig(t, `
auth:
  api_keys:
    - {key_sha256: "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef", tenant: ops, role: operator, quota: 5, quota_period: day}
    - {key: "k_live_0123", tenant: acme, rate: 2}
  jwt: {issuer: "https://idp", jwks_url: "https://idp/jwks", rate: 1.5}
http: {cors_origins: ["https://app.example"]}
`), nil)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	if !c.Auth.Enabled() {
		t.Error("auth with keys and a JWKS is not enabled")
	}
	k0, k1 := c.Auth.APIKeys[0], c.Auth.APIKeys[1]
	if k0.Role != RoleOperator || k0.QuotaPeriod != QuotaDay || k1.Role != RoleClient || k1.QuotaPeriod != QuotaMonth || k1.Burst != 2 {
		t.Errorf("keys = %+v", c.Auth.APIKeys)
	}
	j := c.Auth.JWT
	if j.TenantClaim != "tenant" || j.TaskScopePrefix != "task:" || j.OperatorScope != "operator" ||
		j.Leeway != 30*time.Second || j.Burst != 2 || j.QuotaPeriod != QuotaMonth {
		t.Errorf("jwt = %+v", j)
	}
	if (Auth{JWT: JWT{JWKSURL: "https://idp/jwks"}}).Enabled() != true || (Auth{}).Enabled() {
		t.Error("Enabled is wrong")
	}

	_, err = Load(writeConfig(t, `
auth:
  api_keys:
    - {key: "k_live_0123", key_sha256: "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef", tenant: b}
    - {tenant: c}
  jwt: {jwks_url: "https://x/jwks"}
http: {tls_cert_file: a.pem}
`), nil)
	got := problemsOf(t, err)
	var fields []string
	for _, p := range got {
		fields = append(fields, p.Field)
	}
	want := []string{"auth.api_keys[0].key", "auth.api_keys[1].key", "auth.jwt.issuer", "http.tls_cert_file"}
	if !slices.Equal(fields, want) {
		t.Errorf("problems %v, want fields %v", got, want)
	}
}
