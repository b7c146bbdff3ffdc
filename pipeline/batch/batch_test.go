package batch_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/infleet/infleet/messages"
	"github.com/infleet/infleet/pipeline"
	"github.com/infleet/infleet/pipeline/batch"
)

// model answers plain and batched prompts with "A:" and the input; it can leave some items
// out of a batched answer (drop), answer them with a number instead of text (garble), or fail
// batched calls (batchErr).
type model struct {
	mu       sync.Mutex
	calls    []pipeline.ModelRequest
	drop     map[string]bool
	garble   map[string]bool
	batchErr error
}

func (m *model) Invoke(ctx context.Context, req pipeline.ModelRequest) (pipeline.ModelResponse, error) {
	m.mu.Lock()
	m.calls = append(m.calls, req)
	m.mu.Unlock()
	text := req.Messages[len(req.Messages)-1].Content
	items, ok := messages.ParseBatchPrompt(text)
	if !ok {
		return pipeline.ModelResponse{Text: "A:" + text, Usage: messages.Usage{InputTokens: 10, OutputTokens: 2, CostUSD: 0.012}}, nil
	}
	if m.batchErr != nil {
		return pipeline.ModelResponse{}, m.batchErr
	}
	var parts []string
	for _, it := range items {
		switch {
		case m.drop[it.Input]:
		case m.garble[it.Input]:
			parts = append(parts, fmt.Sprintf(`{"item":%d,"answer":{"oops":true}}`, it.Item))
		default:
			a, _ := json.Marshal("A:" + it.Input)
			parts = append(parts, fmt.Sprintf(`{"item":%d,"answer":%s}`, it.Item, a))
		}
	}
	body := "```json\n{\"answers\":[" + strings.Join(parts, ",") + "]}\n```"
	return pipeline.ModelResponse{Text: body, Usage: messages.Usage{InputTokens: 1000, OutputTokens: 100, CostUSD: 1}}, nil
}

func (m *model) callCount() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.calls)
}

type answer struct {
	resp pipeline.ModelResponse
	err  error
}

// invokeAll sends inputs concurrently under one key and returns each one's outcome.
func invokeAll(t *testing.T, b *batch.Batcher, rule batch.Rule, next pipeline.ModelClient, inputs []string) []answer {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	out := make([]answer, len(inputs))
	var wg sync.WaitGroup
	for i, in := range inputs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			req := pipeline.ModelRequest{ModelID: "m", Task: "tag", Messages: []messages.ChatMessage{{Role: "user", Content: in}}}
			out[i].resp, out[i].err = b.Invoke(ctx, "tag|m|1.0.0", rule, req, next)
		}()
	}
	wg.Wait()
	return out
}

func inputs(n int) []string {
	in := make([]string, n)
	for i := range in {
		in[i] = fmt.Sprintf("line %d of the ticket", i)
	}
	return in
}

func TestFullGroupIsOneCallAndEachGetsItsOwnAnswer(t *testing.T) {
	t.Parallel()
	m := &model{}
	b := batch.New()
	in := inputs(20)
	got := invokeAll(t, b, batch.Rule{MaxItems: 20, MaxWait: time.Minute}, m, in)
	if m.callCount() != 1 {
		t.Fatalf("calls = %d, want 1 for 20 items at max_items 20", m.callCount())
	}
	var sum messages.Usage
	for i, a := range got {
		if a.err != nil {
			t.Fatalf("item %d: %v", i, a.err)
		}
		if a.resp.Text != "A:"+in[i] {
			t.Errorf("item %d answer = %q, want %q", i, a.resp.Text, "A:"+in[i])
		}
		if a.resp.Usage.InputTokens == 0 || a.resp.Usage.CostUSD == 0 {
			t.Errorf("item %d has no share of the usage: %+v", i, a.resp.Usage)
		}
		sum = sum.Add(a.resp.Usage)
	}
	if sum.InputTokens != 1000 || sum.OutputTokens != 100 || sum.CostUSD < 0.999999 || sum.CostUSD > 1.000001 {
		t.Errorf("shares add up to %+v, want the call's 1000 in, 100 out, $1", sum)
	}
	if st := b.Stats(); st.Items != 20 || st.Calls != 1 || st.Batches != 1 || st.Alone != 0 {
		t.Errorf("stats = %+v", st)
	}
}

