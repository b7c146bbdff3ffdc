package storetest

import (
	"errors"
	"fmt"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/infleet/infleet/pipeline"
)

// RunBatches runs the conformance suite of a pipeline.BatchStore. open returns two stores on
// one new, empty backing store, standing for two processes of a fleet; each subtest calls it
// once, in parallel with the others.
func RunBatches(t *testing.T, open func(t *testing.T) (a, b pipeline.BatchStore)) {
	t.Helper()
	for _, tc := range []struct {
		name string
		fn   func(t *testing.T, a, b pipeline.BatchStore)
	}{
		{"CreateGetRoundTrip", testBatchRoundTrip},
		{"CreateConflicts", testBatchConflicts},
		{"UpdateByOwnerOnly", testBatchUpdate},
		{"ClaimTakesRunOutLeases", testBatchClaim},
		{"ConcurrentClaimsTakeEachBatchOnce", testBatchClaimRacing},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			a, b := open(t)
			tc.fn(t, a, b)
		})
	}
}

var batchT0 = time.Date(2026, 1, 2, 3, 4, 5, 678901234, time.FixedZone("CET", 3600))

func newBatch(id string, created time.Time, jobs ...string) pipeline.Batch {
	return pipeline.Batch{
		ID: id, Model: "haiku", ModelID: "anthropic.claude-3-haiku", JobIDs: jobs,
		InputURI: "s3://bucket/batches/" + id + "/input.jsonl", OutputURI: "s3://bucket/batches/" + id + "/out/",
		State: pipeline.BatchSubmitting, Owner: "proc-a", LeaseUntil: created.Add(time.Minute),
		CreatedAt: created, UpdatedAt: created,
	}
}

// wantBatch is b as a store returns it: times at millisecond precision, in UTC.
func wantBatch(b pipeline.Batch) pipeline.Batch {
	ms := func(t time.Time) time.Time { return time.UnixMilli(t.UnixMilli()).UTC() }
	b.LeaseUntil, b.CreatedAt, b.UpdatedAt = ms(b.LeaseUntil), ms(b.CreatedAt), ms(b.UpdatedAt)
	return b
}

func mustGetBatch(t *testing.T, s pipeline.BatchStore, id string) pipeline.Batch {
	t.Helper()
	b, err := s.GetBatch(t.Context(), id)
	if err != nil {
		t.Fatalf("get batch %s: %v", id, err)
	}
	return b
}

func testBatchRoundTrip(t *testing.T, a, b pipeline.BatchStore) {
	ctx := t.Context()
	in := newBatch("b1", batchT0, "j3", "j1", "j2")
	if err := a.CreateBatch(ctx, in); err != nil {
		t.Fatalf("create: %v", err)
	}
	if got := mustGetBatch(t, b, "b1"); !reflect.DeepEqual(got, wantBatch(in)) {
		t.Errorf("read back from the other store:\n got %+v\nwant %+v", got, wantBatch(in))
	}
	for _, j := range in.JobIDs {
		if id, err := b.BatchOfJob(ctx, j); err != nil || id != "b1" {
			t.Errorf("batch of job %s = %q, %v; want b1", j, id, err)
		}
	}
	if _, err := b.BatchOfJob(ctx, "j9"); !errors.Is(err, pipeline.ErrNotFound) {
		t.Errorf("batch of a job in none: %v, want ErrNotFound", err)
	}
	if _, err := b.GetBatch(ctx, "nope"); !errors.Is(err, pipeline.ErrNotFound) {
		t.Errorf("get of a missing batch: %v, want ErrNotFound", err)
	}
}

func testBatchConflicts(t *testing.T, a, b pipeline.BatchStore) {
	ctx := t.Context()
	if err := a.CreateBatch(ctx, newBatch("b1", batchT0, "j1", "j2")); err != nil {
		t.Fatalf("create: %v", err)
	}
	if err := b.CreateBatch(ctx, newBatch("b1", batchT0, "j7")); !errors.Is(err, pipeline.ErrConflict) {
		t.Errorf("create of a taken id: %v, want ErrConflict", err)
	}
	if err := b.CreateBatch(ctx, newBatch("b2", batchT0, "j5", "j2", "j6")); !errors.Is(err, pipeline.ErrConflict) {
		t.Errorf("create with a job of another batch: %v, want ErrConflict", err)
	}
	if _, err := a.GetBatch(ctx, "b2"); !errors.Is(err, pipeline.ErrNotFound) {
		t.Errorf("the refused batch was recorded: %v", err)
	}
	for _, j := range []string{"j5", "j6", "j7"} {
		if id, err := a.BatchOfJob(ctx, j); !errors.Is(err, pipeline.ErrNotFound) {
			t.Errorf("job %s of a refused batch belongs to %q (%v)", j, id, err)
		}
	}
	if got := mustGetBatch(t, a, "b1"); !reflect.DeepEqual(got.JobIDs, []string{"j1", "j2"}) {
		t.Errorf("b1 holds %v after the refused creates, want [j1 j2]", got.JobIDs)
	}
	if err := b.CreateBatch(ctx, newBatch("b3", batchT0, "j5", "j6")); err != nil {
		t.Errorf("the refused batch's jobs cannot join another: %v", err)
	}
}

