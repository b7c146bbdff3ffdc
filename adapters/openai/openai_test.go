package openai_test

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/infleet/infleet/adapters/fmsim"
	"github.com/infleet/infleet/adapters/fmsim/fmsimtest"
	"github.com/infleet/infleet/adapters/openai"
	"github.com/infleet/infleet/messages"
	"github.com/infleet/infleet/pipeline"
)

const model = "gpt-4o-mini"

type bundle struct {
	sim *fmsim.Server
	url string
}

// setup starts fmsim with cfg in-process (fmsimtest.Start).
func setup(t *testing.T, cfg fmsim.Config) bundle {
	t.Helper()
	sim, url := fmsimtest.Start(t, cfg)
	return bundle{sim: sim, url: url + "/v1"}
}

func (b bundle) client(t *testing.T, mod ...func(*openai.Config)) *openai.Client {
	t.Helper()
	cfg := openai.Config{BaseURL: b.url, ModelID: model, Timeout: 10 * time.Second}
	for _, m := range mod {
		m(&cfg)
	}
	c, err := openai.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func request(text string) pipeline.ModelRequest {
	return pipeline.ModelRequest{
		ModelID:  "ignored",
		System:   "You are terse.",
		Messages: []messages.ChatMessage{{Role: "user", Content: text}},
	}
}

func TestRoundTrip(t *testing.T) {
	t.Parallel()
	b := setup(t, fmsim.Config{APIKey: "sk-test-key"})
	c := b.client(t, func(c *openai.Config) { c.APIKey = "sk-test-key" })
	temp := 0.3
	req := request("the quick brown fox jumps over the lazy dog")
	req.Params = messages.Params{Temperature: &temp, TopP: &temp, Stop: []string{"END"}}
	resp, err := c.Invoke(t.Context(), req)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(resp.Text, "fmsim [") || !strings.Contains(resp.Text, "lazy dog") {
		t.Errorf("text = %q, want fmsim's echo of the message", resp.Text)
	}
	if resp.StopReason != "end_turn" || resp.Usage.InputTokens == 0 || resp.Usage.OutputTokens == 0 {
		t.Errorf("stop %q usage %+v, want end_turn and both counts", resp.StopReason, resp.Usage)
	}
	req.Params.MaxTokens = 3
	resp, err = c.Invoke(t.Context(), req)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StopReason != "max_tokens" || resp.Usage.OutputTokens != 3 {
		t.Errorf("stop %q usage %+v, want max_tokens and 3 output tokens", resp.StopReason, resp.Usage)
	}
	if st := b.sim.Stats(); st.ByAPI[fmsim.APIChat] != 2 || st.ByModelOutcome[model][fmsim.OutcomeOK] != 2 {
		t.Errorf("stats = %+v, want 2 ok chat calls to %s", st, model)
	}
}

func TestErrorsMapToKinds(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name   string
		cfg    fmsim.Config
		key    string
		text   string
		kind   pipeline.ModelErrorKind
		status int
		after  time.Duration
	}{
		{name: "throttled", cfg: fmsim.Config{Faults: fmsim.Faults{ThrottleRate: 1, RetryAfter: 2500 * time.Millisecond}}, kind: pipeline.ModelThrottled, status: 429, after: 2500 * time.Millisecond},
		{name: "internal", cfg: fmsim.Config{Faults: fmsim.Faults{ErrorRate: 1}}, kind: pipeline.ModelUnavailable, status: 500},
		{name: "outage", cfg: fmsim.Config{Faults: fmsim.Faults{Outages: []fmsim.Outage{{From: 0, To: time.Hour}}}}, kind: pipeline.ModelUnavailable, status: 503},
		{name: "not ready", cfg: fmsim.Config{Faults: fmsim.Faults{NotReadyRate: 1}}, kind: pipeline.ModelNotReady, status: 503},
		{name: "model timeout", cfg: fmsim.Config{Faults: fmsim.Faults{TimeoutRate: 1}}, kind: pipeline.ModelTimeout, status: 504},
		{name: "context overflow", cfg: fmsim.Config{Models: map[string]fmsim.Faults{model: {ContextWindow: 20}}}, text: strings.Repeat("word ", 100), kind: pipeline.ModelContextOverflow, status: 400},
		{name: "bad request", cfg: fmsim.Config{}, text: "\x00bad", kind: pipeline.ModelInvalidRequest, status: 400},
		{name: "forbidden", cfg: fmsim.Config{Faults: fmsim.Faults{Deny: true}}, kind: pipeline.ModelAccessDenied, status: 403},
		{name: "wrong key", cfg: fmsim.Config{APIKey: "sk-right"}, key: "sk-wrong", kind: pipeline.ModelAccessDenied, status: 401},
		{name: "not found", cfg: fmsim.Config{KnownModels: []string{"llama3"}}, kind: pipeline.ModelNotFound, status: 404},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			b := setup(t, tc.cfg)
			c := b.client(t, func(c *openai.Config) { c.APIKey = tc.key })
			req := request(cmp(tc.text, "hello"))
			if tc.name == "bad request" {
				req.Messages = nil
				req.System = ""
			}
			_, err := c.Invoke(t.Context(), req)
			var me *pipeline.ModelError
			if !errors.As(err, &me) {
				t.Fatalf("err = %v (%T), want a *pipeline.ModelError", err, err)
			}
			if me.Kind != tc.kind || me.Status != tc.status || me.RetryAfter != tc.after {
				t.Errorf("got kind %s status %d retry after %s, want %s %d %s (%v)", me.Kind, me.Status, me.RetryAfter, tc.kind, tc.status, tc.after, err)
			}
		})
	}
}

