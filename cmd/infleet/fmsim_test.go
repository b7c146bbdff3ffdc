package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/infleet/infleet/adapters/fmsim"
	"github.com/infleet/infleet/config"
	"github.com/infleet/infleet/messages"
	"github.com/infleet/infleet/pipeline"
)

// startFmsim runs `infleet fmsim args...` on a free port until the test ends and returns its
// base URL.
func startFmsim(t *testing.T, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	addrc := make(chan string, 1)
	exit := make(chan int, 1)
	var stderr bytes.Buffer
	go func() {
		exit <- runFmsim(ctx, append([]string{"--addr", "127.0.0.1:0"}, args...), &stderr, func(a string) { addrc <- a })
	}()
	var addr string
	select {
	case addr = <-addrc:
	case code := <-exit:
		t.Fatalf("fmsim exited %d: %s", code, stderr.String())
	case <-time.After(10 * time.Second):
		t.Fatal("fmsim did not start within 10s")
	}
	t.Cleanup(func() {
		cancel()
		select {
		case code := <-exit:
			if code != 0 {
				t.Errorf("fmsim exited %d", code)
			}
		case <-time.After(15 * time.Second):
			t.Error("fmsim did not stop within 15s")
		}
	})
	return "http://" + addr
}

func TestFmsimCommandFlags(t *testing.T) {
	t.Parallel()
	var out bytes.Buffer
	if code := run([]string{"fmsim", "--help"}, &out, &out); code != 0 || !strings.Contains(out.String(), "throttle-rate") {
		t.Errorf("fmsim --help = %d, %q; want 0 and the flags", code, out.String())
	}
	for _, args := range [][]string{
		{"--throttle-rate", "2"},
		{"--outages", "soon"},
		{"--latency-dist", "zipf"},
		{"--rpm", "-1"},
		{"--faults-file", "/nonexistent/faults.json"},
	} {
		out.Reset()
		if code := runFmsim(t.Context(), args, &out, nil); code != exitUsage {
			t.Errorf("fmsim %v = %d, want %d (%s)", args, code, exitUsage, out.String())
		}
	}
}

// TestFmsimCommandServesAndWires is not parallel: it sets environment variables.
func TestFmsimCommandServesAndWires(t *testing.T) {
	url := startFmsim(t, "--throttle-rate", "0", "--models", "gpt-4o-mini,anthropic.claude-3-haiku,eu.anthropic.claude-3-haiku")
	t.Setenv("INFLEET_TEST_FMSIM_KEY", "sk-anything")
	cfg := config.Config{Models: []config.Model{
		{Name: "chat", Provider: config.ProviderOpenAI, BaseURL: url + "/v1", ModelID: "gpt-4o-mini", APIKeyEnv: "INFLEET_TEST_FMSIM_KEY"},
		{Name: "conv", Provider: config.ProviderBedrock, ModelID: "anthropic.claude-3-haiku", Region: "eu-west-1", Endpoint: url},
		{Name: "inv", Provider: config.ProviderBedrock, ModelID: "eu.anthropic.claude-3-haiku", API: "invoke_model", Region: "eu-west-1"},
	}, AWSEndpoint: url}
	cfg.ApplyDefaults()
	t.Setenv("AWS_ACCESS_KEY_ID", "AKIDFMSIM")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "secret")
	for _, m := range cfg.Models {
		model, err := (&app{}).newModel(t.Context(), cfg, m)
		if err != nil {
			t.Fatalf("%s: %v", m.Name, err)
		}
		resp, err := model.Client.Invoke(t.Context(), pipeline.ModelRequest{Messages: []messages.ChatMessage{{Role: "user", Content: "hello there"}}})
		if err != nil || !strings.Contains(resp.Text, "hello there") {
			t.Errorf("%s: %q, %v; want fmsim's echo", m.Name, resp.Text, err)
		}
	}

	// Faults change at run time over HTTP.
	post, err := http.Post(url+"/admin/faults?model=gpt-4o-mini", "application/json", strings.NewReader(`{"down":true}`))
	if err != nil {
		t.Fatal(err)
	}
	post.Body.Close()
	model, err := (&app{}).newModel(t.Context(), cfg, cfg.Models[0])
	if err != nil {
		t.Fatal(err)
	}
	_, err = model.Client.Invoke(t.Context(), pipeline.ModelRequest{Messages: []messages.ChatMessage{{Role: "user", Content: "hi"}}})
	var me *pipeline.ModelError
	if !errors.As(err, &me) || me.Kind != pipeline.ModelUnavailable {
		t.Errorf("during the outage: %v, want an unavailable ModelError", err)
	}

	resp, err := http.Get(url + "/stats")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var st fmsim.Stats
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		t.Fatal(err)
	}
	if st.ByAPI[fmsim.APIChat] != 2 || st.ByAPI[fmsim.APIConverse] != 1 || st.ByAPI[fmsim.APIInvoke] != 1 || st.ByOutcome[fmsim.OutcomeOutage] != 1 {
		t.Errorf("stats = %+v, want 2 chat, 1 converse, 1 invoke, 1 outage", st)
	}
}

