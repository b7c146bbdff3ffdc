package handlers

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/infleet/infleet/messages"
)

func TestPreferWaitParsing(t *testing.T) {
	t.Parallel()
	cases := []struct {
		header []string
		want   time.Duration
		ok     bool
	}{
		{[]string{"wait=5"}, 5 * time.Second, true},
		{[]string{"respond-async, wait=3"}, 3 * time.Second, true},
		{[]string{"Wait = 2 ; x=y"}, 2 * time.Second, true},
		{[]string{`wait="4"`}, 4 * time.Second, true},
		{[]string{"return=minimal", "wait=7"}, 7 * time.Second, true},
		{[]string{"wait=600"}, 60 * time.Second, true},
		{[]string{"wait=0"}, 0, false},
		{[]string{"wait=-1"}, 0, false},
		{[]string{"wait=soon"}, 0, false},
		{[]string{"wait=99999999999999999999"}, 0, false},
		{nil, 0, false},
	}
	for _, tc := range cases {
		got, ok := preferWait(tc.header, DefaultMaxWait)
		if got != tc.want || ok != tc.ok {
			t.Errorf("preferWait(%q) = %v, %v; want %v, %v", tc.header, got, ok, tc.want, tc.ok)
		}
	}
}

func TestPreferWait(t *testing.T) {
	t.Parallel()
	t.Run("job completes within the wait", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		b.jobs.afterSubmit = func(id string) {
			b.jobs.set(id, messages.StatusProcessing)
			b.jobs.complete(id, "quick")
		}
		resp := b.do(t, http.MethodPost, "/v1/jobs", validJob, "Prefer: wait=10")
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("status %d: %s", resp.StatusCode, readAll(t, resp))
		}
		if got := resp.Header.Get(HeaderPreferenceApplied); got != "wait=10" {
			t.Errorf("Preference-Applied = %q", got)
		}
		var rec messages.JobRecord
		decodeInto(t, resp, &rec)
		if rec.Status != messages.StatusCompleted || rec.ResultURL == "" {
			t.Fatalf("record %+v", rec)
		}
	})
	t.Run("job does not complete within the capped wait", func(t *testing.T) {
		t.Parallel()
		b := setup(t, func(c *APIConfig) { c.MaxWait = time.Second })
		resp := b.do(t, http.MethodPost, "/v1/jobs", validJob, "Prefer: wait=30")
		if resp.StatusCode != http.StatusAccepted || resp.Header.Get(HeaderPreferenceApplied) != "" {
			t.Fatalf("status %d, Preference-Applied %q", resp.StatusCode, resp.Header.Get(HeaderPreferenceApplied))
		}
		var acc accepted
		decodeInto(t, resp, &acc)
		if acc.Status != messages.StatusQueued {
			t.Fatalf("body %+v", acc)
		}
	})
}

// A batch item carrying replay_name is refused with a problem naming the field; the other
// items are queued.
func TestBatchRefusesReplayName(t *testing.T) {
	t.Parallel()
	b := setup(t)
	body := `{"jobs":[` + validJob + `,{"task":"summarize","input":{"text":"y"},"replay_name":"replay-1"}]}`
	resp := b.do(t, http.MethodPost, "/v1/jobs:batch", body)
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("status %d: %s", resp.StatusCode, readAll(t, resp))
	}
	var res batchResults
	decodeInto(t, resp, &res)
	if len(res.Results) != 2 || res.Results[0].Error != nil || res.Results[1].Error == nil {
		t.Fatalf("results %+v, want the first queued and the second refused", res.Results)
	}
	if got := fields(*res.Results[1].Error); strings.Join(got, ",") != "jobs[1].replay_name" || res.Results[1].Error.Status != 400 {
		t.Errorf("item 1: status %d, errors name %q", res.Results[1].Error.Status, got)
	}
	// A batch of nothing else is a 400 problem listing it.
	resp = b.do(t, http.MethodPost, "/v1/jobs:batch", `{"jobs":[{"task":"t","input":{"text":"y"},"replay_name":"r"}]}`)
	if p := readProblem(t, resp, http.StatusBadRequest, SlugInvalidBody); strings.Join(fields(p), ",") != "jobs[0].replay_name" {
		t.Errorf("problem %+v, want one naming jobs[0].replay_name", p)
	}
}

func TestBatch(t *testing.T) {
	t.Parallel()
	b := setup(t)
	body := `{"jobs":[` + validJob + `,{"task":"","input":{}},` + validJob + `,{"job_id":"x","task":"t","input":{"text":"y"}}]}`
	resp := b.do(t, http.MethodPost, "/v1/jobs:batch", body, "Idempotency-Key: batch-1")
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("status %d: %s", resp.StatusCode, readAll(t, resp))
	}
	var res batchResults
	decodeInto(t, resp, &res)
	if len(res.Results) != 4 {
		t.Fatalf("%d results, want 4", len(res.Results))
	}
	for i, r := range res.Results {
		if r.Index != i {
			t.Errorf("result %d has index %d", i, r.Index)
		}
		valid := i == 0 || i == 2
		if valid && (r.Error != nil || r.JobID == "" || r.Status != messages.StatusQueued || r.StatusURL != "/v1/jobs/"+r.JobID) {
			t.Errorf("item %d: %+v", i, r)
		}
		if !valid && (r.Error == nil || r.JobID != "" || r.Error.Status != 400 || len(r.Error.Errors) == 0) {
			t.Errorf("item %d: %+v", i, r)
		}
	}
	if got := fields(*res.Results[3].Error); strings.Join(got, ",") != "jobs[3].job_id" {
		t.Errorf("item 3 errors name %q", got)
	}
	if res.Results[0].JobID == res.Results[2].JobID {
		t.Fatal("two items got one job")
	}
	// Retrying the batch with the same key returns the same jobs.
	var again batchResults
	decodeInto(t, b.do(t, http.MethodPost, "/v1/jobs:batch", body, "Idempotency-Key: batch-1"), &again)
	for _, i := range []int{0, 2} {
		if again.Results[i].JobID != res.Results[i].JobID || !again.Results[i].Replayed {
			t.Errorf("retried item %d: %+v, first %+v", i, again.Results[i], res.Results[i])
		}
	}
}

func TestBatchTooMany(t *testing.T) {
	t.Parallel()
	b := setup(t, func(c *APIConfig) { c.MaxBodyBytes = 1 << 20 })
	body := `{"jobs":[` + strings.TrimSuffix(strings.Repeat(validJob+",", maxBatchJobs+1), ",") + `]}`
	p := readProblem(t, b.do(t, http.MethodPost, "/v1/jobs:batch", body), http.StatusBadRequest, SlugInvalidBody)
	if len(p.Errors) != 1 || p.Errors[0].Field != "jobs" {
		t.Fatalf("errors %+v", p.Errors)
	}
	body = `{"jobs":[` + strings.TrimSuffix(strings.Repeat(validJob+",", maxBatchJobs), ",") + `]}`
	var res batchResults
	decodeInto(t, b.do(t, http.MethodPost, "/v1/jobs:batch", body), &res)
	if len(res.Results) != maxBatchJobs {
		t.Fatalf("%d results for a full batch", len(res.Results))
	}
	for i, r := range res.Results {
		if r.Index != i || r.Error != nil {
			t.Fatalf("item %d: %+v", i, r)
		}
	}
}

// waitFor polls cond until it holds or the timeout passes.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(waitTimeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
