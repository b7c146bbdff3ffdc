package bedrock_test

import (
	"context"
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/credentials"

	"github.com/infleet/infleet/adapters/bedrock"
	"github.com/infleet/infleet/adapters/fmsim"
	"github.com/infleet/infleet/adapters/fmsim/fmsimtest"
	"github.com/infleet/infleet/messages"
	"github.com/infleet/infleet/pipeline"
)

const claude = "anthropic.claude-sonnet-4-20250514-v1:0"

type bundle struct {
	sim *fmsim.Server
	url string
}

// setup starts fmsim with cfg in-process (fmsimtest.Start).
func setup(t *testing.T, cfg fmsim.Config) bundle {
	t.Helper()
	sim, url := fmsimtest.Start(t, cfg)
	return bundle{sim: sim, url: url}
}

// client returns a Bedrock client for model on b's fmsim.
func (b bundle) client(t *testing.T, model, api string, mod ...func(*bedrock.Config)) *bedrock.Client {
	t.Helper()
	cfg := bedrock.Config{
		ModelID:     model,
		API:         api,
		Region:      "eu-west-1",
		Endpoint:    b.url,
		Timeout:     10 * time.Second,
		Credentials: credentials.NewStaticCredentialsProvider("AKIDFMSIM", "secret", ""),
	}
	for _, m := range mod {
		m(&cfg)
	}
	c, err := bedrock.New(t.Context(), cfg)
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
	for _, api := range []string{bedrock.APIConverse, bedrock.APIInvokeModel} {
		t.Run(api, func(t *testing.T) {
			t.Parallel()
			b := setup(t, fmsim.Config{})
			c := b.client(t, claude, api)
			temp := 0.2
			req := request("the quick brown fox jumps over the lazy dog")
			req.Params = messages.Params{Temperature: &temp, TopP: &temp, Stop: []string{"END"}}
			resp, err := c.Invoke(t.Context(), req)
			if err != nil {
				t.Fatal(err)
			}
			if !strings.HasPrefix(resp.Text, "fmsim [") || !strings.Contains(resp.Text, "lazy dog") {
				t.Errorf("text = %q, want fmsim's echo of the message", resp.Text)
			}
			if resp.StopReason != "end_turn" {
				t.Errorf("stop reason = %q, want end_turn", resp.StopReason)
			}
			if resp.Usage.InputTokens == 0 || resp.Usage.OutputTokens == 0 {
				t.Errorf("usage = %+v, want both counts set", resp.Usage)
			}
			again, err := c.Invoke(t.Context(), req)
			if err != nil || again.Text != resp.Text {
				t.Errorf("second answer = %q, %v; want the same text %q", again.Text, err, resp.Text)
			}
			want := map[string]string{bedrock.APIConverse: fmsim.APIConverse, bedrock.APIInvokeModel: fmsim.APIInvoke}[api]
			if st := b.sim.Stats(); st.ByAPI[want] != 2 || st.ByModelOutcome[claude][fmsim.OutcomeOK] != 2 {
				t.Errorf("stats = %+v, want 2 ok %s calls to %s", st, want, claude)
			}
		})
	}
}

func TestMaxTokensStops(t *testing.T) {
	t.Parallel()
	b := setup(t, fmsim.Config{})
	for _, api := range []string{bedrock.APIConverse, bedrock.APIInvokeModel} {
		req := request("one two three four five six seven eight nine ten")
		req.Params.MaxTokens = 3
		resp, err := b.client(t, claude, api).Invoke(t.Context(), req)
		if err != nil {
			t.Fatal(err)
		}
		if resp.StopReason != "max_tokens" || resp.Usage.OutputTokens != 3 {
			t.Errorf("%s: stop %q, usage %+v; want max_tokens and 3 output tokens", api, resp.StopReason, resp.Usage)
		}
	}
}

func TestModelIDForms(t *testing.T) {
	t.Parallel()
	b := setup(t, fmsim.Config{})
	ids := []string{
		claude,
		"eu.anthropic.claude-3-7-sonnet-20250219-v1:0",
		"us.anthropic.claude-3-5-haiku-20241022-v1:0",
		"arn:aws:bedrock:us-east-1:123456789012:provisioned-model/abc123def456",
		"arn:aws:bedrock:eu-west-1:123456789012:inference-profile/eu.anthropic.claude-3-7-sonnet-20250219-v1:0",
	}
	for _, id := range ids {
		for _, api := range []string{bedrock.APIConverse, bedrock.APIInvokeModel} {
			if _, err := b.client(t, id, api).Invoke(t.Context(), request("hello")); err != nil {
				t.Errorf("%s via %s: %v", id, api, err)
			}
		}
	}
	st := b.sim.Stats()
	for _, id := range ids {
		if st.ByModel[id] != 2 {
			t.Errorf("fmsim saw %d calls for %q, want 2 (the id must arrive intact); by model: %v", st.ByModel[id], id, st.ByModel)
		}
	}
}

