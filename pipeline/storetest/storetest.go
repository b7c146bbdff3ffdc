// Package storetest is the conformance suite for pipeline.JobStore. Every store (SQLite,
// DynamoDB, Postgres...) runs the same suite so that the pipeline can rely on one behaviour:
//
//	func TestStore(t *testing.T) {
//		storetest.Run(t, func(t *testing.T) pipeline.JobStore { return openStore(t) })
//	}
//
// The suite checks what pipeline.JobStore promises and the few things every store must agree
// on beyond it: times are kept at millisecond precision and returned in UTC; List pages newest
// first by created_at, then job_id, and the pages cover every job exactly once; a Transition
// writes, field by field, what pipeline.Transition.Apply makes of the record, whether the store
// calls Apply or says the same in its own query language. A store that is a pipeline.Expirer
// also runs the DeleteFinishedBefore tests, one that is a pipeline.StatsReader the JobStats test,
// one that is a pipeline.CancelFinder the CancelledAmong test, and one that is a
// pipeline.Outbox the Outbox tests; others skip them.
package storetest

import (
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/infleet/infleet/messages"
	"github.com/infleet/infleet/pipeline"
)

// Run runs the conformance suite. newStore must return a new, empty store for each call and
// arrange its cleanup with t.Cleanup; subtests call it in parallel.
func Run(t *testing.T, newStore func(t *testing.T) pipeline.JobStore) {
	t.Helper()
	tests := []struct {
		name string
		fn   func(t *testing.T, s pipeline.JobStore)
	}{
		{"CreateGetRoundTrip", testCreateGetRoundTrip},
		{"CreateMinimalRecord", testCreateMinimalRecord},
		{"CreateExistingJobID", testCreateExistingJobID},
		{"CreateIdempotencyKey", testCreateIdempotencyKey},
		{"CreateRacingSameKey", testCreateRacingSameKey},
		{"CreateRacingSameJob", testCreateRacingSameJob},
		{"KeyLookup", testKeyLookup},
		{"TransitionFrom", testTransitionFrom},
		{"TransitionEmptyFrom", testTransitionEmptyFrom},
		{"TransitionFields", testTransitionFields},
		{"TransitionAttempts", testTransitionAttempts},
		{"TransitionError", testTransitionError},
		{"TransitionRacing", testTransitionRacing},
		{"TransitionMatchesApply", testTransitionMatchesApply},
		{"NotFound", testNotFound},
		{"ListEmpty", testListEmpty},
		{"ListOrderAndPages", testListOrderAndPages},
		{"ListFilters", testListFilters},
		{"ListDefaultLimit", testListDefaultLimit},
		{"ListInvalidCursor", testListInvalidCursor},
		{"Delete", testDelete},
		{"TransitionRacingDelete", testTransitionRacingDelete},
		{"DeleteFinishedBefore", testDeleteFinishedBefore},
		{"DeleteFinishedBeforeRacing", testDeleteFinishedBeforeRacing},
		{"JobStats", testJobStats},
		{"CancelledAmong", testCancelledAmong},
		{"CancelWins", testCancelWins},
		{"OutboxEvents", testOutboxEvents},
		{"OutboxOrder", testOutboxOrder},
		{"OutboxLease", testOutboxLease},
		{"OutboxRacingClaims", testOutboxRacingClaims},
		{"OutboxRacingTransitions", testOutboxRacingTransitions},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.fn(t, newStore(t))
		})
	}
}

// base is a time with nanoseconds and a zone, so that stores must truncate and convert.
var base = time.Date(2025, 3, 4, 5, 6, 7, 123456789, time.FixedZone("CET", 3600))

