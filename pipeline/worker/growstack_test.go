package worker_test

import (
	"context"
	"io"
	"maps"
	"runtime/debug"
	"strconv"
	"sync"
	"testing"
	"time"
	"unsafe"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/rs/zerolog"

	"github.com/infleet/infleet/adapters/sim"
	"github.com/infleet/infleet/handlers"
	"github.com/infleet/infleet/internal/pipelinetest"
	"github.com/infleet/infleet/messages"
	"github.com/infleet/infleet/pipeline/models"
	"github.com/infleet/infleet/pipeline/worker"
)

// A job's run through Process fits in the stack growStack reserves: once it has grown, the
// goroutine's stack is never copied again during the run (a copy moves every local, so the
// address of one taken before and after Process differs when the stack grew). GC is off for
// the test, since a collection may shrink a parked goroutine's stack, which copies it too.
func TestJobRunFitsTheStackReserve(t *testing.T) {
	defer debug.SetGCPercent(debug.SetGCPercent(-1))
	// At the level a deployment logs at: the test's own log writer goes deep.
	b := pipelinetest.SetupWith(t, nil, func(c *worker.Config) {
		c.Logger = zerolog.New(io.Discard).Level(zerolog.InfoLevel)
	})
	// The first job also runs what runs once in a process (first uses of lazily built
	// tables); it is not what the reserve is sized for.
	if out := b.Worker.Process(context.Background(), pipelinetest.JobDelivery(t, pipelinetest.TextJob("first"))); out.Retry {
		t.Fatalf("first job: outcome %+v, want ack", out)
	}
	for i, job := range []string{"j1", "j2", "j3"} {
		d := pipelinetest.JobDelivery(t, pipelinetest.TextJob(job))
		moved := make(chan bool)
		go func() {
			worker.GrowStack()
			var marker byte
			before := uintptr(unsafe.Pointer(&marker))
			out := b.Worker.Process(context.Background(), d)
			if out.Retry {
				t.Errorf("job %d: outcome %+v, want ack", i, out)
			}
			moved <- uintptr(unsafe.Pointer(&marker)) != before
		}()
		if <-moved {
			t.Errorf("job %d: the goroutine's stack grew while the job ran; raise stackReserve", i)
		}
	}
}

// TestJobRunThroughTheRouterFitsTheStackReserve is TestJobRunFitsTheStackReserve with the job
// run as a deployment runs it, which goes deeper: delivered by Watermill's router through the
// job handler and its middleware, through the model fleet, on its message's first delivery
// with its claim deferred.
func TestJobRunThroughTheRouterFitsTheStackReserve(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector deepens every frame; the reserve is sized for builds without it")
	}
	defer debug.SetGCPercent(debug.SetGCPercent(-1))
	fleet, err := models.NewFleet(models.FleetConfig{Models: []models.ModelSpec{
		{Name: "fast", ModelID: "fast", Client: sim.New(sim.Config{})}}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = fleet.Close(context.Background()) })
	routing, err := models.CompileRouting(models.RoutingSpec{Routes: map[string]string{"default": "fast"}}, fleet.Has)
	if err != nil {
		t.Fatal(err)
	}
	b := pipelinetest.SetupWith(t, nil, func(c *worker.Config) {
		c.Logger = zerolog.New(io.Discard).Level(zerolog.InfoLevel)
		c.Router = models.NewPicker(fleet, routing)
		c.ClaimAfter = time.Minute
	})
	// The worker reads the store's cancel log on a job's goroutine once it is older than 20 ms,
	// a read deeper than any job (one job in hundreds at full load): it is read here only for
	// the first job, which is not checked.
	worker.SetCancelRefresh(b.Worker, time.Hour)
	router, err := message.NewRouter(message.RouterConfig{}, watermill.NopLogger{})
	if err != nil {
		t.Fatal(err)
	}
	const jobs = 4 // the first also runs what runs once in a process; it is not checked
	var (
		mu    sync.Mutex
		ran   int
		grown []int
	)
	done := make(chan struct{})
	finished := make(chan struct{}, jobs)
	router.AddMiddleware(handlers.Recoverer, func(h message.HandlerFunc) message.HandlerFunc {
		return func(msg *message.Message) ([]*message.Message, error) {
			worker.GrowStack()
			var marker byte
			before := uintptr(unsafe.Pointer(&marker))
			out, err := h(msg)
			moved := uintptr(unsafe.Pointer(&marker)) != before
			mu.Lock()
			defer mu.Unlock()
			if moved && ran > 0 {
				grown = append(grown, ran)
			}
			if ran++; ran == jobs {
				close(done)
			}
			finished <- struct{}{}
			return out, err
		}
	})
	topic := pipelinetest.Topics.Normal
	router.AddConsumerHandler("jobs", topic, b.PubSub, handlers.JobHandler(b.Worker))
	go func() { _ = router.Run(context.Background()) }()
	t.Cleanup(func() { _ = router.Close() })
	<-router.Running()
	for i := range jobs {
		// One at a time, each published once the one before ran, so that each runs alone on a
		// goroutine of its own with a fresh stack.
		d := pipelinetest.JobDelivery(t, pipelinetest.TextJob("routed-"+strconv.Itoa(i)))
		msg := message.NewMessage(d.MessageID, d.Payload)
		maps.Copy(msg.Metadata, d.Metadata)
		msg.Metadata.Set(messages.MetaDeliveryCount, "1")
		if err := b.PubSub.Publish(topic, msg); err != nil {
			t.Fatal(err)
		}
		select {
		case <-finished:
		case <-time.After(10 * time.Second):
			t.Fatalf("job %d did not run", i)
		}
	}
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("the jobs did not all run")
	}
	mu.Lock()
	defer mu.Unlock()
	if len(grown) > 0 {
		t.Errorf("jobs %v: the goroutine's stack grew while the job ran; raise stackReserve", grown)
	}
}
