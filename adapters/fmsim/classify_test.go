package fmsim_test

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/infleet/infleet/adapters/fmsim"
)

// TestClassifyAnswersTheTopicNumber sends a classification prompt over chat completions:
// the answer names the topic whose definition, examples or rules the text matches, and 0 for
// a text about none; without Classify the same call gets the echo answer.
func TestClassifyAnswersTheTopicNumber(t *testing.T) {
	t.Parallel()
	const system = "You classify texts. Answer with only the number of the topic below that the text is about, or 0 if it is about none of them.\n" +
		"1. medical-diagnosis: Diagnosing illnesses or prescribing treatment. (for example: What illness do I have?)\n" +
		"2. investment-advice: Recommending stocks or funds. (for example: Should I buy this stock?)\n"
	srv := httptest.NewServer(fmsim.New(fmsim.Config{Classify: &fmsim.Classify{Rules: map[string][]string{
		"medical-diagnosis": {"chest", "short of breath", "schmerz"}}}}))
	t.Cleanup(srv.Close)
	plain := httptest.NewServer(fmsim.New(fmsim.Config{}))
	t.Cleanup(plain.Close)
	ask := func(base, text string) string {
		body, _ := json.Marshal(map[string]any{"model": "clf", "max_tokens": 8, "messages": []map[string]string{
			{"role": "system", "content": system}, {"role": "user", "content": text}}})
		resp, err := http.Post(base+"/v1/chat/completions", "application/json", bytes.NewReader(body))
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
			t.Fatalf("answer: %v %+v", err, out)
		}
		return out.Choices[0].Message.Content
	}
	for _, c := range []struct{ text, want string }{
		{"My chest feels tight and I am short of breath.", "1"},
		{"Starke Schmerzen seit Montag.", "1"},
		{"Which stocks would you recommend this year?", "2"},
		{"Summarize the meeting notes.", "0"},
	} {
		if got := ask(srv.URL, c.text); got != c.want {
			t.Errorf("%q: answer %q, want %q", c.text, got, c.want)
		}
	}
	if got := ask(plain.URL, "My chest feels tight."); got == "1" || len(got) < 10 {
		t.Errorf("without Classify the answer is %q, want the echo answer", got)
	}
}