func TestErrorsMapToKinds(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("word ", 200)
	cases := []struct {
		name   string
		faults fmsim.Faults
		known  []string
		text   string
		kind   pipeline.ModelErrorKind
		status int
		after  time.Duration
	}{
		{name: "throttled", faults: fmsim.Faults{ThrottleRate: 1, RetryAfter: 1500 * time.Millisecond}, kind: pipeline.ModelThrottled, status: 429, after: 1500 * time.Millisecond},
		{name: "internal", faults: fmsim.Faults{ErrorRate: 1}, kind: pipeline.ModelUnavailable, status: 500},
		{name: "outage", faults: fmsim.Faults{Down: true}, kind: pipeline.ModelUnavailable, status: 503},
		{name: "not ready", faults: fmsim.Faults{NotReadyRate: 1}, kind: pipeline.ModelNotReady, status: 429},
		{name: "model timeout", faults: fmsim.Faults{TimeoutRate: 1}, kind: pipeline.ModelTimeout, status: 408},
		{name: "context overflow", faults: fmsim.Faults{ContextWindow: 50}, text: long, kind: pipeline.ModelContextOverflow, status: 400},
		{name: "validation", text: " ", kind: pipeline.ModelInvalidRequest, status: 400},
		{name: "access denied", faults: fmsim.Faults{Deny: true}, kind: pipeline.ModelAccessDenied, status: 403},
		{name: "not found", known: []string{"some.other-model"}, kind: pipeline.ModelNotFound, status: 404},
	}
	for _, tc := range cases {
		for _, api := range []string{bedrock.APIConverse, bedrock.APIInvokeModel} {
			t.Run(tc.name+"/"+api, func(t *testing.T) {
				t.Parallel()
				b := setup(t, fmsim.Config{Faults: tc.faults, KnownModels: tc.known})
				text := tc.text
				if text == "" {
					text = "hello"
				}
				req := request(text)
				if tc.text == " " {
					req.Messages[0].Content = ""
				}
				_, err := b.client(t, claude, api).Invoke(t.Context(), req)
				var me *pipeline.ModelError
				if !errors.As(err, &me) {
					t.Fatalf("err = %v (%T), want a *pipeline.ModelError", err, err)
				}
				if me.Kind != tc.kind || me.Status != tc.status || me.RetryAfter != tc.after {
					t.Errorf("got kind %s status %d retry after %s, want %s %d %s (%v)", me.Kind, me.Status, me.RetryAfter, tc.kind, tc.status, tc.after, err)
				}
				if n := b.sim.Stats().Calls; n != 1 {
					t.Errorf("fmsim saw %d calls, want 1: the SDK must not retry", n)
				}
			})
		}
	}
}

func TestHangTimesOut(t *testing.T) {
	t.Parallel()
	b := setup(t, fmsim.Config{Faults: fmsim.Faults{HangRate: 1}})
	t.Run("caller deadline", func(t *testing.T) {
		t.Parallel()
		ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
		defer cancel()
		_, err := b.client(t, claude, bedrock.APIConverse).Invoke(ctx, request("hello"))
		var me *pipeline.ModelError
		if !errors.As(err, &me) || me.Kind != pipeline.ModelTimeout {
			t.Errorf("err = %v, want a timeout ModelError", err)
		}
	})
	t.Run("model timeout", func(t *testing.T) {
		t.Parallel()
		c := b.client(t, claude, bedrock.APIInvokeModel, func(c *bedrock.Config) { c.Timeout = 100 * time.Millisecond })
		_, err := c.Invoke(t.Context(), request("hello"))
		var me *pipeline.ModelError
		if !errors.As(err, &me) || me.Kind != pipeline.ModelTimeout {
			t.Errorf("err = %v, want a timeout ModelError", err)
		}
	})
	t.Run("cancelled", func(t *testing.T) {
		t.Parallel()
		ctx, cancel := context.WithCancel(t.Context())
		time.AfterFunc(50*time.Millisecond, cancel)
		_, err := b.client(t, claude, bedrock.APIConverse).Invoke(ctx, request("hello"))
		var me *pipeline.ModelError
		if !errors.Is(err, context.Canceled) || errors.As(err, &me) {
			t.Errorf("err = %v, want context.Canceled and no ModelError (shutdown is not a model failure)", err)
		}
	})
}

func TestUnreachableIsUnavailable(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	url := "http://" + ln.Addr().String()
	ln.Close()
	_, err = bundle{url: url}.client(t, claude, bedrock.APIConverse).Invoke(t.Context(), request("hello"))
	var me *pipeline.ModelError
	if !errors.As(err, &me) || me.Kind != pipeline.ModelUnavailable {
		t.Errorf("err = %v, want an unavailable ModelError", err)
	}
}

func TestTraceparentReachesServer(t *testing.T) {
	t.Parallel()
	const tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	for _, api := range []string{bedrock.APIConverse, bedrock.APIInvokeModel} {
		b := setup(t, fmsim.Config{})
		ctx := pipeline.ContextWithTraceparent(t.Context(), tp)
		if _, err := b.client(t, claude, api).Invoke(ctx, request("hello")); err != nil {
			t.Fatal(err)
		}
		if got := b.sim.Stats().LastTraceparent; got != tp {
			t.Errorf("%s: fmsim saw traceparent %q, want %q", api, got, tp)
		}
	}
}

func TestConfigErrors(t *testing.T) {
	t.Parallel()
	for _, cfg := range []bedrock.Config{
		{},
		{ModelID: claude, API: "chat", Region: "eu-west-1"},
	} {
		if _, err := bedrock.New(t.Context(), cfg); err == nil {
			t.Errorf("New(%+v) succeeded, want an error", cfg)
		}
	}
}

func TestConversationIsNormalized(t *testing.T) {
	t.Parallel()
	b := setup(t, fmsim.Config{})
	req := pipeline.ModelRequest{Messages: []messages.ChatMessage{
		{Role: "system", Content: "Be brief."},
		{Role: "user", Content: "first"},
		{Role: "user", Content: "second"},
		{Role: "assistant", Content: "noted"},
		{Role: "user", Content: "the last word"},
	}}
	for _, api := range []string{bedrock.APIConverse, bedrock.APIInvokeModel} {
		resp, err := b.client(t, claude, api).Invoke(t.Context(), req)
		if err != nil {
			t.Fatalf("%s: %v (turns of one role must be joined)", api, err)
		}
		if !strings.HasSuffix(resp.Text, "the last word") {
			t.Errorf("%s: text %q, want the last message echoed", api, resp.Text)
		}
	}
}
