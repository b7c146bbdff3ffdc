package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/infleet/infleet/messages"
)

// fmsimAlone asks fmsim at base what it answers text alone, as model m with the system prompt.
func fmsimAlone(t *testing.T, base, system, text string) string {
	t.Helper()
	body, _ := json.Marshal(map[string]any{"model": "m", "messages": []map[string]string{{"role": "system", "content": system}, {"role": "user", "content": text}}})
	resp, err := http.Post(base+"/v1/chat/completions", "application/json", strings.NewReader(string(body)))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out struct {
		Choices []struct {
			Message struct{ Content string } `json:"message"`
		} `json:"choices"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil || len(out.Choices) != 1 {
		t.Fatalf("fmsim alone: %v", err)
	}
	return out.Choices[0].Message.Content
}

// TestServeBatchesATasksJobs runs 40 jobs of a batched task through serve against `infleet
// fmsim`, which garbles one item and drops another: the jobs share two model calls of 20 and
// 19 items, the spoiled two are asked again alone, and every job completes with the answer
// its own prompt gets unbatched and a share of the usage and cost. The guardrails still judge
// each job: one is blocked on its input before it joins a batch, one on its answer after.
func TestServeBatchesATasksJobs(t *testing.T) {
	t.Parallel()
	sim := startFmsim(t, "--garble-items-matching", "ticket 7 ", "--drop-items-matching", "ticket 13 ")
	h := startServe(t, fmt.Sprintf(`
models:
  - {name: m, provider: openai, base_url: %q, model_id: m, price: {input: 3, output: 15}}
routes: {default: m}
prompts:
  - {task: tag, version: 1.0.0, system: "You tag support tickets.", template: "Tag this ticket: {{.Input}}"}
batching:
  - {task: tag, max_items: 20, max_wait: 3s}
guardrails:
  input: {words: [forbidden]}
  output: {words: [zebra]}
workers: {concurrency: 48, max_attempts: 1, shutdown_timeout: 1s}
log: {level: error}
`, sim+"/v1"))

	const n = 40
	text := func(i int) string {
		switch i {
		case 9:
			return "ticket 9 asks about something forbidden"
		case 21:
			return "ticket 21 is about a zebra at the zoo"
		}
		return fmt.Sprintf("ticket %d of the queue: my order has not arrived", i)
	}
	ids := make([]string, n)
	for i := range ids {
		ids[i] = h.submit(fmt.Sprintf(`{"task":"tag","input":{"text":%q}}`, text(i)))
	}
	var sumIn int
	for i, id := range ids {
		want := messages.StatusCompleted
		if i == 9 || i == 21 {
			want = messages.StatusFailed
		}
		rec := h.waitStatus(id, want)
		if want == messages.StatusFailed {
			if rec.Error == nil || rec.Error.Code != messages.ErrCodeGuardrailBlocked {
				t.Errorf("job %d: error %+v, want guardrail_blocked", i, rec.Error)
			}
			continue
		}
		code, _, body := h.do(http.MethodGet, messages.ResultPath(id), "", nil)
		var res messages.Result
		if code != http.StatusOK || json.Unmarshal(body, &res) != nil {
			t.Fatalf("result of job %d: %d %s", i, code, body)
		}
		if res.Usage.InputTokens == 0 || res.Usage.OutputTokens == 0 || res.Usage.CostUSD <= 0 {
			t.Errorf("job %d has no usage or cost of its own: %+v", i, res.Usage)
		}
		if res.Prompt != "tag@1.0.0" {
			t.Errorf("job %d prompt %q", i, res.Prompt)
		}
		sumIn += res.Usage.InputTokens
		ids[i] = res.Output.Text // kept to compare below, once fmsim's counts are read
	}
	st := fmsimStats(t, sim)
	calls, batches, items, spoiled := st.Calls, st.BatchCalls, st.BatchItems, st.DroppedItems+st.GarbledItems
	t.Logf("fmsim: %d calls for %d jobs (%.3f per job), %d batches of %d items, %d items spoiled; %d input tokens billed to jobs",
		calls, n, float64(calls)/n, batches, items, spoiled, sumIn)
	if batches != 2 || items != n-1 || spoiled != 2 || calls != batches+spoiled {
		t.Errorf("fmsim saw %d calls, %d batches of %d items, %d spoiled; want 2 batches of 39 items and the 2 spoiled items alone", calls, batches, items, spoiled)
	}
	_, _, metrics := h.do(http.MethodGet, "/metrics", "", nil)
	for _, want := range []string{"infleet_batch_items_total 39", "infleet_batch_calls_total 4", "infleet_batch_groups_total 2", "infleet_batch_items_alone_total 2"} {
		if !strings.Contains(string(metrics), want+"\n") {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	for i := range n {
		if i == 9 || i == 21 {
			continue
		}
		if want := fmsimAlone(t, sim, "You tag support tickets.", "Tag this ticket: "+text(i)); ids[i] != want {
			t.Errorf("job %d answer %q, want its unbatched answer %q", i, ids[i], want)
		}
	}
}
