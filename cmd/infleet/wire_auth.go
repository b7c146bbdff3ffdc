package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/MicahParks/keyfunc/v3"
	"github.com/rs/zerolog"
	"golang.org/x/time/rate"

	"github.com/infleet/infleet/adapters/postgres"
	"github.com/infleet/infleet/adapters/sqlite"
	"github.com/infleet/infleet/config"
	"github.com/infleet/infleet/handlers"
	"github.com/infleet/infleet/pipeline"
)

// Bounds of the JWKS cache: a periodic refresh, and a refresh on an unknown key id (a rotation)
// at most this often, each waiting at most jwksWaitMax for its turn.
const (
	jwksRefreshInterval = 15 * time.Minute
	jwksUnknownKIDEvery = 10 * time.Second
	jwksWaitMax         = 100 * time.Millisecond
	jwksHTTPTimeout     = 5 * time.Second
)

// ingressAuth is the ingress's security wiring: authentication and limits (when auth is
// configured), callback_url checks at submit, CORS and TLS.
type ingressAuth struct {
	middleware []func(http.Handler) http.Handler
	guard      handlers.GuardConfig
	cors       []string
	tls        *tls.Config
	closers    []func() error
}

// wireAuth builds the ingress's security from cfg; a process without the ingress gets TLS
// only. The context ends the JWKS refresher.
func wireAuth(ctx context.Context, cfg config.Config, clients *awsClients, log zerolog.Logger, ingress bool) (*ingressAuth, error) {
	ia := &ingressAuth{cors: cfg.HTTP.CORSOrigins}
	ia.guard = handlers.GuardConfig{
		Callbacks: handlers.CallbackPolicy{AllowHTTP: cfg.Notify.Webhook.AllowHTTP, AllowPrivate: cfg.Notify.Webhook.AllowPrivate},
		Audit:     log.With().Str("component", "audit").Logger(),
	}
	if cfg.HTTP.TLSCertFile != "" {
		cert, err := tls.LoadX509KeyPair(cfg.HTTP.TLSCertFile, cfg.HTTP.TLSKeyFile)
		if err != nil {
			return nil, fmt.Errorf("load http.tls_cert_file and http.tls_key_file (PEM certificate and its key): %w", err)
		}
		ia.tls = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	}
	if !ingress || !cfg.Auth.Enabled() {
		return ia, nil
	}
	var verifiers []handlers.Verifier
	if len(cfg.Auth.APIKeys) > 0 {
		specs := make([]handlers.APIKeySpec, len(cfg.Auth.APIKeys))
		for i, k := range cfg.Auth.APIKeys {
			specs[i] = handlers.APIKeySpec{Key: k.Key, SHA256: k.KeySHA256, Principal: handlers.Principal{
				Tenant:   k.Tenant,
				Operator: k.Role == config.RoleOperator,
				Tasks:    anyIfEmpty(k.Tasks),
				Models:   anyIfEmpty(k.Models),
				Limit:    handlers.Limit{Rate: k.Rate, Burst: k.Burst, Quota: k.Quota, QuotaPeriod: k.QuotaPeriod},
			}}
		}
		keys, err := handlers.NewAPIKeys(specs)
		if err != nil {
			return nil, fmt.Errorf("auth.api_keys: %w", err)
		}
		verifiers = append(verifiers, keys)
	}
	if j := cfg.Auth.JWT; j.JWKSURL != "" {
		noFail := true
		kf, err := keyfunc.NewDefaultOverrideCtx(ctx, []string{j.JWKSURL}, keyfunc.Override{
			HTTPTimeout:               jwksHTTPTimeout,
			NoErrorReturnFirstHTTPReq: &noFail,
			RateLimitWaitMax:          jwksWaitMax,
			RefreshInterval:           jwksRefreshInterval,
			RefreshUnknownKID:         rate.NewLimiter(rate.Every(jwksUnknownKIDEvery), 1),
			RefreshErrorHandlerFunc: func(u string) func(context.Context, error) {
				return func(_ context.Context, err error) {
					log.Warn().Err(err).Str("jwks_url", u).Msg("JWKS refresh failed; keeping the keys fetched before")
				}
			},
		})
		if err != nil {
			return nil, fmt.Errorf("auth.jwt.jwks_url %s: %w", j.JWKSURL, err)
		}
		v, err := handlers.NewJWTVerifier(handlers.JWTConfig{
			Keyfunc:         kf.Keyfunc,
			Issuer:          j.Issuer,
			Audience:        j.Audience,
			TenantClaim:     j.TenantClaim,
			TaskScopePrefix: j.TaskScopePrefix,
			OperatorScope:   j.OperatorScope,
			Leeway:          j.Leeway,
			Limit:           handlers.Limit{Rate: j.Rate, Burst: j.Burst, Quota: j.Quota, QuotaPeriod: j.QuotaPeriod},
		})
		if err != nil {
			return nil, err
		}
		verifiers = append(verifiers, v)
	}
	limits, where, err := openLimits(ctx, cfg, clients, log)
	if err != nil {
		return nil, err
	}
	ia.closers = append(ia.closers, limits.close)
	ia.guard.Limits = limits
	ia.middleware = append(ia.middleware, handlers.Authenticate(handlers.AuthConfig{
		Verifiers: verifiers,
		Limits:    limits,
		Logger:    log.With().Str("component", "auth").Logger(),
	}))
	log.Info().Int("api_keys", len(cfg.Auth.APIKeys)).Bool("jwt", cfg.Auth.JWT.JWKSURL != "").
		Str("limit_store", where).Msg("auth is on: every route but /healthz, /readyz and /metrics needs credentials")
	return ia, nil
}

