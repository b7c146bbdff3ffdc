// Package batch groups small model requests into one model call (request batching).
//
// A Batcher collects requests under a key (the caller's: task, model and prompt version) and
// flushes a group when it holds Rule.MaxItems items, when the next item would take it past
// Rule.MaxInputTokens, or Rule.MaxWait after its first item arrived. A flushed group of two or
// more goes to the model as one request: the items numbered in one user message
// (messages.BatchPrompt), the answer read back per item (messages.ParseBatchAnswers). Each
// caller gets its own answer and its share of the call's usage and cost, split by its share of
// the input tokens. An item whose answer is missing or malformed is sent again on its own; its
// neighbours keep their answers.
package batch

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"github.com/infleet/infleet/messages"
	"github.com/infleet/infleet/pipeline"
)

// Rule defaults.
const (
	DefaultMaxItems = 20
	DefaultMaxWait  = 50 * time.Millisecond
)

// Rule says when a group is sent.
type Rule struct {
	// MaxItems sends the group when it holds this many items. Default 20.
	MaxItems int
	// MaxWait sends the group this long after its first item arrived. Default 50ms.
	MaxWait time.Duration
	// MaxInputTokens sends the group before an item would take its estimated input tokens past
	// this bound. Default 0: no bound.
	MaxInputTokens int
}

// Stats counts what a Batcher did.
type Stats struct {
	// Items is the requests batched; Calls the model calls made for them: one per group sent
	// (a group of one is a plain call) plus one per item sent again on its own.
	Items, Calls int64
	// Batches is the groups of two or more sent as one call.
	Batches int64
	// Alone is the items sent again on their own after their answer in a batch was missing or
	// malformed, or the batch call was refused.
	Alone int64
}

// Batcher groups requests. It is safe for concurrent use; the zero value is not usable, call
// New.
type Batcher struct {
	mu     sync.Mutex
	groups map[string]*group

	nItems, nCalls, nBatches, nAlone atomic.Int64
}

// New returns an empty Batcher.
func New() *Batcher { return &Batcher{groups: map[string]*group{}} }

type group struct {
	key     string
	next    pipeline.ModelClient
	items   []*item
	tokens  int
	timer   *time.Timer
	flushed bool
}

type item struct {
	ctx    context.Context
	req    pipeline.ModelRequest
	tokens int
	done   chan outcome
}

type outcome struct {
	resp pipeline.ModelResponse
	err  error
	// size is the items of the call that answered (1 for a call alone); alone says the item
	// was sent again on its own after its batch.
	size  int
	alone bool
}

// Stats returns the counts so far.
func (b *Batcher) Stats() Stats {
	return Stats{Items: b.nItems.Load(), Calls: b.nCalls.Load(), Batches: b.nBatches.Load(), Alone: b.nAlone.Load()}
}

// Invoke sends req through next as an item of the group named key and returns its own answer.
// Requests join one group only when key, model id, system prompt, tenant and parameters are
// all equal; next must reach the same model for every request of a key. A request of more
// than one message is not batched: it goes to next at once. Invoke returns when the item's
// answer is there or ctx ends; a group's call outlives the callers that gave up on it.
func (b *Batcher) Invoke(ctx context.Context, key string, rule Rule, req pipeline.ModelRequest, next pipeline.ModelClient) (pipeline.ModelResponse, error) {
	if len(req.Messages) != 1 || req.Messages[0].Role != roleUser {
		return next.Invoke(ctx, req)
	}
	rule.MaxItems = cmp.Or(max(rule.MaxItems, 0), DefaultMaxItems)
	rule.MaxWait = cmp.Or(max(rule.MaxWait, 0), DefaultMaxWait)
	b.nItems.Add(1)
	it := &item{ctx: ctx, req: req, tokens: EstimateTokens(req.Messages[0].Content), done: make(chan outcome, 1)}
	k := groupKey(key, req)

	b.mu.Lock()
	g := b.groups[k]
	if g != nil && rule.MaxInputTokens > 0 && g.tokens+it.tokens > rule.MaxInputTokens {
		b.detach(g)
		go b.flush(g)
		g = nil
	}
	if g == nil {
		g = &group{key: k, next: next}
		b.groups[k] = g
		g.timer = time.AfterFunc(rule.MaxWait, func() {
			b.mu.Lock()
			won := b.detach(g)
			b.mu.Unlock()
			if won {
				b.flush(g)
			}
		})
	}
	g.items = append(g.items, it)
	g.tokens += it.tokens
	if len(g.items) >= rule.MaxItems || (rule.MaxInputTokens > 0 && g.tokens >= rule.MaxInputTokens) {
		b.detach(g)
		g.timer.Stop()
		go b.flush(g)
	}
	b.mu.Unlock()

	select {
	case o := <-it.done:
		if span := trace.SpanFromContext(ctx); span.IsRecording() {
			span.SetAttributes(attribute.Int("infleet.batch.items", o.size), attribute.Bool("infleet.batch.retried_alone", o.alone))
		}
		return o.resp, o.err
	case <-ctx.Done():
		return pipeline.ModelResponse{}, ctx.Err()
	}
}

// detach takes g out of the open groups; it reports false when g was already taken. b.mu is
// held.
func (b *Batcher) detach(g *group) bool {
	if g.flushed {
		return false
	}
	g.flushed = true
	if b.groups[g.key] == g {
		delete(b.groups, g.key)
	}
	return true
}