// fullRecord returns a record with every field set.
func fullRecord(id string) messages.JobRecord {
	temp := 0.2
	spec, _ := json.Marshal(messages.Job{
		JobID: id, Task: "summarize", Input: messages.Input{Text: "some text"},
		Params: &messages.Params{MaxTokens: 64, Temperature: &temp}, Priority: messages.PriorityHigh,
		Metadata: json.RawMessage(`{"a":[1,2]}`), IdempotencyKey: "key-" + id,
	})
	return messages.JobRecord{
		JobID:     id,
		Status:    messages.StatusQueued,
		Task:      "summarize",
		Priority:  messages.PriorityHigh,
		Model:     "fast",
		Attempts:  2,
		CreatedAt: base,
		UpdatedAt: base.Add(1500 * time.Microsecond),
		Usage:     &messages.Usage{InputTokens: 11, OutputTokens: 22},
		Guardrail: &messages.GuardrailReport{
			Action: messages.GuardActionAnonymized,
			Input:  []messages.Assessment{{Policy: "pii", Type: "EMAIL", Matches: 2, Action: messages.GuardActionAnonymized}},
			Output: []messages.Assessment{{Policy: "words", Type: "CUSTOM", Matches: 1, Action: messages.GuardActionNone}},
		},
		Error:      &messages.JobError{Code: messages.ErrCodeModelError, Message: "upstream said 500"},
		ResultURL:  "/v1/jobs/" + id + "/result",
		ReplayName: "replay-1",
		Degraded:   true,
		Fallbacks:  []string{"main", "backup"},
		Prompt:     "summarize@1.2.0",
		BatchJob:   "arn:aws:bedrock:us-east-1:000000000000:model-invocation-job/b1",
		BatchInference: &messages.BatchInference{State: messages.BatchRunning, BatchID: "b1",
			JobARN: "arn:aws:bedrock:us-east-1:000000000000:model-invocation-job/b1", Status: "InProgress"},
		Tenant:         "acme",
		IdempotencyKey: "key-" + id,
		Spec:           spec,
	}
}

// queued returns a fresh QUEUED record with the fields intake sets.
func queued(id string, created time.Time) messages.JobRecord {
	return messages.JobRecord{
		JobID:     id,
		Status:    messages.StatusQueued,
		Task:      "summarize",
		Priority:  messages.PriorityNormal,
		CreatedAt: created,
		UpdatedAt: created,
		Tenant:    "acme",
		Spec:      json.RawMessage(`{"job_id":"` + id + `","task":"summarize","input":{"text":"x"}}`),
	}
}

// normalized returns rec as a store returns it: times at millisecond precision in UTC.
func normalized(rec messages.JobRecord) messages.JobRecord {
	rec.CreatedAt = ms(rec.CreatedAt)
	rec.UpdatedAt = ms(rec.UpdatedAt)
	return rec
}

func ms(t time.Time) time.Time { return time.UnixMilli(t.UnixMilli()).UTC() }

// requireRecord fails t unless got equals want field by field; Spec compares as JSON and
// times must be equal instants in UTC.
func requireRecord(t *testing.T, want, got messages.JobRecord) {
	t.Helper()
	if diff := recordDiff(want, got); diff != "" {
		t.Fatalf("record %s differs:\n%s", want.JobID, diff)
	}
}

func recordDiff(want, got messages.JobRecord) string {
	var b strings.Builder
	for _, tm := range []struct {
		name      string
		want, got time.Time
	}{{"CreatedAt", want.CreatedAt, got.CreatedAt}, {"UpdatedAt", want.UpdatedAt, got.UpdatedAt}} {
		if !tm.want.Equal(tm.got) {
			fmt.Fprintf(&b, "  %s: want %s, got %s\n", tm.name, tm.want.Format(time.RFC3339Nano), tm.got.Format(time.RFC3339Nano))
		}
		if tm.got.Location() != time.UTC {
			fmt.Fprintf(&b, "  %s: location %s, want UTC\n", tm.name, tm.got.Location())
		}
	}
	if !jsonEqual(want.Spec, got.Spec) {
		fmt.Fprintf(&b, "  Spec: want %s, got %s\n", want.Spec, got.Spec)
	}
	w, g := want, got
	w.CreatedAt, w.UpdatedAt, w.Spec = time.Time{}, time.Time{}, nil
	g.CreatedAt, g.UpdatedAt, g.Spec = time.Time{}, time.Time{}, nil
	if !reflect.DeepEqual(w, g) {
		wj, _ := json.Marshal(struct {
			messages.JobRecord
			Tenant, IdempotencyKey string
		}{w, w.Tenant, w.IdempotencyKey})
		gj, _ := json.Marshal(struct {
			messages.JobRecord
			Tenant, IdempotencyKey string
		}{g, g.Tenant, g.IdempotencyKey})
		fmt.Fprintf(&b, "  want %s\n  got  %s\n", wj, gj)
	}
	return b.String()
}