func TestNewModelErrors(t *testing.T) {
	t.Parallel()
	cfg := config.Config{}
	cfg.ApplyDefaults()
	for _, m := range []config.Model{
		{Name: "a", Provider: config.ProviderOpenAI, BaseURL: "http://127.0.0.1:1/v1", ModelID: "m", APIKeyEnv: "INFLEET_TEST_SURELY_UNSET_KEY"},
		{Name: "b", Provider: config.ProviderOpenAI, ModelID: "m"},
		{Name: "c", Provider: config.ProviderBedrock, ModelID: "m", API: "chat", Region: "eu-west-1"},
		{Name: "d", Provider: "vertex"},
	} {
		if _, err := (&app{}).newModel(t.Context(), cfg, m); err == nil {
			t.Errorf("newModel(%+v) succeeded, want an error", m)
		}
	}
}

func TestFmsimFaultsFile(t *testing.T) {
	t.Parallel()
	path := t.TempDir() + "/faults.json"
	if err := os.WriteFile(path, []byte(`{"default":{"retry_after":"250ms"},"models":{"primary":{"down":true},"busy":{"throttle_rate":1,"retry_after":"3s"}}}`), 0o600); err != nil {
		t.Fatal(err)
	}
	url := startFmsim(t, "--faults-file", path)
	for model, want := range map[string]int{"primary": 503, "busy": 429, "other": 200} {
		resp, err := http.Post(url+"/v1/chat/completions", "application/json",
			strings.NewReader(`{"model":"`+model+`","messages":[{"role":"user","content":"hi"}]}`))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("%s answered %d, want %d", model, resp.StatusCode, want)
		}
		if model == "busy" && resp.Header.Get("Retry-After") != "3" {
			t.Errorf("busy Retry-After = %q, want 3", resp.Header.Get("Retry-After"))
		}
	}
}

// TestFmsimCommandServesHTTP2 checks that `infleet fmsim` answers an HTTP/2 prior-knowledge
// client (no TLS) and an HTTP/1.1 client on its one port.
func TestFmsimCommandServesHTTP2(t *testing.T) {
	t.Parallel()
	url := startFmsim(t)
	for _, major := range []int{2, 1} {
		var p http.Protocols
		if major == 2 {
			p.SetUnencryptedHTTP2(true)
		} else {
			p.SetHTTP1(true)
		}
		c := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{Protocols: &p}}
		resp, err := c.Get(url + "/healthz")
		if err != nil {
			t.Fatalf("HTTP/%d: %v", major, err)
		}
		_ = resp.Body.Close()
		if resp.ProtoMajor != major || resp.StatusCode != http.StatusNoContent {
			t.Errorf("HTTP/%d client: answered %s %d", major, resp.Proto, resp.StatusCode)
		}
	}
}