func testBatchUpdate(t *testing.T, a, b pipeline.BatchStore) {
	ctx := t.Context()
	in := newBatch("b1", batchT0, "j1")
	if err := a.CreateBatch(ctx, in); err != nil {
		t.Fatalf("create: %v", err)
	}
	up := in
	up.ARN, up.State, up.Status = "arn:aws:bedrock:us-east-1:0:model-invocation-job/x", pipeline.BatchSubmitted, "InProgress"
	up.LeaseUntil, up.UpdatedAt = batchT0.Add(2*time.Minute), batchT0.Add(time.Second)
	if err := b.UpdateBatch(ctx, up); err != nil {
		t.Fatalf("update by the owner: %v", err)
	}
	if got := mustGetBatch(t, a, "b1"); !reflect.DeepEqual(got, wantBatch(up)) {
		t.Errorf("after update:\n got %+v\nwant %+v", got, wantBatch(up))
	}
	other := up
	other.Owner, other.State = "proc-b", pipeline.BatchDone
	if err := a.UpdateBatch(ctx, other); !errors.Is(err, pipeline.ErrConflict) {
		t.Errorf("update by another owner: %v, want ErrConflict", err)
	}
	if got := mustGetBatch(t, a, "b1"); got.State != pipeline.BatchSubmitted {
		t.Errorf("a refused update wrote state %s", got.State)
	}
	missing := up
	missing.ID = "nope"
	if err := a.UpdateBatch(ctx, missing); !errors.Is(err, pipeline.ErrNotFound) {
		t.Errorf("update of a missing batch: %v, want ErrNotFound", err)
	}
}

func testBatchClaim(t *testing.T, a, b pipeline.BatchStore) {
	ctx := t.Context()
	older, newer, done := newBatch("b1", batchT0, "j1"), newBatch("b2", batchT0.Add(time.Second), "j2"), newBatch("b3", batchT0, "j3")
	done.State = pipeline.BatchDone
	for _, x := range []pipeline.Batch{newer, older, done} {
		if err := a.CreateBatch(ctx, x); err != nil {
			t.Fatalf("create %s: %v", x.ID, err)
		}
	}
	claim := func(s pipeline.BatchStore, owner string, now time.Time, limit int) []string {
		t.Helper()
		got, err := s.ClaimBatches(ctx, owner, now, now.Add(time.Minute), limit)
		if err != nil {
			t.Fatalf("claim by %s: %v", owner, err)
		}
		ids := []string{}
		for _, g := range got {
			if g.Owner != owner || !g.LeaseUntil.Equal(time.UnixMilli(now.Add(time.Minute).UnixMilli())) {
				t.Errorf("claimed %s shows owner %s until %s, want %s until %s", g.ID, g.Owner, g.LeaseUntil, owner, now.Add(time.Minute))
			}
			ids = append(ids, g.ID)
		}
		return ids
	}
	if got := claim(b, "proc-b", batchT0, 10); len(got) != 0 {
		t.Errorf("proc-b claimed %v while proc-a's leases run", got)
	}
	if got := claim(a, "proc-a", batchT0, 10); fmt.Sprint(got) != "[b1 b2]" {
		t.Errorf("the owner's claim = %v, want its open batches [b1 b2], oldest first", got)
	}
	later := batchT0.Add(5 * time.Minute)
	if got := claim(b, "proc-b", later, 1); fmt.Sprint(got) != "[b1]" {
		t.Errorf("a claim of 1 after the leases ran out = %v, want the oldest [b1]", got)
	}
	up := older
	up.State = pipeline.BatchEnded
	if err := a.UpdateBatch(ctx, up); !errors.Is(err, pipeline.ErrConflict) {
		t.Errorf("update by the owner whose lease was taken: %v, want ErrConflict", err)
	}
	if got := claim(b, "proc-b", later, 10); fmt.Sprint(got) != "[b1 b2]" {
		t.Errorf("a second claim = %v, want [b1 b2] (its own and the run-out one; never the DONE b3)", got)
	}
}

func testBatchClaimRacing(t *testing.T, a, b pipeline.BatchStore) {
	ctx := t.Context()
	const n = 12
	for i := range n {
		if err := a.CreateBatch(ctx, newBatch(fmt.Sprintf("b%02d", i), batchT0.Add(time.Duration(i)*time.Millisecond), fmt.Sprintf("j%02d", i))); err != nil {
			t.Fatalf("create: %v", err)
		}
	}
	later := batchT0.Add(time.Hour)
	var mu sync.Mutex
	taken := map[string]string{}
	var wg sync.WaitGroup
	for w := range 6 {
		s := a
		if w%2 == 1 {
			s = b
		}
		owner := fmt.Sprintf("proc-%d", w)
		wg.Go(func() {
			got, err := s.ClaimBatches(ctx, owner, later, later.Add(time.Hour), 2)
			if err != nil {
				t.Errorf("claim by %s: %v", owner, err)
				return
			}
			mu.Lock()
			defer mu.Unlock()
			for _, g := range got {
				if prev, ok := taken[g.ID]; ok {
					t.Errorf("batch %s claimed by %s and %s", g.ID, prev, owner)
				}
				taken[g.ID] = owner
			}
		})
	}
	wg.Wait()
	rest, err := a.ClaimBatches(ctx, "proc-z", later, later.Add(time.Hour), n)
	if err != nil {
		t.Fatalf("last claim: %v", err)
	}
	for _, g := range rest {
		if prev, ok := taken[g.ID]; ok {
			t.Errorf("batch %s claimed by %s and, while leased, by proc-z", g.ID, prev)
		}
		taken[g.ID] = "proc-z"
	}
	if len(taken) != n {
		t.Errorf("%d of %d batches claimed in all", len(taken), n)
	}
}