// jsonEqual reports whether a and b hold the same JSON value; two empty values are equal.
func jsonEqual(a, b []byte) bool {
	if len(a) == 0 || len(b) == 0 {
		return len(a) == len(b)
	}
	var av, bv any
	if json.Unmarshal(a, &av) != nil || json.Unmarshal(b, &bv) != nil {
		return string(a) == string(b)
	}
	return reflect.DeepEqual(av, bv)
}

func mustCreate(t *testing.T, s pipeline.JobStore, rec messages.JobRecord) messages.JobRecord {
	t.Helper()
	stored, created, err := s.Create(t.Context(), rec)
	if err != nil {
		t.Fatalf("Create %s: %v", rec.JobID, err)
	}
	if !created {
		t.Fatalf("Create %s: created = false, want true", rec.JobID)
	}
	return stored
}

func mustGet(t *testing.T, s pipeline.JobStore, id string) messages.JobRecord {
	t.Helper()
	rec, err := s.Get(t.Context(), id)
	if err != nil {
		t.Fatalf("Get %s: %v", id, err)
	}
	return rec
}

func mustTransition(t *testing.T, s pipeline.JobStore, id string, tr pipeline.Transition) messages.JobRecord {
	t.Helper()
	rec, err := s.Transition(t.Context(), id, tr)
	if err != nil {
		t.Fatalf("Transition %s to %s: %v", id, tr.To, err)
	}
	return rec
}

func testCreateGetRoundTrip(t *testing.T, s pipeline.JobStore) {
	rec := fullRecord("job-full")
	stored := mustCreate(t, s, rec)
	want := normalized(rec)
	requireRecord(t, want, stored)
	requireRecord(t, want, mustGet(t, s, rec.JobID))
}

func testCreateMinimalRecord(t *testing.T, s pipeline.JobStore) {
	rec := messages.JobRecord{
		JobID: "job-min", Status: messages.StatusQueued, Task: "t", Priority: messages.PriorityLow,
		CreatedAt: base, UpdatedAt: base,
	}
	want := normalized(rec)
	requireRecord(t, want, mustCreate(t, s, rec))
	got := mustGet(t, s, rec.JobID)
	requireRecord(t, want, got)
	if got.Usage != nil || got.Guardrail != nil || got.Error != nil || len(got.Spec) != 0 {
		t.Fatalf("unset fields came back set: %+v", got)
	}
}

func testCreateExistingJobID(t *testing.T, s pipeline.JobStore) {
	first := mustCreate(t, s, queued("job-1", base))
	again := fullRecord("job-1")
	again.Status = messages.StatusCompleted
	again.Task = "other"
	stored, created, err := s.Create(t.Context(), again)
	if err != nil {
		t.Fatalf("Create again: %v", err)
	}
	if created {
		t.Fatalf("Create with an existing job id: created = true, want false")
	}
	requireRecord(t, first, stored)
	requireRecord(t, first, mustGet(t, s, "job-1"))
}

func testCreateIdempotencyKey(t *testing.T, s pipeline.JobStore) {
	ctx := t.Context()
	a := queued("job-a", base)
	a.IdempotencyKey = "k1"
	first := mustCreate(t, s, a)

	b := queued("job-b", base.Add(time.Second))
	b.IdempotencyKey = "k1"
	stored, created, err := s.Create(ctx, b)
	if err != nil {
		t.Fatalf("Create with a used key: %v", err)
	}
	if created {
		t.Fatalf("Create with a used key: created = true, want false")
	}
	requireRecord(t, first, stored)
	if _, err := s.Get(ctx, "job-b"); !errors.Is(err, pipeline.ErrNotFound) {
		t.Fatalf("Get of the job that lost on its key: err = %v, want ErrNotFound", err)
	}

	c := queued("job-c", base)
	c.Tenant = "globex"
	c.IdempotencyKey = "k1"
	requireRecord(t, normalized(c), mustCreate(t, s, c))

	// An empty key is not a key: two jobs without one are both created.
	for _, id := range []string{"job-d", "job-e"} {
		mustCreate(t, s, queued(id, base))
	}
}

