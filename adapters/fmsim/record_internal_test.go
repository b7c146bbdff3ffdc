package fmsim

import (
	"encoding/json"
	"strings"
	"testing"
)

// TestRecordsAreAnsweredAsLiveCalls checks that a batch inference record gets the answer the
// same request gets live (a classification prompt answered with its topic number, on both
// record formats) and the same refusals (a Converse conversation that does not alternate).
func TestRecordsAreAnsweredAsLiveCalls(t *testing.T) {
	s := New(Config{Classify: &Classify{}})
	defer s.Close()
	const system = "Answer with only the number of the topic below that the text is about, or 0 if none.\n1. billing: invoices, refunds and charges\n2. outage: the service being down"
	const text = "my invoices show a double charge, I want a refund"
	live := s.reply("m", prompt{system: system, messages: []turn{{"user", text}}})
	if live.text != "1" {
		t.Fatalf("the live answer to the classification prompt is %q, want 1", live.text)
	}
	converse, _ := json.Marshal(map[string]any{
		"system":   []any{map[string]any{"text": system}},
		"messages": []any{map[string]any{"role": "user", "content": []any{map[string]any{"text": text}}}},
	})
	anthropic, _ := json.Marshal(map[string]any{"anthropic_version": "bedrock-2023-05-31", "max_tokens": 10, "system": system,
		"messages": []any{map[string]any{"role": "user", "content": text}}})
	for name, input := range map[string][]byte{"converse": converse, "anthropic": anthropic} {
		out, err := s.answerRecord("m", input)
		if err != nil {
			t.Fatalf("%s record: %v", name, err)
		}
		if !strings.Contains(string(out), `"text":"1"`) {
			t.Errorf("%s record answered %s, want the live answer %q", name, out, live.text)
		}
	}
	bad, _ := json.Marshal(map[string]any{"messages": []any{
		map[string]any{"role": "user", "content": []any{map[string]any{"text": "a"}}},
		map[string]any{"role": "user", "content": []any{map[string]any{"text": "b"}}},
	}})
	if out, err := s.answerRecord("m", bad); err == nil || !strings.Contains(err.Error(), "alternate") {
		t.Errorf("a record whose roles do not alternate: %s, %v; want the live call's refusal", out, err)
	}
}
