package handlers

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/infleet/infleet/pipeline"
	"github.com/infleet/infleet/pipeline/ops"
)

// fakeReplays answers the replay routes and records what they asked; the other operations
// are not called.
type fakeReplays struct {
	Operations
	mu           sync.Mutex
	started      ops.ReplayRequest
	listTenant   string
	listLimit    int
	statusTenant string
}

func (f *fakeReplays) Replay(_ context.Context, req ops.ReplayRequest) (ops.ReplayStatus, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.started = req
	running := ops.ReplayStatus{Name: req.Name, Matched: 3, Process: "p1"}
	if req.Task == "classify" {
		return ops.ReplayStatus{}, &ops.ReplayConflictError{Name: req.Name, Field: "task", Running: running}
	}
	return running, nil
}

func (f *fakeReplays) ReplayStatus(_ context.Context, name, tenant string) (ops.ReplayStatus, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.statusTenant = tenant
	if name == "missing" {
		return ops.ReplayStatus{}, pipeline.ErrNotFound
	}
	return ops.ReplayStatus{Name: name, Matched: 3, Published: 1, Interrupted: true, Process: "p1"}, nil
}

func (f *fakeReplays) Replays(_ context.Context, tenant string, limit int) ([]ops.ReplayStatus, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.listTenant, f.listLimit = tenant, limit
	return nil, nil
}

func TestReplayRoutes(t *testing.T) {
	t.Parallel()
	fake := &fakeReplays{}
	b := setup(t, func(c *APIConfig) { c.Operations = fake })
	read := func(resp *http.Response) map[string]any {
		t.Helper()
		defer resp.Body.Close()
		data, _ := io.ReadAll(resp.Body)
		var m map[string]any
		if err := json.Unmarshal(data, &m); err != nil {
			t.Fatalf("%s: %v", data, err)
		}
		return m
	}

	resp := b.do(t, http.MethodPost, "/v1/replays", `{"since":"2h","name":"r1"}`)
	if resp.StatusCode != http.StatusAccepted || resp.Header.Get("Location") != "/v1/replays/r1" {
		t.Fatalf("start: %d %v", resp.StatusCode, resp.Header)
	}
	read(resp)
	if fake.started.Since != 2*time.Hour {
		t.Fatalf("since reached the operator as %s, want 2h", fake.started.Since)
	}

	resp = b.do(t, http.MethodPost, "/v1/replays", `{"since":"2h","name":"r1","task":"classify"}`)
	if resp.StatusCode != http.StatusConflict || resp.Header.Get("Content-Type") != "application/problem+json" {
		t.Fatalf("conflicting start: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	p := read(resp)
	if errs, _ := p["errors"].([]any); len(errs) != 1 || errs[0].(map[string]any)["field"] != "task" {
		t.Fatalf("conflict problem %v, want one error naming task", p)
	}

	resp = b.do(t, http.MethodGet, "/v1/replays/r1", "", tenantHeader+": acme")
	if st := read(resp); resp.StatusCode != http.StatusOK || st["interrupted"] != true || st["process"] != "p1" || fake.statusTenant != "acme" {
		t.Fatalf("status: %d %v (tenant %q)", resp.StatusCode, st, fake.statusTenant)
	}
	resp = b.do(t, http.MethodGet, "/v1/replays/missing", "")
	read(resp)
	if resp.StatusCode != http.StatusNotFound {
		t.Fatalf("missing replay: %d, want 404", resp.StatusCode)
	}

	resp = b.do(t, http.MethodGet, "/v1/replays", "", tenantHeader+": acme")
	if l := read(resp); resp.StatusCode != http.StatusOK || l["count"] != 0.0 || fake.listLimit != defaultReplayList || fake.listTenant != "acme" {
		t.Fatalf("list: %d %v (limit %d, tenant %q)", resp.StatusCode, l, fake.listLimit, fake.listTenant)
	}
	if _, ok := read(b.do(t, http.MethodGet, "/v1/replays?limit=7", ""))["replays"].([]any); !ok || fake.listLimit != 7 {
		t.Fatalf("list with limit 7: replays not an array, or limit %d", fake.listLimit)
	}
	for _, bad := range []string{"0", "1001", "x"} {
		resp = b.do(t, http.MethodGet, "/v1/replays?limit="+bad, "")
		read(resp)
		if resp.StatusCode != http.StatusBadRequest {
			t.Fatalf("limit=%s: %d, want 400", bad, resp.StatusCode)
		}
	}
}

func TestTenantReadsItsOwnReplaysOnly(t *testing.T) {
	t.Parallel()
	fake := &fakeReplays{}
	asTenant := func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			ctx := ContextWithPrincipal(r.Context(), Principal{ID: "key:acme", Tenant: "acme"})
			next.ServeHTTP(w, r.WithContext(ContextWithTenant(ctx, "acme")))
		})
	}
	b := setup(t, func(c *APIConfig) {
		c.Operations = fake
		c.Middleware = []func(http.Handler) http.Handler{asTenant}
	})
	for _, path := range []string{"/v1/replays", "/v1/replays/r1"} {
		resp := b.do(t, http.MethodGet, path, "")
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("GET %s as a tenant: %d, want 200", path, resp.StatusCode)
		}
	}
	if fake.listTenant != "acme" || fake.statusTenant != "acme" {
		t.Fatalf("reads scoped to %q and %q, want acme", fake.listTenant, fake.statusTenant)
	}
	resp := b.do(t, http.MethodPost, "/v1/replays", `{"since":"2h"}`)
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Fatalf("a tenant starting a replay: %d, want 403", resp.StatusCode)
	}
}
