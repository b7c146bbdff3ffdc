package pipeline_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/pubsub/gochannel"
	"github.com/rs/zerolog"

	"github.com/infleet/infleet/adapters/file"
	"github.com/infleet/infleet/adapters/sim"
	"github.com/infleet/infleet/adapters/sqlite"
	"github.com/infleet/infleet/messages"
	"github.com/infleet/infleet/pipeline"
)

// flakyModel fails its first fails calls with err, then answers like sim.
type flakyModel struct {
	fails int32
	err   error
	calls atomic.Int32
	block chan struct{}
}

func (m *flakyModel) Invoke(ctx context.Context, req pipeline.ModelRequest) (pipeline.ModelResponse, error) {
	n := m.calls.Add(1)
	if m.block != nil {
		select {
		case <-m.block:
		case <-ctx.Done():
			return pipeline.ModelResponse{}, ctx.Err()
		}
	}
	if n <= m.fails {
		return pipeline.ModelResponse{}, m.err
	}
	return sim.New(sim.Config{}).Invoke(ctx, req)
}

// recorder is a Notifier that keeps what it was given.
type recorder struct {
	mu     sync.Mutex
	events []messages.Event
}

func (r *recorder) Notify(_ context.Context, n pipeline.Notification) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, n.Event)
	return nil
}

func (r *recorder) types() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for _, e := range r.events {
		out = append(out, e.Type)
	}
	return out
}

type bundle struct {
	worker  *pipeline.Worker
	svc     *pipeline.Service
	store   *sqlite.Store
	results *file.Store
	dead    <-chan *message.Message
	notes   *recorder
	model   *flakyModel
	pubsub  *gochannel.GoChannel
}

func setup(t *testing.T, model *flakyModel) *bundle {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	store, err := sqlite.Open(ctx, sqlite.Config{Path: dir + "/jobs.db"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = store.Close() })
	results, err := file.New(file.Config{Dir: dir + "/results"})
	if err != nil {
		t.Fatal(err)
	}
	pubsub := gochannel.NewGoChannel(gochannel.Config{Persistent: true}, watermill.NopLogger{})
	t.Cleanup(func() { _ = pubsub.Close() })
	dead, err := pubsub.Subscribe(ctx, testTopics.Dead)
	if err != nil {
		t.Fatal(err)
	}
	if model == nil {
		model = &flakyModel{}
	}
	router := testPicker{pipeline.Model{Name: "fast", ModelID: "sim", Client: model}}
	notes := &recorder{}
	hub := pipeline.NewHub()
	w, err := pipeline.NewWorker(pipeline.WorkerConfig{
		Store: store, Results: results, Router: router, DeadLetters: pubsub, Topics: testTopics,
		Notifier: notes, Hub: hub, MaxAttempts: 3,
		Backoff: pipeline.Backoff{Initial: time.Millisecond, Max: 2 * time.Millisecond},
		Logger:  zerolog.New(zerolog.NewTestWriter(t)),
	})
	if err != nil {
		t.Fatal(err)
	}
	svc, err := pipeline.NewService(pipeline.ServiceConfig{
		Store: store, Results: results, Publisher: pubsub, Topics: testTopics, Hub: hub, Notifier: notes,
	})
	if err != nil {
		t.Fatal(err)
	}
	return &bundle{worker: w, svc: svc, store: store, results: results, dead: dead, notes: notes, model: model, pubsub: pubsub}
}

func jobDelivery(t *testing.T, job messages.Job) pipeline.Delivery {
	t.Helper()
	body, err := json.Marshal(job)
	if err != nil {
		t.Fatal(err)
	}
	return pipeline.Delivery{MessageID: job.JobID, Payload: body, Metadata: map[string]string{messages.MetaJobID: job.JobID}}
}

func textJob(id string) messages.Job {
	return messages.Job{JobID: id, Task: "summarize", Input: messages.Input{Text: "The quick brown fox jumps over the lazy dog."}}
}

func getRecord(t *testing.T, b *bundle, id string) messages.JobRecord {
	t.Helper()
	rec, err := b.store.Get(context.Background(), id)
	if err != nil {
		t.Fatalf("get %s: %v", id, err)
	}
	return rec
}

func TestWorkerCompletesJobDroppedOnQueue(t *testing.T) {
	t.Parallel()
	b := setup(t, nil)
	out := b.worker.Process(context.Background(), jobDelivery(t, textJob("j1")))
	if out.Retry {
		t.Fatalf("outcome %+v, want ack", out)
	}
	rec := getRecord(t, b, "j1")
	if rec.Status != messages.StatusCompleted || rec.Attempts != 1 || rec.Model != "fast" || rec.Usage == nil || rec.Usage.OutputTokens == 0 {
		t.Fatalf("record %+v", rec)
	}
	if rec.ResultURL != "/v1/jobs/j1/result" {
		t.Fatalf("result_url %q", rec.ResultURL)
	}
	rc, err := b.svc.Result(context.Background(), "j1", "")
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
	if got := b.notes.types(); len(got) != 1 || got[0] != messages.EventCompleted {
		t.Fatalf("events %v", got)
	}
}

