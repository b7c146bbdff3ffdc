package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/infleet/infleet/config"
)

func TestParseCounts(t *testing.T) {
	t.Parallel()
	text := `# HELP infleet_jobs_finished_total Jobs that reached a terminal status, by status and task.
# TYPE infleet_jobs_finished_total counter
infleet_jobs_finished_total{status="COMPLETED",task="summarize"} 1500
infleet_jobs_finished_total{status="COMPLETED",task="classify"} 25
infleet_jobs_finished_total{status="FAILED",task="summarize"} 2
infleet_jobs_accepted_total{priority="normal",task="summarize"} 1e+06
infleet_jobs_accepted_total{priority="high",task="summarize"} 3
infleet_jobs_in_flight 7
infleet_jobs_expired_total 1200
infleet_results_expired_total 1199
go_goroutines 42
`
	// The scrape asks for these metrics alone: each the parser reads must be among them.
	for line := range strings.Lines(text) {
		name, _, _ := strings.Cut(strings.TrimSpace(line), "{")
		name, _, _ = strings.Cut(name, " ")
		if strings.HasPrefix(name, "infleet_") && !slices.Contains(scrapedNames, name) {
			t.Errorf("the scrape does not ask for %s (scrapedNames)", name)
		}
	}
	c, err := parseCounts(strings.NewReader(text))
	if err != nil {
		t.Fatal(err)
	}
	want := counts{accepted: 1000003, completed: 1525, failed: 2, inFlight: 7, expired: 1200, expiredResults: 1199}
	if c != want {
		t.Fatalf("parseCounts = %+v, want %+v", c, want)
	}
	if c.finished() != 1527 {
		t.Fatalf("finished = %v, want 1527", c.finished())
	}
	for _, bad := range []string{
		`infleet_jobs_accepted_total{task="x"} many`,
		`infleet_jobs_accepted_total{task=x} 1`,
		`infleet_jobs_accepted_total{task="x"`,
		`infleet_jobs_accepted_total`,
	} {
		if _, err := parseCounts(strings.NewReader(bad + "\n")); err == nil {
			t.Errorf("parseCounts(%q) = nil error, want one", bad)
		}
	}
}

func TestPercentileMedianSample(t *testing.T) {
	t.Parallel()
	var d []time.Duration
	for i := 1; i <= 100; i++ {
		d = append(d, time.Duration(i)*time.Millisecond)
	}
	for _, tc := range []struct {
		p    float64
		want time.Duration
	}{{0.5, 50 * time.Millisecond}, {0.99, 99 * time.Millisecond}, {1, 100 * time.Millisecond}, {0.001, time.Millisecond}} {
		if got := percentile(d, tc.p); got != tc.want {
			t.Errorf("percentile(1..100 ms, %v) = %v, want %v", tc.p, got, tc.want)
		}
	}
	if percentile(nil, 0.5) != 0 {
		t.Error("percentile of nothing is not 0")
	}
	if got := median([]float64{3, 1, 2}); got != 2 {
		t.Errorf("median(3,1,2) = %v", got)
	}
	if got := median([]float64{4, 1, 2, 3}); got != 2.5 {
		t.Errorf("median(4,1,2,3) = %v", got)
	}
	ids := []string{"a", "b", "c", "d", "e", "f", "g"}
	if got := strings.Join(sample(ids, 3), ""); got != "adg" {
		t.Errorf("sample = %q, want adg", got)
	}
	if got := len(sample(ids, 50)); got != len(ids) {
		t.Errorf("sample of a short list has %d ids", got)
	}
}

func TestFormatting(t *testing.T) {
	t.Parallel()
	for in, want := range map[float64]string{0: "0", 999: "999", 1000: "1,000", 1234567.4: "1,234,567", -2560: "-2,560"} {
		if got := thousands(in); got != want {
			t.Errorf("thousands(%v) = %q, want %q", in, got, want)
		}
	}
	if got := oneLine("a\nb|c"); got != `a \| b\|c` {
		t.Errorf("oneLine = %q", got)
	}
}

