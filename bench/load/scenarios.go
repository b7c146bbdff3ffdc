package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/infleet/infleet/config"
	"github.com/infleet/infleet/pipeline/ops"
)

// Targets from the issue.
const (
	targetThroughput   = 6000.0 // jobs/s on 2 cores, one POST per job, POST to COMPLETED, 0 ms model
	targetLimitShare   = 0.95   // of workers/latency
	targetIngressRatio = 0.5    // `infleet ingress` accepts/s over the bare handler's
	targetAcceptP99    = 10 * time.Millisecond
	targetMemory       = 150 << 20 // bytes
)

// verifySampleCount is how many results of a run are read back.
const verifySampleCount = 50

func (h *harness) cfg(latency time.Duration, concurrency int) childConfig {
	return childConfig{latency: latency, concurrency: concurrency, logLevel: h.opts.childLogLevel}
}

// coresNote says when the machine is not the 2-core machine a target is set for.
func (h *harness) coresNote() string {
	if h.machine.cpus == 2 {
		return ""
	}
	return fmt.Sprintf("; the target is for 2 cores, this machine has %d", h.machine.cpus)
}

// throughput: 0 ms model, N jobs POSTed by C clients; first POST to last COMPLETED.
func (h *harness) throughput(ctx context.Context) ([]row, error) {
	n, c, w := h.opts.throughputJobs, h.opts.clients, h.opts.concurrency
	p, err := h.startChild(ctx, "throughput", "serve", h.dir("throughput"), h.cfg(0, w))
	if err != nil {
		return nil, err
	}
	defer h.stopChild(p)
	sub, err := h.submitN(ctx, p.base, n, c)
	if err != nil {
		return nil, err
	}
	fin, err := h.waitFinished(ctx, p, n, jobTimeout(n))
	if err != nil {
		return nil, err
	}
	if err := h.verifyByGET(ctx, p.base, sample(sub.ids, verifySampleCount)); err != nil {
		return nil, err
	}
	rate := float64(n) / fin.last.Sub(sub.first).Seconds()
	accept := float64(n) / sub.last.Sub(sub.first).Seconds()
	setup := fmt.Sprintf("%s jobs, %d keep-alive clients, 0 ms model, %d workers, `infleet serve`; end seen by polling /metrics, %d jobs checked by GET%s",
		thousands(float64(n)), c, w, min(n, verifySampleCount), h.coresNote())
	h.progress("throughput: %.0f jobs/s end to end, %.0f accepted/s", rate, accept)
	return []row{
		{Scenario: "throughput", Measure: "jobs/s, first POST to last COMPLETED", Result: thousands(rate) + " jobs/s",
			Target: ">= " + thousands(targetThroughput) + " jobs/s", Verdict: judge(rate >= targetThroughput), Setup: setup},
		{Scenario: "throughput", Measure: "accepted jobs/s while submitting (workers running)", Result: thousands(accept) + " jobs/s",
			Setup: setup},
	}, nil
}

// backlog is the outcome of a burn-down run.
type backlog struct {
	n         int
	fin       finish
	started   time.Time // the burning process's start
	method    string
	resultLen int64 // bytes of one result file
	outputLen int   // bytes of its output text
	// With a retention: every job deleted this long after the last completion.
	allDeletedAfter time.Duration
}

// burnBacklog enqueues n jobs and measures how fast a process configured by cfg (workers,
// model latency, retention) completes them. With the ingress/worker split it enqueues
// everything through `infleet ingress`, stops it, and starts `infleet worker` on the same data
// dir (the workers see the whole backlog at once); without it, `infleet serve` runs jobs while
// they are still being submitted. With a retention it then waits for the reaper to delete every
// job and checks that their result files went too; without one it checks a sample of results.
func (h *harness) burnBacklog(ctx context.Context, name string, n int, cfg childConfig) (backlog, error) {
	latency, workers := cfg.latency, cfg.concurrency
	b := backlog{n: n}
	dir := h.dir(name)
	var ids []string
	var p *proc
	var subDone chan error // the submission running beside `serve`, without the split
	if h.split {
		b.method = "backlog enqueued by `infleet ingress` (then stopped; disks synced), burnt down by `infleet worker` on the same data dir"
		ing, err := h.startChild(ctx, name, "ingress", dir, cfg)
		if err != nil {
			return b, err
		}
		sub, err := h.submitN(ctx, ing.base, n, h.opts.clients)
		if err != nil {
			h.stopChild(ing)
			return b, err
		}
		ids = sub.ids
		if err := ing.stop(); err != nil {
			return b, fmt.Errorf("stop the ingress before the burn-down: %w", err)
		}
		h.settle() // the ingress's write-back is not the burn-down's cost
		if p, err = h.startChild(ctx, name, "worker", dir, cfg); err != nil {
			return b, err
		}
	} else {
		b.method = "no ingress/worker split in this binary: `infleet serve` runs jobs while they are submitted"
		var err error
		if p, err = h.startChild(ctx, name, "serve", dir, cfg); err != nil {
			return b, err
		}
		subDone = make(chan error, 1)
		go func() {
			sub, err := h.submitN(ctx, p.base, n, h.opts.clients)
			ids = sub.ids
			subDone <- err
		}()
	}
	defer h.stopChild(p)
	b.started = p.started
	fin, err := h.waitFinished(ctx, p, n, jobTimeout(n)+time.Duration(float64(n)/float64(workers)*float64(latency)))
	if subDone != nil {
		if err != nil {
			h.stopChild(p) // the submitters fail fast against a stopped process
		}
		if serr := <-subDone; err == nil {
			err = serr
		}
	}
	if err != nil {
		return b, err
	}
	b.fin = fin
	perJob, share := fin.cpuPerJob()
	h.progress("  completions per 500 ms after the first (%.0f at %s after start): %s; mean jobs in flight %.0f of %d; infleet %s used %s CPU per job, %.0f%% of the CPUs",
		fin.firstCount, fin.first.Sub(p.started).Round(time.Millisecond), fin.curve(500*time.Millisecond), fin.meanInFlight(), workers,
		p.role, perJob.Round(time.Microsecond/10), share*100)
	if len(ids) == 0 || ids[0] == "" {
		return b, errors.New("no job ids recorded")
	}
	if cfg.retention > 0 {
		return b, h.waitDeleted(ctx, p, &b, dir, ids, cfg.retention)
	}
	for i, id := range sample(ids, verifySampleCount) {
		size, outLen, err := readResult(dir, id)
		if err != nil {
			return b, err
		}
		if i == 0 {
			b.resultLen, b.outputLen = size, outLen
		}
	}
	return b, nil
}

