package openai_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"testing"

	"github.com/infleet/infleet/adapters/fmsim"
	"github.com/infleet/infleet/adapters/fmsim/fmsimtest"
	"github.com/infleet/infleet/adapters/openai"
)

// BenchmarkCall compares the adapter's Invoke with a raw net/http chat completion (encode,
// POST, decode) on the same fmsim with no latency, so the difference is what the adapter adds
// to a model call. Per-call durations are reported as p50 and p99 in microseconds.
func BenchmarkCall(b *testing.B) {
	_, url := fmsimtest.Start(b, fmsim.Config{})
	req := request("summarize the quarterly report in three short sentences please")
	c, err := openai.New(openai.Config{BaseURL: url + "/v1", ModelID: model})
	if err != nil {
		b.Fatal(err)
	}
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConns, t.MaxIdleConnsPerHost = 128, 128
	raw := &http.Client{Transport: t}
	type msg struct {
		Role    string `json:"role"`
		Content string `json:"content"`
	}
	rawCall := func(ctx context.Context) error {
		body, _ := json.Marshal(map[string]any{"model": model, "messages": []msg{{"system", req.System}, {"user", req.Messages[0].Content}}})
		hr, _ := http.NewRequestWithContext(ctx, http.MethodPost, url+"/v1/chat/completions", bytes.NewReader(body))
		hr.Header.Set("Content-Type", "application/json")
		resp, err := raw.Do(hr)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		data, err := io.ReadAll(resp.Body)
		if err != nil {
			return err
		}
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("status %d", resp.StatusCode)
		}
		var out struct {
			Choices []struct {
				Message msg `json:"message"`
			} `json:"choices"`
		}
		return json.Unmarshal(data, &out)
	}
	fmsimtest.Bench(b, "raw_http", rawCall)
	fmsimtest.Bench(b, "adapter", func(ctx context.Context) error { _, err := c.Invoke(ctx, req); return err })
}