func TestWorkerDuplicateDeliveryDoesNotRunAgain(t *testing.T) {
	t.Parallel()
	b := setup(t, nil)
	d := jobDelivery(t, textJob("dup"))
	b.worker.Process(context.Background(), d)
	if out := b.worker.Process(context.Background(), d); out.Retry {
		t.Fatalf("duplicate: %+v", out)
	}
	if n := b.model.calls.Load(); n != 1 {
		t.Fatalf("model called %d times for one job delivered twice", n)
	}
	if rec := getRecord(t, b, "dup"); rec.Attempts != 1 {
		t.Fatalf("attempts %d", rec.Attempts)
	}
}

func TestWorkerRetriesThenCompletes(t *testing.T) {
	t.Parallel()
	b := setup(t, &flakyModel{fails: 2, err: errors.New("throttled")})
	d := jobDelivery(t, textJob("r1"))
	for i := range 2 {
		out := b.worker.Process(context.Background(), d)
		if !out.Retry {
			t.Fatalf("attempt %d: %+v, want retry", i+1, out)
		}
		if rec := getRecord(t, b, "r1"); rec.Status != messages.StatusQueued || rec.Error == nil {
			t.Fatalf("after failed attempt: %+v", rec)
		}
	}
	if out := b.worker.Process(context.Background(), d); out.Retry {
		t.Fatalf("third attempt: %+v", out)
	}
	rec := getRecord(t, b, "r1")
	if rec.Status != messages.StatusCompleted || rec.Attempts != 3 || rec.Error != nil {
		t.Fatalf("record %+v", rec)
	}
}

func TestWorkerFailsAfterMaxAttemptsAndDeadLetters(t *testing.T) {
	t.Parallel()
	b := setup(t, &flakyModel{fails: 100, err: errors.New("model down")})
	d := jobDelivery(t, textJob("f1"))
	for range 2 {
		if out := b.worker.Process(context.Background(), d); !out.Retry {
			t.Fatal("want retry before max attempts")
		}
	}
	if out := b.worker.Process(context.Background(), d); out.Retry {
		t.Fatalf("last attempt: %+v, want ack", out)
	}
	rec := getRecord(t, b, "f1")
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
	dl := receive(t, b.dead)
	if dl.Metadata.Get(messages.MetaJobID) != "f1" || dl.Metadata.Get(messages.MetaDeadReason) == "" || dl.Metadata.Get(messages.MetaAttempts) != "3" {
		t.Fatalf("dead letter metadata %v", dl.Metadata)
	}
	if got := b.notes.types(); len(got) != 1 || got[0] != messages.EventFailed {
		t.Fatalf("events %v", got)
	}
}

func TestWorkerPermanentErrorFailsAtOnce(t *testing.T) {
	t.Parallel()
	b := setup(t, nil)
	job := textJob("p1")
	job.Model = "no-such-model"
	if out := b.worker.Process(context.Background(), jobDelivery(t, job)); out.Retry {
		t.Fatalf("%+v", out)
	}
	rec := getRecord(t, b, "p1")
	if rec.Status != messages.StatusFailed || rec.Error.Code != messages.ErrCodeNoModel || rec.Attempts != 1 {
		t.Fatalf("record %+v", rec)
	}
	receive(t, b.dead)
}

func TestWorkerDeadLettersPoisonMessage(t *testing.T) {
	t.Parallel()
	b := setup(t, nil)
	for _, body := range []string{`not json`, `{"task": "x"}`, `{"task":"x","input":{"text":"a"},"priority":"urgent"}`} {
		out := b.worker.Process(context.Background(), pipeline.Delivery{MessageID: "m", Payload: []byte(body), Metadata: map[string]string{}})
		if out.Retry {
			t.Fatalf("%s: %+v, want ack", body, out)
		}
		dl := receive(t, b.dead)
		if string(dl.Payload) != body || dl.Metadata.Get(messages.MetaDeadReason) == "" {
			t.Fatalf("dead letter %q %v", dl.Payload, dl.Metadata)
		}
	}
	if n := b.model.calls.Load(); n != 0 {
		t.Fatalf("model called %d times for poison messages", n)
	}
}