// waitDeleted waits until the reaper of p has deleted all b.n jobs, then checks that no result
// file of the jobs is left in dir, and records when the last deletion was seen.
func (h *harness) waitDeleted(ctx context.Context, p *proc, b *backlog, dir string, ids []string, retention time.Duration) error {
	deadline := time.Now().Add(retention + 30*time.Second)
	var c counts
	for {
		var err error
		if c, err = h.scrape(ctx, p.base); err != nil {
			return err
		}
		if c.expired >= float64(b.n) {
			b.allDeletedAfter = time.Since(b.fin.last)
			break
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("only %.0f of %d jobs deleted %s after the last completed with store.retention %s; the log of infleet %s ends:\n%s",
				c.expired, b.n, time.Since(b.fin.last).Round(time.Millisecond), retention, p.role, p.logTail())
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
	if c.expiredResults < float64(b.n) {
		return fmt.Errorf("the reaper deleted %.0f jobs but only %.0f results", c.expired, c.expiredResults)
	}
	left := 0
	for _, id := range ids {
		if _, err := os.Stat(filepath.Join(dir, "results", id+".json")); err == nil {
			left++
		} else if !errors.Is(err, os.ErrNotExist) {
			return err
		}
	}
	if left > 0 {
		return fmt.Errorf("%d of %d result files are left after the reaper deleted every job", left, len(ids))
	}
	return nil
}

// readResult checks the result file of a completed job and returns its size and the length of
// its output text.
func readResult(dataDir, id string) (int64, int, error) {
	path := filepath.Join(dataDir, "results", id+".json")
	raw, err := os.ReadFile(path)
	if err != nil {
		return 0, 0, fmt.Errorf("result of job %s (the job is counted as COMPLETED): %w", id, err)
	}
	var res struct {
		JobID  string `json:"job_id"`
		Output struct {
			Text string `json:"text"`
		} `json:"output"`
	}
	if err := json.Unmarshal(raw, &res); err != nil || res.JobID != id || res.Output.Text == "" {
		return 0, 0, fmt.Errorf("result file %s is not the result of job %s: %s", path, id, snippet(raw))
	}
	return int64(len(raw)), len(res.Output.Text), nil
}

// concurrency: 100 ms model, C workers, share of the limit C/0.1 s.
func (h *harness) concurrency(ctx context.Context) ([]row, error) {
	const latency = 100 * time.Millisecond
	n, w := h.opts.concurrencyJobs, h.opts.concurrency
	b, err := h.burnBacklog(ctx, "concurrency", n, h.cfg(latency, w))
	if err != nil {
		return nil, err
	}
	limit := float64(w) / latency.Seconds()
	rate := b.fin.steadyRate(n)
	share := rate / limit
	whole := float64(n) / b.fin.last.Sub(b.started).Seconds()
	setup := fmt.Sprintf("%s jobs, %d workers, 100 ms model; %s; window from the first completion seen to the last (/metrics polled every 50 ms)",
		thousands(float64(n)), w, b.method)
	h.progress("concurrency: %.0f jobs/s = %.1f%% of %.0f/s", rate, share*100, limit)
	return []row{
		{Scenario: "concurrency", Measure: fmt.Sprintf("completed jobs/s, share of the %s/s limit", thousands(limit)),
			Result: fmt.Sprintf("%s jobs/s = %.1f%%", thousands(rate), share*100), Target: fmt.Sprintf(">= %.0f%%", targetLimitShare*100),
			Verdict: judge(share >= targetLimitShare), Setup: setup},
		{Scenario: "concurrency", Measure: "jobs/s from the process start (start-up included)",
			Result: fmt.Sprintf("%s jobs/s = %.1f%%", thousands(whole), whole/limit*100), Setup: setup},
	}, nil
}

// abRounds is what alternating rounds of one infleet child against the bare handler measured.
type abRounds struct {
	infleet, bare []float64 // accepted POST /v1/jobs per second, one per round
	ratios        []float64 // infleet / bare, per round
}

// acceptRounds warms up base (an infleet child, called label in progress lines) and the bare
// handler, then runs -rounds rounds of -round-time per side, alternating which goes first, with
// -clients closed-loop clients. pid is the infleet child's process: each round prints the CPU
// time it used per accepted POST (with `serve`, its workers' too), which moves less than the
// rates with what else the machine runs.
func (h *harness) acceptRounds(ctx context.Context, label, base string, pid int, bare *bareServer) (abRounds, error) {
	var ab abRounds
	c := h.opts.clients
	type side struct {
		name  string
		base  string
		rates []float64
	}
	sides := []*side{{name: label, base: base}, {name: "bare", base: bare.base}}
	warm := min(h.opts.roundTime, time.Second)
	for _, s := range sides {
		if _, err := h.closedLoop(ctx, s.base, c, warm); err != nil {
			return ab, fmt.Errorf("warm-up of %s: %w", s.name, err)
		}
	}
	for r := range h.opts.rounds {
		order := []*side{sides[0], sides[1]}
		if r%2 == 1 {
			order[0], order[1] = order[1], order[0]
		}
		perAccept := time.Duration(-1)
		for _, s := range order {
			cpu0 := procCPU(pid)
			got, err := h.closedLoop(ctx, s.base, c, h.opts.roundTime)
			if err != nil {
				return ab, fmt.Errorf("%s, round %d: %w", s.name, r+1, err)
			}
			if cpu1 := procCPU(pid); s == sides[0] && cpu0 >= 0 && cpu1 >= 0 && got > 0 {
				perAccept = (cpu1 - cpu0) / time.Duration(got)
			}
			s.rates = append(s.rates, float64(got)/h.opts.roundTime.Seconds())
		}
		ab.infleet, ab.bare = sides[0].rates, sides[1].rates
		ab.ratios = append(ab.ratios, ab.infleet[r]/ab.bare[r])
		cpuNote := ""
		if perAccept >= 0 {
			cpuNote = fmt.Sprintf("; %s used %s CPU per accept", label, perAccept.Round(time.Microsecond/10))
		}
		h.progress("  round %d: %s %.0f/s, bare %.0f/s, ratio %.3f%s", r+1, label, ab.infleet[r], ab.bare[r], ab.ratios[r], cpuNote)
	}
	return ab, nil
}

// rows reports rounds of `infleet role` against the bare handler; the ratio is judged against
// targetIngressRatio when judged is set.
func (ab abRounds) rows(role, setup string, judged bool) []row {
	ratio := median(ab.ratios)
	ratioRow := row{Scenario: "ingress", Measure: fmt.Sprintf("ratio %s / bare (median of per-round ratios)", role),
		Result: fmt.Sprintf("%.3f", ratio), Setup: setup}
	if judged {
		ratioRow.Target = fmt.Sprintf(">= %g", targetIngressRatio)
		ratioRow.Verdict = judge(ratio >= targetIngressRatio)
	}
	return []row{
		{Scenario: "ingress", Measure: fmt.Sprintf("%s accepted POST /v1/jobs per s (median of rounds)", role),
			Result: thousands(median(ab.infleet)) + " /s", Setup: setup},
		{Scenario: "ingress", Measure: fmt.Sprintf("bare handler accepted per s, beside %s (median of rounds)", role),
			Result: thousands(median(ab.bare)) + " /s", Setup: setup},
		ratioRow,
	}
}

// ingress: accepted POSTs/s of `infleet ingress` (no workers; the target) and of `infleet
// serve` (workers running the jobs), each against the bare handler in alternating rounds; then
// the accept latency of serve, open loop at half serve's rate. Each child runs on a data
// directory of its own, one after the other.
func (h *harness) ingress(ctx context.Context) ([]row, error) {
	c, w := h.opts.clients, h.opts.concurrency
	bare, err := startBare()
	if err != nil {
		return nil, err
	}
	defer bare.close()
	dir := func(role string) string { return h.dir(filepath.Join("ingress", role)) }
	rounds := fmt.Sprintf("%d alternating A/B rounds of %s per side, %d keep-alive clients; bare = net/http handler in the harness decoding into messages.Job and answering 202",
		h.opts.rounds, h.opts.roundTime, c)
	serveHow := fmt.Sprintf("`infleet serve` with a 0 ms model and %d workers running the accepted jobs in the same process", w)

	var rows []row
	if h.split {
		p, err := h.startChild(ctx, "ingress", "ingress", dir("ingress"), h.cfg(0, w))
		if err != nil {
			return nil, err
		}
		ab, err := h.acceptRounds(ctx, "infleet ingress", p.base, p.pid(), bare)
		h.stopChild(p)
		if err != nil {
			return nil, err
		}
		h.progress("ingress: `infleet ingress` / bare %.3f", median(ab.ratios))
		rows = append(rows, ab.rows("infleet ingress", "`infleet ingress` alone (accepts and enqueues; no workers, the jobs stay queued), its own data dir; "+rounds, true)...)
		h.settle() // the ingress's write-back is not serve's cost
	}

	p, err := h.startChild(ctx, "ingress", "serve", dir("serve"), h.cfg(0, w))
	if err != nil {
		return rows, err
	}
	defer h.stopChild(p)
	ab, err := h.acceptRounds(ctx, "infleet serve", p.base, p.pid(), bare)
	if err != nil {
		return rows, err
	}
	h.progress("ingress: `infleet serve` / bare %.3f", median(ab.ratios))
	if h.split {
		rows = append(rows, ab.rows("infleet serve", serveHow+", its own data dir; "+rounds, false)...)
	} else {
		rows = append(rows, ab.rows("infleet serve", "no ingress/worker split in this binary: the target, set for `infleet ingress`, is measured on "+serveHow+"; "+rounds, true)...)
	}
	serveRate := median(ab.infleet)

	// Let the workers catch up with the rounds' backlog, so the latency phase sees the steady
	// state of its own load: jobs accepted at half rate and run by the same process.
	cnt, err := h.scrape(ctx, p.base)
	if err != nil {
		return rows, err
	}
	h.progress("  waiting for the rounds' %.0f jobs to finish before the latency phase", cnt.accepted)
	if _, err := h.waitFinished(ctx, p, int(cnt.accepted), jobTimeout(int(cnt.accepted))); err != nil {
		return rows, fmt.Errorf("drain the rounds' jobs: %w", err)
	}
	rate, rateHow := serveRate/2, "half the median `infleet serve` rate above"
	if h.opts.latencyRate > 0 {
		rate, rateHow = h.opts.latencyRate, "set by -latency-rate"
	}
	pool := max(4*c, 256)
	res, err := h.openLoop(ctx, p.base, rate, h.opts.latencyTime, pool)
	if err != nil {
		return rows, err
	}
	if len(res.latencies) == 0 {
		return rows, errors.New("the latency phase sent no request")
	}
	p50, p99, pmax := percentile(res.latencies, 0.50), percentile(res.latencies, 0.99), res.latencies[len(res.latencies)-1]
	achieved := float64(res.sent) / res.elapsed.Seconds()
	setupLat := fmt.Sprintf("open loop on %s, at %s/s (%s; achieved %s/s) for %s, %s requests from a pool of %d goroutines; latency from each request's scheduled time (so harness or server stalls count)",
		serveHow, thousands(rate), rateHow, thousands(achieved), h.opts.latencyTime, thousands(float64(len(res.latencies))), pool)
	if res.behind > 0 {
		setupLat += fmt.Sprintf("; %s requests (%.1f%%) were sent over 1 ms after their scheduled time", thousands(float64(res.behind)), 100*float64(res.behind)/float64(res.sent))
	}
	setupSvc := strings.Replace(setupLat, "latency from each request's scheduled time (so harness or server stalls count)", "service time from each request's actual send", 1)
	h.progress("ingress: p50 %s p99 %s max %s at %.0f/s on serve (service p99 %s)", ms(p50), ms(p99), ms(pmax), rate, ms(percentile(res.service, 0.99)))
	rows = append(rows,
		row{Scenario: "ingress", Measure: "accept latency p50 (infleet serve)", Result: ms(p50), Setup: setupLat},
		row{Scenario: "ingress", Measure: "accept latency p99 (infleet serve)", Result: ms(p99), Target: "<= 10 ms",
			Verdict: judge(p99 <= targetAcceptP99), Setup: setupLat},
		row{Scenario: "ingress", Measure: "accept latency max (infleet serve)", Result: ms(pmax), Setup: setupLat},
		row{Scenario: "ingress", Measure: "accept service time p50 / p99 (infleet serve)", Result: ms(percentile(res.service, 0.5)) + " / " + ms(percentile(res.service, 0.99)), Setup: setupSvc},
	)
	return rows, nil
}

// memory: RSS of a process holding N queued jobs that do not run.
func (h *harness) memory(ctx context.Context) ([]row, error) {
	n := h.opts.memoryJobs
	role, how := "ingress", "`infleet ingress` (no workers)"
	cfg := h.cfg(0, h.opts.concurrency)
	if !h.split {
		role, how = "serve", "`infleet serve` with a 1 h model and 1 worker (no ingress/worker split in this binary)"
		cfg = h.cfg(time.Hour, 1)
	}
	dir := h.dir("memory")
	p, err := h.startChild(ctx, "memory", role, dir, cfg)
	if err != nil {
		return nil, err
	}
	defer h.stopChild(p)
	idle, err := readMem(p.pid())
	if err != nil {
		return nil, err
	}
	if _, err := h.submitN(ctx, p.base, n, h.opts.clients); err != nil {
		return nil, err
	}
	cnt, err := h.scrape(ctx, p.base)
	if err != nil {
		return nil, err
	}
	if cnt.accepted < float64(n) || cnt.completed > 0 {
		return nil, fmt.Errorf("after submitting %d jobs /metrics says %.0f accepted and %.0f completed (want %d and 0)", n, cnt.accepted, cnt.completed, n)
	}
	m, err := readMem(p.pid())
	if err != nil {
		return nil, err
	}
	setup := fmt.Sprintf("%s jobs queued (POSTed by %d clients) and not running, %s; read right after the last 202",
		thousands(float64(n)), h.opts.clients, how)
	h.progress("memory: VmRSS %s, VmHWM %s (idle %s)", mib(m.rss), mib(m.hwm), mib(idle.rss))
	return []row{
		{Scenario: "memory", Measure: "VmRSS with the jobs queued", Result: mib(m.rss), Target: "<= 150 MiB",
			Verdict: judge(m.rss <= targetMemory), Setup: setup},
		{Scenario: "memory", Measure: "VmHWM (peak RSS) of the process", Result: mib(m.hwm), Target: "<= 150 MiB",
			Verdict: judge(m.hwm <= targetMemory), Setup: setup},
		{Scenario: "memory", Measure: "VmRSS idle, before the jobs", Result: mib(idle.rss), Setup: "same process, just ready"},
		{Scenario: "memory", Measure: "data directory on disk", Result: mib(dirSize(dir)), Setup: setup},
	}, nil
}

// burndown: the peers' workload, 0 ms and 100 ms models, beside the peers measured on the same
// workload in the same run (bench/peers). For each model infleet runs first and the peers after
// it, with the disks flushed in between.
func (h *harness) burndown(ctx context.Context) ([]row, error) {
	n, w := h.opts.burndownJobs, h.opts.concurrency
	var rows []row
	var peerErrs []error
	for _, latency := range []time.Duration{0, 100 * time.Millisecond} {
		name := fmt.Sprintf("burndown-%dms", latency.Milliseconds())
		if latency > 0 {
			h.cleanScenario("burndown") // the 0 ms runs' data directories
			h.settle()
		}
		b, err := h.burnBacklog(ctx, name, n, h.cfg(latency, w))
		if err != nil {
			return rows, fmt.Errorf("%s model: %w", latency, err)
		}
		rate := b.fin.steadyRate(n)
		whole := float64(n) / b.fin.last.Sub(b.started).Seconds()
		if latency == 0 {
			h.progress("burndown 0 ms: %.0f jobs/s", rate)
		} else {
			h.progress("burndown 100 ms: %.0f jobs/s = %.1f%%", rate, rate/(float64(w)/latency.Seconds())*100)
		}
		h.settle() // infleet's write-back is not the peers' cost
		peers := h.runPeers(ctx, latency)
		setup := fmt.Sprintf("%s jobs, %d workers, %d ms model, result file %d B (output text %d B); %s; window from the first completion seen to the last; infleet runs first, the peers after it",
			thousands(float64(n)), w, latency.Milliseconds(), b.resultLen, b.outputLen, b.method)
		if latency == 0 {
			rows = append(rows,
				row{Scenario: "burndown", Measure: "0 ms model: jobs/s (infleet)", Result: thousands(rate) + " jobs/s", Setup: setup},
				row{Scenario: "burndown", Measure: "0 ms model: jobs/s from the worker's start (infleet)", Result: thousands(whole) + " jobs/s", Setup: setup},
			)
			var cpus cpuRounds
			perJob, _ := b.fin.cpuPerJob()
			cpus.addInfleet(perJob)
			var specs []peerSpec
			for _, o := range peers {
				if _, ok := targetPeers[o.spec.key]; ok && o.ok() {
					specs = append(specs, o.spec)
					cpus.addPeer(o.spec.key, o.res)
				}
			}
			first := peerRows(peers, latency, n, w, rate)
			if h.opts.peerRounds > 1 {
				more, err := h.peerRounds(ctx, rate, peers, &cpus)
				if err != nil {
					return rows, err
				}
				first = append(firstRoundOnly(first), more...)
			}
			rows = append(rows, first...)
			if r, ok := cpus.row(specs); ok {
				rows = append(rows, r)
			}
			peerErrs = append(peerErrs, peersFailed(peers))
			more, err := h.burndownPostgres(ctx, peers)
			rows = append(rows, more...)
			if err != nil {
				return rows, err
			}
			// The comparisons below each run their own baseline beside their variant in every
			// round. The one with retention goes last: its reaper deletes result files, and on
			// ext4 without a journal that makes the creates of the minutes after it dearer (see
			// cleanScenario), a cost that would fall on whichever comparison came next.
			if h.opts.burndownFsync {
				more, err := h.burndownWithFsync(ctx, peers)
				rows = append(rows, more...)
				if err != nil {
					return rows, err
				}
			}
			if h.opts.burndownArchive {
				more, err := h.burndownWithArchive(ctx)
				rows = append(rows, more...)
				if err != nil {
					return rows, err
				}
			}
			if h.opts.burndownRetention > 0 {
				more, err := h.burndownWithRetention(ctx)
				rows = append(rows, more...)
				if err != nil {
					return rows, err
				}
			}
			continue
		}
		limit := float64(w) / latency.Seconds()
		rows = append(rows,
			row{Scenario: "burndown", Measure: fmt.Sprintf("100 ms model: share of the %s/s limit (infleet)", thousands(limit)),
				Result: fmt.Sprintf("%.1f%% (%s jobs/s)", rate/limit*100, thousands(rate)), Target: fmt.Sprintf(">= %.0f%%", targetBurndownShare*100),
				Verdict: judge(rate/limit >= targetBurndownShare), Setup: setup},
		)
		rows = append(rows, peerRows(peers, latency, n, w, rate)...)
		peerErrs = append(peerErrs, peersFailed(peers))
	}
	return rows, errors.Join(peerErrs...)
}

// burndownWithRetention compares the 0 ms burn-down with and without a short store.retention,
// so that the reaper deletes jobs and their result files while the workers run the backlog.
// Each round runs both, back to back, in alternating order (see alternate); the ratio reported
// is the median of the rounds' ratios. It runs after the other comparisons: its deletions make
// the creates of the next minutes dearer on these disks.
func (h *harness) burndownWithRetention(ctx context.Context) ([]row, error) {
	n, w, rounds := h.opts.burndownJobs, h.opts.concurrency, h.opts.burndownRounds
	cfg := h.cfg(0, w)
	cfg.retention = h.opts.burndownRetention
	burn := func(name string, cfg childConfig) (backlog, error) { return h.burnFresh(ctx, name, cfg) }
	var deleted []float64
	var lastAll time.Duration
	plains, kept, ratios, err := h.alternate("without deletions", "with", func() (float64, error) {
		b, err := burn("burndown-0ms", h.cfg(0, w))
		return b.fin.steadyRate(n), err
	}, func() (float64, error) {
		b, err := burn("burndown-0ms-retention", cfg)
		if err != nil {
			return 0, err
		}
		k := b.fin.steadyRate(n)
		deleted = append(deleted, b.fin.final.expired)
		lastAll = b.allDeletedAfter
		h.progress("  retention %s: %.0f jobs/s; %.0f of %d deleted by the last completion, all %s after it",
			cfg.retention, k, b.fin.final.expired, n, b.allDeletedAfter.Round(time.Millisecond))
		return k, nil
	})
	if err != nil {
		return nil, err
	}
	ratio := median(ratios)
	h.progress("burndown 0 ms with retention %s: ratio %.3f (median of %d rounds)", cfg.retention, ratio, rounds)
	setup := fmt.Sprintf("as the 0 ms run above, with store.retention %s and retention_interval %s: the worker's reaper deletes finished jobs (batches of %d, %s apart, on the SQLite writer) and their result files while it burns the backlog down; without = the default retention (720h: the reaper runs and finds nothing to delete); %d rounds of one run each, alternating which goes first",
		cfg.retention, cfg.retentionInterval(), ops.DefaultReaperBatch, ops.DefaultReaperPause, rounds)
	measure := fmt.Sprintf("0 ms model, store.retention %s: ", cfg.retention)
	return []row{
		{Scenario: "burndown", Measure: measure + "jobs/s with the reaper deleting (median of rounds)",
			Result: thousands(median(kept)) + " jobs/s", Setup: setup},
		{Scenario: "burndown", Measure: measure + "jobs/s without deletions (median of rounds)",
			Result: thousands(median(plains)) + " jobs/s", Setup: setup},
		{Scenario: "burndown", Measure: measure + "ratio with / without (median of per-round ratios)",
			Result: fmt.Sprintf("%.2f (rounds: %s)", ratio, joinRatios(ratios)), Setup: setup},
		{Scenario: "burndown", Measure: measure + "jobs deleted, with their result files, by the last completion (median of rounds)",
			Result: fmt.Sprintf("%s of %s; all %s after it in the last round", thousands(median(deleted)), thousands(float64(n)), lastAll.Round(10*time.Millisecond)),
			Setup:  setup},
	}, nil
}

// burnFresh burns down a backlog of -burndown-jobs under cfg on a fresh data directory: the
// earlier burn-downs' directories are moved aside and the machine settles first.
func (h *harness) burnFresh(ctx context.Context, name string, cfg childConfig) (backlog, error) {
	h.cleanScenario("burndown")
	h.settle()
	b, err := h.burnBacklog(ctx, name, h.opts.burndownJobs, cfg)
	if err != nil {
		return b, fmt.Errorf("0 ms model (%s): %w", name, err)
	}
	return b, nil
}

// targetPeers are the peers the 0 ms burn-down has a target against.
var targetPeers = map[string]float64{"river-1ms": targetRiverRatio, "asynq": targetAsynqRatio}

// peerRounds runs rounds 2 … -peer-rounds of the 0 ms burn-down beside the peers with a
// target that ran in the first round (first), alternating whether infleet or the peers go
// first, and returns, for each such peer, infleet / peer as the median of the per-round
// ratios, judged against the target. plain is infleet's jobs/s in the first round.
//
// The CPU per job of every round's infleet and peers is added to cpus.
func (h *harness) peerRounds(ctx context.Context, plain float64, first []peerOutcome, cpus *cpuRounds) ([]row, error) {
	n, w, rounds := h.opts.burndownJobs, h.opts.concurrency, h.opts.peerRounds
	var specs []peerSpec
	rates := map[string][]float64{}
	for _, o := range first {
		if _, ok := targetPeers[o.spec.key]; ok && o.ok() {
			specs = append(specs, o.spec)
			rates[o.spec.key] = []float64{o.res.SteadyJobsPerSec}
		}
	}
	if len(specs) == 0 {
		return nil, nil
	}
	infleet := []float64{plain}
	for r := 1; r < rounds; r++ {
		runInfleet := func() error {
			b, err := h.burnFresh(ctx, "burndown-0ms", h.cfg(0, w))
			if err != nil {
				return fmt.Errorf("round %d: %w", r+1, err)
			}
			infleet = append(infleet, b.fin.steadyRate(n))
			perJob, _ := b.fin.cpuPerJob()
			cpus.addInfleet(perJob)
			h.progress("  round %d: infleet %.0f jobs/s", r+1, infleet[len(infleet)-1])
			return nil
		}
		runPeers := func() error {
			for _, s := range specs {
				h.settle()
				res, err := h.runPeer(ctx, s, 0)
				if err != nil {
					return fmt.Errorf("%s, round %d: %w", s.name, r+1, err)
				}
				rates[s.key] = append(rates[s.key], res.SteadyJobsPerSec)
				cpus.addPeer(s.key, res)
				h.progress("  round %d: %s %.0f jobs/s", r+1, s.name, res.SteadyJobsPerSec)
			}
			return nil
		}
		steps := []func() error{runInfleet, runPeers}
		if r%2 == 1 {
			steps[0], steps[1] = steps[1], steps[0]
		}
		for _, step := range steps {
			if err := step(); err != nil {
				return nil, err
			}
		}
	}
	setup := fmt.Sprintf("%d rounds of one 0 ms burn-down each (the workload above), alternating whether infleet or the peers go first (the first round is the runs above); the ratio is the median of the per-round ratios", rounds)
	rows := []row{{Scenario: "burndown", Measure: "0 ms model: jobs/s (infleet, median of rounds)",
		Result: thousands(median(infleet)) + " jobs/s", Setup: setup}}
	for _, s := range specs {
		ratios := make([]float64, len(infleet))
		for i := range infleet {
			ratios[i] = infleet[i] / rates[s.key][i]
		}
		ratio, target := median(ratios), targetPeers[s.key]
		rows = append(rows,
			row{Scenario: "burndown", Measure: fmt.Sprintf("0 ms model: %s: jobs/s (median of rounds)", s.name),
				Result: thousands(median(rates[s.key])) + " jobs/s", Verdict: verdictMeasured, Setup: setup},
			row{Scenario: "burndown", Measure: fmt.Sprintf("0 ms model: infleet / %s (median of per-round ratios)", s.name),
				Result: fmt.Sprintf("%.2f× (rounds: %s)", ratio, joinRatios(ratios)), Target: fmt.Sprintf(">= %.1f×", target),
				Verdict: judge(ratio >= target), Setup: setup})
	}
	return rows, nil
}

// firstRoundOnly marks the ratio rows of a first round as such and drops their targets: with
// several rounds, the targets are judged on the medians.
func firstRoundOnly(rows []row) []row {
	for i := range rows {
		if rows[i].Target != "" {
			rows[i].Measure += " (first round)"
			rows[i].Target, rows[i].Verdict = "", ""
		}
	}
	return rows
}

// alternate runs -burndown-rounds rounds of a plain run and a variant run, back to back,
// alternating which goes first so that drift in the machine's load does not favour one side,
// and returns the jobs/s of each side and the per-round ratios variant / plain. Every round
// runs both sides: a plain figure from earlier in the run (before the peers, or before another
// comparison) would not be side by side with its variant. The names label the progress lines.
func (h *harness) alternate(plainName, variantName string, runPlain, runVariant func() (float64, error)) (plains, variants, ratios []float64, err error) {
	for r := range h.opts.burndownRounds {
		runs := []func() (float64, error){runPlain, runVariant}
		if r%2 == 1 {
			runs[0], runs[1] = runs[1], runs[0]
		}
		var got [2]float64
		for i, run := range runs {
			if got[i], err = run(); err != nil {
				return nil, nil, nil, err
			}
		}
		p, v := got[0], got[1]
		if r%2 == 1 {
			p, v = v, p
		}
		plains, variants, ratios = append(plains, p), append(variants, v), append(ratios, v/p)
		h.progress("  round %d: %s %.0f jobs/s, %s %.0f jobs/s, %s / %s %.3f", r+1, plainName, p, variantName, v, variantName, plainName, v/p)
	}
	return plains, variants, ratios, nil
}

// burndownWithFsync compares the 0 ms burn-down at durability process (the default) and fsync,
// where the embedded queue fsyncs every write and SQLite commits with synchronous=FULL; rounds
// run both back to back, alternating which goes first (see alternate).
// When River at FetchCooldown 1 ms ran (on PostgreSQL with fsync on), infleet at fsync is also
// reported beside it: durable against durable.
func (h *harness) burndownWithFsync(ctx context.Context, peers []peerOutcome) ([]row, error) {
	n, w, rounds := h.opts.burndownJobs, h.opts.concurrency, h.opts.burndownRounds
	cfg := h.cfg(0, w)
	cfg.durability = "fsync"
	burn := func(name string, cfg childConfig) (float64, error) {
		b, err := h.burnFresh(ctx, name, cfg)
		return b.fin.steadyRate(n), err
	}
	plains, synced, ratios, err := h.alternate("durability process", "fsync",
		func() (float64, error) { return burn("burndown-0ms", h.cfg(0, w)) },
		func() (float64, error) {
			k, err := burn("burndown-0ms-fsync", cfg)
			if err == nil {
				h.progress("  durability fsync: %.0f jobs/s", k)
			}
			return k, err
		})
	if err != nil {
		return nil, err
	}
	ratio := median(ratios)
	h.progress("burndown 0 ms at durability fsync: %.0f jobs/s, process %.0f jobs/s, ratio %.3f (median of %d rounds)",
		median(synced), median(plains), ratio, rounds)
	setup := fmt.Sprintf("as the 0 ms run above, at durability fsync (JetStream sync_always: every write fsynced; SQLite synchronous=FULL) and at process (the default: writes handed to the OS; SQLite WAL synchronous=NORMAL), both for the ingress that enqueues and the worker that burns down; %d rounds of one run each, alternating which goes first", rounds)
	measure := "0 ms model, durability "
	rows := []row{
		{Scenario: "burndown", Measure: measure + "fsync: jobs/s (median of rounds)",
			Result: thousands(median(synced)) + " jobs/s", Setup: setup},
		{Scenario: "burndown", Measure: measure + "process: jobs/s (median of rounds)",
			Result: thousands(median(plains)) + " jobs/s", Setup: setup},
		{Scenario: "burndown", Measure: measure + "fsync / process (median of per-round ratios)",
			Result: fmt.Sprintf("%.2f (rounds: %s)", ratio, joinRatios(ratios)), Setup: setup},
	}
	if river, ok := outcome(peers, "river-1ms"); ok {
		r := river.res.SteadyJobsPerSec
		rows = append(rows, row{Scenario: "burndown", Measure: measure + "fsync: infleet / " + river.spec.name,
			Result: fmt.Sprintf("%.2f× (%s / %s jobs/s)", median(synced)/r, thousands(median(synced)), thousands(r)),
			Setup: fmt.Sprintf("infleet's median at durability fsync above against River's run above on PostgreSQL with fsync %s, synchronous_commit %s; measured in this run, not alternated",
				river.res.Settings["postgres_fsync"], river.res.Settings["postgres_synchronous_commit"])})
	}
	return rows, nil
}

// burndownWithArchive compares the 0 ms burn-down with the archive written before each ack
// (archive.write: before_ack, the default) and in the background, once a second; rounds run both
// back to back, alternating which goes first (see alternate).
func (h *harness) burndownWithArchive(ctx context.Context) ([]row, error) {
	n, w, rounds := h.opts.burndownJobs, h.opts.concurrency, h.opts.burndownRounds
	cfg := h.cfg(0, w)
	cfg.archiveWrite = "background"
	burn := func(name string, cfg childConfig) (float64, error) {
		b, err := h.burnFresh(ctx, name, cfg)
		return b.fin.steadyRate(n), err
	}
	acked, background, ratios, err := h.alternate("archive before_ack", "background",
		func() (float64, error) { return burn("burndown-0ms", h.cfg(0, w)) },
		func() (float64, error) {
			k, err := burn("burndown-0ms-archive-background", cfg)
			if err == nil {
				h.progress("  archive background: %.0f jobs/s", k)
			}
			return k, err
		})
	if err != nil {
		return nil, err
	}
	// before_ack / background per round: the cost of the archive before the ack.
	inverse := make([]float64, len(ratios))
	for i, r := range ratios {
		inverse[i] = 1 / r
	}
	ratio := median(inverse)
	h.progress("burndown 0 ms, archive before_ack %.0f jobs/s, background %.0f jobs/s, ratio %.3f (median of %d rounds)",
		median(acked), median(background), ratio, rounds)
	setup := fmt.Sprintf("as the 0 ms run above, with archive.write before_ack (the default: a message is acked once the archive batch holding it is written; batch_window %s, batch_max %d) and background (written once a second, not waited for); %d rounds of one run each, alternating which goes first",
		config.DefaultArchiveBatchWindow, config.DefaultArchiveBatchMax, rounds)
	measure := "0 ms model, archive "
	return []row{
		{Scenario: "burndown", Measure: measure + "before_ack: jobs/s (median of rounds)",
			Result: thousands(median(acked)) + " jobs/s", Setup: setup},
		{Scenario: "burndown", Measure: measure + "background: jobs/s (median of rounds)",
			Result: thousands(median(background)) + " jobs/s", Setup: setup},
		{Scenario: "burndown", Measure: measure + "before_ack / background (median of per-round ratios)",
			Result: fmt.Sprintf("%.2f (rounds: %s)", ratio, joinRatios(inverse)), Target: ">= 0.95",
			Verdict: judge(ratio >= 0.95), Setup: setup},
	}, nil
}

// joinRatios formats ratios as "0.91, 1.02".
func joinRatios(ratios []float64) string {
	parts := make([]string, len(ratios))
	for i, r := range ratios {
		parts[i] = fmt.Sprintf("%.2f", r)
	}
	return strings.Join(parts, ", ")
}

// median returns the median of xs (the mean of the middle two for an even count).
func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}
