package openai_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"testing"
	"time"

	"github.com/infleet/infleet/adapters/fmsim"
	"github.com/infleet/infleet/adapters/openai"
)

// BenchmarkCall compares the adapter's Invoke with a raw net/http chat completion (encode,
// POST, decode) on the same fmsim with no latency, so the difference is what the adapter adds
// to a model call. Per-call durations are reported as p50 and p99 in microseconds.
func BenchmarkCall(b *testing.B) {
	srv := httptest.NewServer(fmsim.New(fmsim.Config{}))
	b.Cleanup(srv.Close)
	req := request("summarize the quarterly report in three short sentences please")
	c, err := openai.New(openai.Config{BaseURL: srv.URL + "/v1", ModelID: model})
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
		hr, _ := http.NewRequestWithContext(ctx, http.MethodPost, srv.URL+"/v1/chat/completions", bytes.NewReader(body))
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
	cases := []struct {
		name string
		call func(ctx context.Context) error
	}{
		{"raw_http", rawCall},
		{"adapter", func(ctx context.Context) error { _, err := c.Invoke(ctx, req); return err }},
	}
	for _, tc := range cases {
		b.Run(tc.name, func(b *testing.B) {
			ctx := context.Background()
			if err := tc.call(ctx); err != nil {
				b.Fatal(err)
			}
			durs := make([]time.Duration, 0, b.N)
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				start := time.Now()
				if err := tc.call(ctx); err != nil {
					b.Fatal(err)
				}
				durs = append(durs, time.Since(start))
			}
			reportPercentiles(b, durs)
		})
	}
}

func reportPercentiles(b *testing.B, durs []time.Duration) {
	if len(durs) == 0 {
		return
	}
	slices.Sort(durs)
	at := func(q float64) float64 {
		return float64(durs[min(int(q*float64(len(durs))), len(durs)-1)]) / float64(time.Microsecond)
	}
	b.ReportMetric(at(0.50), "p50-µs")
	b.ReportMetric(at(0.99), "p99-µs")
}
