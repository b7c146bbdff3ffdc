package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awss3 "github.com/aws/aws-sdk-go-v2/service/s3"
	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/infleet/infleet/adapters/fmsim"
	"github.com/infleet/infleet/messages"
)

// cancelModelYAML is a model that answers after a minute, behind `infleet fmsim` at modelURL:
// a job only ends before that by being cancelled.
func cancelModelYAML(modelURL string) string {
	return fmt.Sprintf(`models: [{name: slow, provider: openai, base_url: %q, model_id: slow-1}]
routes: {default: slow}
workers: {concurrency: 16, max_attempts: 2, shutdown_timeout: 1s}
log: {level: info}
`, modelURL+"/v1")
}

// TestCancelAnywhereOnKafka runs `infleet ingress` and two `infleet worker` processes on Kafka
// (kfake) and PostgreSQL, and cancels through the ingress jobs that run on the workers.
func TestCancelAnywhereOnKafka(t *testing.T) {
	dsn, brokers := kafkaFleetPeers(t)
	model := startFmsim(t, "--latency", "1m")
	base := fmt.Sprintf("store: {kind: postgres, postgres: {dsn: %q}}\n", dsn)
	kafkaInit(t, base+fmt.Sprintf("transport: {kind: kafka, kafka: {brokers: [%q]}}\nlog: {level: warn}\n", brokers))
	// The data dir is shared: the result files of every process.
	f := newE2E(t, base+"transport: {kind: kafka, kafka: {session_timeout: 2s}}\n"+cancelModelYAML(model), "INFLEET_TRANSPORT_KAFKA_BROKERS="+brokers)
	ingress := f.start("ingress")
	workers := []*child{f.start("worker"), f.start("worker")}
	checkCancelAnywhere(t, ingress, workers, model, func(id string) bool {
		_, err := os.Stat(filepath.Join(f.dataDir, "results", id+".json"))
		return !errors.Is(err, os.ErrNotExist)
	})
}

// TestCancelAnywhereOnKafkaWithSQLite is TestCancelAnywhereOnKafka with the three processes
// sharing one SQLite file as their job store, as a fleet on one machine may.
func TestCancelAnywhereOnKafkaWithSQLite(t *testing.T) {
	runsTheBinary(t)
	brokers := fleetKafka(t)
	model := startFmsim(t, "--latency", "1m")
	dataDir := t.TempDir() // shared: the SQLite file and the result files of every process
	base := fmt.Sprintf("store: {kind: sqlite, sqlite: {path: %q}}\n", filepath.Join(dataDir, "jobs.db"))
	kafkaInit(t, base+fmt.Sprintf("transport: {kind: kafka, kafka: {brokers: [%q]}}\nlog: {level: warn}\n", brokers))
	f := newE2E(t, base+"transport: {kind: kafka, kafka: {session_timeout: 2s}}\n"+cancelModelYAML(model), "INFLEET_TRANSPORT_KAFKA_BROKERS="+brokers)
	f.dataDir = dataDir
	ingress := f.start("ingress")
	workers := []*child{f.start("worker"), f.start("worker")}
	checkCancelAnywhere(t, ingress, workers, model, func(id string) bool {
		_, err := os.Stat(filepath.Join(dataDir, "results", id+".json"))
		return !errors.Is(err, os.ErrNotExist)
	})
}

// TestCancelAnywhereOnSQS is TestCancelAnywhereOnKafka on SQS, DynamoDB and S3 (fauxqs and
// dynalite).
func TestCancelAnywhereOnSQS(t *testing.T) {
	p := needAWSPeers(t)
	runsTheBinary(t)
	model := startFmsim(t, "--latency", "1m")
	sfx := fmt.Sprintf("%d-%d", os.Getpid(), time.Now().UnixNano()%1e6)
	q := func(n string) string { return "cancel-" + sfx + "-" + n }
	bucket := "cancel-results-" + sfx
	f := newAWSE2E(t, p.endpoint, fmt.Sprintf(`
transport:
  kind: sqs
  sqs:
    queues: {high: %s, normal: %s, low: %s}
    dead_letter_queue: %s
    visibility_timeout: 30s
store: {kind: dynamodb, dynamodb: {table: %s, endpoint: %q}}
results: {kind: s3, s3: {bucket: %s, prefix: "results/"}}
`, q("high"), q("normal"), q("low"), q("dead"), "cancel-jobs-"+sfx, p.dynamo, bucket)+cancelModelYAML(model))
	ingress := f.start("ingress")
	workers := []*child{f.start("worker"), f.start("worker")}
	checkCancelAnywhere(t, ingress, workers, model, func(id string) bool {
		_, err := p.s3.HeadObject(context.Background(), &awss3.HeadObjectInput{Bucket: aws.String(bucket), Key: aws.String("results/" + id + ".json")})
		var nf *s3types.NotFound
		return !errors.As(err, &nf)
	})
}

