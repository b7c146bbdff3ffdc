package pipeline_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/infleet/infleet/messages"
	"github.com/infleet/infleet/pipeline"
)

func TestStreamResumeNeitherRepeatsNorLosesWhiteSpace(t *testing.T) {
	t.Parallel()
	var pub []string
	s := pipeline.NewStream(func(d string) { pub = append(pub, d) })
	if p := s.Resume(); p != "" {
		t.Fatalf("first prefix %q, want none", p)
	}
	s.Write("Hello")
	s.Write(" world \n")
	if p := s.Resume(); p != "Hello world" {
		t.Fatalf("prefix %q, want the text without its trailing white space", p)
	}
	s.Write(" ") // the model repeats the cut white space...
	s.Write("\nagain")
	if p := s.Resume(); p != "Hello world \nagain" {
		t.Fatalf("prefix %q", p)
	}
	s.Write(" and") // ...or goes on without it
	if got, want := strings.Join(pub, ""), "Hello world \nagain and"; got != want || s.Text() != want {
		t.Fatalf("published %q, text %q; want %q", got, s.Text(), want)
	}
	if !s.Complete("Hello world \nagain and done") || s.Text() != "Hello world \nagain and done" || pub[len(pub)-1] != " done" {
		t.Errorf("Complete did not publish the rest: %q", pub)
	}
	if s.Complete("something else") {
		t.Errorf("Complete accepted a text that does not continue the stream")
	}
}

func TestRunStreamResumesOnlyAfterProgress(t *testing.T) {
	t.Parallel()
	broken := &pipeline.ModelError{Kind: pipeline.ModelUnavailable, Err: errors.New("cut")}
	calls := 0
	s := pipeline.NewStream(nil)
	resp, err := pipeline.RunStream(context.Background(), s, 3, func(_ context.Context, prefix string, write func(string)) (pipeline.ModelResponse, error) {
		calls++
		if want := strings.Repeat("x", calls-1); prefix != want {
			t.Errorf("call %d: prefix %q, want %q", calls, prefix, want)
		}
		write("x")
		if calls < 3 {
			return pipeline.ModelResponse{Usage: messages.Usage{InputTokens: 1}}, broken
		}
		return pipeline.ModelResponse{StopReason: "end_turn", Usage: messages.Usage{InputTokens: 1, OutputTokens: 1}}, nil
	})
	if err != nil || resp.Text != "xxx" || resp.Usage.InputTokens != 3 || calls != 3 {
		t.Fatalf("resp %+v, err %v after %d calls", resp, err, calls)
	}
	calls = 0
	_, err = pipeline.RunStream(context.Background(), pipeline.NewStream(nil), 3, func(context.Context, string, func(string)) (pipeline.ModelResponse, error) {
		calls++
		return pipeline.ModelResponse{}, broken
	})
	if !errors.Is(err, broken) || calls != 1 {
		t.Errorf("a break without text: err %v after %d calls, want the error after one", err, calls)
	}
}
