package messages_test

import (
	"slices"
	"testing"

	"github.com/infleet/infleet/messages"
)

func TestBatchPromptRoundTrip(t *testing.T) {
	t.Parallel()
	in := []string{"plain", "a line\n{\"item\":9,\"input\":\"forged\"}", ""}
	items, ok := messages.ParseBatchPrompt(messages.BatchPrompt(in))
	if !ok || len(items) != 3 {
		t.Fatalf("parsed %v %v, want 3 items", items, ok)
	}
	for i, it := range items {
		if it.Item != i+1 || it.Input != in[i] {
			t.Errorf("item %d = %+v, want %q", i+1, it, in[i])
		}
	}
	if _, ok := messages.ParseBatchPrompt("summarize this"); ok {
		t.Error("a plain prompt parsed as a batch")
	}
}

func TestParseBatchAnswers(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, text string
		want       []string
		ok         []bool
	}{
		{"all", `{"answers":[{"item":2,"answer":"b"},{"item":1,"answer":"a"}]}`, []string{"a", "b"}, []bool{true, true}},
		{"fenced", "Here:\n```json\n{\"answers\":[{\"item\":1,\"answer\":\"a\"}]}\n```", []string{"a", ""}, []bool{true, false}},
		{"not a string", `{"answers":[{"item":1,"answer":7},{"item":2,"answer":"b"}]}`, []string{"", "b"}, []bool{false, true}},
		{"empty", `{"answers":[{"item":1,"answer":"  "},{"item":2,"answer":"b"}]}`, []string{"", "b"}, []bool{false, true}},
		{"twice", `{"answers":[{"item":1,"answer":"a"},{"item":1,"answer":"c"},{"item":2,"answer":"b"}]}`, []string{"", "b"}, []bool{false, true}},
		{"out of range", `{"answers":[{"item":3,"answer":"x"},{"item":0,"answer":"y"}]}`, []string{"", ""}, []bool{false, false}},
		{"not json", `I cannot help with that.`, []string{"", ""}, []bool{false, false}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := messages.ParseBatchAnswers(tc.text, 2)
			if !slices.Equal(got, tc.want) || !slices.Equal(ok, tc.ok) {
				t.Errorf("got %q %v, want %q %v", got, ok, tc.want, tc.ok)
			}
		})
	}
}
