package worker_test

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/infleet/infleet/internal/pipelinetest"
	"github.com/infleet/infleet/messages"
	"github.com/infleet/infleet/pipeline"
	"github.com/infleet/infleet/pipeline/intake"
	"github.com/infleet/infleet/pipeline/worker"
)

func TestWorkerCompletesJobDroppedOnQueue(t *testing.T) {
	t.Parallel()
	b := pipelinetest.Setup(t, nil)
	out := b.Worker.Process(context.Background(), pipelinetest.JobDelivery(t, pipelinetest.TextJob("j1")))
	if out.Retry {
		t.Fatalf("outcome %+v, want ack", out)
	}
	rec := b.Record(t, "j1")
	if rec.Status != messages.StatusCompleted || rec.Attempts != 1 || rec.Model != "fast" || rec.Usage == nil || rec.Usage.OutputTokens == 0 {
		t.Fatalf("record %+v", rec)
	}
	if rec.ResultURL != "/v1/jobs/j1/result" {
		t.Fatalf("result_url %q", rec.ResultURL)
	}
	rc, err := b.Service.Result(context.Background(), "j1", "")
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	var res messages.Result
	if err := json.NewDecoder(rc).Decode(&res); err != nil {
		t.Fatal(err)
	}
	if res.JobID != "j1" || res.Output.Text == "" || res.Model != "fast" {
		t.Fatalf("result %+v", res)
	}
	if got := b.Notes.Types(); len(got) != 1 || got[0] != messages.EventCompleted {
		t.Fatalf("events %v", got)
	}
}

func TestWorkerDuplicateDeliveryDoesNotRunAgain(t *testing.T) {
	t.Parallel()
	b := pipelinetest.Setup(t, nil)
	d := pipelinetest.JobDelivery(t, pipelinetest.TextJob("dup"))
	b.Worker.Process(context.Background(), d)
	if out := b.Worker.Process(context.Background(), d); out.Retry {
		t.Fatalf("duplicate: %+v", out)
	}
	if n := b.Model.Calls.Load(); n != 1 {
		t.Fatalf("model called %d times for one job delivered twice", n)
	}
	if rec := b.Record(t, "dup"); rec.Attempts != 1 {
		t.Fatalf("attempts %d", rec.Attempts)
	}
}

func TestWorkerRetriesThenCompletes(t *testing.T) {
	t.Parallel()
	b := pipelinetest.Setup(t, &pipelinetest.FlakyModel{Fails: 2, Err: errors.New("throttled")})
	d := pipelinetest.JobDelivery(t, pipelinetest.TextJob("r1"))
	for i := range 2 {
		out := b.Worker.Process(context.Background(), d)
		if !out.Retry {
			t.Fatalf("attempt %d: %+v, want retry", i+1, out)
		}
		if rec := b.Record(t, "r1"); rec.Status != messages.StatusQueued || rec.Error == nil {
			t.Fatalf("after failed attempt: %+v", rec)
		}
	}
	if out := b.Worker.Process(context.Background(), d); out.Retry {
		t.Fatalf("third attempt: %+v", out)
	}
	rec := b.Record(t, "r1")
	if rec.Status != messages.StatusCompleted || rec.Attempts != 3 || rec.Error != nil {
		t.Fatalf("record %+v", rec)
	}
}

