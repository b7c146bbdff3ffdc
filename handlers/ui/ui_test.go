package ui

import (
	"strings"
	"testing"
	"time"

	"github.com/infleet/infleet/messages"
)

func TestCredentialOf(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]credential{
		"k_live_123":                 {apiKey: "k_live_123"},
		"  k_live_123 \n":            {apiKey: "k_live_123"},
		"eyJh.eyJz.c2ln":             {bearer: "eyJh.eyJz.c2ln"},
		"Bearer eyJh.eyJz.c2ln":      {bearer: "eyJh.eyJz.c2ln"},
		"Bearer opaque-token":        {bearer: "opaque-token"},
		"a key.with.dots and spaces": {apiKey: "a key.with.dots and spaces"},
	} {
		if got := credentialOf(in); got != want {
			t.Errorf("credentialOf(%q) = %+v, want %+v", in, got, want)
		}
	}
}

// TestTimelineOf orders a redriven job's attempts by time, with how it ended last.
func TestTimelineOf(t *testing.T) {
	t.Parallel()
	t0 := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	rec := messages.JobRecord{JobID: "j", Status: messages.StatusFailed, Priority: messages.PriorityHigh,
		CreatedAt: t0, UpdatedAt: t0.Add(2 * time.Second), Model: "main", Fallbacks: []string{"spare"},
		Error: &messages.JobError{Code: "model_error", Message: "down", History: []messages.AttemptError{
			{Attempt: 2, Code: "model_error", Message: "down", Model: "main", At: t0.Add(3 * time.Second)},
			{Attempt: 1, Code: "timeout", Message: "slow", At: t0.Add(time.Second)},
		}}}
	var got []string
	for _, e := range timelineOf(rec) {
		got = append(got, e.What)
	}
	want := "accepted|attempt 1 failed|fell back|attempt 2 failed|failed"
	if strings.Join(got, "|") != want {
		t.Fatalf("timeline %v, want %s", got, want)
	}
}

// TestTimelineOfBatchInference says a PROCESSING job waits in batch inference, with the batch
// job and its status, and how a batched job ended.
func TestTimelineOfBatchInference(t *testing.T) {
	t.Parallel()
	t0 := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	arn := "arn:aws:bedrock:us-east-1:000000000000:model-invocation-job/b1"
	rec := messages.JobRecord{JobID: "j", Status: messages.StatusProcessing, Attempts: 1, CreatedAt: t0, UpdatedAt: t0,
		BatchJob: arn, BatchInference: &messages.BatchInference{State: messages.BatchRunning, JobARN: arn, Status: "InProgress"}}
	tl := timelineOf(rec)
	if end := tl[len(tl)-1]; end.What != "waiting in batch inference" || !strings.Contains(end.Detail, arn) || !strings.Contains(end.Detail, "InProgress") {
		t.Errorf("running: %+v", end)
	}
	// The job page shows the batch inference state, the provider's status and the batch job.
	p, err := parsePages()
	if err != nil {
		t.Fatal(err)
	}
	var page strings.Builder
	if err := p.set["job"].ExecuteTemplate(&page, "layout", view{Data: jobData{Job: rec, Timeline: tl}}); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(page.String(), `<dd id="batch-inference"><strong>RUNNING</strong> · provider status InProgress · <code>`+arn+`</code>`) {
		t.Errorf("the job page does not show the batch inference state:\n%s", page.String())
	}
	rec.Status, rec.Model = messages.StatusCompleted, "haiku"
	rec.BatchInference = &messages.BatchInference{State: messages.BatchAnswered, JobARN: arn, Status: "Completed"}
	tl = timelineOf(rec)
	if end := tl[len(tl)-1]; !strings.Contains(end.Detail, "from its record in batch job "+arn) {
		t.Errorf("answered: %+v", end)
	}
	rec.BatchInference = &messages.BatchInference{State: messages.BatchOnDemand, JobARN: arn, Status: "Failed"}
	tl = timelineOf(rec)
	if end := tl[len(tl)-1]; !strings.Contains(end.Detail, "on demand after batch job "+arn+" (Failed)") {
		t.Errorf("on demand: %+v", end)
	}
}

func TestCurlOfQuotesForTheShell(t *testing.T) {
	t.Parallel()
	got := curlOf(messages.Job{JobID: "j", Task: "t", Input: messages.Input{Text: "it's"}})
	if !strings.Contains(got, `"text":"it'\''s"`) || strings.Contains(got, `"job_id"`) {
		t.Fatalf("curl:\n%s", got)
	}
}
