package models_test

import (
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/infleet/infleet/adapters/sim"
	"github.com/infleet/infleet/pipeline/models"
)

// spendAsTenants runs one call per tenant through a priced sim model on a fleet registered
// with a fresh registry, and returns the registry's per-tenant series in text form.
func spendAsTenants(t *testing.T, tenantLabels bool, tenants ...string) (*prometheus.Registry, string) {
	t.Helper()
	reg := prometheus.NewRegistry()
	f, err := models.NewFleet(models.FleetConfig{
		Models: []models.ModelSpec{{Name: "m", ModelID: "m", Client: sim.New(sim.Config{}),
			Price: models.Price{InputPerMTok: 1e6, OutputPerMTok: 1e6}}},
		Registerer:   reg,
		TenantLabels: tenantLabels,
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, tenant := range tenants {
		req := request("spend a little")
		req.Tenant = tenant
		if _, err := f.Client("m").Invoke(t.Context(), req); err != nil {
			t.Fatal(err)
		}
	}
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	for _, mf := range families {
		if strings.HasPrefix(mf.GetName(), "infleet_tenant_") {
			b.WriteString(mf.String())
			b.WriteByte('\n')
		}
	}
	return reg, b.String()
}

func TestTenantSeriesNameNoTenantByDefault(t *testing.T) {
	t.Parallel()
	reg, text := spendAsTenants(t, false, "acme", "globex", "")
	for _, name := range []string{"acme", "globex"} {
		if strings.Contains(text, name) {
			t.Errorf("tenant %s is named in the metrics:\n%s", name, text)
		}
	}
	// The figures are kept, summed over the tenants under tenant="*".
	if n := len(series(t, reg, "infleet_tenant_cost_usd_total")); n != 1 {
		t.Errorf("%d cost series, want 1 (tenant=\"*\")", n)
	}
	cost := counterValue(t, reg, "infleet_tenant_cost_usd_total", "m", models.AllTenants)
	acmeAlone := spendOf(t, "acme")
	if cost < 1.99*acmeAlone || cost > 2.01*acmeAlone {
		t.Errorf("tenant=\"*\" cost %v, want the two tenants' sum %v", cost, 2*acmeAlone)
	}
}

func TestTenantSeriesNameTenantsWhenAsked(t *testing.T) {
	t.Parallel()
	reg, text := spendAsTenants(t, true, "acme", "globex")
	for _, name := range []string{`"acme"`, `"globex"`} {
		if !strings.Contains(text, name) {
			t.Errorf("tenant %s is missing from the metrics:\n%s", name, text)
		}
	}
	if strings.Contains(text, `"*"`) {
		t.Errorf("tenant=\"*\" series with tenant labels on:\n%s", text)
	}
	if n := len(series(t, reg, "infleet_tenant_tokens_total")); n != 4 {
		t.Errorf("%d token series, want 4 (two tenants, two directions)", n)
	}
}

// spendOf is the cost one call of tenant spends.
func spendOf(t *testing.T, tenant string) float64 {
	t.Helper()
	reg, _ := spendAsTenants(t, true, tenant)
	return counterValue(t, reg, "infleet_tenant_cost_usd_total", "m", tenant)
}

// series returns the values of the counter series of name in reg, by their label values
// joined with commas.
func series(t *testing.T, reg *prometheus.Registry, name string) map[string]float64 {
	t.Helper()
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, mf := range families {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			var labels []string
			for _, lp := range m.GetLabel() {
				labels = append(labels, lp.GetValue())
			}
			out[strings.Join(labels, ",")] = m.GetCounter().GetValue()
		}
	}
	return out
}

// counterValue is the value of the counter of name with the label values (in label name
// order) in reg.
func counterValue(t *testing.T, reg *prometheus.Registry, name string, labels ...string) float64 {
	t.Helper()
	v, ok := series(t, reg, name)[strings.Join(labels, ",")]
	if !ok {
		t.Fatalf("no %s series with labels %v; have %v", name, labels, series(t, reg, name))
	}
	return v
}