func TestReportNumbersSetups(t *testing.T) {
	t.Parallel()
	r := newReport(machine{cpus: 2, gomaxprocs: 2})
	r.add(row{Scenario: "s", Measure: "a", Result: "1", Setup: "setup one"},
		row{Scenario: "s", Measure: "b", Result: "2", Target: ">= 3", Verdict: judge(false), Setup: "setup one"},
		row{Scenario: "t", Measure: "c", Result: "3", Setup: "setup two"})
	var b bytes.Buffer
	r.write(&b)
	out := b.String()
	for _, want := range []string{"| s | a | 1 |  |  | [1] |", "| s | b | 2 | >= 3 | MISSED | [1] |", "| t | c | 3 |  |  | [2] |",
		"1. setup one\n2. setup two\n", "nproc 2"} {
		if !strings.Contains(out, want) {
			t.Errorf("report lacks %q:\n%s", want, out)
		}
	}
}

// The generated child config must pass infleet's own loader and mean what the harness says.
func TestChildConfigLoads(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "c.yaml")
	c := childConfig{latency: 100 * time.Millisecond, concurrency: 256, logLevel: "warn"}
	if err := os.WriteFile(path, []byte(c.yaml()), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(path, nil)
	if err != nil {
		t.Fatalf("config.Load of the generated config: %v\n%s", err, c.yaml())
	}
	if cfg.Workers.Concurrency != 256 || len(cfg.Models) != 1 || cfg.Models[0].Latency != 100*time.Millisecond ||
		cfg.Routes["default"] != cfg.Models[0].Name || cfg.Workers.JobTimeout < time.Hour {
		t.Fatalf("generated config loads as %+v", cfg)
	}
	if cfg.Store.RetentionPeriod() != config.DefaultStoreRetention {
		t.Fatalf("generated config without a retention has store.retention %s, want the default", cfg.Store.RetentionPeriod())
	}

	c.retention = time.Second
	if err := os.WriteFile(path, []byte(c.yaml()), 0o644); err != nil {
		t.Fatal(err)
	}
	if cfg, err = config.Load(path, nil); err != nil {
		t.Fatalf("config.Load of the generated config with a retention: %v\n%s", err, c.yaml())
	}
	if cfg.Store.RetentionPeriod() != time.Second || cfg.Store.RetentionInterval != 250*time.Millisecond {
		t.Fatalf("generated config with a 1s retention loads as store %+v", cfg.Store)
	}
	if cfg.Durability != config.DurabilityProcess {
		t.Fatalf("generated config without a durability loads with %q, want the default", cfg.Durability)
	}

	c.durability = config.DurabilityFsync
	if err := os.WriteFile(path, []byte(c.yaml()), 0o644); err != nil {
		t.Fatal(err)
	}
	if cfg, err = config.Load(path, nil); err != nil {
		t.Fatalf("config.Load of the generated config at durability fsync: %v\n%s", err, c.yaml())
	}
	if cfg.Durability != config.DurabilityFsync || cfg.Store.RetentionPeriod() != time.Second {
		t.Fatalf("generated config at durability fsync with a 1s retention loads with durability %q, store %+v", cfg.Durability, cfg.Store)
	}
}

func TestBareHandler(t *testing.T) {
	t.Parallel()
	b, err := startBare()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.close)
	hc := newHTTPClient()
	id, err := postJob(context.Background(), hc, b.base, jobBody())
	if err != nil {
		t.Fatal(err)
	}
	if len(id) != 36 {
		t.Fatalf("job id %q is not a UUID", id)
	}
	if _, err := postJob(context.Background(), hc, b.base, []byte(`{"task":`)); err == nil || !strings.Contains(err.Error(), "400") {
		t.Fatalf("a broken body gave %v, want a 400 error", err)
	}
}

