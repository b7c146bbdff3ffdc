package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// requestTimeout bounds one HTTP request of the harness.
const requestTimeout = 30 * time.Second

// newHTTPClient returns the one client every scenario shares: keep-alive, no compression, and
// enough idle connections per host that no client goroutine ever dials twice.
func newHTTPClient() *http.Client {
	return &http.Client{
		Timeout: requestTimeout,
		Transport: &http.Transport{
			DialContext:         (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
			MaxIdleConns:        0, // no total limit
			MaxIdleConnsPerHost: 4096,
			IdleConnTimeout:     90 * time.Second,
			DisableCompression:  true,
		},
	}
}

// summaryWords matches the sim model's "summarize" answer: it repeats the first 12 words of the
// input, so twelve 14-letter words give a ~200-byte output text.
const summaryWords = 12

// jobBody returns the POST /v1/jobs body every scenario sends: a "summarize" job whose sim
// answer is about 200 bytes ("Summary [hash]: " and the twelve words).
func jobBody() []byte {
	words := make([]string, summaryWords)
	for i := range words {
		words[i] = fmt.Sprintf("benchmarkword%c", 'a'+i) // 14 bytes
	}
	b, err := json.Marshal(map[string]any{"task": "summarize", "input": map[string]string{"text": strings.Join(words, " ")}})
	if err != nil {
		panic(err)
	}
	return b
}

// accepted is the part of a 202 answer the harness reads.
type accepted struct {
	JobID  string `json:"job_id"`
	Status string `json:"status"`
}

// postJob submits body to base and returns the job id from a 202 answer.
func postJob(ctx context.Context, hc *http.Client, base string, body []byte) (string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, base+"/v1/jobs", bytes.NewReader(body))
	if err != nil {
		return "", err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := hc.Do(req)
	if err != nil {
		return "", fmt.Errorf("POST %s/v1/jobs: %w", base, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return "", fmt.Errorf("POST %s/v1/jobs: read answer: %w", base, err)
	}
	if resp.StatusCode != http.StatusAccepted {
		return "", fmt.Errorf("POST %s/v1/jobs: %s: %s", base, resp.Status, snippet(b))
	}
	var a accepted
	if err := json.Unmarshal(b, &a); err != nil || a.JobID == "" {
		return "", fmt.Errorf("POST %s/v1/jobs: 202 without a job_id: %s", base, snippet(b))
	}
	return a.JobID, nil
}

func snippet(b []byte) string {
	s := strings.TrimSpace(string(b))
	if len(s) > 300 {
		s = s[:300] + "..."
	}
	return s
}

// submitted is the outcome of submitN.
type submitted struct {
	ids         []string
	first, last time.Time // before the first POST, after the last 202
}

// submitN posts n jobs from `clients` goroutines, as fast as they are answered. The first
// failure stops every goroutine and is returned.
func (h *harness) submitN(ctx context.Context, base string, n, clients int) (submitted, error) {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	s := submitted{ids: make([]string, n)}
	var next, done atomic.Int64
	var wg sync.WaitGroup
	stopProgress := h.every(2*time.Second, func() { h.progress("  submitted %d/%d", done.Load(), n) })
	s.first = time.Now()
	for range min(clients, n) {
		wg.Go(func() {
			for ctx.Err() == nil {
				i := next.Add(1) - 1
				if i >= int64(n) {
					return
				}
				id, err := postJob(ctx, h.http, base, h.body)
				if err != nil {
					cancel(err)
					return
				}
				s.ids[i] = id
				done.Add(1)
			}
		})
	}
	wg.Wait()
	s.last = time.Now()
	stopProgress()
	if err := context.Cause(ctx); err != nil {
		return s, fmt.Errorf("submit %d jobs: %w", n, err)
	}
	return s, nil
}

// closedLoop posts jobs from `clients` goroutines for d and returns the number of 202s.
func (h *harness) closedLoop(ctx context.Context, base string, clients int, d time.Duration) (int, error) {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	deadline := time.Now().Add(d)
	var count atomic.Int64
	var wg sync.WaitGroup
	for range clients {
		wg.Go(func() {
			for ctx.Err() == nil && time.Now().Before(deadline) {
				if _, err := postJob(ctx, h.http, base, h.body); err != nil {
					cancel(err)
					return
				}
				count.Add(1)
			}
		})
	}
	wg.Wait()
	if err := context.Cause(ctx); err != nil {
		return 0, err
	}
	return int(count.Load()), nil
}

// openLoopResult is what an open-loop run measured.
type openLoopResult struct {
	latencies []time.Duration // from each request's scheduled time to its 202, sorted
	service   []time.Duration // from each request's actual send to its 202, sorted
	sent      int
	elapsed   time.Duration
	behind    int // requests that left later than 1 ms after their scheduled time
}

// openLoop sends requests at `rate` per second for d on a fixed schedule (request i is due at
// start + i/rate) whatever the answers do, from a pool of goroutines. Latency is measured from
// the scheduled time, so a stalled server cannot hide its queueing (no coordinated omission).
func (h *harness) openLoop(ctx context.Context, base string, rate float64, d time.Duration, pool int) (openLoopResult, error) {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	due := make(chan time.Time, pool)
	lats := make([][]time.Duration, pool)
	svc := make([][]time.Duration, pool)
	var behind atomic.Int64
	var wg sync.WaitGroup
	for w := range pool {
		wg.Go(func() {
			for at := range due {
				sent := time.Now()
				if sent.Sub(at) > time.Millisecond {
					behind.Add(1)
				}
				if _, err := postJob(ctx, h.http, base, h.body); err != nil {
					cancel(err)
					continue // drain
				}
				lats[w] = append(lats[w], time.Since(at))
				svc[w] = append(svc[w], time.Since(sent))
			}
		})
	}
	start := time.Now()
	interval := time.Duration(float64(time.Second) / rate)
	n := int(d.Seconds() * rate)
	sent := 0
	for i := range n {
		at := start.Add(time.Duration(i) * interval)
		if wait := time.Until(at); wait > 0 {
			time.Sleep(wait)
		}
		if ctx.Err() != nil {
			break
		}
		due <- at
		sent++
	}
	close(due)
	wg.Wait()
	res := openLoopResult{sent: sent, elapsed: time.Since(start), behind: int(behind.Load())}
	for w := range pool {
		res.latencies = append(res.latencies, lats[w]...)
		res.service = append(res.service, svc[w]...)
	}
	slices.Sort(res.latencies)
	slices.Sort(res.service)
	if err := context.Cause(ctx); err != nil {
		return res, fmt.Errorf("open-loop run: %w", err)
	}
	return res, nil
}

// percentile returns the p-th quantile (0 < p <= 1) of sorted by the nearest-rank method.
func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(float64(len(sorted))*p+0.999999) - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}

// counts are the job counters of one /metrics scrape.
type counts struct {
	accepted  float64
	completed float64
	failed    float64
	cancelled float64
	inFlight  float64 // the infleet_jobs_in_flight gauge
	expired   float64 // infleet_jobs_expired_total: jobs deleted by retention
	// expiredResults is infleet_results_expired_total: their result objects deleted.
	expiredResults float64
}

func (c counts) finished() float64 { return c.completed + c.failed + c.cancelled }

// scrapedNames are the metrics parseCounts reads. The scrape asks for them alone (Prometheus'
// name[] filter): infleet then gathers only its own metrics, not the Go runtime's and the
// process's, whose gathering (reading /proc) cost ~1.1 ms of the child's CPU each time — at
// 20 scrapes a second, and 200 near the end, a cost the peers, counting their completions in
// their own process, do not pay.
var scrapedNames = []string{"infleet_jobs_in_flight", "infleet_jobs_accepted_total", "infleet_jobs_expired_total",
	"infleet_results_expired_total", "infleet_jobs_finished_total"}

// scrapeQuery is the query string naming scrapedNames.
var scrapeQuery = func() string {
	v := url.Values{}
	v["name[]"] = scrapedNames
	return "?" + v.Encode()
}()

// scrape reads the job counters from base/metrics.
func (h *harness) scrape(ctx context.Context, base string) (counts, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/metrics"+scrapeQuery, nil)
	if err != nil {
		return counts{}, err
	}
	resp, err := h.http.Do(req)
	if err != nil {
		return counts{}, fmt.Errorf("scrape %s/metrics: %w", base, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return counts{}, fmt.Errorf("scrape %s/metrics: %s", base, resp.Status)
	}
	return parseCounts(resp.Body)
}

// parseCounts sums infleet_jobs_accepted_total and infleet_jobs_finished_total by status over
// every other label, and reads the in-flight gauge and the retention counters, from the
// Prometheus text format.
func parseCounts(r io.Reader) (counts, error) {
	var c counts
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, "infleet_jobs_") && !strings.HasPrefix(line, "infleet_results_") {
			continue
		}
		name, labels, value, err := parseSample(line)
		if err != nil {
			return c, err
		}
		switch name {
		case "infleet_jobs_in_flight":
			c.inFlight += value
		case "infleet_jobs_accepted_total":
			c.accepted += value
		case "infleet_jobs_expired_total":
			c.expired += value
		case "infleet_results_expired_total":
			c.expiredResults += value
		case "infleet_jobs_finished_total":
			switch labels["status"] {
			case "COMPLETED":
				c.completed += value
			case "FAILED":
				c.failed += value
			case "CANCELLED":
				c.cancelled += value
			}
		}
	}
	return c, sc.Err()
}

