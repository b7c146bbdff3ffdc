package worker_test

import (
	"context"
	"io"
	"runtime/debug"
	"testing"
	"unsafe"

	"github.com/rs/zerolog"

	"github.com/infleet/infleet/internal/pipelinetest"
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
