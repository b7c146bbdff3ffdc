package worker_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/pubsub/gochannel"
	"github.com/rs/zerolog"

	"github.com/infleet/infleet/adapters/file"
	"github.com/infleet/infleet/adapters/sqlite"
	"github.com/infleet/infleet/internal/disktest"
	"github.com/infleet/infleet/internal/pipelinetest"
	"github.com/infleet/infleet/messages"
	"github.com/infleet/infleet/pipeline"
	"github.com/infleet/infleet/pipeline/worker"
)

// outageStore is a real SQLite job store that goes down and comes back, as a database server
// restarts: while it is down every call fails the way a closed store's does.
type outageStore struct {
	t    *testing.T
	path string
	cur  atomic.Pointer[sqlite.Store]
}

func newOutageStore(t *testing.T) *outageStore {
	o := &outageStore{t: t, path: filepath.Join(t.TempDir(), "jobs.db")}
	o.up()
	t.Cleanup(func() { _ = o.cur.Load().Close() })
	return o
}

func (o *outageStore) down() {
	if err := o.cur.Load().Close(); err != nil {
		o.t.Fatal(err)
	}
}

func (o *outageStore) up() {
	s, err := sqlite.Open(context.Background(), sqlite.Config{Path: o.path})
	if err != nil {
		o.t.Fatal(err)
	}
	o.cur.Store(s)
}

func (o *outageStore) Create(ctx context.Context, rec messages.JobRecord) (messages.JobRecord, bool, error) {
	return o.cur.Load().Create(ctx, rec)
}
func (o *outageStore) Get(ctx context.Context, id string) (messages.JobRecord, error) {
	return o.cur.Load().Get(ctx, id)
}
func (o *outageStore) Transition(ctx context.Context, id string, t pipeline.Transition) (messages.JobRecord, error) {
	return o.cur.Load().Transition(ctx, id, t)
}
func (o *outageStore) List(ctx context.Context, q pipeline.ListQuery) ([]messages.JobRecord, string, error) {
	return o.cur.Load().List(ctx, q)
}
func (o *outageStore) Delete(ctx context.Context, id string) error {
	return o.cur.Load().Delete(ctx, id)
}

// infraBundle is a worker whose store, result store and dead-letter topic a test can take away.
type infraBundle struct {
	worker  *worker.Worker
	store   pipeline.JobStore
	results *file.Store
	dead    *gochannel.GoChannel
	model   *pipelinetest.FlakyModel
	notes   *pipelinetest.Recorder
}

const infraMaxAttempts = 3

// infraBackoff is short, and wide enough to see the backoff grow.
var infraBackoff = pipeline.Backoff{Initial: time.Millisecond, Max: 16 * time.Millisecond}

func setupInfra(t *testing.T, store pipeline.JobStore, resultsDir string, model *pipelinetest.FlakyModel) *infraBundle {
	t.Helper()
	results, err := file.New(file.Config{Dir: resultsDir})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = results.Close() })
	// A dead-letter publish returns once the message is acked, as a broker's does once stored.
	dead := gochannel.NewGoChannel(gochannel.Config{Persistent: true, BlockPublishUntilSubscriberAck: true}, watermill.NopLogger{})
	t.Cleanup(func() { _ = dead.Close() })
	if model == nil {
		model = &pipelinetest.FlakyModel{}
	}
	router := pipelinetest.Picker{Model: pipeline.Model{Name: "fast", ModelID: "sim", Client: model}}
	notes := &pipelinetest.Recorder{}
	w, err := worker.New(worker.Config{
		Store: store, Results: results, Router: router, DeadLetters: dead, Topics: pipelinetest.Topics,
		Notifier: notes, Hub: pipeline.NewHub(), MaxAttempts: infraMaxAttempts, Backoff: infraBackoff,
		Logger: zerolog.New(zerolog.NewTestWriter(t)),
	})
	if err != nil {
		t.Fatal(err)
	}
	return &infraBundle{worker: w, store: store, results: results, dead: dead, model: model, notes: notes}
}