// parseSample splits one sample line `name{k="v",...} value [timestamp]`. Label values with
// escaped quotes are not expected in infleet's job counters and are rejected.
func parseSample(line string) (name string, labels map[string]string, value float64, err error) {
	rest := line
	if i := strings.IndexAny(rest, "{ "); i < 0 {
		return "", nil, 0, fmt.Errorf("metrics line without a value: %q", line)
	} else {
		name, rest = rest[:i], rest[i:]
	}
	labels = map[string]string{}
	if strings.HasPrefix(rest, "{") {
		end := strings.IndexByte(rest, '}')
		if end < 0 || strings.Contains(rest[:end], `\"`) {
			return "", nil, 0, fmt.Errorf("metrics line with labels the harness cannot read: %q", line)
		}
		for _, kv := range strings.Split(rest[1:end], ",") {
			if kv == "" {
				continue
			}
			k, v, ok := strings.Cut(kv, "=")
			if !ok || len(v) < 2 || v[0] != '"' || v[len(v)-1] != '"' {
				return "", nil, 0, fmt.Errorf("metrics line with a bad label %q: %q", kv, line)
			}
			labels[k] = v[1 : len(v)-1]
		}
		rest = rest[end+1:]
	}
	f := strings.Fields(rest)
	if len(f) < 1 {
		return "", nil, 0, fmt.Errorf("metrics line without a value: %q", line)
	}
	value, err = strconv.ParseFloat(f[0], 64)
	if err != nil {
		return "", nil, 0, fmt.Errorf("metrics line with a bad value: %q: %w", line, err)
	}
	return name, labels, value, nil
}

