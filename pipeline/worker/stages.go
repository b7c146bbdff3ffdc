package worker

import (
	"cmp"
	"context"
	"fmt"
	"sync"
	"time"

	"go.opentelemetry.io/otel/trace"

	"github.com/infleet/infleet/messages"
	"github.com/infleet/infleet/pipeline"
)

// runResult is what the model stages produced.
type runResult struct {
	model string
	resp  pipeline.ModelResponse
}

// attempt is one run of a job through the model stages: what each stage leaves for the next.
type attempt struct {
	job *messages.Job
	rec messages.JobRecord

	// chat is the conversation sent to the model, as the input guard left it.
	chat []messages.ChatMessage
	// jc is what the guards know of the job beyond the texts they check.
	jc pipeline.GuardContext
	// restore puts back what the input guard anonymized; nil when nothing is to be restored.
	restore func(string) string
	// report is what the guards did so far; nil until a guard ran.
	report *messages.GuardrailReport
	// model is the model the route picked; resp its answer, and answeredBy the model that gave
	// it (a fallback, when the picked one could not).
	model      pipeline.Model
	resp       pipeline.ModelResponse
	answeredBy string

	// batched, when set, is the job's answer from a batch inference output record: it
	// replaces the route and the model call. onDemand keeps the job out of batch inference.
	batched  *pipeline.ModelResponse
	onDemand bool
}

// stageNames are the steps of an attempt from the input guard to the stored result, in order
// (runStage runs each). Each takes what the ones before it left in the attempt; the first error
// ends the attempt. Each runs in a span named after it.
var stageNames = [...]string{"guard_in", "route", "invoke", "guard_out", "store"}

// runStage runs stage i of stageNames on a. The calls are direct, not through a table of
// method values, so that the compiler sees that no stage keeps a (`go build -gcflags=-m`
// reports batch inference's attempt as not escaping), which is what lets run recycle its
// attempts.
func (w *Worker) runStage(ctx context.Context, i int, a *attempt) error {
	switch i {
	case 0:
		return w.guardIn(ctx, a)
	case 1:
		return w.route(ctx, a)
	case 2:
		return w.invoke(ctx, a)
	case 3:
		return w.guardOut(ctx, a)
	default:
		return w.storeResult(ctx, a)
	}
}

// run executes the stages from guard-in to store. On error the returned report holds what the
// guards did so far.
func (w *Worker) run(ctx context.Context, job *messages.Job, rec messages.JobRecord) (runResult, *messages.GuardrailReport, error) {
	a := attempts.Get().(*attempt)
	a.job, a.rec = job, rec // field by field: a composite literal would take a temporary on the stack
	defer recycleAttempt(a)
	return w.runAttempt(ctx, a)
}

// recycleAttempt clears a and puts it back in attempts.
func recycleAttempt(a *attempt) {
	*a = attempt{}
	attempts.Put(a)
}

// attempts recycles the attempts of run: one is ~640 bytes, which every job allocated, and on
// the handler's stack it took the run to the edge of the stack reserve (growstack.go), where
// the allocator's slow path, a few hundred bytes deeper, grew the stack mid-run now and then
// (TestJobRunThroughTheRouterFitsTheStackReserve failed in 10 of 60 runs). A stage never keeps
// its attempt once it returns (runStage's direct calls let the compiler check that no stage
// lets it escape), so run may recycle it as soon as runAttempt returns.
var attempts = sync.Pool{New: func() any { return new(attempt) }}

// runAttempt runs a's stages from guard-in to store.
func (w *Worker) runAttempt(ctx context.Context, a *attempt) (runResult, *messages.GuardrailReport, error) {
	for i, name := range stageNames {
		stageCtx, span := pipeline.StartSpan(ctx, name, trace.SpanKindInternal)
		err := w.runStage(stageCtx, i, a)
		pipeline.EndSpan(span, err)
		if err != nil {
			return runResult{}, a.report, err
		}
	}
	return runResult{model: a.answeredBy, resp: a.resp}, a.report, nil
}

