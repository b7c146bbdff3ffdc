package main

import (
	"fmt"
	"net/http"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/rs/zerolog"

	"github.com/infleet/infleet/config"
	"github.com/infleet/infleet/handlers"
)

// metricsHandler serves infleet's own metrics (reg) and the Go runtime's and the process's
// (runtimeMetrics) at GET /metrics, behind the credential of cfg.Auth when it is set; a scrape whose
// name[] filter asks only for infleet_ metrics gathers reg alone (handlers.ScopedMetrics).
// getenv reads the environment variables cfg.Auth names; one that is unset or empty is an
// error saying which to export.
func metricsHandler(cfg config.Metrics, reg, runtimeMetrics prometheus.Gatherer, getenv func(string) string, log zerolog.Logger) (http.Handler, error) {
	h := handlers.ScopedMetrics(promhttp.HandlerFor(prometheus.Gatherers{reg, runtimeMetrics}, promhttp.HandlerOpts{}),
		promhttp.HandlerFor(reg, promhttp.HandlerOpts{}), "infleet_")
	if !cfg.Auth.Enabled() {
		return h, nil
	}
	secret := func(field, name string) (string, error) {
		if name == "" {
			return "", nil
		}
		v := strings.TrimSpace(getenv(name))
		if v == "" {
			return "", fmt.Errorf("metrics.auth.%s names %s, which is not set: export %s with the secret scrapers send, or remove metrics.auth.%s", field, name, name, field)
		}
		return v, nil
	}
	token, err := secret("bearer_token_env", cfg.Auth.BearerTokenEnv)
	if err != nil {
		return nil, err
	}
	password, err := secret("password_env", cfg.Auth.PasswordEnv)
	if err != nil {
		return nil, err
	}
	auth := handlers.MetricsAuth{BearerToken: token, Username: cfg.Auth.Username, Password: password}
	return handlers.ProtectMetrics(h, auth, log), nil
}