func cmp(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

func TestHangTimesOut(t *testing.T) {
	t.Parallel()
	b := setup(t, fmsim.Config{Faults: fmsim.Faults{HangRate: 1}})
	ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
	defer cancel()
	_, err := b.client(t).Invoke(ctx, request("hello"))
	var me *pipeline.ModelError
	if !errors.As(err, &me) || me.Kind != pipeline.ModelTimeout {
		t.Errorf("caller deadline: err = %v, want a timeout ModelError", err)
	}
	_, err = b.client(t, func(c *openai.Config) { c.Timeout = 100 * time.Millisecond }).Invoke(t.Context(), request("hello"))
	if !errors.As(err, &me) || me.Kind != pipeline.ModelTimeout {
		t.Errorf("model timeout: err = %v, want a timeout ModelError", err)
	}
	ctx, cancel = context.WithCancel(t.Context())
	time.AfterFunc(50*time.Millisecond, cancel)
	_, err = b.client(t).Invoke(ctx, request("hello"))
	if !errors.Is(err, context.Canceled) || errors.As(err, &me) {
		t.Errorf("cancelled: err = %v, want context.Canceled and no ModelError", err)
	}
	if n := b.sim.Stats().ByOutcome[fmsim.OutcomeHang]; n != 3 {
		t.Errorf("fmsim counted %d hangs, want 3", n)
	}
}

func TestUnreachableIsUnavailable(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	url := "http://" + ln.Addr().String() + "/v1"
	ln.Close()
	_, err = bundle{url: url}.client(t).Invoke(t.Context(), request("hello"))
	var me *pipeline.ModelError
	if !errors.As(err, &me) || me.Kind != pipeline.ModelUnavailable {
		t.Errorf("err = %v, want an unavailable ModelError", err)
	}
}

func TestTraceparentReachesServer(t *testing.T) {
	t.Parallel()
	const tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	b := setup(t, fmsim.Config{})
	ctx := pipeline.ContextWithTraceparent(t.Context(), tp)
	if _, err := b.client(t).Invoke(ctx, request("hello")); err != nil {
		t.Fatal(err)
	}
	if got := b.sim.Stats().LastTraceparent; got != tp {
		t.Errorf("fmsim saw traceparent %q, want %q", got, tp)
	}
}

func TestRetryAfter(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	cases := []struct {
		h    http.Header
		want time.Duration
	}{
		{http.Header{}, 0},
		{http.Header{"Retry-After": {"3"}}, 3 * time.Second},
		{http.Header{"Retry-After": {"3"}, "Retry-After-Ms": {"250"}}, 250 * time.Millisecond},
		{http.Header{"Retry-After": {now.Add(7 * time.Second).Format(http.TimeFormat)}}, 7 * time.Second},
		{http.Header{"Retry-After": {"soon"}}, 0},
	}
	for _, tc := range cases {
		if got := openai.RetryAfter(tc.h, now); got != tc.want {
			t.Errorf("RetryAfter(%v) = %s, want %s", tc.h, got, tc.want)
		}
	}
}

// TestOverflowPhrasings checks the context-length messages of servers that send no code.
func TestOverflowPhrasings(t *testing.T) {
	t.Parallel()
	for _, msg := range []string{
		"This model's maximum context length is 4096 tokens. However, you requested 5000 tokens.", // vLLM
		"the request exceeds the available context size, try increasing it",                       // llama.cpp
	} {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			w.WriteHeader(http.StatusBadRequest)
			_, _ = w.Write([]byte(`{"error":{"message":"` + msg + `","type":"BadRequestError","code":400}}`))
		}))
		c, err := openai.New(openai.Config{BaseURL: srv.URL + "/v1", ModelID: "m"})
		if err != nil {
			t.Fatal(err)
		}
		_, err = c.Invoke(t.Context(), request("hi"))
		srv.Close()
		var me *pipeline.ModelError
		if !errors.As(err, &me) || me.Kind != pipeline.ModelContextOverflow {
			t.Errorf("%q: %v, want context_overflow", msg, err)
		}
	}
}

func TestConfigErrors(t *testing.T) {
	t.Parallel()
	for _, cfg := range []openai.Config{{}, {BaseURL: "ftp://x", ModelID: "m"}, {BaseURL: "http://x/v1"}} {
		if _, err := openai.New(cfg); err == nil {
			t.Errorf("New(%+v) succeeded, want an error", cfg)
		}
	}
}
