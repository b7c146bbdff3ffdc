package worker_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/rs/zerolog"

	"github.com/infleet/infleet/messages"
	"github.com/infleet/infleet/pipeline/worker"
)

var s3Rules = []worker.S3Rule{
	{Bucket: "inbox", Prefix: "docs/", Suffix: ".txt", Task: "summarize", Priority: messages.PriorityLow},
	{Bucket: "inbox", Prefix: "tickets/", Task: "classify", Model: "fast"},
}

const s3Notification = `{"Records":[
 {"eventSource":"aws:s3","eventName":"ObjectCreated:Put","s3":{"bucket":{"name":"inbox"},"object":{"key":"docs/q3+report.txt","eTag":"e1","sequencer":"00A"}}},
 {"eventSource":"aws:s3","eventName":"ObjectCreated:Put","s3":{"bucket":{"name":"inbox"},"object":{"key":"tickets/t-1.json","sequencer":"00B"}}},
 {"eventSource":"aws:s3","eventName":"ObjectCreated:Put","s3":{"bucket":{"name":"inbox"},"object":{"key":"images/a.png","sequencer":"00C"}}},
 {"eventSource":"aws:s3","eventName":"ObjectRemoved:Delete","s3":{"bucket":{"name":"inbox"},"object":{"key":"docs/old.txt"}}}]}`

const ebObjectCreated = `{"version":"0","id":"ev-1","detail-type":"Object Created","source":"aws.s3","replay-name":"rp-7",
 "detail":{"bucket":{"name":"inbox"},"object":{"key":"docs/a.txt","etag":"e2","sequencer":"01"}}}`

const ebJob = `{"version":"0","id":"ev-2","detail-type":"infleet.job","source":"acme.app",
 "detail":{"task":"classify","input":{"text":"hello"},"priority":"high"}}`

func decodeEnv(t *testing.T, payload string) ([]messages.Job, error) {
	t.Helper()
	dec := worker.NewDecoder(s3Rules, zerolog.Nop())
	return dec(worker.Delivery{MessageID: "m-1", Payload: []byte(payload), Metadata: map[string]string{}})
}

func snsAround(t *testing.T, inner string) string {
	t.Helper()
	b, _ := json.Marshal(map[string]string{"Type": "Notification", "TopicArn": "arn:aws:sns:us-east-1:1:t", "Message": inner})
	return string(b)
}

func TestDecoderS3NotificationFollowsRules(t *testing.T) {
	t.Parallel()
	escaped := strings.Replace(s3Notification, `"Records"`, `"Rec\u006frds"`, 1)
	for name, payload := range map[string]string{"direct": s3Notification, "in SNS": snsAround(t, s3Notification), "key escaped": escaped} {
		jobs, err := decodeEnv(t, payload)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if len(jobs) != 2 {
			t.Fatalf("%s: %d jobs, want 2 (one rule each; no rule and a deletion dropped): %+v", name, len(jobs), jobs)
		}
		if j := jobs[0]; j.Task != "summarize" || j.Priority != messages.PriorityLow || j.Input.S3URI != "s3://inbox/docs/q3 report.txt" || !strings.HasPrefix(j.JobID, "s3-") {
			t.Fatalf("%s: first job %+v", name, j)
		}
		if j := jobs[1]; j.Task != "classify" || j.Model != "fast" || j.Priority != messages.PriorityNormal {
			t.Fatalf("%s: second job %+v", name, j)
		}
	}
	a, _ := decodeEnv(t, s3Notification)
	b, _ := decodeEnv(t, s3Notification)
	if a[0].JobID != b[0].JobID {
		t.Fatal("a redelivered notification made a different job id")
	}
}

func TestDecoderEventBridge(t *testing.T) {
	t.Parallel()
	jobs, err := decodeEnv(t, ebObjectCreated)
	if err != nil || len(jobs) != 1 || jobs[0].Input.S3URI != "s3://inbox/docs/a.txt" || jobs[0].ReplayName != "rp-7" {
		t.Fatalf("Object Created: %+v, %v", jobs, err)
	}
	for name, payload := range map[string]string{"direct": ebJob, "in SNS": snsAround(t, ebJob)} {
		jobs, err := decodeEnv(t, payload)
		if err != nil || len(jobs) != 1 {
			t.Fatalf("%s: %+v, %v", name, jobs, err)
		}
		if j := jobs[0]; j.Task != "classify" || j.Priority != messages.PriorityHigh || j.JobID != "ev-2" {
			t.Fatalf("%s: job %+v", name, j)
		}
	}
	if _, err := decodeEnv(t, `{"detail-type":"x","source":"y","detail":{"task":""}}`); err == nil {
		t.Fatal("an EventBridge envelope whose detail is not a job was accepted")
	}
}

func TestDecoderPlainJobsAndPoison(t *testing.T) {
	t.Parallel()
	jobs, err := decodeEnv(t, `{"task":"summarize","input":{"text":"x"}}`)
	if err != nil || len(jobs) != 1 || jobs[0].JobID != "m-1" {
		t.Fatalf("plain job: %+v, %v", jobs, err)
	}
	for _, bad := range []string{`nope`, `{"Records":"x"}`, snsAround(t, `{"task":1}`)} {
		if _, err := decodeEnv(t, bad); err == nil {
			t.Fatalf("%s was accepted", bad)
		}
	}
}
