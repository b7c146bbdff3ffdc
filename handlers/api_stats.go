package handlers

import (
	"context"
	"net/http"
	"time"

	"github.com/infleet/infleet/pipeline/models"
	"github.com/infleet/infleet/pipeline/ops"
)

// ModelReportsFunc returns the configured models' reports, within ctx. It is safe for
// concurrent use.
type ModelReportsFunc func(ctx context.Context) ModelReports

// ModelReports are the configured models as GET /v1/models shows them.
type ModelReports struct {
	Models []models.Report
	// Live is true when the reports hold figures: false in a process that neither calls a
	// model nor reads the fleet's figures, which knows only the configuration.
	Live bool
	// Scope says whose figures they are: models.ScopeFleet (every process's, from the shared
	// store) or models.ScopeProcess (the answering process's own); "" when not Live.
	Scope string
}

// addStatsRoutes registers GET /v1/stats (with the operator routes) and GET /v1/models (when
// reports is set), each behind RequireOperator.
func (a *api) addStatsRoutes(operations Operations, reports ModelReportsFunc) {
	if operations != nil {
		a.mux.Handle("GET /v1/stats", RequireOperator(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			window := ops.DefaultStatsWindow
			if s := r.URL.Query().Get("window"); s != "" {
				d, err := time.ParseDuration(s)
				if err != nil || d < time.Minute || d > ops.MaxStatsWindow {
					writeProblem(w, r, newProblem(http.StatusBadRequest, SlugInvalidQuery, "fix the query parameters listed in errors",
						FieldProblem{Field: "window", Message: "must be a duration from 1m to 24h, such as 1h"}))
					return
				}
				window = d
			}
			st, err := operations.Stats(r.Context(), time.Now(), window)
			if err != nil {
				a.failed(w, r, err, "")
				return
			}
			w.Header().Set("Cache-Control", "no-store")
			writeJSON(w, http.StatusOK, marshalJSON(st))
		})))
	}
	if reports != nil {
		a.mux.Handle("GET /v1/models", RequireOperator(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			rep := reports(r.Context())
			if rep.Models == nil {
				rep.Models = []models.Report{}
			}
			w.Header().Set("Cache-Control", "no-store")
			writeJSON(w, http.StatusOK, marshalJSON(struct {
				GeneratedAt time.Time       `json:"generated_at"`
				Live        bool            `json:"live"`
				Scope       string          `json:"scope,omitempty"`
				Models      []models.Report `json:"models"`
			}{time.Now().UTC(), rep.Live, rep.Scope, rep.Models}))
		})))
	}
}
