// Package pipelinetest is the fixture the tests of the pipeline's parts share: a worker and an
// intake service over a real SQLite job store, a file result store and an in-memory queue; a
// model that fails or blocks on demand; a notifier that records; topics; and the waits those
// tests need. Only tests import it.
package pipelinetest

import (
	"context"
	"encoding/json"
	"fmt"
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
	"github.com/infleet/infleet/pipeline/intake"
	"github.com/infleet/infleet/pipeline/worker"
)

// Topics are the test topics of every priority and of the dead letters.
var Topics = pipeline.Topics{High: "t.high", Normal: "t.normal", Low: "t.low", Dead: "t.dead"}

// FlakyModel fails its first Fails calls with Err, then answers like sim. With Block set, each
// call waits for Block to close (or its context to end) first. Calls counts the calls. Safe for
// concurrent use.
type FlakyModel struct {
	Fails int32
	Err   error
	Calls atomic.Int32
	Block chan struct{}
}

// Invoke implements pipeline.ModelClient.
func (m *FlakyModel) Invoke(ctx context.Context, req pipeline.ModelRequest) (pipeline.ModelResponse, error) {
	n := m.Calls.Add(1)
	if m.Block != nil {
		select {
		case <-m.Block:
		case <-ctx.Done():
			return pipeline.ModelResponse{}, ctx.Err()
		}
	}
	if n <= m.Fails {
		return pipeline.ModelResponse{}, m.Err
	}
	return sim.New(sim.Config{}).Invoke(ctx, req)
}

// Recorder is a Notifier that keeps what it was given. Safe for concurrent use.
type Recorder struct {
	mu     sync.Mutex
	events []messages.Event
}

// Notify implements pipeline.Notifier.
func (r *Recorder) Notify(_ context.Context, n pipeline.Notification) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, n.Event)
	return nil
}

// Types returns the types of the events received, in order.
func (r *Recorder) Types() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for _, e := range r.events {
		out = append(out, e.Type)
	}
	return out
}

// Picker routes every job to its one model, and a job naming another model fails as a
// configured router fails it: permanently, with no_model.
type Picker struct{ Model pipeline.Model }

// Pick implements pipeline.ModelPicker.
func (p Picker) Pick(job *messages.Job) (pipeline.Model, error) {
	if job.Model != "" && job.Model != p.Model.Name {
		return pipeline.Model{}, pipeline.Permanent(messages.ErrCodeNoModel, fmt.Errorf("model %q is not configured", job.Model))
	}
	return p.Model, nil
}

// Bundle is a worker and an intake service sharing their stores, queue, hub and notifier.
type Bundle struct {
	Worker  *worker.Worker
	Service *intake.Service
	Store   *sqlite.Store
	Results *file.Store
	// Dead receives what the worker dead-letters.
	Dead   <-chan *message.Message
	Notes  *Recorder
	Model  *FlakyModel
	PubSub *gochannel.GoChannel
}

// Setup returns a Bundle over new stores in a temporary directory whose worker calls model
// (a new FlakyModel when nil) as "fast", gives each job 3 attempts and backs off for at most
// 2ms. The job store and the queue are closed at cleanup.
func Setup(t testing.TB, model *FlakyModel) *Bundle {
	t.Helper()
	return SetupWith(t, model, nil)
}

// SetupWith is Setup with configure, when not nil, changing the worker's Config before the
// worker is made.
func SetupWith(t testing.TB, model *FlakyModel, configure func(*worker.Config)) *Bundle {
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
	dead, err := pubsub.Subscribe(ctx, Topics.Dead)
	if err != nil {
		t.Fatal(err)
	}
	if model == nil {
		model = &FlakyModel{}
	}
	router := Picker{Model: pipeline.Model{Name: "fast", ModelID: "sim", Client: model}}
	notes := &Recorder{}
	hub := pipeline.NewHub()
	cfg := worker.Config{
		Store: store, Results: results, Router: router, DeadLetters: pubsub, Topics: Topics,
		Notifier: notes, Hub: hub, MaxAttempts: 3,
		Backoff: pipeline.Backoff{Initial: time.Millisecond, Max: 2 * time.Millisecond},
		Logger:  zerolog.New(zerolog.NewTestWriter(t)),
	}
	if configure != nil {
		configure(&cfg)
	}
	w, err := worker.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	svc, err := intake.New(intake.Config{
		Store: store, Results: results, Publisher: pubsub, Topics: Topics, Hub: hub, Notifier: notes,
	})
	if err != nil {
		t.Fatal(err)
	}
	return &Bundle{Worker: w, Service: svc, Store: store, Results: results, Dead: dead, Notes: notes, Model: model, PubSub: pubsub}
}

// Record returns the stored record of job id, failing the test when there is none.
func (b *Bundle) Record(t *testing.T, id string) messages.JobRecord {
	t.Helper()
	rec, err := b.Store.Get(context.Background(), id)
	if err != nil {
		t.Fatalf("get %s: %v", id, err)
	}
	return rec
}

// JobDelivery is job as a transport delivers its message.
func JobDelivery(t testing.TB, job messages.Job) worker.Delivery {
	t.Helper()
	body, err := json.Marshal(job)
	if err != nil {
		t.Fatal(err)
	}
	return worker.Delivery{MessageID: job.JobID, Payload: body, Metadata: map[string]string{messages.MetaJobID: job.JobID}}
}

// TextJob is a summarize job with id and a short text input.
func TextJob(id string) messages.Job {
	return messages.Job{JobID: id, Task: "summarize", Input: messages.Input{Text: "The quick brown fox jumps over the lazy dog."}}
}

// Receive takes the next message from ch and acks it, failing the test after 5s.
func Receive(t *testing.T, ch <-chan *message.Message) *message.Message {
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

// WaitFor polls cond until it holds, failing the test after 5s.
func WaitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 5s")
		}
		time.Sleep(5 * time.Millisecond)
	}
}