// testKeyLookup checks pipeline.KeyLookup, for stores that have it: the job holding a
// tenant's key, and ErrNotFound for a free key or another tenant's.
func testKeyLookup(t *testing.T, s pipeline.JobStore) {
	lookup, ok := s.(pipeline.KeyLookup)
	if !ok {
		t.Skip("the store has no KeyLookup")
	}
	ctx := t.Context()
	a := queued("job-a", base)
	a.Tenant, a.IdempotencyKey = "acme", "k1"
	first := mustCreate(t, s, a)
	got, err := lookup.JobByIdempotencyKey(ctx, "acme", "k1")
	if err != nil {
		t.Fatalf("JobByIdempotencyKey of a used key: %v", err)
	}
	requireRecord(t, first, got)
	for _, probe := range [][2]string{{"acme", "k2"}, {"globex", "k1"}, {"", "k1"}} {
		if _, err := lookup.JobByIdempotencyKey(ctx, probe[0], probe[1]); !errors.Is(err, pipeline.ErrNotFound) {
			t.Fatalf("JobByIdempotencyKey(%q, %q): err = %v, want ErrNotFound", probe[0], probe[1], err)
		}
	}
	if err := s.Delete(ctx, "job-a"); err != nil {
		t.Fatal(err)
	}
	if _, err := lookup.JobByIdempotencyKey(ctx, "acme", "k1"); !errors.Is(err, pipeline.ErrNotFound) {
		t.Fatalf("JobByIdempotencyKey after Delete: err = %v, want ErrNotFound", err)
	}
}

// testCreateRacingSameJob races two creates of one keyed job, as intake and a worker taking its
// message do: one creates it, the other gets it back, and afterwards the key still names the job,
// so a later create with that key (a client's retry) returns it instead of making a second job.
func testCreateRacingSameJob(t *testing.T, s pipeline.JobStore) {
	const rounds = 30
	for i := range rounds {
		rec := queued(fmt.Sprintf("job-twin-%02d", i), base)
		rec.IdempotencyKey = fmt.Sprintf("twin-%02d", i)
		var (
			wg      sync.WaitGroup
			created atomic.Int32
			errs    = make([]error, 2)
		)
		for w := range 2 {
			wg.Go(func() {
				stored, ok, err := s.Create(t.Context(), rec)
				if err == nil && stored.JobID != rec.JobID {
					err = fmt.Errorf("create of %s returned job %s", rec.JobID, stored.JobID)
				}
				if ok {
					created.Add(1)
				}
				errs[w] = err
			})
		}
		wg.Wait()
		if err := errors.Join(errs...); err != nil {
			t.Fatal(err)
		}
		if n := created.Load(); n != 1 {
			t.Fatalf("round %d: %d of two racing creates of one job created it, want 1", i, n)
		}
		retry := queued(fmt.Sprintf("job-retry-%02d", i), base)
		retry.IdempotencyKey = rec.IdempotencyKey
		stored, ok, err := s.Create(t.Context(), retry)
		if err != nil {
			t.Fatal(err)
		}
		if ok || stored.JobID != rec.JobID {
			t.Fatalf("round %d: a retry with the key of %s made job %s (created %v): the race lost the key", i, rec.JobID, stored.JobID, ok)
		}
	}
}

func testCreateRacingSameKey(t *testing.T, s pipeline.JobStore) {
	const n = 20
	var (
		wg      sync.WaitGroup
		mu      sync.Mutex
		winners int
		ids     = map[string]bool{}
		errs    []error
	)
	for i := range n {
		wg.Go(func() {
			rec := queued(fmt.Sprintf("job-race-%02d", i), base)
			rec.IdempotencyKey = "same"
			stored, created, err := s.Create(t.Context(), rec)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				errs = append(errs, err)
				return
			}
			if created {
				winners++
			}
			ids[stored.JobID] = true
		})
	}
	wg.Wait()
	if len(errs) > 0 {
		t.Fatalf("racing creates failed: %v", errors.Join(errs...))
	}
	if winners != 1 || len(ids) != 1 {
		t.Fatalf("%d racing creates with one key: %d created, %d distinct jobs returned; want 1 and 1", n, winners, len(ids))
	}
}