func TestWorkerFailsAfterMaxAttemptsAndDeadLetters(t *testing.T) {
	t.Parallel()
	b := pipelinetest.Setup(t, &pipelinetest.FlakyModel{Fails: 100, Err: errors.New("model down")})
	d := pipelinetest.JobDelivery(t, pipelinetest.TextJob("f1"))
	for range 2 {
		if out := b.Worker.Process(context.Background(), d); !out.Retry {
			t.Fatal("want retry before max attempts")
		}
	}
	if out := b.Worker.Process(context.Background(), d); out.Retry {
		t.Fatalf("last attempt: %+v, want ack", out)
	}
	rec := b.Record(t, "f1")
	if rec.Status != messages.StatusFailed || rec.Error == nil || rec.Error.Code != messages.ErrCodeModelError || rec.Attempts != 3 {
		t.Fatalf("record %+v", rec)
	}
	if h := rec.Error.History; len(h) != 3 {
		t.Fatalf("attempt history %+v, want the 3 attempts", h)
	}
	for i, a := range rec.Error.History {
		if a.Attempt != i+1 || a.Code != messages.ErrCodeModelError || !strings.Contains(a.Message, "model down") || a.At.IsZero() {
			t.Fatalf("history[%d] = %+v", i, a)
		}
	}
	dl := pipelinetest.Receive(t, b.Dead)
	if dl.Metadata.Get(messages.MetaJobID) != "f1" || dl.Metadata.Get(messages.MetaDeadReason) == "" || dl.Metadata.Get(messages.MetaAttempts) != "3" {
		t.Fatalf("dead letter metadata %v", dl.Metadata)
	}
	if got := b.Notes.Types(); len(got) != 1 || got[0] != messages.EventFailed {
		t.Fatalf("events %v", got)
	}
}

func TestWorkerPermanentErrorFailsAtOnce(t *testing.T) {
	t.Parallel()
	b := pipelinetest.Setup(t, nil)
	job := pipelinetest.TextJob("p1")
	job.Model = "no-such-model"
	if out := b.Worker.Process(context.Background(), pipelinetest.JobDelivery(t, job)); out.Retry {
		t.Fatalf("%+v", out)
	}
	rec := b.Record(t, "p1")
	if rec.Status != messages.StatusFailed || rec.Error.Code != messages.ErrCodeNoModel || rec.Attempts != 1 {
		t.Fatalf("record %+v", rec)
	}
	pipelinetest.Receive(t, b.Dead)
}

func TestWorkerDeadLettersPoisonMessage(t *testing.T) {
	t.Parallel()
	b := pipelinetest.Setup(t, nil)
	for _, body := range []string{`not json`, `{"task": "x"}`, `{"task":"x","input":{"text":"a"},"priority":"urgent"}`} {
		out := b.Worker.Process(context.Background(), worker.Delivery{MessageID: "m", Payload: []byte(body), Metadata: map[string]string{}})
		if out.Retry {
			t.Fatalf("%s: %+v, want ack", body, out)
		}
		dl := pipelinetest.Receive(t, b.Dead)
		if string(dl.Payload) != body || dl.Metadata.Get(messages.MetaDeadReason) == "" {
			t.Fatalf("dead letter %q %v", dl.Payload, dl.Metadata)
		}
	}
	if n := b.Model.Calls.Load(); n != 0 {
		t.Fatalf("model called %d times for poison messages", n)
	}
}