func anyIfEmpty(list []string) []string {
	if len(list) == 0 {
		return []string{"*"}
	}
	return list
}

// jobs wraps the pipeline with the submit-time rules.
func (ia *ingressAuth) jobs(j handlers.Jobs) handlers.Jobs { return handlers.GuardJobs(j, ia.guard) }

// handler wraps the whole API in CORS.
func (ia *ingressAuth) handler(h http.Handler) http.Handler { return handlers.CORS(ia.cors)(h) }

// listener serves TLS on ln when configured.
func (ia *ingressAuth) listener(ln net.Listener) net.Listener {
	if ia.tls == nil {
		return ln
	}
	return tls.NewListener(ln, ia.tls)
}

func (ia *ingressAuth) close() error {
	var errs []error
	for _, c := range ia.closers {
		errs = append(errs, c())
	}
	return errors.Join(errs...)
}

// closableLimits is a limit store the ingress closes at shutdown.
type closableLimits struct {
	pipeline.LimitStore
	close func() error
}

// openLimits opens where rates and quotas are shared by the fleet: the PostgreSQL job store's
// database when store.kind is postgres, the DynamoDB job table when it is dynamodb, else the SQLite file at store.sqlite.path. It says
// which, for the log.
func openLimits(ctx context.Context, cfg config.Config, clients *awsClients, log zerolog.Logger) (closableLimits, string, error) {
	if cfg.Store.Kind == config.StoreDynamoDB {
		l, err := openDynamoLimits(ctx, clients, log)
		return l, "dynamodb table " + cfg.Store.DynamoDB.Table, err
	}
	if cfg.Store.Kind == config.StorePostgres {
		s, err := postgres.Open(ctx, postgres.Config{DSN: cfg.Store.Postgres.DSN, MaxConns: 4, Logger: log})
		if err != nil {
			return closableLimits{}, "", fmt.Errorf("open the limit store (store.postgres.dsn; run `infleet init` first): %w", err)
		}
		return closableLimits{LimitStore: s, close: func() error { s.Close(); return nil }}, "postgres", nil
	}
	l, err := sqlite.OpenLimits(ctx, sqlite.Config{Path: cfg.Store.SQLite.Path, Logger: log})
	if err != nil {
		return closableLimits{}, "", fmt.Errorf("open the limit store (store.sqlite.path %s; point every ingress at one file to share limits): %w",
			cfg.Store.SQLite.Path, err)
	}
	return closableLimits{LimitStore: l, close: l.Close}, cfg.Store.SQLite.Path, nil
}
