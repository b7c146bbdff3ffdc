package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/infleet/infleet/messages"
)

// TestServeTopicClassifierBlocksParaphrase runs serve with a denied topic and a classifier
// model (an OpenAI-compatible server that names topic 1 for texts about chest pain): a
// paraphrase the keyword matching misses is blocked by the classifier, and other jobs complete.
func TestServeTopicClassifierBlocksParaphrase(t *testing.T) {
	t.Parallel()
	clf := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		answer := "0"
		if strings.Contains(string(body), "chest") {
			answer = "1"
		}
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"id":"c1","object":"chat.completion","model":"clf","choices":[{"index":0,"message":{"role":"assistant","content":%q},"finish_reason":"stop"}],"usage":{"prompt_tokens":5,"completion_tokens":1,"total_tokens":6}}`, answer)
	}))
	t.Cleanup(clf.Close)
	h := startServe(t, fmt.Sprintf(`
models:
  - {name: fast, provider: sim, latency: 1ms}
  - {name: clf, provider: openai, base_url: %q, model_id: clf}
routes: {default: fast}
guardrails:
  input:
    denied_topics: [{name: medical-diagnosis, definition: "Diagnosing illnesses or prescribing treatment.", examples: ["What illness do I have?"]}]
    topic_classifier: {model: clf}
log: {level: warn}
`, clf.URL+"/v1"))
	blocked := h.submit(`{"task":"chat","input":{"text":"My chest has felt tight since Monday; what could be behind it?"}}`)
	rec := h.waitStatus(blocked, messages.StatusFailed)
	if rec.Error == nil || rec.Error.Code != messages.ErrCodeGuardrailBlocked || rec.Guardrail == nil {
		t.Fatalf("record %+v", rec)
	}
	found := false
	for _, a := range rec.Guardrail.Input {
		found = found || (a.Policy == "topic_classifier" && a.Type == "medical-diagnosis" && a.Action == messages.GuardActionBlocked)
	}
	if !found {
		g, _ := json.Marshal(rec.Guardrail)
		t.Fatalf("no classifier assessment in %s", g)
	}
	ok := h.submit(`{"task":"chat","input":{"text":"Summarize the quarterly sales figures."}}`)
	h.waitStatus(ok, messages.StatusCompleted)
}
