package main

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/infleet/infleet/messages"
)

// startRoleAt starts `infleet ROLE` (serve, ingress or worker) listening on addr, with env
// added to the environment, waits until its /readyz answers, and kills it at cleanup, logging
// what it wrote when the test failed.
func startRoleAt(t *testing.T, bin, role, addr, dataDir, cfgPath string, env ...string) *child {
	t.Helper()
	cmd := exec.Command(bin, role, "--config", cfgPath, "--data-dir", dataDir, "--addr", addr)
	logs := &strings.Builder{}
	cmd.Stderr = &lockedWriter{w: logs}
	cmd.Env = append(append(os.Environ(), "INFLEET_LOG_FORMAT=json"), env...)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	c := &child{t: t, cmd: cmd, api: &apiHarness{base: "http://" + addr, t: t}, logs: logs}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		if t.Failed() {
			t.Logf("%s logs:\n%s", role, logs.String())
		}
	})
	c.api.eventually(20*time.Second, func() bool {
		resp, err := http.Get(c.api.base + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
	return c
}

// kafkaFleetPeers skips a test that builds and runs the binary under -short, or that lacks the
// PostgreSQL server make test starts; otherwise it marks the test parallel, starts a kfake
// cluster whose groups notice a dead member within seconds, and returns the DSN and the brokers.
func kafkaFleetPeers(t *testing.T) (dsn, brokers string) {
	t.Helper()
	dsn = os.Getenv("INFLEET_TEST_POSTGRES_DSN")
	if dsn == "" {
		t.Skip("INFLEET_TEST_POSTGRES_DSN is unset (make test starts a PostgreSQL and sets it)")
	}
	runsTheBinary(t)
	return dsn, fleetKafka(t)
}

// kafkaPostgresFleet opens a fleet test on kfake and PostgreSQL (see kafkaFleetPeers): it
// creates the topics with `infleet init` and returns the config's store and log lines (base),
// to which the test adds its transport settings, models and workers, and the environment entry
// that gives each process the brokers, as a fleet's deployment would.
func kafkaPostgresFleet(t *testing.T) (base, brokersEnv string) {
	t.Helper()
	dsn, brokers := kafkaFleetPeers(t)
	base = fmt.Sprintf("store: {kind: postgres, postgres: {dsn: %q}}\nlog: {level: warn}\n", dsn)
	kafkaInit(t, base+fmt.Sprintf("transport: {kind: kafka, kafka: {brokers: [%q]}}\n", brokers))
	return base, "INFLEET_TRANSPORT_KAFKA_BROKERS=" + brokers
}

// fleetKafka starts a one-broker kfake cluster, closed at cleanup, whose consumer groups accept
// the short session timeouts fleet tests give their workers, and returns its address.
func fleetKafka(t *testing.T) string {
	t.Helper()
	cluster, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.GroupMinSessionTimeout(500*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cluster.Close)
	return cluster.ListenAddrs()[0]
}

// TestKafkaFleetSurvivesWorkerKill runs one `infleet ingress` and two `infleet worker`
// processes on kfake and PostgreSQL, SIGKILLs one worker while jobs are in flight, and
// checks that every job completes with exactly one result: the survivor takes over the dead
// worker's partitions after the session timeout and re-runs what it left unacked.
func TestKafkaFleetSurvivesWorkerKill(t *testing.T) {
	base, brokersEnv := kafkaPostgresFleet(t)
	// The processes share the data dir, where each writes its result files.
	f := newE2E(t, base+`transport: {kind: kafka, kafka: {session_timeout: 2s}}
models: [{name: m, provider: sim, latency: 300ms}]
routes: {default: m}
workers: {concurrency: 4, max_attempts: 5, shutdown_timeout: 1s}
`, brokersEnv)
	ingress := f.start("ingress")
	workers := []*child{f.start("worker"), f.start("worker")}

	const n = 300
	ids := make([]string, 0, n)
	for i := range n {
		ids = append(ids, ingress.api.submit(fmt.Sprintf(`{"task":"summarize","priority":%q,"input":{"text":"fleet job %d"}}`,
			[]string{"high", "normal", "low"}[i%3], i)))
	}
	completed := func() int {
		done := 0
		for _, id := range ids {
			if ingress.api.job(id).Status == messages.StatusCompleted {
				done++
			}
		}
		return done
	}
	ingress.api.eventually(30*time.Second, func() bool { return completed() >= 40 })
	if completed() == n {
		t.Fatal("every job finished before the kill; the test needs slower jobs")
	}
	// Kill a worker that is running jobs: which one holds which partitions depends on the
	// group's balancing, so ask each.
	var doomed *child
	ingress.api.eventually(30*time.Second, func() bool {
		for _, w := range workers {
			if inFlight(t, w) > 0 {
				doomed = w
				return true
			}
		}
		return false
	})
	if err := doomed.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = doomed.cmd.Wait()

	ingress.api.eventually(60*time.Second, func() bool { return completed() == n })
	rerun := 0
	for _, id := range ids {
		if ingress.api.job(id).Attempts > 1 {
			rerun++
		}
	}
	if rerun == 0 {
		t.Fatal("no job was re-run: the killed worker had nothing in flight, so the test proved nothing")
	}
	t.Logf("%d jobs were in flight on the killed worker and ran again", rerun)
	checkResultFiles(t, f.dataDir, ids)
	code, _, data := ingress.api.do(http.MethodGet, "/v1/jobs/"+ids[0]+"/result", "", nil)
	if code != http.StatusOK || !strings.Contains(string(data), ids[0]) {
		t.Fatalf("result through the ingress: %d %s", code, data)
	}
}

// inFlight reads infleet_jobs_in_flight from a process's /metrics; -1 when it cannot.
func inFlight(t *testing.T, c *child) float64 {
	t.Helper()
	resp, err := http.Get(c.api.base + "/metrics")
	if err != nil {
		return -1
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	for line := range strings.SplitSeq(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, "infleet_jobs_in_flight "); ok {
			f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
			if err == nil {
				return f
			}
		}
	}
	return -1
}
