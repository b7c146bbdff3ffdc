package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/infleet/infleet/adapters/fmsim"
	"github.com/infleet/infleet/messages"
)

// batchingSystem is the tagging task's shared instructions: the part of each prompt a batch
// sends once instead of once per job.
const batchingSystem = "You tag customer support tickets for routing. Answer with exactly one tag from this list: " +
	"billing, shipping, returns, account, technical, product question, complaint, praise, other. " +
	"Pick the tag that best describes what the customer wants; when several fit, pick the first in the list."

// batchingRun is one pass of the batching scenario.
type batchingRun struct {
	calls   int64
	in, out int
	took    time.Duration
}

// batching sends the same short jobs through serve twice against one fmsim, unbatched and
// then batched at max_items 20, and compares model calls and tokens per job.
func (h *harness) batching(ctx context.Context) ([]row, error) {
	n := h.opts.batchingJobs
	sim := fmsim.New(fmsim.Config{Faults: fmsim.Faults{Latency: fmsim.Latency{P50: 20 * time.Millisecond}}})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	srv := &http.Server{Handler: sim, ReadHeaderTimeout: 10 * time.Second}
	go srv.Serve(ln) //nolint:errcheck // ends with Close below
	defer func() { sim.Close(); srv.Close() }()
	base := "http://" + ln.Addr().String() + "/v1"

	runs := map[string]batchingRun{}
	for _, mode := range []string{"unbatched", "batched"} {
		extra := fmt.Sprintf("prompts:\n  - {task: tag, version: 1.0.0, system: %q, template: \"Ticket: {{.Input}}\"}\n", batchingSystem)
		if mode == "batched" {
			extra += "batching:\n  - {task: tag, max_items: 20, max_wait: 100ms}\n"
		}
		cfg := h.cfg(0, 64)
		cfg.models = fmt.Sprintf("models:\n  - {name: m, provider: openai, base_url: %q, model_id: %s}\nroutes: {default: m}\n", base, mode)
		cfg.extra = extra
		r, err := h.batchingPass(ctx, mode, cfg, n)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", mode, err)
		}
		r.calls = sim.Stats().ByModel[mode]
		runs[mode] = r
		h.progress("batching, %s: %d model calls for %d jobs, %d input and %d output tokens", mode, r.calls, n, r.in, r.out)
	}
	u, b := runs["unbatched"], runs["batched"]
	st := sim.Stats()
	setup := fmt.Sprintf("the same %d distinct one-line \"tag\" jobs (a %d-word system prompt, a 13-word ticket each) through `infleet serve` "+
		"(64 workers) against fmsim (20 ms answers, tokens counted as 4 per 3 words), unbatched, then with `batching: {task: tag, max_items: 20, max_wait: 100ms}`; "+
		"%d batched calls of %d items; every job COMPLETED", n, len(strings.Fields(batchingSystem)), st.BatchCalls, st.BatchItems)
	perJob := func(v int64) string { return fmt.Sprintf("%.3f", float64(v)/float64(n)) }
	tokPerJob := func(r batchingRun) string {
		return fmt.Sprintf("%.1f (%.1f in, %.1f out)", float64(r.in+r.out)/float64(n), float64(r.in)/float64(n), float64(r.out)/float64(n))
	}
	return []row{
		{Scenario: "batching", Measure: "model calls per job, unbatched", Result: perJob(u.calls), Setup: setup},
		{Scenario: "batching", Measure: "model calls per job, batched (max_items 20)", Result: perJob(b.calls), Setup: setup},
		{Scenario: "batching", Measure: "tokens per job, unbatched", Result: tokPerJob(u), Setup: setup},
		{Scenario: "batching", Measure: "tokens per job, batched (max_items 20)", Result: tokPerJob(b), Setup: setup},
		{Scenario: "batching", Measure: "jobs/s, first POST to last COMPLETED, unbatched / batched",
			Result: fmt.Sprintf("%s / %s", thousands(float64(n)/u.took.Seconds()), thousands(float64(n)/b.took.Seconds())), Setup: setup},
	}, nil
}

// batchingPass runs n tag jobs through a fresh serve child and sums their usage.
func (h *harness) batchingPass(ctx context.Context, mode string, cfg childConfig, n int) (batchingRun, error) {
	p, err := h.startChild(ctx, "batching-"+mode, "serve", h.dir("batching-"+mode), cfg)
	if err != nil {
		return batchingRun{}, err
	}
	defer h.stopChild(p)
	ids := make([]string, n)
	var next atomic.Int64
	var wg sync.WaitGroup
	errc := make(chan error, 1)
	start := time.Now()
	for range min(h.opts.clients, n) {
		wg.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				body, _ := json.Marshal(map[string]any{"task": "tag", "input": map[string]string{
					"text": fmt.Sprintf("Order %d never arrived and the tracking page has not changed since Monday.", i)}})
				id, err := postJob(ctx, h.http, p.base, body)
				if err != nil {
					select {
					case errc <- err:
					default:
					}
					return
				}
				ids[i] = id
			}
		})
	}
	wg.Wait()
	select {
	case err := <-errc:
		return batchingRun{}, err
	default:
	}
	fin, err := h.waitFinished(ctx, p, n, jobTimeout(n))
	if err != nil {
		return batchingRun{}, err
	}
	r := batchingRun{took: fin.last.Sub(start)}
	texts := map[string]bool{}
	for _, id := range ids {
		res, err := h.result(ctx, p.base, id)
		if err != nil {
			return r, err
		}
		r.in += res.Usage.InputTokens
		r.out += res.Usage.OutputTokens
		texts[res.Output.Text] = true
	}
	if len(texts) != n {
		return r, fmt.Errorf("%d jobs got %d distinct answers; each job's answer should be its own", n, len(texts))
	}
	return r, nil
}

// result reads a job's result through GET /v1/jobs/{id}/result.
func (h *harness) result(ctx context.Context, base, id string) (messages.Result, error) {
	var res messages.Result
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+messages.ResultPath(id), nil)
	if err != nil {
		return res, err
	}
	resp, err := h.http.Do(req)
	if err != nil {
		return res, fmt.Errorf("GET result %s: %w", id, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return res, err
	}
	if resp.StatusCode != http.StatusOK {
		return res, fmt.Errorf("GET result %s: %s %s", id, resp.Status, snippet(b))
	}
	if err := json.Unmarshal(b, &res); err != nil {
		return res, errors.Join(fmt.Errorf("GET result %s: %s", id, snippet(b)), err)
	}
	return res, nil
}
