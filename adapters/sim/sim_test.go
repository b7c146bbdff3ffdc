package sim_test

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/infleet/infleet/adapters/sim"
	"github.com/infleet/infleet/messages"
	"github.com/infleet/infleet/pipeline"
)

func req(task, text string) pipeline.ModelRequest {
	return pipeline.ModelRequest{
		ModelID:  "sim",
		Task:     task,
		Messages: []messages.ChatMessage{{Role: "user", Content: text}},
	}
}

const longText = "The quick brown fox jumps over the lazy dog while the cat watches from the warm windowsill"

func TestInvoke(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		req        pipeline.ModelRequest
		wantPrefix string
		wantSuffix string
		wantIn     int
		wantStop   string
		check      func(t *testing.T, text string)
	}{
		{
			name:       "summarize takes the first words",
			req:        req("summarize", longText),
			wantPrefix: "Summary [",
			wantSuffix: "]: The quick brown fox jumps over the lazy dog while the cat ...",
			wantIn:     23, // 17 words
			wantStop:   sim.StopEndTurn,
		},
		{
			name:       "summarize a short input has no ellipsis",
			req:        req("summarize", "two words"),
			wantSuffix: "]: two words",
			wantIn:     3,
			wantStop:   sim.StopEndTurn,
		},
		{
			name:     "classify picks a label",
			req:      req("classify", "I love it"),
			wantIn:   4,
			wantStop: sim.StopEndTurn,
			check: func(t *testing.T, text string) {
				if !slices.Contains(sim.Labels, text) {
					t.Errorf("text %q is not one of %v", text, sim.Labels)
				}
			},
		},
		{
			name:       "other tasks echo the last message",
			req:        req("translate", "hola mundo"),
			wantPrefix: "Echo [translate ",
			wantSuffix: "]: hola mundo",
			wantIn:     3,
			wantStop:   sim.StopEndTurn,
		},
		{
			name: "input tokens count system and every message",
			req: pipeline.ModelRequest{
				Task:   "chat",
				System: "be brief",
				Messages: []messages.ChatMessage{
					{Role: "user", Content: "one two three"},
					{Role: "assistant", Content: "four"},
					{Role: "user", Content: "five six"},
				},
			},
			wantSuffix: "]: five six",
			wantIn:     11, // 8 words
			wantStop:   sim.StopEndTurn,
		},
		{
			name: "max_tokens truncates",
			req: func() pipeline.ModelRequest {
				r := req("summarize", longText)
				r.Params.MaxTokens = 4
				return r
			}(),
			wantPrefix: "Summary [",
			wantIn:     23,
			wantStop:   sim.StopMaxTokens,
			check: func(t *testing.T, text string) {
				if n := len(strings.Fields(text)); n != 3 {
					t.Errorf("truncated text %q has %d words, want 3", text, n)
				}
			},
		},
		{
			name:       "empty input",
			req:        pipeline.ModelRequest{Task: "summarize"},
			wantSuffix: "]: (empty input)",
			wantIn:     0,
			wantStop:   sim.StopEndTurn,
		},
	}
	c := sim.New(sim.Config{})
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			resp, err := c.Invoke(context.Background(), tt.req)
			if err != nil {
				t.Fatalf("Invoke: %v", err)
			}
			if !strings.HasPrefix(resp.Text, tt.wantPrefix) || !strings.HasSuffix(resp.Text, tt.wantSuffix) {
				t.Errorf("text = %q, want prefix %q and suffix %q", resp.Text, tt.wantPrefix, tt.wantSuffix)
			}
			if resp.Usage.InputTokens != tt.wantIn {
				t.Errorf("input tokens = %d, want %d", resp.Usage.InputTokens, tt.wantIn)
			}
			wantOut := (len(strings.Fields(resp.Text))*4 + 2) / 3
			if mt := tt.req.Params.MaxTokens; mt > 0 {
				wantOut = min(wantOut, mt)
			}
			if resp.Usage.OutputTokens != wantOut {
				t.Errorf("output tokens = %d, want %d", resp.Usage.OutputTokens, wantOut)
			}
			if resp.StopReason != tt.wantStop {
				t.Errorf("stop reason = %q, want %q", resp.StopReason, tt.wantStop)
			}
			if tt.check != nil {
				tt.check(t, resp.Text)
			}
		})
	}
}

func TestMaxTokensBounds(t *testing.T) {
	t.Parallel()
	c := sim.New(sim.Config{})
	for mt := 1; mt <= 30; mt++ {
		r := req("echo", longText)
		r.Params.MaxTokens = mt
		resp, err := c.Invoke(context.Background(), r)
		if err != nil {
			t.Fatal(err)
		}
		if resp.Usage.OutputTokens > mt {
			t.Errorf("max_tokens %d: output tokens %d", mt, resp.Usage.OutputTokens)
		}
		if resp.Text == "" {
			t.Errorf("max_tokens %d: empty text", mt)
		}
	}
}