func (b *infraBundle) record(t *testing.T, id string) messages.JobRecord {
	t.Helper()
	rec, err := b.store.Get(context.Background(), id)
	if err != nil {
		t.Fatalf("get %s: %v", id, err)
	}
	return rec
}

// wantInfraRetry checks that out asks for the delivery again, uncharged, within the backoff.
func wantInfraRetry(t *testing.T, out worker.Outcome) {
	t.Helper()
	if !out.Retry || out.Reason != messages.ErrCodeInfrastructure || out.Delay < 0 || out.Delay > infraBackoff.Max {
		t.Fatalf("outcome %+v, want a retry for %s within %s", out, messages.ErrCodeInfrastructure, infraBackoff.Max)
	}
}

// TestWorkerFullResultStoreIsNotChargedToTheModel runs a job whose result cannot be written
// (the result store is on a full tmpfs) more times than it has attempts: every delivery is
// handed back uncounted with an infrastructure error, never failed nor dead-lettered, and the
// job completes on its first counted attempt once space is freed.
func TestWorkerFullResultStoreIsNotChargedToTheModel(t *testing.T) {
	t.Parallel()
	mnt := disktest.Mount(t, "2m")
	store, err := sqlite.Open(context.Background(), sqlite.Config{Path: filepath.Join(t.TempDir(), "jobs.db")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = store.Close() })
	b := setupInfra(t, store, filepath.Join(mnt, "results"), nil)
	filler := disktest.Fill(t, mnt)

	d := pipelinetest.JobDelivery(t, pipelinetest.TextJob("full"))
	for i := range 2 * infraMaxAttempts {
		wantInfraRetry(t, b.worker.Process(context.Background(), d))
		rec := b.record(t, "full")
		if rec.Status != messages.StatusQueued || rec.Attempts != 0 || rec.Error == nil ||
			rec.Error.Code != messages.ErrCodeInfrastructure || !strings.Contains(rec.Error.Message, "space") {
			t.Fatalf("after full-disk delivery %d: %+v (error %+v), want QUEUED, 0 attempts, %s", i+1, rec, rec.Error, messages.ErrCodeInfrastructure)
		}
	}
	if got := b.notes.Types(); len(got) != 0 {
		t.Fatalf("events %v while the job waits for space", got)
	}
	assertNoDeadLetter(t, b.dead)

	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	if out := b.worker.Process(context.Background(), d); out.Retry {
		t.Fatalf("once space returned: %+v, want ack", out)
	}
	rec := b.record(t, "full")
	if rec.Status != messages.StatusCompleted || rec.Attempts != 1 || rec.Error != nil {
		t.Fatalf("record %+v, want COMPLETED after 1 attempt", rec)
	}
	assertNoTempFilesIn(t, b.results.Dir())
}

// TestWorkerStoreOutageDoesNotSpendAttempts takes the job store down while a job runs: the
// completion cannot be recorded, nor can the attempt be handed back, so the worker owes it;
// deliveries during the outage are retried with a growing backoff and record nothing; once the
// store is back the job completes having spent one attempt.
func TestWorkerStoreOutageDoesNotSpendAttempts(t *testing.T) {
	t.Parallel()
	store := newOutageStore(t)
	model := &pipelinetest.FlakyModel{Block: make(chan struct{})}
	b := setupInfra(t, store, t.TempDir(), model)
	d := pipelinetest.JobDelivery(t, pipelinetest.TextJob("outage"))

	done := make(chan worker.Outcome, 1)
	go func() { done <- b.worker.Process(context.Background(), d) }()
	pipelinetest.WaitFor(t, func() bool { return model.Calls.Load() == 1 })
	store.down()
	close(model.Block)
	wantInfraRetry(t, <-done)

	var longest time.Duration
	for range 24 {
		out := b.worker.Process(context.Background(), d)
		wantInfraRetry(t, out)
		longest = max(longest, out.Delay)
	}
	if longest <= infraBackoff.Initial {
		t.Fatalf("longest delay %s over 24 failures in a row: the backoff does not grow", longest)
	}
	if n := model.Calls.Load(); n != 1 {
		t.Fatalf("model called %d times while the store was down, want 1", n)
	}

	store.up()
	if out := b.worker.Process(context.Background(), d); out.Retry {
		t.Fatalf("store back: %+v, want ack", out)
	}
	rec := b.record(t, "outage")
	if rec.Status != messages.StatusCompleted || rec.Attempts != 1 {
		t.Fatalf("record %+v, want COMPLETED after 1 attempt", rec)
	}
}

