package worker_test

import (
	"context"
	"io"
	"strings"
	"testing"

	"github.com/infleet/infleet/internal/pipelinetest"
	"github.com/infleet/infleet/messages"
	"github.com/infleet/infleet/pipeline"
	"github.com/infleet/infleet/pipeline/intake"
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
	// A job that ended is done and not run again.
	if done, err := b.Worker.FinishBatched(ctx, "from-batch", nil); !done || err != nil || model.Calls.Load() != 1 {
		t.Errorf("an ended job: done %v, err %v, %d calls", done, err, model.Calls.Load())
	}
}