// checkCancelAnywhere submits jobs to a model that takes a minute, waits until both workers
// run them, cancels them all through the ingress, and checks that each is CANCELLED at once,
// its model call is cut off within 1s (fmsim counts it cancelled) by the worker that ran it, and
// no result is ever written.
func checkCancelAnywhere(t *testing.T, ingress *child, workers []*child, modelURL string, hasResult func(id string) bool) {
	t.Helper()
	api := ingress.api
	const n = 8 // fewer than workers.concurrency: every claimed job calls the model at once
	ids := make([]string, 0, n)
	for i := range n {
		ids = append(ids, api.submit(fmt.Sprintf(`{"task":"summarize","input":{"text":"cancel me %d"}}`, i)))
	}
	// Wait until every job runs, spread over both workers, each at the model. A transport may
	// hand one worker every message (one SQS receive takes up to ten) or leave one undelivered
	// for a while: after 20s, the jobs that run are enough, on whichever workers run them.
	var running []string
	began := time.Now()
	for deadline := began.Add(60 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		running = running[:0]
		for _, id := range ids {
			if api.job(id).Status == messages.StatusProcessing {
				running = append(running, id)
			}
		}
		a, b := inFlight(t, workers[0]), inFlight(t, workers[1])
		active := fmsimStats(t, modelURL).Active
		m := len(running)
		if m == n && a > 0 && b > 0 && a+b >= n && active >= n {
			break
		}
		if time.Since(began) > 20*time.Second && m >= 2 && int(a+b) == m && int(active) == m {
			t.Logf("%d of %d jobs run after %s; the others wait in the queue", m, n, time.Since(began).Round(time.Second))
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after 60s %d of %d jobs PROCESSING, %v and %v in flight on the workers, %d calls at the model; want all, on both workers", m, n, a, b, active)
		}
	}
	m := len(running)
	if st := fmsimStats(t, modelURL); st.Calls != 0 {
		t.Fatalf("fmsim ended %d calls before any cancel: %+v", st.Calls, st)
	}

	start := time.Now()
	for _, id := range ids {
		code, _, data := api.do(http.MethodDelete, "/v1/jobs/"+id, "", nil)
		var rec messages.JobRecord
		if code != http.StatusAccepted || json.Unmarshal(data, &rec) != nil || rec.Status != messages.StatusCancelled {
			t.Fatalf("DELETE %s: %d %s", id, code, data)
		}
	}
	deletes := time.Since(start)
	for {
		st := fmsimStats(t, modelURL)
		// A job the transport delivered twice (a consumer group rebalancing) runs on both
		// workers until cancelled: each of its calls is cut off too.
		// The workers are done with every delivery once they hold none in flight.
		a, b := inFlight(t, workers[0]), inFlight(t, workers[1])
		if st.ByOutcome[fmsim.OutcomeCancelled] >= int64(m) && a == 0 && b == 0 {
			break
		}
		if time.Since(start) > time.Second {
			t.Fatalf("1s after the first DELETE fmsim saw %d of %d model calls cancelled (%+v) and the workers hold %v and %v jobs",
				st.ByOutcome[fmsim.OutcomeCancelled], m, st, a, b)
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Logf("%d jobs (%d running) cancelled through the ingress (the DELETEs took %s); fmsim saw every model call cut off and the workers were done %s after the first",
		n, m, deletes.Round(time.Millisecond), time.Since(start).Round(time.Millisecond))
	// Each worker logged the stop of the jobs it ran; together they ran them all.
	stoppedBy := func(w *child) int {
		k := 0
		for _, id := range running {
			if logged(w, id, "job cancelled while running") {
				k++
			}
		}
		return k
	}
	for _, id := range running {
		api.eventually(5*time.Second, func() bool {
			return logged(workers[0], id, "job cancelled while running") || logged(workers[1], id, "job cancelled while running")
		})
	}
	if a, b := stoppedBy(workers[0]), stoppedBy(workers[1]); a+b < m {
		t.Fatalf("the workers stopped %d and %d of the %d running jobs; want all", a, b, m)
	} else {
		t.Logf("worker 1 stopped %d jobs, worker 2 %d", a, b)
	}
	time.Sleep(500 * time.Millisecond) // room for a late write to show
	for _, id := range ids {
		rec := api.job(id)
		if rec.Status != messages.StatusCancelled || rec.ResultURL != "" {
			t.Errorf("job %s: %s with result_url %q, want CANCELLED without one", id, rec.Status, rec.ResultURL)
		}
		if hasResult(id) {
			t.Errorf("job %s was cancelled but has a result", id)
		}
		if code, _, data := api.do(http.MethodGet, "/v1/jobs/"+id+"/result", "", nil); code == http.StatusOK {
			t.Errorf("result of cancelled job %s served: %s", id, data)
		}
	}
	if st := fmsimStats(t, modelURL); st.Calls < int64(m) || st.ByOutcome[fmsim.OutcomeCancelled] != st.Calls {
		t.Errorf("fmsim stats %+v; want at least %d calls, every one cut off", st, m)
	}
}

// logged reports whether c logged msg for job id.
func logged(c *child, id, msg string) bool {
	for line := range strings.SplitSeq(c.logString(), "\n") {
		if strings.Contains(line, `"job_id":"`+id+`"`) && strings.Contains(line, msg) {
			return true
		}
	}
	return false
}

// fmsimStats reads GET /stats of the fmsim at url.
func fmsimStats(t *testing.T, url string) fmsim.Stats {
	t.Helper()
	resp, err := http.Get(url + "/stats")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var st fmsim.Stats
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		t.Fatal(err)
	}
	return st
}

// logString returns what c logged so far, read under the lock its writer takes.
func (c *child) logString() string {
	if lw, ok := c.cmd.Stderr.(*lockedWriter); ok {
		lw.mu.Lock()
		defer lw.mu.Unlock()
	}
	return c.logs.String()
}
