package handlers_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/infleet/infleet/handlers"
)

// countingCollector is a collector that counts how often it is gathered, standing in for the
// Go runtime's and the process's.
type countingCollector struct {
	desc  *prometheus.Desc
	calls atomic.Int64
}

func (c *countingCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }

func (c *countingCollector) Collect(ch chan<- prometheus.Metric) {
	c.calls.Add(1)
	ch <- prometheus.MustNewConstMetric(c.desc, prometheus.GaugeValue, 7)
}

func TestScopedMetricsGathersOnlyWhatTheFilterNames(t *testing.T) {
	own, runtime := prometheus.NewRegistry(), prometheus.NewRegistry()
	jobs := prometheus.NewCounter(prometheus.CounterOpts{Name: "infleet_jobs_done_total", Help: "h"})
	other := prometheus.NewGauge(prometheus.GaugeOpts{Name: "infleet_other", Help: "h"})
	own.MustRegister(jobs, other)
	jobs.Add(3)
	proc := &countingCollector{desc: prometheus.NewDesc("process_thing", "h", nil, nil)}
	runtime.MustRegister(proc)
	h := handlers.ScopedMetrics(promhttp.HandlerFor(prometheus.Gatherers{own, runtime}, promhttp.HandlerOpts{}),
		promhttp.HandlerFor(own, promhttp.HandlerOpts{}), "infleet_")

	for _, tc := range []struct {
		query         string
		gathersOthers bool
		has, lacks    []string
	}{
		{"", true, []string{"infleet_jobs_done_total 3", "infleet_other 0", "process_thing 7"}, nil},
		{"?name[]=infleet_jobs_done_total", false, []string{"infleet_jobs_done_total 3"}, []string{"infleet_other", "process_thing"}},
		{"?name[]=infleet_jobs_done_total&name[]=infleet_other", false, []string{"infleet_jobs_done_total 3", "infleet_other 0"}, []string{"process_thing"}},
		{"?name[]=infleet_jobs_done_total&name[]=process_thing", true, []string{"infleet_jobs_done_total 3", "process_thing 7"}, []string{"infleet_other"}},
		{"?name[]=process_thing", true, []string{"process_thing 7"}, []string{"infleet_jobs_done_total"}},
		{"?other=infleet_x", true, []string{"infleet_jobs_done_total 3", "process_thing 7"}, nil},
	} {
		before := proc.calls.Load()
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics"+tc.query, nil))
		body, _ := io.ReadAll(rec.Result().Body)
		if rec.Code != http.StatusOK {
			t.Fatalf("%q: status %d", tc.query, rec.Code)
		}
		if gathered := proc.calls.Load() > before; gathered != tc.gathersOthers {
			t.Errorf("%q: process collector gathered = %v, want %v", tc.query, gathered, tc.gathersOthers)
		}
		for _, s := range tc.has {
			if !strings.Contains(string(body), s+"\n") {
				t.Errorf("%q: answer lacks %q:\n%s", tc.query, s, body)
			}
		}
		for _, s := range tc.lacks {
			if strings.Contains(string(body), s) {
				t.Errorf("%q: answer has %q:\n%s", tc.query, s, body)
			}
		}
	}
}
