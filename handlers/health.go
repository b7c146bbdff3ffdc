package handlers

import (
	"context"
	"net/http"

	"github.com/rs/zerolog"
)

// NewOpsAPI returns the HTTP surface of a worker-only process: GET /healthz (the process is
// up), GET /readyz (ready reports no error within DefaultReadyTimeout) and GET /metrics (nil
// answers 404). Every other route is a 404 problem. Safe for concurrent use.
func NewOpsAPI(ready func(context.Context) error, metrics http.Handler, log zerolog.Logger) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, []byte(`{"status":"ok"}`))
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), DefaultReadyTimeout)
		defer cancel()
		if err := ready(ctx); err != nil {
			log.Warn().Err(err).Msg("not ready")
			writeProblem(w, r, newProblem(http.StatusServiceUnavailable, SlugUnavailable, "not ready: "+err.Error()))
			return
		}
		writeJSON(w, http.StatusOK, []byte(`{"status":"ready"}`))
	})
	if metrics != nil {
		mux.Handle("GET /metrics", metrics)
	}
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeProblem(w, r, newProblem(http.StatusNotFound, SlugNotFound,
			"a worker serves only /healthz, /readyz and /metrics; the jobs API runs in `infleet ingress` or `infleet serve`"))
	})
	return Recover(log)(mux)
}