// finish is what waitFinished saw.
type finish struct {
	first      time.Time // first poll that saw a finished job
	firstCount float64   // jobs finished at that poll
	last       time.Time // first poll that saw every job finished
	final      counts
	samples    []point // every poll, in order
}

// point is one poll of the finished count.
type point struct {
	at       time.Time
	finished float64
	inFlight float64
	cpu      time.Duration // CPU time the process had used (procCPU), -1 when unknown
}

// cpuPerJob is the process's CPU time per job finished from the first completion to the
// last, and the share of all CPUs it used meanwhile; 0, 0 when unknown.
func (f finish) cpuPerJob() (time.Duration, float64) {
	var a, b *point
	for i := range f.samples {
		p := &f.samples[i]
		if a == nil && !p.at.Before(f.first) {
			a = p
		}
		if !p.at.After(f.last) {
			b = p
		}
	}
	if a == nil || b == nil || a.cpu < 0 || b.cpu < 0 || b.finished <= a.finished || !b.at.After(a.at) {
		return 0, 0
	}
	used := b.cpu - a.cpu
	return used / time.Duration(b.finished-a.finished), used.Seconds() / b.at.Sub(a.at).Seconds() / float64(runtime.NumCPU())
}

// meanInFlight averages the in-flight gauge over the polls from the first completion to the
// last: how many of the workers were busy, on average.
func (f finish) meanInFlight() float64 {
	var sum float64
	var n int
	for _, p := range f.samples {
		if !p.at.Before(f.first) && p.at.Before(f.last) {
			sum += p.inFlight
			n++
		}
	}
	if n == 0 {
		return 0
	}
	return sum / float64(n)
}

