package worker_test

import (
	"context"
	"io"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/infleet/infleet/adapters/sim"
	"github.com/infleet/infleet/adapters/sqlite"
	"github.com/infleet/infleet/internal/pipelinetest"
	"github.com/infleet/infleet/messages"
	"github.com/infleet/infleet/pipeline"
	"github.com/infleet/infleet/pipeline/batchinf"
	"github.com/infleet/infleet/pipeline/guard"
	"github.com/infleet/infleet/pipeline/intake"
	"github.com/infleet/infleet/pipeline/models"
	"github.com/infleet/infleet/pipeline/worker"
)

// FinishBatched ends a job from its batch answer without a model call, and on demand with
// one; a job handed back to QUEUED while its batch was recorded is taken up again.
func TestFinishBatched(t *testing.T) {
	t.Parallel()
	model := &pipelinetest.FlakyModel{}
	b := pipelinetest.SetupWith(t, model, nil)
	ctx := context.Background()
	for _, id := range []string{"from-batch", "on-demand"} {
		if _, _, err := b.Service.Submit(ctx, pipelinetest.TextJob(id), intake.SubmitOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	const arn = "arn:aws:bedrock:us-east-1:0:model-invocation-job/x"
	answer := &pipeline.ModelResponse{Text: "from the output record", Model: "batchmodel", BatchJob: arn,
		Usage: messages.Usage{InputTokens: 10, OutputTokens: 5, CostUSD: 0.5}}
	if done, err := b.Worker.FinishBatched(ctx, "from-batch", answer); !done || err != nil {
		t.Fatalf("from the batch answer: done %v, err %v", done, err)
	}
	rec := b.Record(t, "from-batch")
	if rec.Status != messages.StatusCompleted || rec.BatchJob != arn || rec.Model != "batchmodel" || rec.Usage == nil || rec.Usage.CostUSD != 0.5 {
		t.Errorf("from the batch answer: %+v", rec)
	}
	if n := model.Calls.Load(); n != 0 {
		t.Errorf("%d model calls for a batch answer, want 0", n)
	}
	rc, err := b.Results.Get(ctx, pipeline.ResultKey("from-batch"))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(rc)
	_ = rc.Close()
	if !strings.Contains(string(body), "from the output record") {
		t.Errorf("result %s", body)
	}

	// The on-demand job waited in a batch (the reconciler marked it RUNNING) whose job failed.
	running := &messages.BatchInference{State: messages.BatchRunning, BatchID: "b1", JobARN: arn, Status: "Failed"}
	if _, err := b.Store.Transition(ctx, "on-demand", pipeline.Transition{To: messages.StatusProcessing,
		Call: &pipeline.ModelCall{BatchJob: arn, Batch: running}}); err != nil {
		t.Fatal(err)
	}
	if done, err := b.Worker.FinishBatched(ctx, "on-demand", nil); !done || err != nil {
		t.Fatalf("on demand: done %v, err %v", done, err)
	}
	rec = b.Record(t, "on-demand")
	if rec.Status != messages.StatusCompleted || rec.BatchJob != "" || model.Calls.Load() != 1 {
		t.Errorf("on demand: %+v after %d calls, want COMPLETED by one call", rec, model.Calls.Load())
	}
	if bi := rec.BatchInference; bi == nil || bi.State != messages.BatchOnDemand || bi.JobARN != arn || bi.Status != "Failed" {
		t.Errorf("on demand after a failed batch: batch_inference %+v, want ON_DEMAND with the batch job", bi)
	}
	// A job of a batch that failed, with no attempt left, fails without a call, no longer
	// RUNNING.
	if _, _, err := b.Service.Submit(ctx, pipelinetest.TextJob("spent"), intake.SubmitOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Store.Transition(ctx, "spent", pipeline.Transition{To: messages.StatusProcessing, AttemptsDelta: 3,
		Call: &pipeline.ModelCall{BatchJob: arn, Batch: running}}); err != nil {
		t.Fatal(err)
	}
	if done, err := b.Worker.FinishBatched(ctx, "spent", nil); !done || err != nil {
		t.Fatalf("attempts spent: done %v, err %v", done, err)
	}
	rec = b.Record(t, "spent")
	if bi := rec.BatchInference; rec.Status != messages.StatusFailed || bi == nil || bi.State != messages.BatchOnDemand || rec.BatchJob != arn || model.Calls.Load() != 1 {
		t.Errorf("attempts spent: %s, batch_inference %+v after %d calls; want FAILED, ON_DEMAND, no call", rec.Status, bi, model.Calls.Load())
	}
	// A job that ended is done and not run again.
	if done, err := b.Worker.FinishBatched(ctx, "from-batch", nil); !done || err != nil || model.Calls.Load() != 1 {
		t.Errorf("an ended job: done %v, err %v, %d calls", done, err, model.Calls.Load())
	}
}

// writeCounter is a batchinf.Provider that counts the batch inputs written; its batches are
// never followed in this test.
type writeCounter struct{ writes atomic.Int64 }

func (w *writeCounter) WriteInput(context.Context, string, []batchinf.Record) error {
	w.writes.Add(1)
	return nil
}
func (*writeCounter) Create(context.Context, pipeline.Batch) (string, error) { return "", nil }
func (*writeCounter) Status(context.Context, string) (string, string, error) {
	return "", "", nil
}
func (*writeCounter) ReadOutput(context.Context, pipeline.Batch) (map[string]batchinf.Output, error) {
	return nil, nil
}

// A job answered from its batch record counts its usage and batch-priced cost in the usage
// store and against its tenant's budget once, however often its batch finishes it; once the
// tenant's budget is spent, its next batchable job stays out of batches and is refused on
// demand by the budget.
func TestFinishBatchedChargesBudgetsAndUsage(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "limits.db")
	limits, err := sqlite.OpenLimits(t.Context(), sqlite.Config{Path: path})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = limits.Close() })
	fleet, err := models.NewFleet(models.FleetConfig{Spend: limits, Usage: limits, UsageFlush: time.Hour, Models: []models.ModelSpec{
		{Name: "fast", ModelID: "fast", Client: sim.New(sim.Config{}), Price: models.Price{InputPerMTok: 1, OutputPerMTok: 1}}}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = fleet.Close(context.Background()) })
	routing, err := models.CompileRouting(models.RoutingSpec{Routes: map[string]string{"default": "fast"},
		Budgets: []models.Budget{{Tenant: "acme", DailyUSD: 0.01}}}, fleet.Has)
	if err != nil {
		t.Fatal(err)
	}
	picker := models.NewPicker(fleet, routing)
	prov := &writeCounter{}
	b := pipelinetest.SetupWith(t, nil, func(c *worker.Config) {
		c.Router = picker
		batches, err := batchinf.New(batchinf.Config{Store: c.Store.(pipeline.BatchStore), Jobs: c.Store, Provider: prov,
			Model: "fast", ModelID: "fast", Tasks: []string{"summarize"}, MinRecords: 1, MaxWait: time.Millisecond, Bucket: "b"})
		if err != nil {
			t.Fatal(err)
		}
		c.BatchInference = batches
	})
	ctx := t.Context()
	if _, _, err := b.Service.Submit(ctx, pipelinetest.TextJob("batched"), intake.SubmitOptions{Tenant: "acme"}); err != nil {
		t.Fatal(err)
	}
	answer := &pipeline.ModelResponse{Text: "from the record", Model: "fast", BatchJob: "arn:x",
		Usage: messages.Usage{InputTokens: 1000, OutputTokens: 500, CostUSD: 0.012}}
	for range 2 {
		if done, err := b.Worker.FinishBatched(ctx, "batched", answer); !done || err != nil {
			t.Fatalf("done %v, err %v", done, err)
		}
	}
	if err := fleet.FlushUsage(ctx); err != nil {
		t.Fatal(err)
	}
	today := pipeline.UsageDay(time.Now())
	rows, err := limits.Usage(ctx, pipeline.UsageFilter{From: today, To: today})
	if err != nil {
		t.Fatal(err)
	}
	want := pipeline.UsageRow{Day: today, Tenant: "acme", Model: "fast", Task: "summarize", Calls: 1, InputTokens: 1000, OutputTokens: 500, CostNanoUSD: 12_000_000}
	if len(rows) != 1 || rows[0] != want {
		t.Errorf("usage %+v, want %+v", rows, want)
	}
	if spent, _, over, err := picker.TenantOverBudget(ctx, "acme"); !over || err != nil || spent != 0.012 {
		t.Errorf("acme's budget: spent %v, over %v, %v; want $0.012 of $0.01", spent, over, err)
	}

	// Over budget: the next job is not batched, and on demand the budget refuses it.
	job := pipelinetest.TextJob("refused")
	if _, _, err := b.Service.Submit(ctx, job, intake.SubmitOptions{Tenant: "acme"}); err != nil {
		t.Fatal(err)
	}
	d := pipelinetest.JobDelivery(t, job)
	d.Metadata[messages.MetaTenant] = "acme"
	b.Worker.Process(ctx, d)
	if rec := b.Record(t, "refused"); rec.Status != messages.StatusFailed || rec.Error == nil || rec.Error.Code != models.ErrCodeBudget {
		t.Errorf("job of a tenant over budget: %s %+v, want FAILED %s", rec.Status, rec.Error, models.ErrCodeBudget)
	}
	if n := prov.writes.Load(); n != 0 {
		t.Errorf("%d batch inputs written for a tenant over budget, want 0", n)
	}
	// Under budget, the same kind of job goes to a batch (the test above can fail).
	other := pipelinetest.TextJob("batchable")
	if _, _, err := b.Service.Submit(ctx, other, intake.SubmitOptions{Tenant: "globex"}); err != nil {
		t.Fatal(err)
	}
	d = pipelinetest.JobDelivery(t, other)
	d.Metadata[messages.MetaTenant] = "globex"
	b.Worker.Process(ctx, d)
	if n := prov.writes.Load(); n != 1 {
		t.Errorf("%d batch inputs written for a tenant under budget, want 1", n)
	}
}