// TestWorkerFailsJobWhenDeadLetterTopicIsDown spends a job's attempts while the dead-letter
// topic cannot take messages: the job still ends FAILED with its reason, the delivery is
// acknowledged, and the attempts recorded are the attempts made.
func TestWorkerFailsJobWhenDeadLetterTopicIsDown(t *testing.T) {
	t.Parallel()
	store := newOutageStore(t)
	b := setupInfra(t, store, t.TempDir(), &pipelinetest.FlakyModel{Fails: 100, Err: errors.New("model down")})
	if err := b.dead.Close(); err != nil {
		t.Fatal(err)
	}
	d := pipelinetest.JobDelivery(t, pipelinetest.TextJob("nodlq"))
	for i := range infraMaxAttempts - 1 {
		if out := b.worker.Process(context.Background(), d); !out.Retry {
			t.Fatalf("attempt %d: %+v, want retry", i+1, out)
		}
	}
	if out := b.worker.Process(context.Background(), d); out.Retry {
		t.Fatalf("last attempt with the dead-letter topic down: %+v, want ack", out)
	}
	rec := b.record(t, "nodlq")
	if rec.Status != messages.StatusFailed || rec.Attempts != infraMaxAttempts || rec.Error == nil ||
		rec.Error.Code != messages.ErrCodeModelError || !strings.Contains(rec.Error.Message, "infleet replay --job nodlq") {
		t.Fatalf("record %+v (error %+v), want FAILED after %d attempts saying how to run it again", rec, rec.Error, infraMaxAttempts)
	}
	if got := b.notes.Types(); len(got) != 1 || got[0] != messages.EventFailed {
		t.Fatalf("events %v", got)
	}
	if out := b.worker.Process(context.Background(), d); out.Retry || b.record(t, "nodlq").Attempts != infraMaxAttempts {
		t.Fatalf("a late duplicate changed the ended job: %+v", out)
	}
}

