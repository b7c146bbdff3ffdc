package handlers

import (
	"net/http"
	"strings"
)

// ScopedMetrics returns the GET /metrics handler that serves all, except for a scrape whose
// name[] filter (the Prometheus query parameter promhttp honours) asks only for metric names
// beginning with prefix: that one is served by own, which gathers only the collectors whose
// names begin with prefix. A full gathering runs every collector, the Go runtime's and the
// process's too (the latter reads several files under /proc each time), so a scraper that polls
// a few counters often — an autoscaler, a benchmark waiting for jobs to finish — would pay it
// on each poll; with the filter it pays only for what it asked. A request without name[], or
// with one name outside prefix, gets all, so every answer is what all would give for it.
func ScopedMetrics(all, own http.Handler, prefix string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if onlyPrefixed(r, prefix) {
			own.ServeHTTP(w, r)
			return
		}
		all.ServeHTTP(w, r)
	})
}

// onlyPrefixed reports whether r names metrics with name[] and every name begins with prefix.
func onlyPrefixed(r *http.Request, prefix string) bool {
	if r.URL == nil || r.URL.RawQuery == "" {
		return false
	}
	names := r.URL.Query()["name[]"]
	if len(names) == 0 {
		return false
	}
	for _, n := range names {
		if !strings.HasPrefix(n, prefix) {
			return false
		}
	}
	return true
}