// A batch answer the output guardrail blocks fails the job, which says its record answered it.
func TestFinishBatchedBlockedAnswerSaysAnswered(t *testing.T) {
	t.Parallel()
	out, err := guard.New(guard.Config{Words: &guard.WordsConfig{Words: []string{"zorp"}}})
	if err != nil {
		t.Fatal(err)
	}
	b := pipelinetest.SetupWith(t, nil, func(c *worker.Config) { c.OutputGuard = out })
	ctx := t.Context()
	if _, _, err := b.Service.Submit(ctx, pipelinetest.TextJob("blocked"), intake.SubmitOptions{}); err != nil {
		t.Fatal(err)
	}
	const arn = "arn:aws:bedrock:us-east-1:0:model-invocation-job/x"
	running := &messages.BatchInference{State: messages.BatchRunning, BatchID: "b1", JobARN: arn, Status: "Completed"}
	if _, err := b.Store.Transition(ctx, "blocked", pipeline.Transition{To: messages.StatusProcessing, AttemptsDelta: 1,
		Call: &pipeline.ModelCall{BatchJob: arn, Batch: running}}); err != nil {
		t.Fatal(err)
	}
	answered := *running
	answered.State = messages.BatchAnswered
	answer := &pipeline.ModelResponse{Text: "all about zorp", Model: "fast", BatchJob: arn, Batch: &answered}
	if done, err := b.Worker.FinishBatched(ctx, "blocked", answer); !done || err != nil {
		t.Fatalf("done %v, err %v", done, err)
	}
	rec := b.Record(t, "blocked")
	if bi := rec.BatchInference; rec.Status != messages.StatusFailed || rec.Error == nil || rec.Error.Code != messages.ErrCodeGuardrailBlocked ||
		bi == nil || bi.State != messages.BatchAnswered || rec.BatchJob != arn {
		t.Errorf("blocked batch answer: %s %+v, batch_inference %+v; want FAILED guardrail_blocked, ANSWERED", rec.Status, rec.Error, bi)
	}
}
