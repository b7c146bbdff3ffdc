package batchinf_test

import (
	"context"
	"errors"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/infleet/infleet/adapters/sqlite"
	"github.com/infleet/infleet/messages"
	"github.com/infleet/infleet/pipeline"
	"github.com/infleet/infleet/pipeline/batchinf"
	"github.com/infleet/infleet/pipeline/telemetry"
)

// unreachable is a Provider for collections that must never reach the provider.
type unreachable struct{ t *testing.T }

func (u unreachable) WriteInput(context.Context, string, []batchinf.Record) error {
	u.t.Error("a group below min_records reached the provider")
	return errors.New("unreachable")
}
func (u unreachable) Create(context.Context, pipeline.Batch) (string, error) { return "", nil }
func (u unreachable) Status(context.Context, string) (string, string, error) {
	return "", "", nil
}
func (u unreachable) ReadOutput(context.Context, pipeline.Batch) (map[string]batchinf.Output, error) {
	return nil, nil
}

func setup(t *testing.T, minRecords int) *batchinf.Batches {
	t.Helper()
	store, err := sqlite.Open(t.Context(), sqlite.Config{Path: filepath.Join(t.TempDir(), "jobs.db")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = store.Close() })
	b, err := batchinf.New(batchinf.Config{Store: store, Jobs: store, Provider: unreachable{t}, Model: "haiku", ModelID: "m",
		Tasks: []string{"bulk"}, Priority: messages.PriorityLow, MinRecords: minRecords, MaxWait: 50 * time.Millisecond, Bucket: "b"})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestTakes(t *testing.T) {
	t.Parallel()
	b := setup(t, 2)
	for _, tc := range []struct {
		job  messages.Job
		want bool
	}{
		{messages.Job{Task: "bulk"}, true},
		{messages.Job{Task: "other", Priority: messages.PriorityLow}, true},
		{messages.Job{Task: "other"}, false},
		{messages.Job{Task: "bulk", Model: "fast"}, false},
		{messages.Job{Task: "bulk", ReplayName: "r1"}, false},
	} {
		if got := b.Takes(&tc.job); got != tc.want {
			t.Errorf("Takes(%+v) = %v, want %v", tc.job, got, tc.want)
		}
	}
}

// A group smaller than min_records at max_wait goes on demand, and a job added twice counts
// once: two deliveries of one job never make two records.
func TestTooFewRunOnDemandAndDuplicatesCountOnce(t *testing.T) {
	t.Parallel()
	b := setup(t, 2)
	req := pipeline.ModelRequest{Messages: []messages.ChatMessage{{Role: "user", Content: "hi"}}}
	var wg sync.WaitGroup
	errs := make([]error, 2)
	for i := range errs {
		wg.Go(func() { errs[i] = b.Add(t.Context(), "job-1", req) })
	}
	wg.Wait()
	for i, err := range errs {
		if !errors.Is(err, batchinf.ErrTooFew) {
			t.Errorf("add %d: %v, want ErrTooFew", i, err)
		}
	}
	if held, err := b.Holds(t.Context(), "job-1"); err != nil || held {
		t.Errorf("Holds after a group went on demand = %v, %v", held, err)
	}
}

// scripted is a Provider whose job goes through statuses, one per Status call, and whose
// output answers every record.
type scripted struct {
	mu       sync.Mutex
	statuses []string
	records  []batchinf.Record
}

func (s *scripted) WriteInput(_ context.Context, _ string, records []batchinf.Record) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.records = records
	return nil
}
func (s *scripted) Create(_ context.Context, b pipeline.Batch) (string, error) {
	return "arn:aws:bedrock:us-east-1:000000000000:model-invocation-job/" + b.ID, nil
}
func (s *scripted) Status(context.Context, string) (string, string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.statuses[0]
	if len(s.statuses) > 1 {
		s.statuses = s.statuses[1:]
	}
	return st, "", nil
}
func (s *scripted) ReadOutput(context.Context, pipeline.Batch) (map[string]batchinf.Output, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[string]batchinf.Output{}
	for _, r := range s.records {
		if r.ID == "job-poison" {
			out[r.ID] = batchinf.Output{Err: errors.New("the model refused the record")}
			continue
		}
		out[r.ID] = batchinf.Output{Response: pipeline.ModelResponse{Text: "answer of " + r.ID, Usage: messages.Usage{InputTokens: 1000, OutputTokens: 500}}}
	}
	return out, nil
}

// finisher ends each job of an ended batch from its answer, recording it in the job store as
// the worker does.
type finisher struct {
	store pipeline.JobStore
	mu    sync.Mutex
	got   map[string]*pipeline.ModelResponse
}

