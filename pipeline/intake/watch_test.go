package intake_test

import (
	"context"
	"io"
	"testing"
	"time"

	"github.com/infleet/infleet/internal/pipelinetest"
	"github.com/infleet/infleet/messages"
	"github.com/infleet/infleet/pipeline/intake"
)

func TestServiceWatchEndsAtTerminalStatus(t *testing.T) {
	t.Parallel()
	b := pipelinetest.Setup(t, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	rec, _, err := b.Service.Submit(ctx, pipelinetest.TextJob("w1"), intake.SubmitOptions{})
	if err != nil {
		t.Fatal(err)
	}
	ch, err := b.Service.Watch(ctx, rec.JobID, "")
	if err != nil {
		t.Fatal(err)
	}
	go b.Worker.Process(ctx, pipelinetest.JobDelivery(t, pipelinetest.TextJob("w1")))
	var last messages.JobRecord
	for r := range ch {
		last = r
	}
	if last.Status != messages.StatusCompleted {
		t.Fatalf("last status %s", last.Status)
	}
	_, _ = io.Discard.Write(nil)
}
