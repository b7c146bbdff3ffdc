package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/infleet/infleet/adapters/fmsim"
)

// ttftBudget is the time to first token infleet may add, at the median, over a direct call.
const ttftBudget = 5 * time.Millisecond

// BenchmarkStreamTTFT measures, side by side in one run, the time to the first token of a
// streamed answer from fmsim (10 ms to its first chunk, 1 ms between chunks) called directly
// with "stream": true, and through `serve` (embedded NATS, SQLite, local result files) from
// POST /v1/jobs with "stream": true to the first delta event of GET /v1/jobs/{id}/events. It
// reports both medians (direct-p50-ms, infleet-p50-ms) and what infleet adds at the median and
// the 95th percentile (added-p50-ms, added-p95-ms); the target is at most 5 ms at the median.
func BenchmarkStreamTTFT(b *testing.B) {
	sim := fmsim.New(fmsim.Config{Faults: fmsim.Faults{Latency: fmsim.Latency{P50: 10 * time.Millisecond}, ChunkInterval: time.Millisecond}})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	srv := sim.HTTPServer()
	go func() { _ = srv.Serve(ln) }()
	b.Cleanup(func() { sim.Close(); _ = srv.Close() })
	simURL := "http://" + ln.Addr().String()
	dir := b.TempDir()
	base := serveBench(b, dir, dir+"/data", fmt.Sprintf(`
models:
  - {name: m, provider: openai, base_url: %q, model_id: m}
routes: {default: m}
workers: {concurrency: 8, max_attempts: 1}
log: {level: error}
`, simURL+"/v1"))
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 16}}

	direct := func(text string) time.Duration {
		body, _ := json.Marshal(map[string]any{"model": "m", "stream": true, "messages": []map[string]string{{"role": "user", "content": text}}})
		start := time.Now()
		resp, err := client.Post(simURL+"/v1/chat/completions", "application/json", strings.NewReader(string(body)))
		if err != nil {
			b.Fatal(err)
		}
		defer resp.Body.Close()
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			if strings.Contains(sc.Text(), `"content":"fmsim`) {
				return time.Since(start)
			}
		}
		b.Fatalf("direct stream ended without a token: %v", sc.Err())
		return 0
	}
	viaInfleet := func(text string) time.Duration {
		body, _ := json.Marshal(map[string]any{"task": "t", "stream": true, "input": map[string]string{"text": text}})
		start := time.Now()
		resp, err := client.Post(base+"/v1/jobs", "application/json", strings.NewReader(string(body)))
		if err != nil {
			b.Fatal(err)
		}
		var rec struct {
			JobID string `json:"job_id"`
		}
		err = json.NewDecoder(resp.Body).Decode(&rec)
		resp.Body.Close()
		if err != nil || resp.StatusCode != http.StatusAccepted {
			b.Fatalf("submit: %d %v", resp.StatusCode, err)
		}
		ev, err := client.Get(base + "/v1/jobs/" + rec.JobID + "/events")
		if err != nil {
			b.Fatal(err)
		}
		defer ev.Body.Close()
		sc := bufio.NewScanner(ev.Body)
		for sc.Scan() {
			if sc.Text() == "event: delta" {
				return time.Since(start)
			}
		}
		b.Fatalf("event stream of %s ended without a delta: %v", rec.JobID, sc.Err())
		return 0
	}

	for i := range 3 { // warm connections and the model client
		direct(fmt.Sprintf("warm up %d", i))
		viaInfleet(fmt.Sprintf("warm up %d", i))
	}
	var d, v []time.Duration
	for i := 0; b.Loop(); i++ {
		text := fmt.Sprintf("question %d: how do the tides follow the moon", i)
		d = append(d, direct(text))
		v = append(v, viaInfleet(text))
	}
	p := func(xs []time.Duration, q float64) time.Duration {
		s := slices.Clone(xs)
		slices.Sort(s)
		return s[min(int(q*float64(len(s))), len(s)-1)]
	}
	added := make([]time.Duration, len(d))
	for i := range d {
		added[i] = v[i] - d[i]
	}
	ms := func(x time.Duration) float64 { return float64(x) / float64(time.Millisecond) }
	b.ReportMetric(ms(p(d, 0.5)), "direct-p50-ms")
	b.ReportMetric(ms(p(v, 0.5)), "infleet-p50-ms")
	b.ReportMetric(ms(p(added, 0.5)), "added-p50-ms")
	b.ReportMetric(ms(p(added, 0.95)), "added-p95-ms")
	if p(added, 0.5) > ttftBudget {
		b.Logf("infleet adds %s to the time to first token at the median, over the %s target", p(added, 0.5), ttftBudget)
	}
}