func (f *finisher) FinishBatched(ctx context.Context, id string, answer *pipeline.ModelResponse) (bool, error) {
	f.mu.Lock()
	f.got[id] = answer
	f.mu.Unlock()
	call := &pipeline.ModelCall{}
	if answer != nil {
		call = &pipeline.ModelCall{BatchJob: answer.BatchJob, Batch: answer.Batch}
	}
	_, err := f.store.Transition(ctx, id, pipeline.Transition{From: []messages.Status{messages.StatusProcessing}, To: messages.StatusCompleted, Call: call})
	return err == nil, err
}

// Each job of a batch shows RUNNING with the batch job's ARN and the provider's status as
// the reconciler follows it (its status stays PROCESSING), and is answered from its record at
// the batch price, its answer saying ANSWERED; a job whose record failed goes on demand. The
// batch inference metrics follow the batch.
func TestReconcileShowsTheBatchOnEachJob(t *testing.T) {
	t.Parallel()
	store, err := sqlite.Open(t.Context(), sqlite.Config{Path: filepath.Join(t.TempDir(), "jobs.db")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = store.Close() })
	prov := &scripted{statuses: []string{"Submitted", "InProgress", "InProgress", "Completed"}}
	reg := prometheus.NewRegistry()
	metrics := telemetry.NewMetrics(reg)
	b, err := batchinf.New(batchinf.Config{Store: store, Jobs: store, Provider: prov, Model: "haiku", ModelID: "m", Metrics: metrics,
		Tasks: []string{"bulk"}, MinRecords: 2, MaxWait: 20 * time.Millisecond, Bucket: "b", PollInterval: time.Hour,
		Price: batchinf.Price{InputPerMTok: 1, OutputPerMTok: 2}})
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	ids := []string{"job-a", "job-b"}
	for _, id := range append(ids, "job-poison") {
		if _, _, err := store.Create(ctx, messages.JobRecord{JobID: id, Status: messages.StatusQueued, Task: "bulk", Priority: messages.PriorityNormal}); err != nil {
			t.Fatal(err)
		}
		if _, err := store.Transition(ctx, id, pipeline.Transition{To: messages.StatusProcessing, AttemptsDelta: 1}); err != nil {
			t.Fatal(err)
		}
	}
	var wg sync.WaitGroup
	for _, id := range append(ids, "job-poison") {
		wg.Go(func() {
			if err := b.Add(ctx, id, pipeline.ModelRequest{Messages: []messages.ChatMessage{{Role: "user", Content: id}}}); err != nil {
				t.Errorf("add %s: %v", id, err)
			}
		})
	}
	wg.Wait()
	f := &finisher{store: store, got: map[string]*pipeline.ModelResponse{}}
	check := func(status string) {
		t.Helper()
		for _, id := range ids {
			rec, err := store.Get(ctx, id)
			if err != nil {
				t.Fatal(err)
			}
			bi := rec.BatchInference
			if rec.Status != messages.StatusProcessing || bi == nil || bi.State != messages.BatchRunning || bi.Status != status ||
				bi.JobARN == "" || bi.JobARN != rec.BatchJob || bi.BatchID == "" {
				t.Fatalf("%s while the batch is %s: status %s, batch_job %q, batch_inference %+v", id, status, rec.Status, rec.BatchJob, bi)
			}
		}
	}
	metric := func(name string, labels ...string) float64 {
		t.Helper()
		fams, err := reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		for _, fam := range fams {
			if fam.GetName() != name {
				continue
			}
			sum := 0.0
			for _, m := range fam.GetMetric() {
				match := true
				for i := 0; i+1 < len(labels); i += 2 {
					for _, lp := range m.GetLabel() {
						if lp.GetName() == labels[i] && lp.GetValue() != labels[i+1] {
							match = false
						}
					}
				}
				if match {
					sum += m.GetCounter().GetValue() + m.GetGauge().GetValue()
				}
			}
			return sum
		}
		return 0
	}
	wantMetrics := func(when string, want map[string]float64) {
		t.Helper()
		for key, v := range want {
			name, label, _ := strings.Cut(key, "|")
			var labels []string
			if label != "" {
				k, val, _ := strings.Cut(label, "=")
				labels = []string{k, val}
			}
			if got := metric(name, labels...); got != v {
				t.Errorf("%s: %s = %v, want %v", when, key, got, v)
			}
		}
	}
	wantMetrics("recorded", map[string]float64{
		"infleet_batch_inference_batches_recorded_total": 1, "infleet_batch_inference_jobs_batched_total": 3,
		"infleet_batch_inference_batches_submitted_total": 0,
	})
	b.Reconcile(ctx, f) // creates the job and polls it: Submitted
	check("Submitted")
	wantMetrics("submitted", map[string]float64{
		"infleet_batch_inference_batches_submitted_total": 1,
		"infleet_batch_inference_batches_followed":        1, "infleet_batch_inference_jobs_waiting": 3,
	})
	b.Reconcile(ctx, f)
	check("InProgress")
	b.Reconcile(ctx, f) // no change
	check("InProgress")
	b.Reconcile(ctx, f) // Completed: each job answered from its record
	for _, id := range ids {
		rec, err := store.Get(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		bi := rec.BatchInference
		if rec.Status != messages.StatusCompleted || bi == nil || bi.State != messages.BatchAnswered || bi.Status != "Completed" {
			t.Errorf("%s after the batch completed: %s, %+v", id, rec.Status, bi)
		}
		ans := f.got[id]
		if ans == nil || ans.Text != "answer of "+id || ans.Usage.CostUSD != 0.002 || ans.Model != "haiku" {
			t.Errorf("%s answered with %+v, want its record at the batch price (0.002)", id, ans)
		}
	}
	if ans, ok := f.got["job-poison"]; !ok || ans != nil {
		t.Errorf("the job whose record failed was handed %+v (%v), want nil: on demand", ans, ok)
	}
	b.Reconcile(ctx, f) // nothing left to follow
	wantMetrics("done", map[string]float64{
		"infleet_batch_inference_batches_ended_total|status=Completed":     1,
		"infleet_batch_inference_batches_ended_total":                      1,
		"infleet_batch_inference_jobs_settled_total|outcome=answered":      2,
		"infleet_batch_inference_jobs_settled_total|outcome=record_failed": 1,
		"infleet_batch_inference_jobs_settled_total":                       3,
		"infleet_batch_inference_batches_followed":                         0,
		"infleet_batch_inference_jobs_waiting":                             0,
	})
}

// slowJobs is a job store whose transitions take delay, as a remote store's do under load.
type slowJobs struct {
	pipeline.JobStore
	delay time.Duration
}

func (s slowJobs) Transition(ctx context.Context, id string, tr pipeline.Transition) (messages.JobRecord, error) {
	time.Sleep(s.delay)
	return s.JobStore.Transition(ctx, id, tr)
}

// Marking the jobs of a batch that takes longer than its lease renews the lease as it goes,
// so that no other process takes the batch over meanwhile.
func TestMarkingRenewsTheLease(t *testing.T) {
	t.Parallel()
	store, err := sqlite.Open(t.Context(), sqlite.Config{Path: filepath.Join(t.TempDir(), "jobs.db")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = store.Close() })
	const jobs, delay, ttl = 12, 10 * time.Millisecond, 40 * time.Millisecond
	b, err := batchinf.New(batchinf.Config{Store: store, Jobs: slowJobs{store, delay}, Provider: &scripted{statuses: []string{"Submitted"}},
		Model: "haiku", ModelID: "m", MinRecords: jobs, MaxWait: 50 * time.Millisecond, Bucket: "b", PollInterval: time.Hour, LeaseTTL: ttl})
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	var wg sync.WaitGroup
	for i := range jobs {
		id := "job-" + strconv.Itoa(i)
		if _, _, err := store.Create(ctx, messages.JobRecord{JobID: id, Status: messages.StatusProcessing, Task: "bulk", Priority: messages.PriorityNormal}); err != nil {
			t.Fatal(err)
		}
		wg.Go(func() {
			if err := b.Add(ctx, id, pipeline.ModelRequest{}); err != nil {
				t.Errorf("add %s: %v", id, err)
			}
		})
	}
	wg.Wait()
	batchID, err := store.BatchOfJob(ctx, "job-0")
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	b.Reconcile(ctx, &finisher{store: store, got: map[string]*pipeline.ModelResponse{}})
	took := time.Since(start)
	batch, err := store.GetBatch(ctx, batchID)
	if err != nil {
		t.Fatal(err)
	}
	if batch.State != pipeline.BatchSubmitted || batch.Owner != b.Owner() {
		t.Fatalf("batch %s owned by %s after the marking, want SUBMITTED and %s", batch.State, batch.Owner, b.Owner())
	}
	// Marking took jobs*delay, past the lease: the lease was renewed during it.
	// Without renewals it would run until about ttl after the start.
	if took < jobs*delay || batch.LeaseUntil.Before(start.Add(took/2+ttl)) {
		t.Errorf("marking took %v; the lease runs until %v after its start, want renewals through the marking (ttl %v)", took, batch.LeaseUntil.Sub(start), ttl)
	}
	rec, err := store.Get(ctx, "job-"+strconv.Itoa(jobs-1))
	if err != nil || rec.BatchInference == nil || rec.BatchInference.State != messages.BatchRunning {
		t.Errorf("the last job after the marking: %+v, %v", rec.BatchInference, err)
	}
}