func TestParseOptions(t *testing.T) {
	t.Parallel()
	var errOut bytes.Buffer
	o, rc := parseOptions([]string{"-quick", "-scenario", "memory,burndown,memory"}, &errOut)
	if rc != -1 {
		t.Fatalf("rc = %d: %s", rc, errOut.String())
	}
	if strings.Join(o.scenarios, ",") != "memory,burndown" || o.memoryJobs != 5000 || o.roundTime != time.Second ||
		o.burndownRetention != time.Second || o.burndownRounds != 3 || !o.burndownFsync {
		t.Fatalf("options = %+v", o)
	}
	if _, rc := parseOptions([]string{"-burndown-retention", "-1s"}, &errOut); rc != exitUsage {
		t.Fatalf("negative -burndown-retention: rc = %d", rc)
	}
	if o.peerRounds != 3 {
		t.Fatalf("-peer-rounds defaults to %d, want 3", o.peerRounds)
	}
	if _, rc := parseOptions([]string{"-peer-rounds", "0"}, &errOut); rc != exitUsage {
		t.Fatalf("-peer-rounds 0: rc = %d", rc)
	}
	if o, rc := parseOptions([]string{"-burndown-fsync=false"}, &errOut); rc != -1 || o.burndownFsync {
		t.Fatalf("-burndown-fsync=false: rc = %d, burndownFsync %v", rc, o.burndownFsync)
	}
	if !o.peers {
		t.Fatal("the peers are off by default")
	}
	if o, rc := parseOptions([]string{"-peers=false"}, &errOut); rc != -1 || o.peers {
		t.Fatalf("-peers=false: rc = %d, peers %v", rc, o.peers)
	}
	if _, rc := parseOptions([]string{"-scenario", "nope"}, &errOut); rc != exitUsage {
		t.Fatalf("unknown scenario: rc = %d", rc)
	}
	if _, rc := parseOptions([]string{"-help"}, &errOut); rc != exitOK || !strings.Contains(errOut.String(), "burndown") {
		t.Fatalf("-help: rc = %d, output %q", rc, errOut.String())
	}
}

// The usage text states the targets the scenarios judge by, and of the ingress scenario's two
// comparisons with the bare handler only `infleet ingress` is judged.
func TestTargets(t *testing.T) {
	t.Parallel()
	for _, want := range []string{
		"Target >= " + thousands(targetThroughput) + " jobs/s on 2 cores",
		fmt.Sprintf("Target >= %.0f%%.", targetLimitShare*100),
		fmt.Sprintf("'infleet ingress' alone (no workers; target >= %g)", targetIngressRatio),
		fmt.Sprintf("target p99 <= %.0f ms", targetAcceptP99.Seconds()*1000),
		fmt.Sprintf(">= %.0f%% of the workers/0.1 s limit", targetBurndownShare*100),
	} {
		if !strings.Contains(usageText, want) {
			t.Errorf("usage text lacks %q", want)
		}
	}
	ab := abRounds{infleet: []float64{4000, 6000, 5000}, bare: []float64{10000, 10000, 10000}, ratios: []float64{0.4, 0.6, 0.5}}
	rows := ab.rows("infleet ingress", "setup", true)
	if len(rows) != 3 || rows[0].Result != "5,000 /s" || rows[2].Result != "0.500" || rows[2].Target != ">= 0.5" || rows[2].Verdict != verdictMet {
		t.Errorf("judged rows = %+v", rows)
	}
	for _, r := range ab.rows("infleet serve", "setup", false) {
		if r.Target != "" || r.Verdict != "" {
			t.Errorf("the serve comparison carries a target: %+v", r)
		}
	}
}

// TestSmoke builds infleet and runs two scenarios at a tiny scale against it: the harness's
// child handling, polling and verification work end to end.
func TestSmoke(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs infleet")
	}
	t.Parallel()
	bin := filepath.Join(t.TempDir(), "infleet")
	build := exec.Command("go", "build", "-o", bin, "github.com/infleet/infleet/cmd/infleet")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build infleet: %v\n%s", err, out)
	}
	var stdout, stderr bytes.Buffer
	rc := run([]string{"-bin", bin, "-scenario", "throughput,memory", "-throughput-jobs", "300", "-memory-jobs", "300",
		"-clients", "8", "-concurrency", "16", "-timeout", "2m"}, &stdout, &stderr)
	if rc != exitOK {
		t.Fatalf("run = %d\nstdout:\n%s\nstderr:\n%s", rc, stdout.String(), stderr.String())
	}
	for _, want := range []string{"| throughput | jobs/s, first POST to last COMPLETED |", "| memory | VmRSS with the jobs queued |"} {
		if !strings.Contains(stdout.String(), want) {
			t.Errorf("results lack %q:\n%s", want, stdout.String())
		}
	}
}

