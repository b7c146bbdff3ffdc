package batchinf_test

import (
	"context"
	"errors"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/infleet/infleet/adapters/sqlite"
	"github.com/infleet/infleet/messages"
	"github.com/infleet/infleet/pipeline"
	"github.com/infleet/infleet/pipeline/batchinf"
)

// unreachable is a Provider for collections that must never reach the provider.
type unreachable struct{ t *testing.T }

func (u unreachable) WriteInput(context.Context, string, []batchinf.Record) error {
	u.t.Error("a group below min_records reached the provider")
	return errors.New("unreachable")
}
func (u unreachable) Create(context.Context, pipeline.Batch) (string, error) { return "", nil }
func (u unreachable) Status(context.Context, string) (string, string, error) {
	return "", "", nil
}
func (u unreachable) ReadOutput(context.Context, pipeline.Batch) (map[string]batchinf.Output, error) {
	return nil, nil
}

func setup(t *testing.T, minRecords int) *batchinf.Batches {
	t.Helper()
	store, err := sqlite.Open(t.Context(), sqlite.Config{Path: filepath.Join(t.TempDir(), "jobs.db")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = store.Close() })
	b, err := batchinf.New(batchinf.Config{Store: store, Jobs: store, Provider: unreachable{t}, Model: "haiku", ModelID: "m",
		Tasks: []string{"bulk"}, Priority: messages.PriorityLow, MinRecords: minRecords, MaxWait: 50 * time.Millisecond, Bucket: "b"})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestTakes(t *testing.T) {
	t.Parallel()
	b := setup(t, 2)
	for _, tc := range []struct {
		job  messages.Job
		want bool
	}{
		{messages.Job{Task: "bulk"}, true},
		{messages.Job{Task: "other", Priority: messages.PriorityLow}, true},
		{messages.Job{Task: "other"}, false},
		{messages.Job{Task: "bulk", Model: "fast"}, false},
		{messages.Job{Task: "bulk", ReplayName: "r1"}, false},
	} {
		if got := b.Takes(&tc.job); got != tc.want {
			t.Errorf("Takes(%+v) = %v, want %v", tc.job, got, tc.want)
		}
	}
}

// A group smaller than min_records at max_wait goes on demand, and a job added twice counts
// once: two deliveries of one job never make two records.
func TestTooFewRunOnDemandAndDuplicatesCountOnce(t *testing.T) {
	t.Parallel()
	b := setup(t, 2)
	req := pipeline.ModelRequest{Messages: []messages.ChatMessage{{Role: "user", Content: "hi"}}}
	var wg sync.WaitGroup
	errs := make([]error, 2)
	for i := range errs {
		wg.Go(func() { errs[i] = b.Add(t.Context(), "job-1", req) })
	}
	wg.Wait()
	for i, err := range errs {
		if !errors.Is(err, batchinf.ErrTooFew) {
			t.Errorf("add %d: %v, want ErrTooFew", i, err)
		}
	}
	if held, err := b.Holds(t.Context(), "job-1"); err != nil || held {
		t.Errorf("Holds after a group went on demand = %v, %v", held, err)
	}
}