// curve renders the completions of each `step` from the first completion on, e.g.
// "1180 1250 1302 ..." per 500 ms: a stall or a slow start shows at a glance.
func (f finish) curve(step time.Duration) string {
	if f.first.IsZero() || len(f.samples) == 0 {
		return ""
	}
	var b strings.Builder
	next, prev := f.first.Add(step), f.firstCount
	for i, p := range f.samples {
		if p.at.Before(next) && i < len(f.samples)-1 {
			continue
		}
		fmt.Fprintf(&b, "%.0f ", p.finished-prev)
		prev = p.finished
		for !next.After(p.at) {
			next = next.Add(step)
		}
	}
	return strings.TrimSpace(b.String())
}

// steadyRate is the completion rate between the first poll that saw a completion and the
// poll that saw the last: it leaves out start-up and the first model latency.
func (f finish) steadyRate(total int) float64 {
	d := f.last.Sub(f.first).Seconds()
	if d <= 0 {
		return 0
	}
	return (float64(total) - f.firstCount) / d
}

// waitFinished polls p's /metrics every 50 ms (every 5 ms for the last 5% of jobs, to place the
// end precisely) until `total` jobs have finished since p started. Failed or cancelled jobs
// are an error: the scenarios only submit jobs that complete.
func (h *harness) waitFinished(ctx context.Context, p *proc, total int, timeout time.Duration) (finish, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var f finish
	var c counts
	stopProgress := h.every(2*time.Second, func() { h.progress("  finished %.0f/%d", c.finished(), total) })
	defer stopProgress()
	for {
		if err := p.alive(); err != nil {
			return f, err
		}
		var err error
		c, err = h.scrape(ctx, p.base)
		now := time.Now()
		if err != nil && ctx.Err() == nil {
			return f, err
		}
		if c.failed+c.cancelled > 0 {
			return f, fmt.Errorf("%.0f jobs FAILED and %.0f CANCELLED (the scenario's jobs should all complete); the log of infleet %s ends:\n%s",
				c.failed, c.cancelled, p.role, p.logTail())
		}
		f.samples = append(f.samples, point{now, c.finished(), c.inFlight, procCPU(p.pid())})
		if f.first.IsZero() && c.finished() > 0 {
			f.first, f.firstCount = now, c.finished()
		}
		if c.finished() >= float64(total) {
			f.last, f.final = now, c
			return f, nil
		}
		interval := 50 * time.Millisecond
		if float64(total)-c.finished() < 0.05*float64(total) {
			interval = 5 * time.Millisecond
		}
		select {
		case <-ctx.Done():
			return f, fmt.Errorf("only %.0f of %d jobs finished within %s (accepted %.0f)", c.finished(), total, timeout, c.accepted)
		case <-time.After(interval):
		}
	}
}

// verifyByGET checks that every sampled job reads COMPLETED through GET /v1/jobs/{id}.
func (h *harness) verifyByGET(ctx context.Context, base string, ids []string) error {
	for _, id := range ids {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/v1/jobs/"+id, nil)
		if err != nil {
			return err
		}
		resp, err := h.http.Do(req)
		if err != nil {
			return fmt.Errorf("GET job %s: %w", id, err)
		}
		b, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			return fmt.Errorf("GET job %s: %w", id, err)
		}
		var rec accepted
		if resp.StatusCode != http.StatusOK || json.Unmarshal(b, &rec) != nil || rec.Status != "COMPLETED" {
			return fmt.Errorf("GET job %s: %s %s (want 200 and status COMPLETED)", id, resp.Status, snippet(b))
		}
	}
	return nil
}

// sample picks up to n ids spread evenly over ids, always with the first and the last.
func sample(ids []string, n int) []string {
	if len(ids) <= n {
		return ids
	}
	out := make([]string, 0, n)
	for i := range n {
		out = append(out, ids[i*(len(ids)-1)/(n-1)])
	}
	return out
}