// TestWorkerEndsJobDeliveredPastItsAttempts delivers a job whose attempts were all spent
// without the last outcome recorded (its worker died): it ends FAILED with
// attempts_exhausted and max_attempts attempts, without a model call, even when the
// dead-letter topic is down.
func TestWorkerEndsJobDeliveredPastItsAttempts(t *testing.T) {
	t.Parallel()
	store := newOutageStore(t)
	b := setupInfra(t, store, t.TempDir(), nil)
	ctx := context.Background()
	d := pipelinetest.JobDelivery(t, pipelinetest.TextJob("past"))
	if _, _, err := store.Create(ctx, messages.JobRecord{JobID: "past", Status: messages.StatusQueued, Task: "summarize",
		Priority: messages.PriorityNormal, CreatedAt: time.Now(), UpdatedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	for range infraMaxAttempts { // each a worker that claimed the job and died
		if _, err := store.Transition(ctx, "past", pipeline.Transition{To: messages.StatusProcessing, AttemptsDelta: 1}); err != nil {
			t.Fatal(err)
		}
	}
	if err := b.dead.Close(); err != nil {
		t.Fatal(err)
	}
	if out := b.worker.Process(ctx, d); out.Retry {
		t.Fatalf("%+v, want ack", out)
	}
	rec := b.record(t, "past")
	if rec.Status != messages.StatusFailed || rec.Attempts != infraMaxAttempts || rec.Error == nil ||
		rec.Error.Code != messages.ErrCodeAttemptsExceeded {
		t.Fatalf("record %+v (error %+v), want FAILED, %s, %d attempts", rec, rec.Error, messages.ErrCodeAttemptsExceeded, infraMaxAttempts)
	}
	if n := b.model.Calls.Load(); n != 0 {
		t.Fatalf("model called %d times for a job past its attempts", n)
	}
}

// TestWorkerJobPastItsAttemptsDoesNotGrowWhileStoreIsDown takes the store down between the
// admission of a job past its attempts and the write that ends it: the delivery is retried,
// and the retries add no attempts; when the store is back the job ends with max_attempts.
func TestWorkerJobPastItsAttemptsDoesNotGrowWhileStoreIsDown(t *testing.T) {
	t.Parallel()
	store := newOutageStore(t)
	b := setupInfra(t, store, t.TempDir(), nil)
	ctx := context.Background()
	if _, _, err := store.Create(ctx, messages.JobRecord{JobID: "grow", Status: messages.StatusQueued, Task: "summarize",
		Priority: messages.PriorityNormal, CreatedAt: time.Now(), UpdatedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	if _, err := store.Transition(ctx, "grow", pipeline.Transition{To: messages.StatusProcessing, AttemptsDelta: infraMaxAttempts}); err != nil {
		t.Fatal(err)
	}
	dead, err := b.dead.Subscribe(ctx, pipelinetest.Topics.Dead)
	if err != nil {
		t.Fatal(err)
	}
	d := pipelinetest.JobDelivery(t, pipelinetest.TextJob("grow"))
	outs := make(chan worker.Outcome, 1)
	go func() { outs <- b.worker.Process(ctx, d) }()
	// The dead-letter publish is the step between admission and the final write: the worker
	// waits for its ack, and the store goes down meanwhile.
	msg := <-dead
	store.down()
	msg.Ack()
	wantInfraRetry(t, <-outs)
	for range 3 {
		wantInfraRetry(t, b.worker.Process(ctx, d))
	}
	store.up()
	go func() { outs <- b.worker.Process(ctx, d) }()
	msg = <-dead
	if rec := b.record(t, "grow"); rec.Attempts != infraMaxAttempts+1 {
		t.Fatalf("attempts %d after deliveries during the outage, want %d: they must not grow", rec.Attempts, infraMaxAttempts+1)
	}
	msg.Ack()
	if out := <-outs; out.Retry {
		t.Fatalf("store back: %+v, want ack", out)
	}
	rec := b.record(t, "grow")
	if rec.Status != messages.StatusFailed || rec.Attempts != infraMaxAttempts || rec.Error.Code != messages.ErrCodeAttemptsExceeded {
		t.Fatalf("record %+v, want FAILED with %d attempts", rec, infraMaxAttempts)
	}
}

// TestWorkerKeepsPoisonMessageWhileDeadLetterTopicIsDown: a message that can never become a
// job has no record to keep its reason, so it is delivered again, with a growing backoff,
// until the dead-letter topic takes it.
func TestWorkerKeepsPoisonMessageWhileDeadLetterTopicIsDown(t *testing.T) {
	t.Parallel()
	b := setupInfra(t, newOutageStore(t), t.TempDir(), nil)
	if err := b.dead.Close(); err != nil {
		t.Fatal(err)
	}
	d := worker.Delivery{MessageID: "poison", Payload: []byte("not json"), Metadata: map[string]string{}}
	for range 3 {
		wantInfraRetry(t, b.worker.Process(context.Background(), d))
	}
}

func assertNoDeadLetter(t *testing.T, pubsub *gochannel.GoChannel) {
	t.Helper()
	ch, err := pubsub.Subscribe(context.Background(), pipelinetest.Topics.Dead)
	if err != nil {
		t.Fatal(err)
	}
	select {
	case msg := <-ch:
		t.Fatalf("dead letter %s %v", msg.Payload, msg.Metadata)
	case <-time.After(50 * time.Millisecond):
	}
}

func assertNoTempFilesIn(t *testing.T, dir string) {
	t.Helper()
	err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() && strings.HasPrefix(d.Name(), ".infleet-tmp-") {
			t.Errorf("temporary file left behind: %s", p)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
