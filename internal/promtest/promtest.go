// Package promtest reads a Prometheus registry back in tests.
package promtest

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

// Series gathers reg and returns each series keyed by its name and labels, in the registry's
// label order ("name label=value label=value"): a counter's or gauge's value, or a histogram's
// sample count. It fails t when reg cannot be gathered.
func Series(t testing.TB, reg *prometheus.Registry) map[string]float64 {
	t.Helper()
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	series := map[string]float64{}
	for _, f := range families {
		for _, m := range f.GetMetric() {
			key := f.GetName()
			for _, l := range m.GetLabel() {
				key += " " + l.GetName() + "=" + l.GetValue()
			}
			switch {
			case m.GetHistogram() != nil:
				series[key] = float64(m.GetHistogram().GetSampleCount())
			case m.GetGauge() != nil:
				series[key] = m.GetGauge().GetValue()
			default:
				series[key] = m.GetCounter().GetValue()
			}
		}
	}
	return series
}

// Want fails t unless got (from Series) holds exactly the series of want, with their values.
func Want(t testing.TB, got, want map[string]float64) {
	t.Helper()
	if len(got) != len(want) {
		t.Errorf("series %v, want %v", got, want)
	}
	for k, v := range want {
		if g, ok := got[k]; !ok || g != v {
			t.Errorf("%s = %v (present: %t), want %v", k, g, ok, v)
		}
	}
}
