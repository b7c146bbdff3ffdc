package worker_test

import (
	"testing"

	"github.com/infleet/infleet/pipeline/worker"
)

// FuzzDecodeJob checks that the decode stage never panics, that every job it accepts has an
// id, a task and exactly one kind of input, and that the job is the one json.Unmarshal makes of
// the body.
func FuzzDecodeJob(f *testing.F) {
	for _, s := range []string{
		`{"task":"summarize","input":{"text":"hello"}}`,
		`{"job_id":"a1","task":"classify","input":{"messages":[{"role":"user","content":"hi"}]},"priority":"high"}`,
		`{"task":"t","input":{"s3_uri":"s3://b/k"},"params":{"max_tokens":10,"temperature":0.5}}`,
		`{"task":"t","input":{}}`, `[]`, `null`, `{"task":1}`, `{`,
	} {
		f.Add([]byte(s), "id-1")
	}
	f.Fuzz(func(t *testing.T, body []byte, id string) {
		checkParseJob(t, body)
		jobs, err := worker.DecodeJob(worker.Delivery{MessageID: id, Payload: body, Metadata: map[string]string{}})
		if err != nil {
			return
		}
		for _, j := range jobs {
			if j.JobID == "" || j.Task == "" {
				t.Fatalf("accepted a job without id or task: %+v", j)
			}
			kinds := 0
			if j.Input.Text != "" {
				kinds++
			}
			if len(j.Input.Messages) > 0 {
				kinds++
			}
			if j.Input.S3URI != "" {
				kinds++
			}
			if kinds > 1 {
				t.Fatalf("accepted a job with %d kinds of input: %s", kinds, body)
			}
		}
	})
}