func testTransitionFrom(t *testing.T, s pipeline.JobStore) {
	cur := mustCreate(t, s, queued("job-1", base))
	got, err := s.Transition(t.Context(), "job-1", pipeline.Transition{
		From: []messages.Status{messages.StatusProcessing}, To: messages.StatusCompleted,
	})
	if !errors.Is(err, pipeline.ErrConflict) {
		t.Fatalf("Transition from a status the job is not in: err = %v, want ErrConflict", err)
	}
	requireRecord(t, cur, got)
	requireRecord(t, cur, mustGet(t, s, "job-1"))

	at := base.Add(time.Minute)
	got = mustTransition(t, s, "job-1", pipeline.Transition{
		From: []messages.Status{messages.StatusFailed, messages.StatusQueued}, To: messages.StatusProcessing,
		AttemptsDelta: 1, At: at,
	})
	want := cur
	want.Status, want.Attempts, want.UpdatedAt = messages.StatusProcessing, 1, ms(at)
	requireRecord(t, want, got)
	requireRecord(t, want, mustGet(t, s, "job-1"))
}

func testTransitionEmptyFrom(t *testing.T, s pipeline.JobStore) {
	mustCreate(t, s, queued("job-1", base))
	mustTransition(t, s, "job-1", pipeline.Transition{To: messages.StatusProcessing})
	mustTransition(t, s, "job-1", pipeline.Transition{To: messages.StatusProcessing})
	failed := mustTransition(t, s, "job-1", pipeline.Transition{
		To: messages.StatusFailed, Error: &messages.JobError{Code: messages.ErrCodeInternal, Message: "boom"},
	})
	for _, to := range []messages.Status{messages.StatusQueued, messages.StatusCancelled, messages.StatusCompleted} {
		got, err := s.Transition(t.Context(), "job-1", pipeline.Transition{To: to})
		if !errors.Is(err, pipeline.ErrConflict) {
			t.Fatalf("Transition with empty From out of FAILED to %s: err = %v, want ErrConflict", to, err)
		}
		requireRecord(t, failed, got)
	}
	// A terminal job leaves its status only when From names it (a replay).
	got := mustTransition(t, s, "job-1", pipeline.Transition{
		From: []messages.Status{messages.StatusFailed}, To: messages.StatusQueued, ResetAttempts: true,
	})
	if got.Status != messages.StatusQueued || got.Error != nil {
		t.Fatalf("replayed job: status %s error %+v, want QUEUED and no error", got.Status, got.Error)
	}
}

func testTransitionFields(t *testing.T, s pipeline.JobStore) {
	cur := mustCreate(t, s, queued("job-1", base))
	steps := []pipeline.Transition{
		{To: messages.StatusProcessing, AttemptsDelta: 1, Model: "fast", At: base.Add(time.Second)},
		{
			To: messages.StatusCompleted, Model: "main", ResultURL: "/v1/jobs/job-1/result", ReplayName: "r1",
			Usage: &messages.Usage{InputTokens: 3, OutputTokens: 4},
			Guardrail: &messages.GuardrailReport{
				Action: messages.GuardActionAnonymized,
				Output: []messages.Assessment{{Policy: "pii", Type: "PHONE", Matches: 1, Action: messages.GuardActionAnonymized}},
			},
			Call: &pipeline.ModelCall{Fallbacks: []string{"main"}, Prompt: "summarize@2.0.0", BatchJob: "arn:aws:bedrock:us-east-1:000000000000:model-invocation-job/b2",
				Batch: &messages.BatchInference{State: messages.BatchAnswered, BatchID: "b2", JobARN: "arn:aws:bedrock:us-east-1:000000000000:model-invocation-job/b2", Status: "Completed"}},
			At: base.Add(2*time.Second + 999999*time.Nanosecond),
		},
		// Unset fields keep their stored values.
		{From: []messages.Status{messages.StatusCompleted}, To: messages.StatusCompleted, At: base.Add(3 * time.Second)},
	}
	for i, tr := range steps {
		want := normalized(tr.Apply(cur))
		got := mustTransition(t, s, "job-1", tr)
		if diff := recordDiff(want, got); diff != "" {
			t.Fatalf("step %d (to %s): returned record differs:\n%s", i, tr.To, diff)
		}
		requireRecord(t, want, mustGet(t, s, "job-1"))
		cur = got
	}

	// A zero At means now.
	before := time.Now().Add(-time.Second)
	got := mustTransition(t, s, "job-1", pipeline.Transition{From: []messages.Status{messages.StatusCompleted}, To: messages.StatusCompleted})
	if got.UpdatedAt.Before(before) || got.UpdatedAt.After(time.Now().Add(time.Second)) {
		t.Fatalf("Transition with zero At: updated_at %s, want about now", got.UpdatedAt)
	}
	if !got.CreatedAt.Equal(ms(base)) {
		t.Fatalf("Transition changed created_at to %s", got.CreatedAt)
	}
}