// groupKey adds to key what must be equal for requests to share a call.
func groupKey(key string, req pipeline.ModelRequest) string {
	params, _ := json.Marshal(req.Params)
	return strings.Join([]string{key, req.ModelID, req.Tenant, req.Task, string(params), req.System}, "\x00")
}

// flush sends a detached group and hands each item its outcome.
func (b *Batcher) flush(g *group) {
	var live []*item
	for _, it := range g.items {
		if it.ctx.Err() == nil {
			live = append(live, it)
		}
	}
	switch len(live) {
	case 0:
		return
	case 1:
		b.nCalls.Add(1)
		resp, err := g.next.Invoke(live[0].ctx, live[0].req)
		live[0].done <- outcome{resp: resp, err: err, size: 1}
		return
	}
	b.nCalls.Add(1)
	b.nBatches.Add(1)
	ctx, cancel := batchContext(live)
	defer cancel()
	inputs := make([]string, len(live))
	for i, it := range live {
		inputs[i] = it.req.Messages[0].Content
	}
	req := live[0].req
	req.Messages = []messages.ChatMessage{{Role: roleUser, Content: messages.BatchPrompt(inputs)}}
	if req.Params.MaxTokens > 0 {
		req.Params.MaxTokens *= len(live)
	}
	resp, err := g.next.Invoke(ctx, req)
	if err != nil {
		if retryable(err) {
			// The model is busy or away: every item would fail alone as well; let each job's
			// own retry take it.
			for _, it := range live {
				it.done <- outcome{err: err, size: len(live)}
			}
			return
		}
		// The batch itself was refused (too long for the context window, invalid): each
		// item on its own may still pass.
		b.sendAlone(g, live, nil)
		return
	}
	if resp.Degraded {
		for _, it := range live {
			it.done <- outcome{resp: resp, size: len(live)}
		}
		return
	}
	answers, ok := messages.ParseBatchAnswers(resp.Text, len(live))
	shares := splitUsage(resp.Usage, live)
	var bad []int
	for i, it := range live {
		if !ok[i] {
			bad = append(bad, i)
			continue
		}
		r := resp
		r.Text = answers[i]
		r.Usage = shares[i]
		it.done <- outcome{resp: r, size: len(live)}
	}
	if len(bad) > 0 {
		badItems := make([]*item, len(bad))
		badShares := make([]messages.Usage, len(bad))
		for j, i := range bad {
			badItems[j], badShares[j] = live[i], shares[i]
		}
		b.sendAlone(g, badItems, badShares)
	}
}

// sendAlone sends each item on its own, concurrently; spent, when not nil, is each item's share
// of the batch call already paid for, added to its usage.
func (b *Batcher) sendAlone(g *group, items []*item, spent []messages.Usage) {
	var wg sync.WaitGroup
	for j, it := range items {
		b.nAlone.Add(1)
		b.nCalls.Add(1)
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp, err := g.next.Invoke(it.ctx, it.req)
			if err == nil && spent != nil {
				resp.Usage = resp.Usage.Add(spent[j])
			}
			it.done <- outcome{resp: resp, err: err, size: 1, alone: true}
		}()
	}
	wg.Wait()
}

// batchContext is the context of a group's call: it keeps the first item's values (trace,
// tenant) but not its cancellation, and ends at the latest deadline of the items, when each
// has one.
func batchContext(items []*item) (context.Context, context.CancelFunc) {
	ctx := context.WithoutCancel(items[0].ctx)
	var latest time.Time
	for _, it := range items {
		d, ok := it.ctx.Deadline()
		if !ok {
			return context.WithCancel(ctx)
		}
		if d.After(latest) {
			latest = d
		}
	}
	return context.WithDeadline(ctx, latest)
}

// retryable reports whether err says the model could not take the call now, rather than that
// the call itself was refused.
func retryable(err error) bool {
	var me *pipeline.ModelError
	if errors.As(err, &me) {
		return me.Kind.Retryable()
	}
	var perm *pipeline.PermanentError
	return !errors.As(err, &perm)
}

// EstimateTokens estimates the tokens of text, as the batcher weighs items: 4 per 3 words,
// and at least one.
func EstimateTokens(text string) int {
	return max((len(strings.Fields(text))*4+2)/3, 1)
}

// splitUsage divides total among items by their share of the input tokens: whole tokens by
// largest remainder (so the parts add up to the total), cost in proportion.
func splitUsage(total messages.Usage, items []*item) []messages.Usage {
	weights := make([]int, len(items))
	for i, it := range items {
		weights[i] = it.tokens
	}
	in := apportion(total.InputTokens, weights)
	out := apportion(total.OutputTokens, weights)
	sum := 0
	for _, w := range weights {
		sum += w
	}
	parts := make([]messages.Usage, len(items))
	for i := range items {
		parts[i] = messages.Usage{InputTokens: in[i], OutputTokens: out[i], CostUSD: total.CostUSD * float64(weights[i]) / float64(sum)}
	}
	return parts
}

// apportion splits n in proportion to weights (all positive), by largest remainder.
func apportion(n int, weights []int) []int {
	sum := 0
	for _, w := range weights {
		sum += w
	}
	parts := make([]int, len(weights))
	rems := make([]int, len(weights))
	given := 0
	for i, w := range weights {
		parts[i] = n * w / sum
		rems[i] = n * w % sum
		given += parts[i]
	}
	for ; given < n; given++ {
		best := 0
		for i := range rems {
			if rems[i] > rems[best] {
				best = i
			}
		}
		parts[best]++
		rems[best] = -1
	}
	return parts
}

// roleUser is the role of the one message a batched request holds.
const roleUser = "user"