// guardIn reads the job's input into the conversation and runs the input guard over it and
// the job's context, which it may anonymize or block.
func (w *Worker) guardIn(ctx context.Context, a *attempt) error {
	start := time.Now()
	chat, err := w.inputMessages(ctx, a.job)
	if err != nil {
		return err
	}
	a.jc = pipeline.GuardContext{JobID: a.job.JobID, Context: a.job.Context}
	if w.cfg.InputGuard != nil {
		texts := make([]string, len(chat), len(chat)+1)
		for i, m := range chat {
			texts[i] = m.Content
		}
		if a.jc.Context != "" {
			texts = append(texts, a.jc.Context)
		}
		out, err := checkGuard(ctx, w.cfg.InputGuard, pipeline.GuardInput, texts, a.jc)
		if err != nil {
			return fmt.Errorf("input guardrail: %w", err)
		}
		a.report = mergeReport(a.report, pipeline.GuardInput, out)
		if out.Blocked {
			return &pipeline.BlockedError{Reason: out.Reason, Report: a.report}
		}
		for i := range chat {
			chat[i].Content = out.Texts[i]
		}
		if a.jc.Context != "" {
			a.jc.Context = out.Texts[len(chat)]
		}
		a.restore = out.Restore
	}
	a.chat = chat
	a.jc.Question = lastUserMessage(chat)
	w.cfg.Metrics.StageDone("guard_in", start)
	return nil
}

// route picks the model for the job.
func (w *Worker) route(_ context.Context, a *attempt) error {
	if a.batched != nil {
		return nil
	}
	model, err := w.cfg.Router.Pick(a.job)
	if err != nil {
		return err
	}
	a.model = model
	return nil
}

// invoke calls the picked model with the guarded conversation, the job's context as the system
// prompt. A job that asked for streaming calls it with a pipeline.Stream from the Hub, which
// publishes the answer to the job's followers as it arrives; an answer that came whole (a
// cached one, a model API that does not stream) is published whole.
func (w *Worker) invoke(ctx context.Context, a *attempt) error {
	start := time.Now()
	if a.batched != nil {
		a.resp, a.answeredBy = *a.batched, a.batched.Model
		return nil
	}
	req := pipeline.ModelRequest{ModelID: a.model.ModelID, Task: a.job.Task, Messages: a.chat, System: a.jc.Context, Tenant: a.rec.Tenant}
	if a.job.Params != nil {
		req.Params = *a.job.Params
	}
	if err := w.toBatch(ctx, a, req); err != nil {
		return err
	}
	var stream *pipeline.Stream
	if a.job.Stream {
		var end func()
		stream, end = w.cfg.Hub.StartStream(a.rec.JobID)
		defer end()
		ctx = pipeline.ContextWithStream(ctx, stream)
	}
	resp, err := a.model.Client.Invoke(ctx, req)
	if stream != nil && err == nil {
		stream.Complete(resp.Text)
	}
	w.cfg.Metrics.ModelCalled(a.model.Name, time.Since(start), resp.Usage, err)
	w.cfg.Metrics.StageDone("invoke", start)
	if err != nil {
		return fmt.Errorf("model %s: %w", a.model.Name, err)
	}
	a.resp = resp
	a.answeredBy = cmp.Or(resp.Model, a.model.Name)
	return nil
}

// guardOut runs the output guard over the model's answer, which it may anonymize or block,
// and then puts back what the input guard anonymized, when it was told to.
func (w *Worker) guardOut(ctx context.Context, a *attempt) error {
	if w.cfg.OutputGuard != nil {
		start := time.Now()
		out, err := checkGuard(ctx, w.cfg.OutputGuard, pipeline.GuardOutput, []string{a.resp.Text}, a.jc)
		if err != nil {
			return fmt.Errorf("output guardrail: %w", err)
		}
		a.report = mergeReport(a.report, pipeline.GuardOutput, out)
		if out.Blocked {
			return &pipeline.BlockedError{Reason: out.Reason, Report: a.report}
		}
		a.resp.Text = out.Texts[0]
		w.cfg.Metrics.StageDone("guard_out", start)
	}
	if a.restore != nil {
		a.resp.Text = a.restore(a.resp.Text)
	}
	return nil
}

// resultBuffers hold the buffers results are encoded into; one larger than maxPooledResult
// is left to the collector, so that a rare large result does not stay in the pool.
var resultBuffers = sync.Pool{New: func() any { return new([]byte) }}