func TestDeterministic(t *testing.T) {
	t.Parallel()
	a, b := sim.New(sim.Config{Seed: 1}), sim.New(sim.Config{Seed: 2})
	for _, task := range []string{"summarize", "classify", "other"} {
		r1, err1 := a.Invoke(context.Background(), req(task, longText))
		r2, err2 := b.Invoke(context.Background(), req(task, longText))
		if err1 != nil || err2 != nil {
			t.Fatal(err1, err2)
		}
		if !reflect.DeepEqual(r1, r2) {
			t.Errorf("task %s: same request gave %+v and %+v", task, r1, r2)
		}
	}
	// The text depends on the input: different inputs give different summaries, and the
	// labels of many inputs are not all the same.
	s1, _ := a.Invoke(context.Background(), req("summarize", "alpha"))
	s2, _ := a.Invoke(context.Background(), req("summarize", "beta"))
	if s1.Text == s2.Text {
		t.Errorf("different inputs gave the same summary %q", s1.Text)
	}
	labels := map[string]bool{}
	for _, w := range strings.Fields(longText) {
		r, _ := a.Invoke(context.Background(), req("classify", w))
		labels[r.Text] = true
	}
	if len(labels) < 2 {
		t.Errorf("17 inputs all classified as %v", labels)
	}
}

func TestFailRate(t *testing.T) {
	t.Parallel()
	const calls = 2000
	run := func(cfg sim.Config) []bool {
		c := sim.New(cfg)
		failed := make([]bool, calls)
		for i := range failed {
			_, err := c.Invoke(context.Background(), req("x", "y"))
			if err != nil {
				var se *sim.Error
				if !errors.As(err, &se) || !se.Retryable {
					t.Fatalf("call %d: err = %v, want a retryable *sim.Error", i, err)
				}
				if se.Error() == "" {
					t.Fatal("empty error message")
				}
				failed[i] = true
			}
		}
		return failed
	}
	count := func(f []bool) (n int) {
		for _, b := range f {
			if b {
				n++
			}
		}
		return n
	}
	if n := count(run(sim.Config{FailRate: 0})); n != 0 {
		t.Errorf("FailRate 0: %d failures", n)
	}
	if n := count(run(sim.Config{FailRate: 1})); n != calls {
		t.Errorf("FailRate 1: %d failures of %d", n, calls)
	}
	a := run(sim.Config{FailRate: 0.3, Seed: 7})
	if n := count(a); n < calls*2/10 || n > calls*4/10 {
		t.Errorf("FailRate 0.3: %d failures of %d", n, calls)
	}
	if !slices.Equal(a, run(sim.Config{FailRate: 0.3, Seed: 7})) {
		t.Error("same seed failed different calls")
	}
	if slices.Equal(a, run(sim.Config{FailRate: 0.3, Seed: 8})) {
		t.Error("different seeds failed the same calls")
	}
}

func TestCancellation(t *testing.T) {
	t.Parallel()
	c := sim.New(sim.Config{Latency: time.Hour})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, err := c.Invoke(ctx, req("summarize", "x"))
		done <- err
	}()
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("err = %v, want context.Canceled", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Invoke did not return after cancellation")
	}

	ctx, cancel = context.WithTimeout(context.Background(), time.Millisecond)
	defer cancel()
	if _, err := c.Invoke(ctx, req("summarize", "x")); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want context.DeadlineExceeded", err)
	}
}

func TestCancelledBeforeCallWithoutLatency(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := sim.New(sim.Config{}).Invoke(ctx, req("x", "y")); !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
}

func TestLatencyWithJitterCompletes(t *testing.T) {
	t.Parallel()
	c := sim.New(sim.Config{Latency: time.Millisecond, Jitter: 2 * time.Millisecond, Seed: 3})
	var wg sync.WaitGroup
	for range 20 {
		wg.Go(func() {
			if _, err := c.Invoke(context.Background(), req("summarize", longText)); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
}

func ExampleClient_Invoke() {
	c := sim.New(sim.Config{})
	resp, _ := c.Invoke(context.Background(), pipeline.ModelRequest{
		Task:     "translate",
		Messages: []messages.ChatMessage{{Role: "user", Content: "hola mundo"}},
	})
	fmt.Println(resp.Usage.InputTokens, resp.StopReason)
	// Output: 3 end_turn
}

func BenchmarkInvokeNoLatency(b *testing.B) {
	c := sim.New(sim.Config{})
	r := req("summarize", longText)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := c.Invoke(ctx, r); err != nil {
			b.Fatal(err)
		}
	}
}

func TestBatchedPromptIsAnsweredPerItem(t *testing.T) {
	t.Parallel()
	c := sim.New(sim.Config{})
	inputs := []string{"first ticket text", "second ticket text", "third"}
	req := func(text string) pipeline.ModelRequest {
		return pipeline.ModelRequest{Task: "summarize", System: "be brief", Messages: []messages.ChatMessage{{Role: "user", Content: text}}}
	}
	resp, err := c.Invoke(t.Context(), req(messages.BatchPrompt(inputs)))
	if err != nil {
		t.Fatal(err)
	}
	answers, ok := messages.ParseBatchAnswers(resp.Text, len(inputs))
	for i, in := range inputs {
		alone, err := c.Invoke(t.Context(), req(in))
		if err != nil {
			t.Fatal(err)
		}
		if !ok[i] || answers[i] != alone.Text {
			t.Errorf("item %d: %q (ok %v), alone %q", i+1, answers[i], ok[i], alone.Text)
		}
	}
	if resp.Usage.InputTokens == 0 || resp.Usage.OutputTokens == 0 {
		t.Errorf("usage %+v", resp.Usage)
	}
}
