package telemetry_test

import (
	"bufio"
	"bytes"
	"errors"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/infleet/infleet/internal/emftest"
	"github.com/infleet/infleet/messages"
	"github.com/infleet/infleet/pipeline/telemetry"
)

func TestEMFWritesSpecDocumentsPerTaskAndModel(t *testing.T) {
	t.Parallel()
	var out bytes.Buffer
	now := time.Date(2026, 12, 5, 6, 0, 0, 0, time.UTC)
	e := telemetry.NewEMF(telemetry.EMFConfig{Out: &out, Now: func() time.Time { return now }})
	m := telemetry.NewMetrics(prometheus.NewRegistry())
	m.SendTo(e)

	if err := e.Flush(); err != nil || out.Len() != 0 {
		t.Fatalf("nothing happened, yet Flush wrote %q (%v)", out.String(), err)
	}
	m.JobFinished(messages.JobRecord{Task: "summarize", Status: messages.StatusCompleted})
	m.JobFinished(messages.JobRecord{Task: "summarize", Status: messages.StatusCompleted})
	m.JobFinished(messages.JobRecord{Task: "summarize", Status: messages.StatusFailed})
	m.JobFinished(messages.JobRecord{Task: "classify", Status: messages.StatusCancelled})
	for i := range 150 {
		m.ModelCalled("fast", time.Duration(i+1)*time.Millisecond, messages.Usage{InputTokens: 10, OutputTokens: 3}, nil)
	}
	m.ModelCalled("fast", 2*time.Second, messages.Usage{}, errors.New("throttled"))
	if err := e.Flush(); err != nil {
		t.Fatal(err)
	}

	var docs []map[string]any
	sc := bufio.NewScanner(&out)
	for sc.Scan() {
		doc, err := emftest.Check(sc.Bytes())
		if err != nil {
			t.Fatalf("%v\n%s", err, sc.Bytes())
		}
		docs = append(docs, doc)
	}
	// summarize; fast with the first 100 latencies; fast with the other 51. classify had
	// only a cancelled job: no document.
	if len(docs) != 3 {
		t.Fatalf("%d documents, want 3:\n%s", len(docs), out.String())
	}
	if ts := docs[0]["_aws"].(map[string]any)["Timestamp"]; ts != float64(now.UnixMilli()) {
		t.Errorf("Timestamp %v, want %d", ts, now.UnixMilli())
	}
	task := docs[0]
	if task["Task"] != "summarize" || task["JobsCompleted"] != 2.0 || task["JobsFailed"] != 1.0 {
		t.Errorf("task document %v", task)
	}
	model := docs[1]
	if model["Model"] != "fast" || model["ModelCalls"] != 151.0 || model["ModelCallErrors"] != 1.0 ||
		model["InputTokens"] != 1500.0 || model["OutputTokens"] != 450.0 || len(model["ModelCallLatency"].([]any)) != 100 {
		t.Errorf("model document %v", model)
	}
	if rest := docs[2]; rest["Model"] != "fast" || len(rest["ModelCallLatency"].([]any)) != 51 || rest["ModelCalls"] != nil {
		t.Errorf("second model document %v", rest)
	}
	if model["_aws"].(map[string]any)["CloudWatchMetrics"].([]any)[0].(map[string]any)["Namespace"] != "infleet" {
		t.Errorf("namespace of %v", model)
	}

	out.Reset()
	if err := e.Flush(); err != nil || out.Len() != 0 {
		t.Fatalf("a second Flush wrote %q (%v); what was written is not written again", out.String(), err)
	}
}