// maxPooledResult is the largest result buffer kept for reuse.
const maxPooledResult = 64 << 10

// storeResult writes the job's result to the result store, replacing any earlier one. A
// write the store refuses is an infrastructure failure; one cut off by the attempt's end is
// the attempt's.
func (w *Worker) storeResult(ctx context.Context, a *attempt) error {
	start := time.Now()
	buf := resultBuffers.Get().(*[]byte)
	defer resultBuffers.Put(buf)
	body, err := messages.AppendResultJSON((*buf)[:0], messages.Result{
		JobID:     a.rec.JobID,
		Output:    messages.Output{Text: a.resp.Text},
		Model:     a.answeredBy,
		Usage:     a.resp.Usage,
		Guardrail: a.report,
		Degraded:  a.resp.Degraded,
		Fallbacks: a.resp.Fallbacks,
		Prompt:    a.resp.Prompt,
	})
	if err != nil {
		return fmt.Errorf("encode result: %w", err)
	}
	if cap(body) <= maxPooledResult {
		*buf = body
	}
	// The store keeps nothing it is given (pipeline.BlobStore), so the buffer is reused.
	if err := w.cfg.Results.Put(ctx, pipeline.ResultKey(a.rec.JobID), body); err != nil {
		if ctx.Err() != nil {
			// The attempt ran out of time or was cancelled while writing: that is the
			// attempt's outcome, not the result store's.
			return fmt.Errorf("store result: %w", err)
		}
		return pipeline.Infrastructure("store result", err)
	}
	w.cfg.Metrics.StageDone("store", start)
	return nil
}

// inputMessages turns a job's input into the conversation sent to the model.
func (w *Worker) inputMessages(ctx context.Context, job *messages.Job) ([]messages.ChatMessage, error) {
	switch {
	case len(job.Input.Messages) > 0:
		return append([]messages.ChatMessage(nil), job.Input.Messages...), nil
	case job.Input.S3URI != "":
		if w.cfg.Inputs == nil {
			return nil, pipeline.Permanent(messages.ErrCodeInvalidJob,
				fmt.Errorf("input.s3_uri needs an object store to read from (configure results.kind: s3) or give input.text"))
		}
		text, err := w.cfg.Inputs.Fetch(ctx, job.Input.S3URI)
		if err != nil {
			return nil, fmt.Errorf("read input %s: %w", job.Input.S3URI, err)
		}
		return []messages.ChatMessage{{Role: "user", Content: text}}, nil
	}
	return []messages.ChatMessage{{Role: "user", Content: job.Input.Text}}, nil
}

// checkGuard runs g, through CheckWithContext when g is a pipeline.ContextGuard.
func checkGuard(ctx context.Context, g pipeline.Guard, stage pipeline.GuardStage, texts []string, jc pipeline.GuardContext) (pipeline.GuardOutcome, error) {
	if cg, ok := g.(pipeline.ContextGuard); ok {
		return cg.CheckWithContext(ctx, stage, texts, jc)
	}
	return g.Check(ctx, stage, texts)
}

// lastUserMessage is the question a conversation ends on, for contextual grounding.
func lastUserMessage(chat []messages.ChatMessage) string {
	for i := len(chat) - 1; i >= 0; i-- {
		if chat[i].Role == "user" {
			return chat[i].Content
		}
	}
	return ""
}

func mergeReport(r *messages.GuardrailReport, stage pipeline.GuardStage, out pipeline.GuardOutcome) *messages.GuardrailReport {
	if r == nil {
		r = &messages.GuardrailReport{Action: messages.GuardActionNone}
	}
	if stage == pipeline.GuardInput {
		r.Input = append(r.Input, out.Assessments...)
	} else {
		r.Output = append(r.Output, out.Assessments...)
	}
	for _, a := range out.Assessments {
		switch {
		case a.Action == messages.GuardActionBlocked:
			r.Action = messages.GuardActionBlocked
		case a.Action == messages.GuardActionAnonymized && r.Action == messages.GuardActionNone:
			r.Action = messages.GuardActionAnonymized
		}
	}
	return r
}
