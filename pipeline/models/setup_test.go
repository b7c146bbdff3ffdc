package models_test

import (
	"context"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/infleet/infleet/adapters/fmsim"
	"github.com/infleet/infleet/adapters/openai"
	"github.com/infleet/infleet/messages"
	"github.com/infleet/infleet/pipeline"
	"github.com/infleet/infleet/pipeline/models"
)

// bundle is a Fleet in front of real OpenAI-compatible clients on an in-process fmsim.
type bundle struct {
	sim   *fmsim.Server
	url   string
	fleet *models.Fleet
	// inFlight counts calls in flight per model, through counting clients.
	peak map[string]*atomic.Int64
	// sent counts the calls made to each model's client, whether or not fmsim saw them (a
	// call cut off before its request reached the server, on a loaded machine, is counted).
	sent map[string]*atomic.Int64
}

// fastPolicy retries quickly so that tests stay short.
func fastPolicy() models.Policy {
	return models.Policy{
		MaxAttempts: 4,
		BackoffBase: time.Millisecond,
		BackoffMax:  5 * time.Millisecond,
		Deadline:    5 * time.Second,
		BudgetRatio: 1,
		Breaker:     models.BreakerConfig{Failures: 1000, MinCalls: 1000000},
	}
}

// setup starts fmsim with faults per model id (a model's id is its name) and a Fleet over the
// specs, each given a real openai client.
func setup(t testing.TB, faults map[string]fmsim.Faults, policy models.Policy, specs ...models.ModelSpec) *bundle {
	t.Helper()
	sim := fmsim.New(fmsim.Config{Models: faults, Seed: 7})
	srv := httptest.NewServer(sim)
	t.Cleanup(func() { sim.Close(); srv.Close() })
	b := &bundle{sim: sim, url: srv.URL + "/v1", peak: map[string]*atomic.Int64{}, sent: map[string]*atomic.Int64{}}
	for i := range specs {
		if specs[i].ModelID == "" {
			specs[i].ModelID = specs[i].Name
		}
		if specs[i].Timeout == 0 {
			specs[i].Timeout = 2 * time.Second
		}
		specs[i].Client = b.client(t, specs[i].ModelID)
	}
	f, err := models.NewFleet(models.FleetConfig{Models: specs, Policy: policy})
	if err != nil {
		t.Fatal(err)
	}
	b.fleet = f
	return b
}

func (b *bundle) client(t testing.TB, id string) pipeline.ModelClient {
	t.Helper()
	c, err := openai.New(openai.Config{BaseURL: b.url, ModelID: id})
	if err != nil {
		t.Fatal(err)
	}
	n, peak, sent := &atomic.Int64{}, &atomic.Int64{}, &atomic.Int64{}
	b.peak[id], b.sent[id] = peak, sent
	return clientFunc(func(ctx context.Context, req pipeline.ModelRequest) (pipeline.ModelResponse, error) {
		sent.Add(1)
		cur := n.Add(1)
		defer n.Add(-1)
		for {
			p := peak.Load()
			if cur <= p || peak.CompareAndSwap(p, cur) {
				break
			}
		}
		return c.Invoke(ctx, req)
	})
}

// calls returns how many calls fmsim answered for model id, by outcome.
func (b *bundle) calls(id string) map[string]int64 {
	return b.sim.Stats().ByModelOutcome[id]
}

func (b *bundle) total(id string) int64 {
	var n int64
	for _, v := range b.calls(id) {
		n += v
	}
	return n
}

type clientFunc func(ctx context.Context, req pipeline.ModelRequest) (pipeline.ModelResponse, error)

func (f clientFunc) Invoke(ctx context.Context, req pipeline.ModelRequest) (pipeline.ModelResponse, error) {
	return f(ctx, req)
}

func request(text string) pipeline.ModelRequest {
	return pipeline.ModelRequest{Task: "summarize", Messages: []messages.ChatMessage{{Role: "user", Content: text}}}
}

// waitFor polls cond until it holds or the timeout passes.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func contains(s, sub string) bool { return strings.Contains(s, sub) }