// The peers' rows carry the targets: infleet >= 1.0x River at FetchCooldown 1 ms and
// >= 1.5x asynq at 0 ms; a peer without its server is skipped, one that failed is an error.
func TestPeerRows(t *testing.T) {
	t.Parallel()
	res := func(peer string, rate float64) peerResult {
		return peerResult{Peer: peer, Jobs: 100, SteadyJobsPerSec: rate, JobsPerSec: rate * 0.9, Settings: map[string]string{}}
	}
	outs := []peerOutcome{
		{spec: peerSpec{key: "river-default", name: "River default", args: []string{"river"}}, res: res("river", 2000)},
		{spec: peerSpec{key: "river-1ms", name: "River 1 ms", args: []string{"river"}}, res: res("river", 5000)},
		{spec: peerSpec{key: "asynq", name: "asynq", args: []string{"asynq"}}, skip: "INFLEET_TEST_REDIS_ADDR unset"},
	}
	var b bytes.Buffer
	r := newReport(machine{})
	r.add(peerRows(outs, 0, 100, 8, 6000)...)
	r.write(&b)
	out := b.String()
	for _, want := range []string{
		"| burndown | 0 ms model: River default: jobs/s | 2,000 jobs/s (1,800 from the workers' start) |  | measured |",
		"| burndown | 0 ms model: infleet / River 1 ms | 1.20× (6,000 / 5,000 jobs/s) | >= 1.0× | met |",
		"| burndown | 0 ms model: infleet / River default | 3.00× (6,000 / 2,000 jobs/s) |  |  |",
		"| burndown | 0 ms model: asynq: not run | skipped |",
		"INFLEET_TEST_REDIS_ADDR unset",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("rows lack %q:\n%s", want, out)
		}
	}
	if peersFailed(outs) != nil {
		t.Errorf("peersFailed = %v with no failed peer", peersFailed(outs))
	}

	outs[2] = peerOutcome{spec: outs[2].spec, res: res("asynq", 5000)}
	rows := peerRows(outs, 0, 100, 8, 6000)
	if i := slices.IndexFunc(rows, func(r row) bool { return r.Measure == "0 ms model: infleet / asynq" }); i < 0 || rows[i].Verdict != verdictMissed {
		t.Errorf("infleet at 1.2x asynq is not MISSED against the 1.5x target: %+v", rows)
	}
	outs[1].err = errors.New("boom")
	if err := peersFailed(outs); err == nil || !strings.Contains(err.Error(), "River 1 ms") {
		t.Errorf("peersFailed = %v, want River 1 ms named", err)
	}

	// 100 ms: shares of the limit (8 workers / 0.1 s = 80/s).
	rows = peerRows([]peerOutcome{{spec: outs[0].spec, res: res("river", 50)}}, 100*time.Millisecond, 100, 8, 76)
	if len(rows) != 2 || !strings.HasPrefix(rows[0].Result, "62.5% (50 jobs/s") || !strings.HasPrefix(rows[1].Result, "1.52× (95.0% / 62.5%)") {
		t.Errorf("100 ms rows = %+v", rows)
	}
}

