package main

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"testing"

	"github.com/infleet/infleet/messages"
)

// TestServeTopicClassifierBlocksParaphrase runs serve with denied topics and a classifier
// model that really answers the classification prompt (`infleet fmsim --classify-rules`, over
// the OpenAI protocol): a paraphrase the built-in matcher misses is blocked by the classifier,
// and other jobs complete.
func TestServeTopicClassifierBlocksParaphrase(t *testing.T) {
	t.Parallel()
	addr := startFmsim(t, "--classify-rules", filepath.Join("testdata", "fmsim-topic-rules.json"))
	h := startServe(t, fmt.Sprintf(`
models:
  - {name: fast, provider: sim, latency: 1ms}
  - {name: clf, provider: openai, base_url: %q, model_id: clf}
routes: {default: fast}
guardrails:
  input:
    denied_topics:
      - {name: medical-diagnosis, definition: "Diagnosing illnesses or prescribing treatment.", examples: ["What illness do I have?"]}
      - {name: investment-advice, definition: "Recommending stocks, funds or other investments.", examples: ["Should I buy this stock?"]}
    topic_classifier: {model: clf}
log: {level: warn}
`, addr+"/v1"))
	blocked := h.submit(`{"task":"chat","input":{"text":"Is now a good moment to pile into Nvidia shares, or will they drop after the earnings call?"}}`)
	rec := h.waitStatus(blocked, messages.StatusFailed)
	if rec.Error == nil || rec.Error.Code != messages.ErrCodeGuardrailBlocked || rec.Guardrail == nil {
		t.Fatalf("record %+v", rec)
	}
	found := false
	for _, a := range rec.Guardrail.Input {
		found = found || (a.Policy == "topic_classifier" && a.Type == "investment-advice" && a.Action == messages.GuardActionBlocked)
	}
	if !found {
		g, _ := json.Marshal(rec.Guardrail)
		t.Fatalf("no classifier assessment in %s", g)
	}
	ok := h.submit(`{"task":"chat","input":{"text":"Summarize the quarterly sales figures."}}`)
	h.waitStatus(ok, messages.StatusCompleted)
}
