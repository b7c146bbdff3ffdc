// Package sim is a simulated model: a pipeline.ModelClient that answers instantly or after a
// configured latency, fails a configured share of calls, and produces deterministic text, so
// that the whole system runs, is tested and is load-tested without a real model.
package sim

import (
	"context"
	"encoding/json"
	"math"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/infleet/infleet/messages"
	"github.com/infleet/infleet/pipeline"
)

// Stop reasons a response carries, named like Amazon Bedrock's.
const (
	StopEndTurn   = "end_turn"
	StopMaxTokens = "max_tokens"
)

// Latency distributions (Config.Dist).
const (
	DistFixed     = "fixed"
	DistUniform   = "uniform"
	DistNormal    = "normal"
	DistLognormal = "lognormal"
)

// z99 is the standard normal's 99th percentile.
const z99 = 2.3263478740408408

// Labels are the classes a "classify" task can be answered with.
var Labels = []string{"positive", "negative", "neutral", "question", "other"}

// summaryWords is how many leading input words a "summarize" answer repeats.
const summaryWords = 12

// Config shapes a Client's behaviour. The zero value answers at once and never fails.
type Config struct {
	// Latency is how long each call takes. Default 0: calls return without waiting.
	Latency time.Duration
	// Jitter spreads Latency uniformly over [Latency-Jitter, Latency+Jitter], floored at 0,
	// when Dist is fixed. Default 0.
	Jitter time.Duration
	// Dist draws each call's latency from a distribution whose median is Latency and whose
	// 99th percentile is P99: DistUniform, DistNormal or DistLognormal. Default DistFixed
	// (Latency, spread by Jitter).
	Dist string
	// P99 is the 99th percentile latency of Dist. Default Latency (no spread).
	P99 time.Duration
	// FailRate is the share of calls, from 0 to 1, that fail with a retryable *Error after
	// their latency. Default 0. Values outside [0, 1] are clamped.
	FailRate float64
	// Seed selects the sequence of failures and jitter. Two clients with the same Seed fail
	// the same calls (by call order). Default 0.
	Seed int64
}

// Error is the failure a Client injects, wrapped in a *pipeline.ModelError whose kind says
// whether a retry may help. Callers test for either with errors.As.
type Error struct {
	// Retryable is true when calling again may succeed (as with a throttled or briefly
	// unavailable model).
	Retryable bool
	// Call is the 1-based number of the failed call on its Client.
	Call uint64
}

// Error implements error.
func (e *Error) Error() string {
	if e.Retryable {
		return "sim model: injected failure on call " + strconv.FormatUint(e.Call, 10) +
			" (retryable: try again; set the model's fail_rate to 0 to stop injecting failures)"
	}
	return "sim model: injected permanent failure on call " + strconv.FormatUint(e.Call, 10)
}

// Client is a simulated model. It is safe for concurrent use; its output depends only on the
// request, its failures and jitter only on Seed and the order of calls.
type Client struct {
	latency  time.Duration
	jitter   time.Duration
	dist     string
	p99      time.Duration
	failRate float64
	seed     uint64
	calls    atomic.Uint64
}

var _ pipeline.ModelClient = (*Client)(nil)

// New returns a Client behaving as cfg says.
func New(cfg Config) *Client {
	return &Client{
		latency:  max(cfg.Latency, 0),
		jitter:   max(cfg.Jitter, 0),
		dist:     cfg.Dist,
		p99:      max(cfg.P99, cfg.Latency, 0),
		failRate: min(max(cfg.FailRate, 0), 1),
		seed:     uint64(cfg.Seed),
	}
}

// Invoke answers req. The text is a function of the request alone: for task "summarize" the
// first words of the input and a short hash of the request; for "classify" one of Labels
// picked by that hash; for any other task an echo of the last message. Usage estimates 4
// tokens per 3 words. A positive params.max_tokens truncates the text (StopReason
// "max_tokens"). A batched prompt (messages.BatchPrompt) is answered per item, each item as it
// would be answered alone, in the JSON reply messages.ParseBatchAnswers reads. Invoke waits out
// the latency, returning ctx.Err() if ctx ends first, then fails with a *Error for a FailRate
// share of calls.
func (c *Client) Invoke(ctx context.Context, req pipeline.ModelRequest) (pipeline.ModelResponse, error) {
	if err := ctx.Err(); err != nil {
		return pipeline.ModelResponse{}, err
	}
	n := c.calls.Add(1)
	if c.latency > 0 || c.jitter > 0 || c.p99 > 0 {
		if err := sleep(ctx, c.delay(n)); err != nil {
			return pipeline.ModelResponse{}, err
		}
	}
	if c.failRate > 0 && unit(mix(c.seed, n, 1)) < c.failRate {
		return pipeline.ModelResponse{}, &pipeline.ModelError{Kind: pipeline.ModelUnavailable, Err: &Error{Retryable: true, Call: n}}
	}
	if n := len(req.Messages); n > 0 {
		if items, ok := messages.ParseBatchPrompt(req.Messages[n-1].Content); ok {
			return answerBatch(req, items), nil
		}
	}
	return answer(req), nil
}