func TestMaxWaitSendsAPartialGroup(t *testing.T) {
	t.Parallel()
	m := &model{}
	b := batch.New()
	start := time.Now()
	got := invokeAll(t, b, batch.Rule{MaxItems: 20, MaxWait: 30 * time.Millisecond}, m, inputs(3))
	if took := time.Since(start); took < 30*time.Millisecond || took > 2*time.Second {
		t.Errorf("a group of 3 was sent after %s, want max_wait (30ms)", took)
	}
	if m.callCount() != 1 {
		t.Fatalf("calls = %d, want 1", m.callCount())
	}
	for i, a := range got {
		if a.err != nil || !strings.HasPrefix(a.resp.Text, "A:line") {
			t.Errorf("item %d: %q %v", i, a.resp.Text, a.err)
		}
	}
}

func TestMaxInputTokensSplitsGroups(t *testing.T) {
	t.Parallel()
	m := &model{}
	b := batch.New()
	in := inputs(6) // 5 words: 7 estimated tokens each
	got := invokeAll(t, b, batch.Rule{MaxItems: 20, MaxWait: 50 * time.Millisecond, MaxInputTokens: 14}, m, in)
	if m.callCount() != 3 {
		t.Fatalf("calls = %d, want 3 groups of 2 items at max_input_tokens 14", m.callCount())
	}
	for _, c := range m.calls {
		items, ok := messages.ParseBatchPrompt(c.Messages[0].Content)
		if !ok || len(items) != 2 {
			t.Errorf("a call held %d items, want 2", len(items))
		}
	}
	for i, a := range got {
		if a.err != nil || a.resp.Text != "A:"+in[i] {
			t.Errorf("item %d: %q %v", i, a.resp.Text, a.err)
		}
	}
}

func TestMissingAndMalformedItemsAreRetriedAlone(t *testing.T) {
	t.Parallel()
	in := inputs(5)
	m := &model{drop: map[string]bool{in[1]: true}, garble: map[string]bool{in[3]: true}}
	b := batch.New()
	got := invokeAll(t, b, batch.Rule{MaxItems: 5, MaxWait: time.Minute}, m, in)
	if m.callCount() != 3 {
		t.Fatalf("calls = %d, want the batch and one call each for the dropped and the garbled item", m.callCount())
	}
	for _, c := range m.calls[1:] {
		if _, ok := messages.ParseBatchPrompt(c.Messages[0].Content); ok {
			t.Errorf("a retry was batched: %q", c.Messages[0].Content)
		}
	}
	for i, a := range got {
		if a.err != nil || a.resp.Text != "A:"+in[i] {
			t.Errorf("item %d: %q %v, want its own answer", i, a.resp.Text, a.err)
		}
	}
	// The retried items pay their batch share plus their own call.
	if u := got[1].resp.Usage; u.InputTokens != 200+10 || u.OutputTokens != 20+2 {
		t.Errorf("dropped item usage = %+v, want its batch share (200 in, 20 out) plus its own call (10, 2)", u)
	}
	if u := got[0].resp.Usage; u.InputTokens != 200 || u.OutputTokens != 20 {
		t.Errorf("neighbour usage = %+v, want its batch share only", u)
	}
	if st := b.Stats(); st.Alone != 2 || st.Calls != 3 {
		t.Errorf("stats = %+v", st)
	}
}

