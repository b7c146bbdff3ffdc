package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/infleet/infleet/config"
	"github.com/infleet/infleet/messages"
)

const reloadBase = `
models:
  - {name: fast, provider: sim}
  - {name: big, provider: sim}
routing:
  reload_interval: 10ms
`

func TestRoutingReloadsAValidFileAndKeepsTheLastGoodOne(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "infleet.yaml")
	version := time.Now()
	write := func(body string) {
		t.Helper()
		if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		version = version.Add(time.Second) // a new mtime even on coarse file systems
		if err := os.Chtimes(path, version, version); err != nil {
			t.Fatal(err)
		}
	}
	write(reloadBase + "routes: {default: fast}\n")
	cfg, err := config.Load(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Store.SQLite.Path = filepath.Join(t.TempDir(), "infleet.db") // where the model figures go
	a := &app{cfg: cfg, reg: prometheus.NewRegistry(), log: zerolog.Nop()}
	t.Cleanup(func() { _ = a.close() })
	p, err := a.pickerFrom(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	picked := func() string {
		m, err := p.Pick(&messages.Job{JobID: "j", Task: "summarize", Input: messages.Input{Text: "hi"}})
		if err != nil {
			t.Fatal(err)
		}
		return m.Name
	}
	reloads := func(result string) float64 {
		mfs, err := a.reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		for _, mf := range mfs {
			if mf.GetName() != "infleet_config_reloads_total" {
				continue
			}
			for _, m := range mf.GetMetric() {
				if m.GetLabel()[0].GetValue() == result {
					return m.GetCounter().GetValue()
				}
			}
		}
		return 0
	}
	wait := func(what string, cond func() bool) {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second)
		for !cond() {
			if time.Now().After(deadline) {
				t.Fatalf("timed out waiting for %s", what)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	if got := picked(); got != "fast" {
		t.Fatalf("picked %s, want fast", got)
	}

	write(reloadBase + "routes: {default: fast, summarize: big}\n")
	wait("the valid change to apply", func() bool { return picked() == "big" })
	wait("the ok reload to be counted", func() bool { return reloads("ok") == 1 })

	write(reloadBase + "routes: {default: fast, summarize: ghost}\n") // names no model
	wait("the invalid change to be rejected", func() bool { return reloads("rejected") == 1 })
	if got := picked(); got != "big" {
		t.Fatalf("picked %s after a rejected change, want big (the last good routing)", got)
	}

	write(strings.Replace(reloadBase, "provider: sim}", "provider: sim, fallbacks: [nope]}", 1) + "routes: {default: fast}\n")
	wait("a schema-valid but unknown fallback to be rejected", func() bool { return reloads("rejected") == 2 })
	if got := picked(); got != "big" {
		t.Fatalf("picked %s, want big", got)
	}
}