func TestWorkerDropsCancelledJob(t *testing.T) {
	t.Parallel()
	b := pipelinetest.Setup(t, nil)
	ctx := context.Background()
	rec, _, err := b.Service.Submit(ctx, pipelinetest.TextJob("c1"), intake.SubmitOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.Service.Cancel(ctx, rec.JobID, ""); err != nil {
		t.Fatal(err)
	}
	if out := b.Worker.Process(ctx, pipelinetest.JobDelivery(t, pipelinetest.TextJob("c1"))); out.Retry {
		t.Fatalf("%+v", out)
	}
	if got := b.Record(t, "c1"); got.Status != messages.StatusCancelled || b.Model.Calls.Load() != 0 {
		t.Fatalf("record %+v, model calls %d", got, b.Model.Calls.Load())
	}
	if _, err := b.Service.Cancel(ctx, rec.JobID, ""); !errors.Is(err, pipeline.ErrConflict) {
		t.Fatalf("second cancel: %v, want ErrConflict", err)
	}
}

func TestWorkerCancelStopsRunningJob(t *testing.T) {
	t.Parallel()
	model := &pipelinetest.FlakyModel{Block: make(chan struct{})}
	b := pipelinetest.Setup(t, model)
	ctx := context.Background()
	if _, _, err := b.Service.Submit(ctx, pipelinetest.TextJob("c2"), intake.SubmitOptions{}); err != nil {
		t.Fatal(err)
	}
	done := make(chan worker.Outcome, 1)
	go func() { done <- b.Worker.Process(ctx, pipelinetest.JobDelivery(t, pipelinetest.TextJob("c2"))) }()
	pipelinetest.WaitFor(t, func() bool { return model.Calls.Load() == 1 })
	if _, err := b.Service.Cancel(ctx, "c2", ""); err != nil {
		t.Fatal(err)
	}
	select {
	case out := <-done:
		if out.Retry {
			t.Fatalf("%+v", out)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("running job not stopped by cancel")
	}
	if got := b.Record(t, "c2"); got.Status != messages.StatusCancelled {
		t.Fatalf("status %s", got.Status)
	}
}

func TestWorkerShutdownHandsBackWithoutSpendingAttempt(t *testing.T) {
	t.Parallel()
	model := &pipelinetest.FlakyModel{Block: make(chan struct{})}
	b := pipelinetest.Setup(t, model)
	done := make(chan worker.Outcome, 1)
	go func() {
		done <- b.Worker.Process(context.Background(), pipelinetest.JobDelivery(t, pipelinetest.TextJob("s1")))
	}()
	pipelinetest.WaitFor(t, func() bool { return model.Calls.Load() == 1 })
	b.Worker.CancelInFlight()
	out := <-done
	if !out.Retry || out.Delay != 0 || !out.HandedBack {
		t.Fatalf("%+v, want an immediate retry marked HandedBack", out)
	}
	if rec := b.Record(t, "s1"); rec.Status != messages.StatusQueued || rec.Attempts != 0 {
		t.Fatalf("record %+v, want QUEUED with 0 attempts", rec)
	}
	// A delivery arriving after the hard stop goes straight back, also counted.
	if out := b.Worker.Process(context.Background(), pipelinetest.JobDelivery(t, pipelinetest.TextJob("s2"))); !out.Retry || !out.HandedBack {
		t.Fatalf("delivery after CancelInFlight: %+v, want HandedBack", out)
	}
	if n := b.Worker.HandedBack(); n != 2 {
		t.Fatalf("HandedBack() = %d, want 2", n)
	}
}

func TestWorkerReplayRunsEndedJobAgain(t *testing.T) {
	t.Parallel()
	b := pipelinetest.Setup(t, nil)
	ctx := context.Background()
	b.Worker.Process(ctx, pipelinetest.JobDelivery(t, pipelinetest.TextJob("rp")))
	job := pipelinetest.TextJob("rp")
	job.ReplayName = "replay-1"
	b.Worker.Process(ctx, pipelinetest.JobDelivery(t, job))
	b.Worker.Process(ctx, pipelinetest.JobDelivery(t, job)) // the same replay delivered twice runs once
	if n := b.Model.Calls.Load(); n != 2 {
		t.Fatalf("model calls %d, want 2", n)
	}
	if rec := b.Record(t, "rp"); rec.ReplayName != "replay-1" || rec.Status != messages.StatusCompleted {
		t.Fatalf("record %+v", rec)
	}
}

// traceModel records the traceparent of the context each call receives.
type traceModel struct{ seen atomic.Value }

func (m *traceModel) Invoke(ctx context.Context, req pipeline.ModelRequest) (pipeline.ModelResponse, error) {
	m.seen.Store(pipeline.TraceparentFromContext(ctx))
	return pipeline.ModelResponse{Text: "ok"}, nil
}

func TestWorkerCarriesTraceparentToModelCall(t *testing.T) {
	t.Parallel()
	b := pipelinetest.Setup(t, nil)
	model := &traceModel{}
	router := pipelinetest.Picker{Model: pipeline.Model{Name: "m", Client: model}}
	w, err := worker.New(worker.Config{Store: b.Store, Results: b.Results, Router: router, DeadLetters: b.PubSub, Topics: pipelinetest.Topics})
	if err != nil {
		t.Fatal(err)
	}
	const tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	d := pipelinetest.JobDelivery(t, pipelinetest.TextJob("tp"))
	d.Metadata[messages.MetaTraceparent] = tp
	if out := w.Process(context.Background(), d); out.Retry {
		t.Fatalf("%+v", out)
	}
	if got, _ := model.seen.Load().(string); got != tp {
		t.Fatalf("model call saw traceparent %q, want %q", got, tp)
	}
}

func TestWorkerTurnsS3NotificationIntoJobs(t *testing.T) {
	t.Parallel()
	b := pipelinetest.Setup(t, nil)
	router := pipelinetest.Picker{Model: pipeline.Model{Name: "fast", Client: b.Model}}
	w, err := worker.New(worker.Config{Store: b.Store, Results: b.Results, Router: router, DeadLetters: b.PubSub,
		Topics: pipelinetest.Topics, Decoder: worker.NewDecoder(s3Rules, zerolog.Nop())})
	if err != nil {
		t.Fatal(err)
	}
	if out := w.Process(context.Background(), worker.Delivery{MessageID: "n1", Payload: []byte(s3Notification), Metadata: map[string]string{}}); out.Retry {
		t.Fatalf("%+v", out)
	}
	jobs, _, err := b.Store.List(context.Background(), pipeline.ListQuery{})
	if err != nil || len(jobs) != 2 {
		t.Fatalf("jobs %+v, %v", jobs, err)
	}
	for _, j := range jobs {
		// No object store is configured here: the job fails at once, saying how to read s3_uri.
		if j.Status != messages.StatusFailed || j.Error == nil || !strings.Contains(j.Error.Message, "s3_uri") {
			t.Fatalf("job %+v", j)
		}
	}
}

// fallbackModel answers as a fleet whose primary failed over.
type fallbackModel struct{}

func (fallbackModel) Invoke(context.Context, pipeline.ModelRequest) (pipeline.ModelResponse, error) {
	return pipeline.ModelResponse{Text: "ok", Model: "backup", Fallbacks: []string{"primary"}, Prompt: "summarize@1.2.0"}, nil
}

func TestWorkerRecordsFallbacksAndPromptOnTheJob(t *testing.T) {
	t.Parallel()
	b := pipelinetest.Setup(t, nil)
	router := pipelinetest.Picker{Model: pipeline.Model{Name: "primary", Client: fallbackModel{}}}
	w, err := worker.New(worker.Config{Store: b.Store, Results: b.Results, Router: router, DeadLetters: b.PubSub, Topics: pipelinetest.Topics})
	if err != nil {
		t.Fatal(err)
	}
	w.Process(context.Background(), pipelinetest.JobDelivery(t, pipelinetest.TextJob("fb")))
	rec := b.Record(t, "fb")
	if rec.Model != "backup" || len(rec.Fallbacks) != 1 || rec.Fallbacks[0] != "primary" || rec.Prompt != "summarize@1.2.0" || rec.Degraded {
		t.Fatalf("record %+v", rec)
	}
}

// refusingStore is a real job store that refuses every new record for good, as DynamoDB does
// a job over its item size.
type refusingStore struct{ pipeline.JobStore }

func (refusingStore) Create(context.Context, messages.JobRecord) (messages.JobRecord, bool, error) {
	return messages.JobRecord{}, false, pipeline.Permanent(messages.ErrCodeInvalidJob, errors.New("job too large for the store"))
}

// A message whose record the store will never take goes to the dead-letter place at once
// instead of being retried as an infrastructure failure without end.
func TestWorkerDeadLettersAJobTheStoreRefusesForGood(t *testing.T) {
	t.Parallel()
	b := pipelinetest.Setup(t, nil)
	w, err := worker.New(worker.Config{Store: refusingStore{b.Store}, Results: b.Results,
		Router: pipelinetest.Picker{Model: pipeline.Model{Name: "fast", Client: b.Model}}, DeadLetters: b.PubSub,
		Topics: pipelinetest.Topics})
	if err != nil {
		t.Fatal(err)
	}
	if out := w.Process(context.Background(), pipelinetest.JobDelivery(t, pipelinetest.TextJob("huge"))); out.Retry {
		t.Fatalf("outcome %+v, want the delivery acknowledged", out)
	}
	dead := pipelinetest.Receive(t, b.Dead)
	if code := dead.Metadata.Get(pipeline.MetaDeadCode); code != messages.ErrCodeInvalidJob {
		t.Fatalf("dead-letter code %q, want %s", code, messages.ErrCodeInvalidJob)
	}
	if n := b.Model.Calls.Load(); n != 0 {
		t.Fatalf("model calls %d, want 0", n)
	}
}

// A model that throttles is the provider asking to slow down, not the job failing: the job
// goes back to the queue more times than workers.max_attempts allows without spending an
// attempt, and completes on its first counted one.
func TestWorkerThrottledRequeueSpendsNoAttempt(t *testing.T) {
	t.Parallel()
	throttled := &pipeline.ModelError{Kind: pipeline.ModelThrottled, RetryAfter: time.Millisecond, Err: errors.New("slow down")}
	b := pipelinetest.Setup(t, &pipelinetest.FlakyModel{Fails: 6, Err: throttled})
	d := pipelinetest.JobDelivery(t, pipelinetest.TextJob("thr"))
	for i := range 6 {
		if out := b.Worker.Process(context.Background(), d); !out.Retry {
			t.Fatalf("throttled attempt %d: %+v, want a requeue", i+1, out)
		}
		if rec := b.Record(t, "thr"); rec.Status != messages.StatusQueued || rec.Attempts != 0 {
			t.Fatalf("after throttled attempt %d: status %s, attempts %d; want QUEUED with none spent", i+1, rec.Status, rec.Attempts)
		}
	}
	if out := b.Worker.Process(context.Background(), d); out.Retry {
		t.Fatalf("after the throttling: %+v, want completed", out)
	}
	if rec := b.Record(t, "thr"); rec.Status != messages.StatusCompleted || rec.Attempts != 1 {
		t.Fatalf("record %+v, want COMPLETED after 1 attempt", rec)
	}
}

// countingWaker is an OutboxWaker that wants the events of jobs with a callback_url and counts
// its wakes.
type countingWaker struct{ wakes atomic.Int32 }

func (c *countingWaker) Wants(rec messages.JobRecord) bool {
	return pipeline.NotificationOf(rec).CallbackURL != ""
}

func (c *countingWaker) Wake() { c.wakes.Add(1) }

// TestWorkerWakesOutboxOnlyForKeptEvents: a job whose event no sink takes keeps no event, so
// its completion must not wake the dispatcher (each wake is a claim query on the store).
func TestWorkerWakesOutboxOnlyForKeptEvents(t *testing.T) {
	t.Parallel()
	waker := &countingWaker{}
	b := pipelinetest.SetupWith(t, nil, func(c *worker.Config) { c.Outbox = waker })
	quiet := pipelinetest.TextJob("quiet")
	if out := b.Worker.Process(context.Background(), pipelinetest.JobDelivery(t, quiet)); out.Retry {
		t.Fatalf("outcome %+v", out)
	}
	if n := waker.wakes.Load(); n != 0 {
		t.Fatalf("%d wakes for a job whose event no sink takes, want 0", n)
	}
	called := pipelinetest.TextJob("called")
	called.CallbackURL = "https://example.com/hook"
	if out := b.Worker.Process(context.Background(), pipelinetest.JobDelivery(t, called)); out.Retry {
		t.Fatalf("outcome %+v", out)
	}
	if n := waker.wakes.Load(); n != 1 {
		t.Fatalf("%d wakes for a job with a callback, want 1", n)
	}
	if rec := b.Record(t, "called"); rec.Status != messages.StatusCompleted {
		t.Fatalf("record %+v", rec)
	}
}
