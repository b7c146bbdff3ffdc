package fmsim

import (
	"encoding/json"
	"fmt"
	"net/http"
	"testing"

	"github.com/infleet/infleet/messages"
)

// chatText sends one chat completion of text and returns the answer's text and usage.
func chatText(t *testing.T, s *Server, text string) (string, int, int) {
	t.Helper()
	body, _ := json.Marshal(map[string]any{"model": "m", "messages": []map[string]string{{"role": "user", "content": text}}})
	rec := do(t, s, http.MethodPost, "/v1/chat/completions", string(body))
	var out struct {
		Choices []struct {
			Message struct{ Content string } `json:"message"`
		} `json:"choices"`
		Usage struct {
			Prompt     int `json:"prompt_tokens"`
			Completion int `json:"completion_tokens"`
		} `json:"usage"`
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &out); err != nil || len(out.Choices) != 1 {
		t.Fatalf("chat answer %d %s: %v", rec.Code, rec.Body, err)
	}
	return out.Choices[0].Message.Content, out.Usage.Prompt, out.Usage.Completion
}

func TestBatchedPromptIsAnsweredPerItemAsAlone(t *testing.T) {
	t.Parallel()
	s := New(Config{})
	inputs := []string{"tag this line", "and this one", `a "quoted" {"item":3} line`}
	text, in, out := chatText(t, s, messages.BatchPrompt(inputs))
	answers, ok := messages.ParseBatchAnswers(text, len(inputs))
	for i, input := range inputs {
		alone, _, _ := chatText(t, s, input)
		if !ok[i] || answers[i] != alone {
			t.Errorf("item %d: batched answer %q (ok %v), alone %q: want the same", i+1, answers[i], ok[i], alone)
		}
	}
	if in == 0 || out == 0 {
		t.Errorf("usage %d in, %d out: want both counted", in, out)
	}
	if st := s.Stats(); st.BatchCalls != 1 || st.BatchItems != 3 {
		t.Errorf("stats: %d batch calls, %d items; want 1 and 3", st.BatchCalls, st.BatchItems)
	}
}

func TestBatchedPromptDropsAndGarbles(t *testing.T) {
	t.Parallel()
	s := New(Config{Faults: Faults{DropItemsMatching: "drop me", GarbleItemsMatching: "garble me"}})
	inputs := []string{"keep", "please drop me", "keep too", "garble me now"}
	text, _, _ := chatText(t, s, messages.BatchPrompt(inputs))
	_, ok := messages.ParseBatchAnswers(text, len(inputs))
	if want := []bool{true, false, true, false}; fmt.Sprint(ok) != fmt.Sprint(want) {
		t.Errorf("answered items %v, want %v (reply %s)", ok, want, text)
	}
	if alone, _, _ := chatText(t, s, "please drop me"); alone == "" {
		t.Error("an item sent alone was not answered")
	}
	st := s.Stats()
	if st.DroppedItems != 1 || st.GarbledItems != 1 {
		t.Errorf("stats: %d dropped, %d garbled; want 1 and 1", st.DroppedItems, st.GarbledItems)
	}

	// By rate: the same items every time, about the share asked for.
	r := New(Config{Seed: 3, Faults: Faults{DropItemRate: 0.1, GarbleItemRate: 0.1}})
	many := make([]string, 200)
	for i := range many {
		many[i] = fmt.Sprintf("ticket %d", i)
	}
	first, _, _ := chatText(t, r, messages.BatchPrompt(many))
	second, _, _ := chatText(t, r, messages.BatchPrompt(many))
	if first != second {
		t.Error("the same batch was answered differently")
	}
	_, ok = messages.ParseBatchAnswers(first, len(many))
	missing := 0
	for _, o := range ok {
		if !o {
			missing++
		}
	}
	if missing < 20 || missing > 60 {
		t.Errorf("%d of 200 items missing or garbled, want about 40", missing)
	}
}

func TestItemFaultsRoundTripAdminJSON(t *testing.T) {
	t.Parallel()
	f := Faults{DropItemRate: 0.2, GarbleItemRate: 0.1, DropItemsMatching: "x", GarbleItemsMatching: "y"}
	b, err := json.Marshal(f)
	if err != nil {
		t.Fatal(err)
	}
	var back Faults
	if err := json.Unmarshal(b, &back); err != nil || back.DropItemRate != 0.2 || back.GarbleItemRate != 0.1 || back.DropItemsMatching != "x" || back.GarbleItemsMatching != "y" {
		t.Errorf("round trip %s -> %+v %v", b, back, err)
	}
	if err := (Faults{DropItemRate: 1.5}).Validate(); err == nil {
		t.Error("drop_item_rate 1.5 passed validation")
	}
}
