package pipeline_test

import (
	"context"
	"errors"
	"sync"
	"testing"

	"github.com/infleet/infleet/messages"
	"github.com/infleet/infleet/pipeline"
)

// recordingSink keeps the job ids it was told about and answers with err.
type recordingSink struct {
	mu   sync.Mutex
	seen []string
	err  error
}

func (r *recordingSink) Notify(_ context.Context, n pipeline.Notification) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.seen = append(r.seen, n.Event.JobID)
	return r.err
}

func TestNotifiersDeliverToEverySinkDespiteFailures(t *testing.T) {
	t.Parallel()
	boom := errors.New("sns unreachable")
	a, b, c := &recordingSink{}, &recordingSink{err: boom}, &recordingSink{}
	ns := pipeline.Notifiers{a, nil, b, c}
	err := ns.Notify(context.Background(), pipeline.Notification{Event: messages.Event{JobID: "j1"}})
	if !errors.Is(err, boom) {
		t.Fatalf("Notify = %v, want the failing sink's error", err)
	}
	for i, s := range []*recordingSink{a, b, c} {
		if len(s.seen) != 1 || s.seen[0] != "j1" {
			t.Errorf("sink %d saw %v, want [j1]", i, s.seen)
		}
	}
	if err := (pipeline.Notifiers{a}).Notify(context.Background(), pipeline.Notification{Event: messages.Event{JobID: "j2"}}); err != nil {
		t.Fatalf("one healthy sink: %v", err)
	}
	if err := (pipeline.Notifiers{}).Notify(context.Background(), pipeline.Notification{}); err != nil {
		t.Fatalf("no sinks: %v", err)
	}
}
