package main

import (
	"context"
	"errors"
	"net/http"
	"strings"

	"github.com/rs/zerolog"

	"github.com/infleet/infleet/config"
	"github.com/infleet/infleet/handlers"
	"github.com/infleet/infleet/handlers/ui"
	"github.com/infleet/infleet/pipeline"
	"github.com/infleet/infleet/pipeline/guard"
)

// inputMask returns what masks the texts GET /v1/jobs/{id}/request shows: the input
// guardrails' PII policy, run locally with every configured entity and custom pattern
// anonymized (whatever its action, so that blocked values are masked too) and nothing
// restored. nil when the input side has no PII policy.
func inputMask(cfg config.Config, log zerolog.Logger) (handlers.MaskFunc, error) {
	pii := cfg.Guardrails.Input.PII
	if pii == nil {
		return nil, nil
	}
	masking := *pii
	masking.Action, masking.EntityActions, masking.RestoreInOutput = config.DefaultPIIAction, nil, false
	masking.Custom = append([]config.CustomPattern(nil), pii.Custom...)
	for i := range masking.Custom {
		masking.Custom[i].Action = config.DefaultPIIAction
	}
	g, err := guard.New(guardConfig(config.GuardrailPolicies{PII: &masking}, guard.NewMetrics(nil), log))
	if err != nil {
		return nil, err
	}
	return func(ctx context.Context, texts []string) ([]string, error) {
		out, err := g.Check(ctx, pipeline.GuardInput, texts)
		if err != nil {
			return nil, err
		}
		if len(out.Texts) != len(texts) {
			return nil, errors.New("the input guard answered a different number of texts")
		}
		return out.Texts, nil
	}, nil
}

// withConsole serves the operator console at /ui/ (and redirects / there) beside served, the
// API as the outside reaches it; the console itself calls api, the API with its
// authentication, in-process.
//
// The console's sessions are sealed with console.session_key; without one, with a random key of
// this process, which a warning says at start-up.
func withConsole(api, served http.Handler, cfg config.Config, log zerolog.Logger) (http.Handler, error) {
	key, _ := cfg.Console.SessionKeyBytes() // Validate refused a malformed key
	if key == nil {
		log.Warn().Str("setting", "console.session_key").
			Msg("no console session key: console sessions are sealed with a random key of this process and open in no other, so behind a load balancer route each operator's /ui/ to one process (sticky routing) or give every process the same console.session_key (INFLEET_CONSOLE_SESSION_KEY)")
	}
	console, err := ui.New(ui.Config{API: api, Auth: cfg.Auth.Enabled(), SessionKey: key,
		Logger: log.With().Str("component", "console").Logger()})
	if err != nil {
		return nil, err
	}
	// A prefix test, not a second mux: the API's requests pay a string comparison for the
	// console, nothing more.
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch p := r.URL.Path; {
		case strings.HasPrefix(p, "/ui/") || p == "/ui":
			console.ServeHTTP(w, r)
		case p == "/" && (r.Method == http.MethodGet || r.Method == http.MethodHead):
			ui.RedirectToConsole(w, r)
		default:
			served.ServeHTTP(w, r)
		}
	}), nil
}