// answerBatch answers each item of a batched prompt as answer would answer it alone.
func answerBatch(req pipeline.ModelRequest, items []messages.BatchItem) pipeline.ModelResponse {
	reply := messages.BatchReply{Answers: make([]messages.BatchAnswer, len(items))}
	for i, it := range items {
		one := req
		one.Params.MaxTokens = req.Params.MaxTokens / len(items) // the batcher asks for each item's max_tokens
		one.Messages = []messages.ChatMessage{{Role: "user", Content: it.Input}}
		reply.Answers[i] = messages.BatchAnswer{Item: it.Item, Answer: answer(one).Text}
	}
	body, _ := json.Marshal(reply) // strings and ints always encode
	text := string(body)
	inWords := countWords(req.System) + countWords(req.Messages[len(req.Messages)-1].Content)
	return pipeline.ModelResponse{
		Text:       text,
		Usage:      messages.Usage{InputTokens: tokens(inWords), OutputTokens: tokens(countWords(text))},
		StopReason: StopEndTurn,
	}
}

// delay returns the latency of call n.
func (c *Client) delay(n uint64) time.Duration {
	p50, p99 := float64(c.latency), float64(c.p99)
	switch c.dist {
	case DistUniform:
		width := (p99 - p50) / 0.49
		return time.Duration(max(p50-width/2+width*unit(mix(c.seed, n, 2)), 0))
	case DistNormal:
		return time.Duration(max(p50+(p99-p50)/z99*gauss(c.seed, n), 0))
	case DistLognormal:
		if p50 <= 0 {
			return 0
		}
		return time.Duration(p50 * math.Exp(math.Log(p99/p50)/z99*gauss(c.seed, n)))
	}
	if c.jitter == 0 {
		return c.latency
	}
	off := time.Duration((2*unit(mix(c.seed, n, 2)) - 1) * float64(c.jitter))
	return max(c.latency+off, 0)
}

func sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// answer builds the deterministic response to req.
func answer(req pipeline.ModelRequest) pipeline.ModelResponse {
	h := requestHash(req)
	inWords := countWords(req.System)
	for _, m := range req.Messages {
		inWords += countWords(m.Content)
	}
	var last string
	if len(req.Messages) > 0 {
		last = req.Messages[len(req.Messages)-1].Content
	}
	tag := strconv.FormatUint(h>>32, 16)

	var text string
	switch req.Task {
	case "summarize":
		first := firstWords(last, summaryWords)
		if first == "" {
			text = "Summary [" + tag + "]: (empty input)"
		} else {
			text = "Summary [" + tag + "]: " + first
			if countWords(last) > summaryWords {
				text += " ..."
			}
		}
	case "classify":
		text = Labels[h%uint64(len(Labels))]
	default:
		task := req.Task
		if task == "" {
			task = "none"
		}
		text = "Echo [" + task + " " + tag + "]: " + last
	}

	stop := StopEndTurn
	outWords := countWords(text)
	if mt := req.Params.MaxTokens; mt > 0 && tokens(outWords) > mt {
		keep := max(mt*3/4, 1)
		text = firstWords(text, keep)
		outWords = keep
		stop = StopMaxTokens
	}
	out := tokens(outWords)
	if mt := req.Params.MaxTokens; mt > 0 {
		out = min(out, mt)
	}
	return pipeline.ModelResponse{
		Text:       text,
		Usage:      messages.Usage{InputTokens: tokens(inWords), OutputTokens: out},
		StopReason: stop,
	}
}

// tokens estimates the tokens of n words: 4 per 3, rounded up.
func tokens(n int) int { return (n*4 + 2) / 3 }

func countWords(s string) int {
	n, in := 0, false
	for _, r := range s {
		space := r == ' ' || r == '\n' || r == '\t' || r == '\r' || r == '\v' || r == '\f' || r == 0x85 || r == 0xA0
		if !space && !in {
			n++
		}
		in = !space
	}
	return n
}

// firstWords returns the first n words of s joined by single spaces.
func firstWords(s string, n int) string {
	f := strings.Fields(s)
	if len(f) > n {
		f = f[:n]
	}
	return strings.Join(f, " ")
}

// requestHash is a 64-bit FNV-1a hash of everything that determines the answer, each field
// length-prefixed so that moving text between fields changes it.
func requestHash(req pipeline.ModelRequest) uint64 {
	const prime = 1099511628211
	h := uint64(14695981039346656037)
	write := func(s string) {
		for n := uint64(len(s)); ; n >>= 8 {
			h = (h ^ (n & 0xff)) * prime
			if n < 0x100 {
				break
			}
		}
		for i := 0; i < len(s); i++ {
			h = (h ^ uint64(s[i])) * prime
		}
	}
	write(req.ModelID)
	write(req.Task)
	write(req.System)
	for _, m := range req.Messages {
		write(m.Role)
		write(m.Content)
	}
	return h
}

// mix derives a well-spread pseudo-random value from a seed, a call number and a stream id
// (SplitMix64 finalizer), so that concurrent calls need no lock.
func mix(seed, n, stream uint64) uint64 {
	z := seed + n*0x9E3779B97F4A7C15 + stream*0xD1B54A32D192ED03
	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9
	z = (z ^ (z >> 27)) * 0x94D049BB133111EB
	return z ^ (z >> 31)
}

// gauss is a standard normal draw for call n (Box-Muller).
func gauss(seed, n uint64) float64 {
	u1 := 1 - unit(mix(seed, n, 2)) // (0, 1]
	u2 := unit(mix(seed, n, 3))
	return math.Sqrt(-2*math.Log(u1)) * math.Cos(2*math.Pi*u2)
}

// unit maps x to [0, 1).
func unit(x uint64) float64 { return float64(x>>11) / (1 << 53) }