// The harness finds the peer programs' module from inside the repository, and it is a module of
// its own (so that `go test ./...` at the root does not descend into it).
func TestPeersModule(t *testing.T) {
	t.Parallel()
	root, err := repoRoot()
	if err != nil {
		t.Fatal(err)
	}
	mod, err := os.ReadFile(filepath.Join(root, peersDir, "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(mod), "module github.com/infleet/infleet/bench/peers\n") {
		t.Errorf("%s/go.mod does not declare its own module:\n%s", peersDir, mod)
	}
	rootMod, err := os.ReadFile(filepath.Join(root, "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	for _, dep := range []string{"riverqueue", "hibiken/asynq", "go-redis"} {
		if strings.Contains(string(rootMod), dep) {
			t.Errorf("the root go.mod requires %s: the peers' dependencies belong in %s/go.mod", dep, peersDir)
		}
	}
}

// TestFirstRoundOnly: with several peer rounds, the first round's ratio rows keep their
// figures but not their targets, which the medians carry.
func TestFirstRoundOnly(t *testing.T) {
	rows := firstRoundOnly([]row{
		{Measure: "0 ms model: River: jobs/s", Result: "9 jobs/s", Verdict: verdictMeasured},
		{Measure: "0 ms model: infleet / River", Result: "0.85×", Target: ">= 1.0×", Verdict: judge(false)},
	})
	if rows[0].Verdict != verdictMeasured || rows[0].Measure != "0 ms model: River: jobs/s" {
		t.Errorf("a row without a target changed: %+v", rows[0])
	}
	if r := rows[1]; r.Target != "" || r.Verdict != "" || r.Result != "0.85×" || !strings.HasSuffix(r.Measure, "(first round)") {
		t.Errorf("first-round ratio row = %+v", r)
	}
}

// TestPeerCPU: a peer's CPU per job is its process's and its server's over the jobs of the
// steady window, and a server that could not be read leaves it unknown; the row reports the
// medians of the rounds beside infleet's worker.
func TestPeerCPU(t *testing.T) {
	t.Parallel()
	server := 1.5
	r := peerResult{Jobs: 20100, FirstCount: 100, Seconds: 2, FirstSeconds: 1, CPUSeconds: 0.5, ServerCPUSeconds: &server}
	c, ok := r.cpuPerJob()
	if !ok || c.self != 25*time.Microsecond || c.server != 75*time.Microsecond || c.total() != 100*time.Microsecond {
		t.Errorf("cpuPerJob = %+v, %v; want 25 + 75 µs", c, ok)
	}
	if want := 2.0 / float64(runtime.NumCPU()); math.Abs(c.share-want) > 1e-9 {
		t.Errorf("share = %v, want %v (2 CPU-seconds over 1 s)", c.share, want)
	}
	unknown := -1.0
	for _, bad := range []peerResult{
		{Jobs: 100, Seconds: 2, FirstSeconds: 1, CPUSeconds: 0.5},                             // no server figure (an older peer program)
		{Jobs: 100, Seconds: 2, FirstSeconds: 1, CPUSeconds: 0.5, ServerCPUSeconds: &unknown}, // a server elsewhere
		{Jobs: 100, FirstCount: 100, Seconds: 2, FirstSeconds: 1, ServerCPUSeconds: &server},  // no job in the window
		{Jobs: 100, Seconds: 1, FirstSeconds: 1, ServerCPUSeconds: &server},                   // no window
	} {
		if c, ok := bad.cpuPerJob(); ok {
			t.Errorf("cpuPerJob(%+v) = %+v, want unknown", bad, c)
		}
	}

	river := peerSpec{key: "river-1ms", name: "River 1 ms"}
	var cpus cpuRounds
	if _, ok := cpus.row([]peerSpec{river}); ok {
		t.Error("a row with no round at all")
	}
	cpus.addInfleet(90 * time.Microsecond)
	cpus.addInfleet(0) // unknown: left out
	cpus.addInfleet(110 * time.Microsecond)
	cpus.addInfleet(100 * time.Microsecond)
	if _, ok := cpus.row([]peerSpec{river}); ok {
		t.Error("a row with no peer to compare with")
	}
	cpus.addPeer(river.key, r)
	cpus.addPeer(river.key, peerResult{Jobs: 100, Seconds: 2, FirstSeconds: 1, CPUSeconds: 0.5, ServerCPUSeconds: &unknown})
	row, ok := cpus.row([]peerSpec{river, {key: "asynq", name: "asynq"}})
	if !ok {
		t.Fatal("no row")
	}
	if want := "infleet's worker 100 µs; River 1 ms 100 µs (its process 25 µs, its server 75 µs;"; !strings.HasPrefix(row.Result, want) || strings.Contains(row.Result, "asynq") {
		t.Errorf("row = %q, want it to start %q and leave asynq out", row.Result, want)
	}
}
