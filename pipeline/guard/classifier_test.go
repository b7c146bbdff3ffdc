package guard_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/infleet/infleet/messages"
	"github.com/infleet/infleet/pipeline"
	"github.com/infleet/infleet/pipeline/guard"
)

// answerModel answers every call with a fixed text and keeps the last request.
type answerModel struct {
	answer string
	err    error
	last   pipeline.ModelRequest
}

func (m *answerModel) Invoke(_ context.Context, req pipeline.ModelRequest) (pipeline.ModelResponse, error) {
	m.last = req
	return pipeline.ModelResponse{Text: m.answer}, m.err
}

func TestTopicClassifier(t *testing.T) {
	t.Parallel()
	topics := []guard.Topic{
		{Name: "medical-diagnosis", Definition: "Diagnosing illnesses.", Examples: []string{"What illness do I have?"}},
		{Name: "legal-advice", Definition: "Advice on a legal case.", Message: "no legal advice here"},
	}
	for _, tc := range []struct {
		answer  string
		blocked string
		reason  string
		err     bool
	}{
		{answer: "0"},
		{answer: "1", blocked: "medical-diagnosis", reason: "medical-diagnosis"},
		{answer: "Topic 2.", blocked: "legal-advice", reason: "no legal advice here"},
		{answer: "none of them", err: true},
		{answer: "7", err: true},
	} {
		m := &answerModel{answer: tc.answer}
		c, err := guard.NewTopicClassifier(topics, m, "clf")
		if err != nil {
			t.Fatal(err)
		}
		out, err := c.Check(context.Background(), pipeline.GuardInput, []string{"my chest hurts, what is it?"})
		if tc.err {
			if err == nil {
				t.Fatalf("answer %q: want an error", tc.answer)
			}
			continue
		}
		if err != nil {
			t.Fatalf("answer %q: %v", tc.answer, err)
		}
		if (tc.blocked != "") != out.Blocked {
			t.Fatalf("answer %q: blocked %v", tc.answer, out.Blocked)
		}
		if out.Blocked {
			a := out.Assessments[0]
			if a.Type != tc.blocked || a.Action != messages.GuardActionBlocked || !strings.Contains(out.Reason, tc.reason) {
				t.Fatalf("answer %q: %+v %q", tc.answer, a, out.Reason)
			}
		}
		if !strings.Contains(m.last.System, "1. medical-diagnosis: Diagnosing illnesses.") || m.last.ModelID != "clf" ||
			m.last.Messages[0].Content != "my chest hurts, what is it?" {
			t.Fatalf("request %+v", m.last)
		}
	}
	m := &answerModel{err: errors.New("down")}
	c, _ := guard.NewTopicClassifier(topics, m, "clf")
	if _, err := c.Check(context.Background(), pipeline.GuardInput, []string{"x"}); err == nil {
		t.Fatal("a failed classifier call passed the text")
	}
	if _, err := guard.NewTopicClassifier(nil, m, "clf"); err == nil {
		t.Fatal("a classifier without topics was built")
	}
}
