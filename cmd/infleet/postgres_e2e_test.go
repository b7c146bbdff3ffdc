package main

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/infleet/infleet/messages"
)

// TestServeOnPostgres runs `infleet init` and then serve with the PostgreSQL job store.
func TestServeOnPostgres(t *testing.T) {
	dsn := os.Getenv("INFLEET_TEST_POSTGRES_DSN")
	if dsn == "" {
		t.Skip("INFLEET_TEST_POSTGRES_DSN is unset (make test starts a PostgreSQL and sets it)")
	}
	t.Parallel()
	store := fmt.Sprintf("store: {kind: postgres, postgres: {dsn: %q}}\n", dsn)
	cfgPath := filepath.Join(t.TempDir(), "init.yaml")
	if err := os.WriteFile(cfgPath, []byte(store+"log: {level: warn}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	var out, errOut bytes.Buffer
	for range 2 { // init is idempotent
		out.Reset()
		if rc := run([]string{"init", "--config", cfgPath, "--data-dir", t.TempDir()}, &out, &errOut); rc != 0 ||
			!strings.Contains(out.String(), "store postgres: schema at version") {
			t.Fatalf("init: rc %d\n%s%s", rc, out.String(), errOut.String())
		}
	}
	h := startServe(t, e2eConfig+store)
	id := h.submit(`{"task":"summarize","input":{"text":"kept in PostgreSQL"}}`)
	rec := h.waitStatus(id, messages.StatusCompleted)
	if rec.Attempts != 1 || rec.Usage == nil {
		t.Fatalf("record %+v", rec)
	}
}

// TestQuotaOnPostgresStore keeps a key's quota in PostgreSQL when the job store is there, so
// every ingress of the fleet counts against one quota.
func TestQuotaOnPostgresStore(t *testing.T) {
	dsn := os.Getenv("INFLEET_TEST_POSTGRES_DSN")
	if dsn == "" {
		t.Skip("INFLEET_TEST_POSTGRES_DSN is unset (make test starts a PostgreSQL and sets it)")
	}
	t.Parallel()
	store := fmt.Sprintf("store: {kind: postgres, postgres: {dsn: %q}}\n", dsn)
	cfgPath := filepath.Join(t.TempDir(), "init.yaml")
	if err := os.WriteFile(cfgPath, []byte(store), 0o600); err != nil {
		t.Fatal(err)
	}
	var out, errOut bytes.Buffer
	if rc := run([]string{"init", "--config", cfgPath, "--data-dir", t.TempDir()}, &out, &errOut); rc != 0 {
		t.Fatalf("init: rc %d\n%s", rc, errOut.String())
	}
	key := fmt.Sprintf("k_pg_quota_%d_%d", os.Getpid(), time.Now().UnixNano())
	yaml := e2eConfig + store + fmt.Sprintf("auth: {api_keys: [{key: %q, tenant: pgq, quota: 2, quota_period: day}]}\n", key)
	a := startServe(t, yaml)
	b := startServe(t, yaml)
	hdr := map[string]string{"X-Api-Key": key}
	job := `{"task":"summarize","input":{"text":"counted once for the fleet"}}`
	codes := []int{}
	for _, h := range []*apiHarness{a, b, a} {
		code, _, _ := h.do("POST", "/v1/jobs", job, hdr)
		codes = append(codes, code)
	}
	if codes[0] != 202 || codes[1] != 202 || codes[2] != 429 {
		t.Fatalf("statuses %v, want 202 202 429 across two ingresses sharing one quota", codes)
	}
}
