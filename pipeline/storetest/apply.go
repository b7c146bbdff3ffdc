package storetest

import (
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/infleet/infleet/messages"
	"github.com/infleet/infleet/pipeline"
)

// applyStarts are the records testTransitionMatchesApply starts from: every status, with every
// optional field set and with none.
func applyStarts() []messages.JobRecord {
	full := fullRecord("full")
	bare := queued("bare", base)
	processing := fullRecord("processing")
	processing.Status, processing.Attempts = messages.StatusProcessing, 1
	processing.Degraded, processing.Fallbacks, processing.Prompt, processing.BatchJob = false, nil, "", ""
	processing.BatchInference = nil
	failed := queued("failed", base)
	failed.Status, failed.Attempts = messages.StatusFailed, 3
	failed.Error = &messages.JobError{Code: messages.ErrCodeAttemptsExceeded, Message: "took too long"}
	completed := fullRecord("completed")
	completed.Status, completed.Error = messages.StatusCompleted, nil
	cancelled := queued("cancelled", base)
	cancelled.Status = messages.StatusCancelled
	return []messages.JobRecord{full, bare, processing, failed, completed, cancelled}
}

// applyTransitions are the transitions testTransitionMatchesApply runs from each start: each
// field set and unset, each From form, attempts up, down, below zero and reset, and errors set,
// kept and cleared.
func applyTransitions() []pipeline.Transition {
	at := base.Add(time.Minute + 987654321*time.Nanosecond)
	usage := &messages.Usage{InputTokens: 7, OutputTokens: 9}
	guard := &messages.GuardrailReport{
		Action: messages.GuardActionBlocked,
		Input:  []messages.Assessment{{Policy: "words", Type: "CUSTOM", Matches: 3, Action: messages.GuardActionBlocked}},
	}
	jobErr := &messages.JobError{Code: messages.ErrCodeModelError, Message: "model said no"}
	nonTerminal := []messages.Status{messages.StatusQueued, messages.StatusProcessing}
	return []pipeline.Transition{
		{To: messages.StatusProcessing, AttemptsDelta: 1, Model: "fast", At: at},
		{From: []messages.Status{messages.StatusQueued}, To: messages.StatusProcessing, AttemptsDelta: 1, At: at},
		{
			From: []messages.Status{messages.StatusProcessing}, To: messages.StatusCompleted,
			Usage: usage, ResultURL: "/v1/jobs/x/result", Call: &pipeline.ModelCall{Fallbacks: []string{"main"}, Prompt: "p@1"}, At: at,
		},
		{To: messages.StatusFailed, Error: jobErr, At: at},
		{To: messages.StatusFailed, At: at},
		{To: messages.StatusQueued, AttemptsDelta: -1, At: at},
		{To: messages.StatusQueued, Error: jobErr, At: at},
		{To: messages.StatusCompleted, At: at},
		{From: nonTerminal, To: messages.StatusCancelled, At: at},
		{
			From: []messages.Status{messages.StatusFailed, messages.StatusCancelled, messages.StatusCompleted},
			To:   messages.StatusQueued, ResetAttempts: true, ReplayName: "replay-2", At: at,
		},
		{From: []messages.Status{messages.StatusFailed}, To: messages.StatusProcessing, ResetAttempts: true, AttemptsDelta: 1, At: at},
		{To: messages.StatusProcessing, AttemptsDelta: -5, At: at},
		{To: messages.StatusProcessing, Guardrail: guard, Call: &pipeline.ModelCall{}, At: at},
		{To: messages.StatusProcessing, Call: &pipeline.ModelCall{Degraded: true}, Model: "backup", At: at},
		{From: nonTerminal, To: messages.StatusProcessing, AttemptsDelta: 1, Call: &pipeline.ModelCall{StreamFrom: "http://10.0.3.7:8080"}, At: at},
		{From: []messages.Status{messages.StatusCompleted}, To: messages.StatusCompleted, At: at},
		{From: []messages.Status{messages.StatusProcessing, messages.StatusQueued}, To: messages.StatusFailed, AttemptsDelta: 2, Error: jobErr, At: at},
	}
}

// testTransitionMatchesApply runs every transition of applyTransitions from every record of
// applyStarts, all at once, and checks the store against pipeline.Transition: where Allows
// lets the job leave its status, the record returned and stored is what Apply makes of it;
// elsewhere the store answers ErrConflict with the record unchanged. A store that writes a
// transition with its own code (SQL, an update expression) rather than with Apply must agree
// with Apply on each field here. Each is run again as Unreturned: a write that succeeds may
// then return a zero record, and the stored record is the same.
func testTransitionMatchesApply(t *testing.T, s pipeline.JobStore) {
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		errs []error
	)
	fail := func(err error) {
		mu.Lock()
		defer mu.Unlock()
		errs = append(errs, err)
	}
	for si, start := range applyStarts() {
		for ti, tr := range applyTransitions() {
			for _, quiet := range []bool{false, true} {
				wg.Go(func() {
					ctx := t.Context()
					tr := tr
					tr.Unreturned = quiet
					rec := start
					rec.JobID = fmt.Sprintf("job-%s-%02d-%v", start.JobID, ti, quiet)
					if rec.IdempotencyKey != "" {
						rec.IdempotencyKey = "key-" + rec.JobID
					}
					stored, created, err := s.Create(ctx, rec)
					if err != nil || !created {
						fail(fmt.Errorf("Create %s: created %v, err %v", rec.JobID, created, err))
						return
					}
					what := fmt.Sprintf("start %d (%s) transition %d (from %v to %s, unreturned %v)", si, rec.Status, ti, tr.From, tr.To, quiet)
					want, wantErr := normalized(tr.Apply(stored)), error(nil)
					if !tr.Allows(stored.Status) {
						want, wantErr = stored, pipeline.ErrConflict
					}
					got, err := s.Transition(ctx, rec.JobID, tr)
					if !errors.Is(err, wantErr) {
						fail(fmt.Errorf("%s: err = %v, want %v", what, err, wantErr))
						return
					}
					// Unreturned and written: nothing to compare but the stored record.
					unreturned := quiet && err == nil && got.JobID == ""
					if diff := recordDiff(want, got); diff != "" && !unreturned {
						fail(fmt.Errorf("%s: returned record differs from Apply's:\n%s", what, diff))
					}
					read, err := s.Get(ctx, rec.JobID)
					if err != nil {
						fail(fmt.Errorf("%s: Get: %v", what, err))
						return
					}
					if diff := recordDiff(want, read); diff != "" {
						fail(fmt.Errorf("%s: stored record differs from Apply's:\n%s", what, diff))
					}
				})
			}
		}
	}
	wg.Wait()
	if len(errs) > 0 {
		t.Fatal(errors.Join(errs...))
	}
}