func testTransitionAttempts(t *testing.T, s pipeline.JobStore) {
	mustCreate(t, s, queued("job-1", base))
	steps := []struct {
		tr   pipeline.Transition
		want int
	}{
		{pipeline.Transition{To: messages.StatusProcessing, AttemptsDelta: 1}, 1},
		{pipeline.Transition{To: messages.StatusQueued}, 1},
		{pipeline.Transition{To: messages.StatusProcessing, AttemptsDelta: 1}, 2},
		{pipeline.Transition{To: messages.StatusQueued, AttemptsDelta: -1}, 1},
		{pipeline.Transition{To: messages.StatusProcessing, AttemptsDelta: -5}, 0},
		{pipeline.Transition{To: messages.StatusProcessing, AttemptsDelta: 3}, 3},
		{pipeline.Transition{To: messages.StatusQueued, ResetAttempts: true}, 0},
		{pipeline.Transition{To: messages.StatusProcessing, ResetAttempts: true, AttemptsDelta: 1}, 1},
	}
	for i, st := range steps {
		got := mustTransition(t, s, "job-1", st.tr)
		if got.Attempts != st.want {
			t.Fatalf("step %d: attempts %d, want %d", i, got.Attempts, st.want)
		}
		if g := mustGet(t, s, "job-1").Attempts; g != st.want {
			t.Fatalf("step %d: stored attempts %d, want %d", i, g, st.want)
		}
	}
}

func testTransitionError(t *testing.T, s pipeline.JobStore) {
	e1 := &messages.JobError{Code: messages.ErrCodeModelError, Message: "first"}
	e2 := &messages.JobError{Code: messages.ErrCodeModelError, Message: "second"}
	mustCreate(t, s, queued("job-1", base))
	steps := []struct {
		tr   pipeline.Transition
		want *messages.JobError
	}{
		{pipeline.Transition{To: messages.StatusProcessing, Error: e1}, e1},
		{pipeline.Transition{To: messages.StatusProcessing}, e1},
		{pipeline.Transition{To: messages.StatusQueued}, nil},
		{pipeline.Transition{To: messages.StatusProcessing, Error: e2}, e2},
		{pipeline.Transition{To: messages.StatusQueued, Error: e1}, e1},
		{pipeline.Transition{To: messages.StatusProcessing}, e1},
		{pipeline.Transition{To: messages.StatusCompleted}, nil},
	}
	for i, st := range steps {
		got := mustTransition(t, s, "job-1", st.tr)
		stored := mustGet(t, s, "job-1")
		if !reflect.DeepEqual(got.Error, st.want) || !reflect.DeepEqual(stored.Error, st.want) {
			t.Fatalf("step %d (to %s): error returned %+v, stored %+v, want %+v", i, st.tr.To, got.Error, stored.Error, st.want)
		}
	}

	// A failure without an error keeps the one already stored.
	mustCreate(t, s, queued("job-2", base))
	mustTransition(t, s, "job-2", pipeline.Transition{To: messages.StatusProcessing, Error: e1})
	if got := mustTransition(t, s, "job-2", pipeline.Transition{To: messages.StatusFailed}); !reflect.DeepEqual(got.Error, e1) {
		t.Fatalf("FAILED without an error: error %+v, want %+v", got.Error, e1)
	}
}

