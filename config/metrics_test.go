package config

import (
	"strings"
	"testing"
)

func TestMetricsDefaultsAreOpenWithoutTenantNames(t *testing.T) {
	t.Parallel()
	c := Default()
	if c.Metrics.TenantLabels || c.Metrics.Auth.Enabled() {
		t.Fatalf("default metrics = %+v, want no tenant labels and no auth", c.Metrics)
	}
}

func TestMetricsSection(t *testing.T) {
	t.Parallel()
	c, err := Load(writeConfig(t, "metrics: {tenant_labels: true, auth: {bearer_token_env: SCRAPE_TOKEN, username: prom, password_env: SCRAPE_PASSWORD}}\n"), nil)
	if err != nil {
		t.Fatal(err)
	}
	want := Metrics{TenantLabels: true, Auth: MetricsAuth{BearerTokenEnv: "SCRAPE_TOKEN", Username: "prom", PasswordEnv: "SCRAPE_PASSWORD"}}
	if c.Metrics != want || !c.Metrics.Auth.Enabled() {
		t.Fatalf("metrics = %+v, want %+v", c.Metrics, want)
	}
	if err := c.Validate(); err != nil {
		t.Fatalf("Validate() = %v", err)
	}

	c, err = Load("", []string{"INFLEET_METRICS_TENANT_LABELS=true", "INFLEET_METRICS_AUTH_BEARER_TOKEN_ENV=TOKEN_VAR"})
	if err != nil {
		t.Fatal(err)
	}
	if !c.Metrics.TenantLabels || c.Metrics.Auth.BearerTokenEnv != "TOKEN_VAR" {
		t.Fatalf("metrics from the environment = %+v", c.Metrics)
	}
}

func TestMetricsSectionProblems(t *testing.T) {
	t.Parallel()
	for body, field := range map[string]string{
		"metrics: {auth: {bearer_token_env: \"not a name\"}}\n":    "metrics.auth.bearer_token_env",
		"metrics: {auth: {username: prom}}\n":                      "metrics.auth.username",
		"metrics: {auth: {password_env: PW}}\n":                    "metrics.auth.username",
		"metrics: {auth: {username: \"a:b\", password_env: PW}}\n": "metrics.auth.username",
		"metrics: {tenant_labels: maybe}\n":                        "metrics.tenant_labels",
		"metrics: {auth: {token: x}}\n":                            "metrics.auth",
	} {
		_, err := Load(writeConfig(t, body), nil)
		got := problemsOf(t, err)
		if len(got) != 1 || !strings.HasPrefix(got[0].Field, field) || got[0].Message == "" {
			t.Errorf("%q: problems %v, want one about %s", body, got, field)
		}
	}
}
