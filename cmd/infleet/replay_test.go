package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/infleet/infleet/messages"
)

func TestReplayRunsArchivedJobsAgainOnce(t *testing.T) {
	t.Parallel()
	checkReplayRunsOnce(t, startServe(t, e2eConfig))
}

// TestReplayOnSQSAndS3 replays from the archive in S3 onto SQS queues, with DynamoDB records.
func TestReplayOnSQSAndS3(t *testing.T) {
	p := needAWSPeers(t)
	t.Parallel()
	sfx := fmt.Sprintf("%d-%d", os.Getpid(), time.Now().UnixNano()%1e6)
	fleet := fmt.Sprintf(`
transport:
  kind: sqs
  sqs: {queues: {high: rp-%[1]s-high, normal: rp-%[1]s-normal, low: rp-%[1]s-low}, dead_letter_queue: rp-%[1]s-dead,
        visibility_timeout: 5s, endpoint: %[2]q}
store: {kind: dynamodb, dynamodb: {table: rp-%[1]s-jobs, endpoint: %[3]q}}
results: {kind: s3, s3: {bucket: rp-%[1]s-results, prefix: "r/", endpoint: %[2]q}}
`, sfx, p.endpoint, p.dynamo)
	var out, errOut bytes.Buffer
	if rc := run([]string{"init", "--config", writeConfig(t, fleet+"log: {level: warn}\n"), "--data-dir", t.TempDir()}, &out, &errOut); rc != 0 {
		t.Fatalf("init: rc %d\n%s%s", rc, out.String(), errOut.String())
	}
	checkReplayRunsOnce(t, startServe(t, e2eConfig+fleet))
}

// TestReplayOnKafka replays from the archive onto Kafka topics (kfake).
func TestReplayOnKafka(t *testing.T) {
	t.Parallel()
	transport := kafkaCluster(t)
	kafkaInit(t, transport+"log: {level: warn}\n")
	checkReplayRunsOnce(t, startServe(t, e2eConfig+transport))
}

// checkReplayRunsOnce runs jobs of two tasks on h, replays one task's time range twice under
// one name and checks that exactly those jobs ran again, once.
func checkReplayRunsOnce(t *testing.T, h *apiHarness) {
	t.Helper()
	var summaries, others []string
	for i := range 4 {
		summaries = append(summaries, h.submit(fmt.Sprintf(`{"task":"summarize","input":{"text":"replay me %d"}}`, i)))
	}
	for i := range 2 {
		others = append(others, h.submit(fmt.Sprintf(`{"task":"classify","input":{"text":"leave me %d"}}`, i)))
	}
	for _, id := range append(append([]string{}, summaries...), others...) {
		h.waitStatus(id, messages.StatusCompleted)
	}
	// The archive is written in the background; a dry run tells when it holds them all.
	h.eventually(10*time.Second, func() bool {
		_, _, data := h.do(http.MethodPost, "/v1/replays", `{"since":"1h","task":"summarize","dry_run":true}`, nil)
		var st struct{ Matched int }
		_ = json.Unmarshal(data, &st)
		return st.Matched == len(summaries)
	})

	var out, errOut bytes.Buffer
	rc := run([]string{"replay", "--server", h.base, "--since", "1h", "--task", "summarize", "--name", "r1", "--rate", "1000"}, &out, &errOut)
	if rc != 0 || !strings.Contains(out.String(), "4 matched, 4 re-published") {
		t.Fatalf("replay: rc %d\n%s%s", rc, out.String(), errOut.String())
	}
	for _, id := range summaries {
		h.eventually(10*time.Second, func() bool {
			rec := h.job(id)
			return rec.ReplayName == "r1" && rec.Status == messages.StatusCompleted
		})
	}
	for _, id := range others {
		if rec := h.job(id); rec.ReplayName != "" {
			t.Fatalf("job %s of another task was replayed: %+v", id, rec)
		}
	}
	// The same replay again changes nothing: each job ran once under r1.
	before := map[string]time.Time{}
	for _, id := range summaries {
		before[id] = h.job(id).UpdatedAt
	}
	out.Reset()
	if rc := run([]string{"replay", "--server", h.base, "--since", "1h", "--task", "summarize", "--name", "r1", "--rate", "1000"}, &out, &errOut); rc != 0 {
		t.Fatalf("second replay: rc %d\n%s", rc, errOut.String())
	}
	time.Sleep(200 * time.Millisecond)
	for _, id := range summaries {
		if rec := h.job(id); rec.Attempts != 1 || rec.Status != messages.StatusCompleted || !rec.UpdatedAt.Equal(before[id]) {
			t.Fatalf("job %s after a repeated replay: %+v", id, rec)
		}
	}
	code, _, _ := h.do(http.MethodPost, "/v1/replays", `{"task":"summarize"}`, nil)
	if code != http.StatusBadRequest {
		t.Fatalf("replay without a time range: %d, want 400", code)
	}
	out.Reset()
	errOut.Reset()
	if rc := run([]string{"replay", "--server", h.base}, &out, &errOut); rc != exitUsage {
		t.Fatalf("replay without a range: rc %d, want %d", rc, exitUsage)
	}
}