func TestBatchErrors(t *testing.T) {
	t.Parallel()
	t.Run("retryable goes back to every job", func(t *testing.T) {
		t.Parallel()
		m := &model{batchErr: &pipeline.ModelError{Kind: pipeline.ModelThrottled, Err: errors.New("slow down")}}
		got := invokeAll(t, batch.New(), batch.Rule{MaxItems: 4, MaxWait: time.Minute}, m, inputs(4))
		if m.callCount() != 1 {
			t.Errorf("calls = %d, want 1: a throttled batch is not fanned out", m.callCount())
		}
		for i, a := range got {
			var me *pipeline.ModelError
			if !errors.As(a.err, &me) || me.Kind != pipeline.ModelThrottled {
				t.Errorf("item %d error = %v, want the throttling", i, a.err)
			}
		}
	})
	t.Run("refused batch is sent item by item", func(t *testing.T) {
		t.Parallel()
		m := &model{batchErr: &pipeline.ModelError{Kind: pipeline.ModelContextOverflow, Err: errors.New("too long")}}
		in := inputs(4)
		got := invokeAll(t, batch.New(), batch.Rule{MaxItems: 4, MaxWait: time.Minute}, m, in)
		if m.callCount() != 5 {
			t.Errorf("calls = %d, want the batch and 4 single calls", m.callCount())
		}
		for i, a := range got {
			if a.err != nil || a.resp.Text != "A:"+in[i] {
				t.Errorf("item %d: %q %v", i, a.resp.Text, a.err)
			}
		}
	})
}

func TestKeysAndSystemsDoNotMix(t *testing.T) {
	t.Parallel()
	m := &model{}
	b := batch.New()
	ctx := context.Background()
	rule := batch.Rule{MaxItems: 2, MaxWait: 30 * time.Millisecond}
	var wg sync.WaitGroup
	for i, k := range []struct{ key, system string }{{"a", ""}, {"b", ""}, {"a", "be brief"}} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			req := pipeline.ModelRequest{System: k.system, Messages: []messages.ChatMessage{{Role: "user", Content: fmt.Sprint("x", i)}}}
			if resp, err := b.Invoke(ctx, k.key, rule, req, m); err != nil || resp.Text != fmt.Sprint("A:x", i) {
				t.Errorf("%d: %q %v", i, resp.Text, err)
			}
		}()
	}
	wg.Wait()
	if m.callCount() != 3 {
		t.Errorf("calls = %d, want 3 unbatched calls: no two requests share key and system", m.callCount())
	}
}

func TestCallerGivingUpLeavesNeighbours(t *testing.T) {
	t.Parallel()
	m := &model{}
	b := batch.New()
	rule := batch.Rule{MaxItems: 20, MaxWait: 50 * time.Millisecond}
	gone, cancel := context.WithCancel(context.Background())
	cancel()
	req := func(s string) pipeline.ModelRequest {
		return pipeline.ModelRequest{Messages: []messages.ChatMessage{{Role: "user", Content: s}}}
	}
	done := make(chan error, 1)
	go func() { _, err := b.Invoke(gone, "k", rule, req("gone"), m); done <- err }()
	resp, err := b.Invoke(context.Background(), "k", rule, req("stays"), m)
	if err != nil || resp.Text != "A:stays" {
		t.Fatalf("stays: %q %v", resp.Text, err)
	}
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled caller got %v", err)
	}
}

func TestEachJobsSpanSaysHowItWasAnswered(t *testing.T) {
	t.Parallel()
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	m := &model{drop: map[string]bool{"b": true}}
	b := batch.New()
	var wg sync.WaitGroup
	for _, in := range []string{"a", "b", "c"} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, span := tp.Tracer("test").Start(context.Background(), "invoke "+in)
			defer span.End()
			req := pipeline.ModelRequest{Messages: []messages.ChatMessage{{Role: "user", Content: in}}}
			if _, err := b.Invoke(ctx, "k", batch.Rule{MaxItems: 3, MaxWait: time.Minute}, req, m); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	got := map[string]string{}
	for _, s := range rec.Ended() {
		var items int64
		var alone bool
		for _, kv := range s.Attributes() {
			switch kv.Key {
			case "infleet.batch.items":
				items = kv.Value.AsInt64()
			case "infleet.batch.retried_alone":
				alone = kv.Value.AsBool()
			}
		}
		got[s.Name()] = fmt.Sprint(items, alone)
	}
	want := map[string]string{"invoke a": "3 false", "invoke b": "1 true", "invoke c": "3 false"}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("span attributes %v, want %v", got, want)
	}
}