func TestWorkerDropsCancelledJob(t *testing.T) {
	t.Parallel()
	b := setup(t, nil)
	ctx := context.Background()
	rec, _, err := b.svc.Submit(ctx, textJob("c1"), pipeline.SubmitOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.svc.Cancel(ctx, rec.JobID, ""); err != nil {
		t.Fatal(err)
	}
	if out := b.worker.Process(ctx, jobDelivery(t, textJob("c1"))); out.Retry {
		t.Fatalf("%+v", out)
	}
	if got := getRecord(t, b, "c1"); got.Status != messages.StatusCancelled || b.model.calls.Load() != 0 {
		t.Fatalf("record %+v, model calls %d", got, b.model.calls.Load())
	}
	if _, err := b.svc.Cancel(ctx, rec.JobID, ""); !errors.Is(err, pipeline.ErrConflict) {
		t.Fatalf("second cancel: %v, want ErrConflict", err)
	}
}

func TestWorkerCancelStopsRunningJob(t *testing.T) {
	t.Parallel()
	model := &flakyModel{block: make(chan struct{})}
	b := setup(t, model)
	ctx := context.Background()
	if _, _, err := b.svc.Submit(ctx, textJob("c2"), pipeline.SubmitOptions{}); err != nil {
		t.Fatal(err)
	}
	done := make(chan pipeline.Outcome, 1)
	go func() { done <- b.worker.Process(ctx, jobDelivery(t, textJob("c2"))) }()
	waitFor(t, func() bool { return model.calls.Load() == 1 })
	if _, err := b.svc.Cancel(ctx, "c2", ""); err != nil {
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
	if got := getRecord(t, b, "c2"); got.Status != messages.StatusCancelled {
		t.Fatalf("status %s", got.Status)
	}
}

func TestWorkerShutdownHandsBackWithoutSpendingAttempt(t *testing.T) {
	t.Parallel()
	model := &flakyModel{block: make(chan struct{})}
	b := setup(t, model)
	done := make(chan pipeline.Outcome, 1)
	go func() { done <- b.worker.Process(context.Background(), jobDelivery(t, textJob("s1"))) }()
	waitFor(t, func() bool { return model.calls.Load() == 1 })
	b.worker.CancelInFlight()
	out := <-done
	if !out.Retry || out.Delay != 0 || !out.HandedBack {
		t.Fatalf("%+v, want an immediate retry marked HandedBack", out)
	}
	if rec := getRecord(t, b, "s1"); rec.Status != messages.StatusQueued || rec.Attempts != 0 {
		t.Fatalf("record %+v, want QUEUED with 0 attempts", rec)
	}
	// A delivery arriving after the hard stop goes straight back, also counted.
	if out := b.worker.Process(context.Background(), jobDelivery(t, textJob("s2"))); !out.Retry || !out.HandedBack {
		t.Fatalf("delivery after CancelInFlight: %+v, want HandedBack", out)
	}
	if n := b.worker.HandedBack(); n != 2 {
		t.Fatalf("HandedBack() = %d, want 2", n)
	}
}

func TestWorkerReplayRunsEndedJobAgain(t *testing.T) {
	t.Parallel()
	b := setup(t, nil)
	ctx := context.Background()
	b.worker.Process(ctx, jobDelivery(t, textJob("rp")))
	job := textJob("rp")
	job.ReplayName = "replay-1"
	b.worker.Process(ctx, jobDelivery(t, job))
	b.worker.Process(ctx, jobDelivery(t, job)) // the same replay delivered twice runs once
	if n := b.model.calls.Load(); n != 2 {
		t.Fatalf("model calls %d, want 2", n)
	}
	if rec := getRecord(t, b, "rp"); rec.ReplayName != "replay-1" || rec.Status != messages.StatusCompleted {
		t.Fatalf("record %+v", rec)
	}
}

func TestServiceSubmitIsIdempotentAndQueues(t *testing.T) {
	t.Parallel()
	b := setup(t, nil)
	ctx := context.Background()
	msgs, err := b.pubsub.Subscribe(ctx, testTopics.High)
	if err != nil {
		t.Fatal(err)
	}
	job := messages.Job{Task: "summarize", Input: messages.Input{Text: "x"}, Priority: messages.PriorityHigh, IdempotencyKey: "k1"}
	first, created, err := b.svc.Submit(ctx, job, pipeline.SubmitOptions{Tenant: "acme", Traceparent: "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"})
	if err != nil || !created {
		t.Fatalf("submit: %v created=%v", err, created)
	}
	again, created, err := b.svc.Submit(ctx, job, pipeline.SubmitOptions{Tenant: "acme"})
	if err != nil || created || again.JobID != first.JobID {
		t.Fatalf("resubmit: %v created=%v id %s vs %s", err, created, again.JobID, first.JobID)
	}
	msg := receive(t, msgs)
	if msg.Metadata.Get(messages.MetaJobID) != first.JobID || msg.Metadata.Get(messages.MetaTenant) != "acme" ||
		msg.Metadata.Get(messages.MetaPriority) != "high" || msg.Metadata.Get(messages.MetaTraceparent) == "" {
		t.Fatalf("metadata %v", msg.Metadata)
	}
	if _, err := b.svc.Get(ctx, first.JobID, "other"); !errors.Is(err, pipeline.ErrNotFound) {
		t.Fatalf("other tenant: %v, want ErrNotFound", err)
	}
}

func TestServiceSubmitLeavesNothingWhenQueueDown(t *testing.T) {
	t.Parallel()
	b := setup(t, nil)
	_ = b.pubsub.Close()
	job := messages.Job{JobID: "down", Task: "summarize", Input: messages.Input{Text: "x"}}
	if _, _, err := b.svc.Submit(context.Background(), job, pipeline.SubmitOptions{}); !errors.Is(err, pipeline.ErrUnavailable) {
		t.Fatalf("err %v, want ErrUnavailable", err)
	}
	if _, err := b.store.Get(context.Background(), "down"); !errors.Is(err, pipeline.ErrNotFound) {
		t.Fatalf("record left behind: %v", err)
	}
}

func TestServiceWatchEndsAtTerminalStatus(t *testing.T) {
	t.Parallel()
	b := setup(t, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	rec, _, err := b.svc.Submit(ctx, textJob("w1"), pipeline.SubmitOptions{})
	if err != nil {
		t.Fatal(err)
	}
	ch, err := b.svc.Watch(ctx, rec.JobID, "")
	if err != nil {
		t.Fatal(err)
	}
	go b.worker.Process(ctx, jobDelivery(t, textJob("w1")))
	var last messages.JobRecord
	for r := range ch {
		last = r
	}
	if last.Status != messages.StatusCompleted {
		t.Fatalf("last status %s", last.Status)
	}
	_, _ = io.Discard.Write(nil)
}

func receive(t *testing.T, ch <-chan *message.Message) *message.Message {
	t.Helper()
	select {
	case msg := <-ch:
		msg.Ack()
		return msg
	case <-time.After(5 * time.Second):
		t.Fatal("no message within 5s")
		return nil
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 5s")
		}
		time.Sleep(5 * time.Millisecond)
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
	b := setup(t, nil)
	model := &traceModel{}
	router := testPicker{pipeline.Model{Name: "m", Client: model}}
	w, err := pipeline.NewWorker(pipeline.WorkerConfig{Store: b.store, Results: b.results, Router: router, DeadLetters: b.pubsub, Topics: testTopics})
	if err != nil {
		t.Fatal(err)
	}
	const tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	d := jobDelivery(t, textJob("tp"))
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
	b := setup(t, nil)
	router := testPicker{pipeline.Model{Name: "fast", Client: b.model}}
	w, err := pipeline.NewWorker(pipeline.WorkerConfig{Store: b.store, Results: b.results, Router: router, DeadLetters: b.pubsub,
		Topics: testTopics, Decoder: pipeline.NewDecoder(s3Rules, zerolog.Nop())})
	if err != nil {
		t.Fatal(err)
	}
	if out := w.Process(context.Background(), pipeline.Delivery{MessageID: "n1", Payload: []byte(s3Notification), Metadata: map[string]string{}}); out.Retry {
		t.Fatalf("%+v", out)
	}
	jobs, _, err := b.store.List(context.Background(), pipeline.ListQuery{})
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
	b := setup(t, nil)
	router := testPicker{pipeline.Model{Name: "primary", Client: fallbackModel{}}}
	w, err := pipeline.NewWorker(pipeline.WorkerConfig{Store: b.store, Results: b.results, Router: router, DeadLetters: b.pubsub, Topics: testTopics})
	if err != nil {
		t.Fatal(err)
	}
	w.Process(context.Background(), jobDelivery(t, textJob("fb")))
	rec := getRecord(t, b, "fb")
	if rec.Model != "backup" || len(rec.Fallbacks) != 1 || rec.Fallbacks[0] != "primary" || rec.Prompt != "summarize@1.2.0" || rec.Degraded {
		t.Fatalf("record %+v", rec)
	}
}

// testPicker routes every job to its one model, and a job naming another model fails as a
// configured router fails it: permanently, with no_model.
type testPicker struct{ model pipeline.Model }

func (p testPicker) Pick(job *messages.Job) (pipeline.Model, error) {
	if job.Model != "" && job.Model != p.model.Name {
		return pipeline.Model{}, pipeline.Permanent(messages.ErrCodeNoModel, fmt.Errorf("model %q is not configured", job.Model))
	}
	return p.model, nil
}