func testTransitionRacing(t *testing.T, s pipeline.JobStore) {
	mustCreate(t, s, queued("job-1", base))
	const n = 20
	var (
		wg        sync.WaitGroup
		mu        sync.Mutex
		winners   int
		conflicts int
		errs      []error
	)
	start := make(chan struct{})
	for range n {
		wg.Go(func() {
			<-start
			got, err := s.Transition(t.Context(), "job-1", pipeline.Transition{
				From: []messages.Status{messages.StatusQueued}, To: messages.StatusProcessing, AttemptsDelta: 1,
			})
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				winners++
			case errors.Is(err, pipeline.ErrConflict):
				conflicts++
				if got.Status != messages.StatusProcessing {
					errs = append(errs, fmt.Errorf("conflict returned status %s, want PROCESSING", got.Status))
				}
			default:
				errs = append(errs, err)
			}
		})
	}
	close(start)
	wg.Wait()
	if len(errs) > 0 {
		t.Fatalf("racing transitions: %v", errors.Join(errs...))
	}
	if winners != 1 || conflicts != n-1 {
		t.Fatalf("%d racing transitions QUEUED→PROCESSING: %d won, %d conflicted; want 1 and %d", n, winners, conflicts, n-1)
	}
	if got := mustGet(t, s, "job-1"); got.Attempts != 1 || got.Status != messages.StatusProcessing {
		t.Fatalf("after the race: status %s attempts %d, want PROCESSING and 1", got.Status, got.Attempts)
	}
}

func testNotFound(t *testing.T, s pipeline.JobStore) {
	ctx := t.Context()
	mustCreate(t, s, queued("job-1", base))
	if _, err := s.Get(ctx, "missing"); !errors.Is(err, pipeline.ErrNotFound) {
		t.Fatalf("Get missing: err = %v, want ErrNotFound", err)
	}
	for _, tr := range []pipeline.Transition{
		{To: messages.StatusProcessing},
		{From: []messages.Status{messages.StatusQueued}, To: messages.StatusProcessing},
	} {
		if _, err := s.Transition(ctx, "missing", tr); !errors.Is(err, pipeline.ErrNotFound) {
			t.Fatalf("Transition missing (from %v): err = %v, want ErrNotFound", tr.From, err)
		}
	}
	if _, err := s.Get(ctx, "missing"); !errors.Is(err, pipeline.ErrNotFound) {
		t.Fatalf("Get missing after a Transition of it: err = %v, want ErrNotFound", err)
	}
	if err := s.Delete(ctx, "missing"); err != nil {
		t.Fatalf("Delete missing: %v, want nil", err)
	}
}

func testDelete(t *testing.T, s pipeline.JobStore) {
	ctx := t.Context()
	rec := queued("job-1", base)
	rec.IdempotencyKey = "k1"
	mustCreate(t, s, rec)
	keep := mustCreate(t, s, queued("job-2", base))
	if err := s.Delete(ctx, "job-1"); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	if _, err := s.Get(ctx, "job-1"); !errors.Is(err, pipeline.ErrNotFound) {
		t.Fatalf("Get after Delete: err = %v, want ErrNotFound", err)
	}
	if _, err := s.Transition(ctx, "job-1", pipeline.Transition{To: messages.StatusProcessing}); !errors.Is(err, pipeline.ErrNotFound) {
		t.Fatalf("Transition after Delete: err = %v, want ErrNotFound", err)
	}
	if err := s.Delete(ctx, "job-1"); err != nil {
		t.Fatalf("Delete twice: %v", err)
	}
	requireList(t, "List after Delete", []messages.JobRecord{keep}, listAll(t, s, pipeline.ListQuery{}))

	// Intake deletes a record it could not queue; a retry with the same key creates the job anew.
	retry := queued("job-3", base)
	retry.IdempotencyKey = "k1"
	requireRecord(t, normalized(retry), mustCreate(t, s, retry))
}

// testTransitionRacingDelete checks that a transition racing a delete ends in ErrNotFound or
// success, never in a resurrected job.
func testTransitionRacingDelete(t *testing.T, s pipeline.JobStore) {
	ctx := t.Context()
	for i := range 10 {
		id := fmt.Sprintf("job-%02d", i)
		mustCreate(t, s, queued(id, base))
		var wg sync.WaitGroup
		wg.Go(func() {
			_, err := s.Transition(ctx, id, pipeline.Transition{To: messages.StatusProcessing, AttemptsDelta: 1})
			if err != nil && !errors.Is(err, pipeline.ErrNotFound) {
				t.Errorf("Transition racing Delete: %v", err)
			}
		})
		wg.Go(func() {
			if err := s.Delete(ctx, id); err != nil {
				t.Errorf("Delete: %v", err)
			}
		})
		wg.Wait()
		if _, err := s.Get(ctx, id); !errors.Is(err, pipeline.ErrNotFound) {
			t.Fatalf("Get after Delete = %v, want ErrNotFound", err)
		}
	}
}
