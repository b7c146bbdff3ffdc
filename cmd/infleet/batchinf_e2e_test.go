package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awss3 "github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/infleet/infleet/adapters/fmsim"
	"github.com/infleet/infleet/handlers"
	"github.com/infleet/infleet/messages"
)

// TestBatchInferenceSurvivesWorkerKill runs batch inference end to end against fmsim's
// Bedrock control plane over the S3 emulator: a serve process collects jobs into a batch,
// is SIGKILLed while the batch job is InProgress, and is started again. Every job completes
// exactly once: from its output record, or, for a record fmsim fails, by one on-demand call.
// A second batch whose job fmsim fails goes on demand as a whole.
func TestBatchInferenceSurvivesWorkerKill(t *testing.T) {
	p := needAWSPeers(t)
	runsTheBinary(t)
	bucket := fmt.Sprintf("e2e-batches-%d-%d", os.Getpid(), time.Now().UnixNano()%1e6)
	if _, err := p.s3.CreateBucket(context.Background(), &awss3.CreateBucketInput{Bucket: aws.String(bucket)}); err != nil {
		t.Fatal(err)
	}
	sim := startFmsim(t, "--s3-endpoint", p.endpoint, "--batch-delay", "4s",
		"--batch-fail-records-matching", "poison", "--batch-fail-jobs-matching", "doomed")
	f := newE2E(t, fmt.Sprintf(`
models:
  - {name: haiku, provider: bedrock, model_id: anthropic.claude-3-haiku, api: invoke_model, endpoint: %q, price: {input: 1000, output: 1000}}
routes: {default: haiku}
batch_inference:
  model: haiku
  tasks: [bulk]
  min_records: 3
  max_wait: 1s
  bucket: %s
  role_arn: arn:aws:iam::000000000000:role/batch
  poll_interval: 200ms
workers: {concurrency: 4, retry_backoff: {initial: 50ms, max: 200ms}}
log: {level: info}
`, sim, bucket), "INFLEET_AWS_ENDPOINT="+p.endpoint, "AWS_ACCESS_KEY_ID=test", "AWS_SECRET_ACCESS_KEY=test", "AWS_REGION=us-east-1")
	a := f.serve()

	var ids []string
	for i := range 6 {
		text := fmt.Sprintf("bulk item %d to summarize", i)
		if i == 4 {
			text = "a poison record the batch fails"
		}
		ids = append(ids, a.api.submit(fmt.Sprintf(`{"task":"bulk","input":{"text":%q}}`, text)))
	}
	// The batch job is created and each job shows it while it waits.
	var arn string
	a.api.eventually(20*time.Second, func() bool {
		for _, id := range ids {
			rec := a.api.job(id)
			bi := rec.BatchInference
			if rec.Status != messages.StatusProcessing || rec.BatchJob == "" || bi == nil || bi.State != messages.BatchRunning ||
				bi.JobARN != rec.BatchJob || bi.Status == "" {
				return false
			}
			arn = rec.BatchJob
		}
		return true
	})
	if !strings.Contains(arn, ":model-invocation-job/") {
		t.Fatalf("batch_job %q is not a model invocation job ARN", arn)
	}
	if err := a.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = a.cmd.Wait()
	b := f.serve()

	var jobsCost float64 // of every job, answered by a batch record or on demand
	for i, id := range ids {
		var rec messages.JobRecord
		b.api.eventually(40*time.Second, func() bool { rec = b.api.job(id); return rec.Status.Terminal() })
		if rec.Status != messages.StatusCompleted || rec.Usage == nil {
			t.Fatalf("job %d ended %s (%+v), want COMPLETED with usage", i, rec.Status, rec.Error)
		}
		jobsCost += rec.Usage.CostUSD
		if i == 4 {
			if rec.BatchJob != "" || rec.BatchInference == nil || rec.BatchInference.State != messages.BatchOnDemand {
				t.Errorf("the poison job answered by batch job %q (%+v); want it run on demand", rec.BatchJob, rec.BatchInference)
			}
			continue
		}
		if bi := rec.BatchInference; rec.BatchJob != arn || bi == nil || bi.State != messages.BatchAnswered || bi.JobARN != arn || bi.Status != "Completed" {
			t.Errorf("job %d: batch_job %q, batch_inference %+v; want %s ANSWERED, Completed", i, rec.BatchJob, bi, arn)
		}
		// Batch price: half of 1000 $/Mtok for every token.
		if want := float64(rec.Usage.InputTokens+rec.Usage.OutputTokens) * 500 / 1e6; rec.Usage.CostUSD < want*0.999 || rec.Usage.CostUSD > want*1.001 {
			t.Errorf("job %d cost %v, want %v at the batch price", i, rec.Usage.CostUSD, want)
		}
		code, _, data := b.api.do(http.MethodGet, "/v1/jobs/"+id+"/result", "", nil)
		if code != http.StatusOK || !strings.Contains(string(data), "fmsim [") {
			t.Errorf("result of job %d: %d %s", i, code, data)
		}
	}
	if n := onDemandCalls(t, sim); n != 1 {
		t.Errorf("%d on-demand calls after the first batch, want 1 (the poison record's job, once)", n)
	}

	// A batch job that fails sends all its jobs on demand.
	var more []string
	for i := range 3 {
		text := fmt.Sprintf("later item %d", i)
		if i == 1 {
			text = "a doomed batch"
		}
		more = append(more, b.api.submit(fmt.Sprintf(`{"task":"bulk","input":{"text":%q}}`, text)))
	}
	for _, id := range more {
		var rec messages.JobRecord
		b.api.eventually(40*time.Second, func() bool { rec = b.api.job(id); return rec.Status.Terminal() })
		if bi := rec.BatchInference; rec.Status != messages.StatusCompleted || rec.BatchJob != "" || bi == nil || bi.State != messages.BatchOnDemand || bi.Status != "Failed" {
			t.Errorf("job of the failed batch: %s, batch_job %q, batch_inference %+v; want COMPLETED ON_DEMAND after Failed", rec.Status, rec.BatchJob, bi)
		}
		if rec.Usage != nil {
			jobsCost += rec.Usage.CostUSD
		}
	}
	if n := onDemandCalls(t, sim); n != 4 {
		t.Errorf("%d on-demand calls in all, want 4", n)
	}

	// The usage store has the five batch records and the four on-demand calls, each once, at
	// the cost the jobs show.
	var haiku handlers.UsageTotal
	b.api.eventually(10*time.Second, func() bool {
		code, _, data := b.api.do(http.MethodGet, "/v1/usage?group_by=model", "", nil)
		var rep handlers.UsageReport
		if code != http.StatusOK || json.Unmarshal(data, &rep) != nil {
			return false
		}
		for _, r := range rep.Rows {
			if r.Model == "haiku" {
				haiku = r
			}
		}
		return haiku.Calls >= 9
	})
	if haiku.Calls != 9 || haiku.CostUSD < jobsCost*0.999 || haiku.CostUSD > jobsCost*1.001 {
		t.Errorf("usage of haiku: %d calls, $%v; want 9 calls (5 batch records, 4 on demand) costing $%v as the jobs say", haiku.Calls, haiku.CostUSD, jobsCost)
	}
	_, _, metrics := b.api.do(http.MethodGet, "/metrics", "", nil)
	for _, line := range []string{
		`infleet_batch_inference_jobs_settled_total{outcome="answered"} 5`,
		`infleet_batch_inference_jobs_settled_total{outcome="record_failed"} 1`,
		`infleet_batch_inference_jobs_settled_total{outcome="unanswered"} 3`,
		`infleet_batch_inference_batches_ended_total{status="Completed"} 1`,
		`infleet_batch_inference_batches_ended_total{status="Failed"} 1`,
		`infleet_batch_inference_jobs_waiting 0`,
	} {
		if !strings.Contains(string(metrics), line+"\n") {
			t.Errorf("GET /metrics of the second process lacks %s", line)
		}
	}
}

// onDemandCalls is how many InvokeModel calls fmsim answered.
func onDemandCalls(t *testing.T, sim string) int64 {
	t.Helper()
	resp, err := http.Get(sim + "/stats")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var st fmsim.Stats
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		t.Fatal(err)
	}
	return st.ByAPI[fmsim.APIInvoke]
}
