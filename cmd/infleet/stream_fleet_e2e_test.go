package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/infleet/infleet/messages"
)

// TestStreamRelaysAcrossProcessesOnKafka runs `infleet ingress` and `infleet worker` as
// separate processes on kfake and SQLite against `infleet fmsim`, which breaks every stream
// after 4 chunks: the ingress's event stream relays the deltas from the worker that runs the
// job (found through the job's record, read with streaming.relay_key) as they arrive, the
// deltas join to the stored result exactly, and a client that reconnects with Last-Event-ID
// mid-way gets the rest and nothing twice. An ingress without the key still ends with the
// whole answer, from the stored result.
func TestStreamRelaysAcrossProcessesOnKafka(t *testing.T) {
	runsTheBinary(t)
	brokers := fleetKafka(t)
	sim := startFmsim(t, "--drop-stream-after", "4", "--chunk-interval", "40ms")
	dataDir := t.TempDir() // shared: the SQLite file and the result files of every process
	base := fmt.Sprintf("store: {kind: sqlite, sqlite: {path: %q}}\n", filepath.Join(dataDir, "jobs.db"))
	kafkaInit(t, base+fmt.Sprintf("transport: {kind: kafka, kafka: {brokers: [%q]}}\nlog: {level: warn}\n", brokers))
	f := newE2E(t, base+fmt.Sprintf(`transport: {kind: kafka, kafka: {session_timeout: 2s}}
models: [{name: m, provider: openai, base_url: %q, model_id: m}]
routes: {default: m}
workers: {concurrency: 4, max_attempts: 2, shutdown_timeout: 1s}
log: {level: warn}
`, sim+"/v1"), "INFLEET_TRANSPORT_KAFKA_BROKERS="+brokers)
	f.dataDir = dataDir
	checkStreamRelay(t, sim, f)
}

// TestStreamRelaysAcrossProcessesOnSQS is TestStreamRelaysAcrossProcessesOnKafka on the AWS
// fleet: SQS, DynamoDB and S3 (fauxqs and dynalite), each process with its own data dir.
func TestStreamRelaysAcrossProcessesOnSQS(t *testing.T) {
	p := needAWSPeers(t)
	runsTheBinary(t)
	sim := startFmsim(t, "--drop-stream-after", "4", "--chunk-interval", "40ms")
	sfx := fmt.Sprintf("%d-%d", os.Getpid(), time.Now().UnixNano()%1e6)
	q := func(n string) string { return "stream-" + sfx + "-" + n }
	f := newAWSE2E(t, p.endpoint, fmt.Sprintf(`transport:
  kind: sqs
  sqs:
    queues: {high: %s, normal: %s, low: %s}
    dead_letter_queue: %s
    visibility_timeout: 30s
store: {kind: dynamodb, dynamodb: {table: %s, endpoint: %q}}
results: {kind: s3, s3: {bucket: %s, prefix: "results/"}}
models: [{name: m, provider: openai, base_url: %q, model_id: m}]
routes: {default: m}
workers: {concurrency: 4, max_attempts: 2, shutdown_timeout: 1s}
log: {level: warn}
`, q("high"), q("normal"), q("low"), q("dead"), "stream-jobs-"+sfx, p.dynamo, "stream-results-"+sfx, sim+"/v1"))
	checkStreamRelay(t, sim, f)
}

// checkStreamRelay starts, through f, an ingress with the fleet's relay key, a worker with it
// and an ingress without it, and checks that a streaming job's deltas come through
// the first ingress as the worker gets them from sim (which drops every stream after 4 chunks),
// joined equal to the stored result and to sim's unstreamed answer; that the keyless ingress
// ends with the whole answer; and that a client reconnecting with Last-Event-ID mid-way gets the
// rest and nothing twice.
func checkStreamRelay(t *testing.T, sim string, f *e2e) {
	t.Helper()
	const relayKey = "INFLEET_STREAMING_RELAY_KEY=relay-key-of-the-test-fleet"
	ingress := f.start("ingress", relayKey)
	f.start("worker", relayKey)
	keyless := f.start("ingress")

	id := ingress.api.submit(fmt.Sprintf(`{"task":"t","input":{"text":%q},"stream":true}`, streamText))
	type followed struct {
		s  streamed
		at time.Time
	}
	whole, other := make(chan followed, 1), make(chan followed, 1)
	go func() { s := followEvents(t, ingress.api.base, id, nil); whole <- followed{s, time.Now()} }()
	go func() { other <- followed{followEvents(t, keyless.api.base, id, nil), time.Now()} }()
	got := <-whole
	want := fmsimAlone(t, sim, "", streamText)
	if got.s.end.Outcome != "complete" || got.s.statuses[len(got.s.statuses)-1] != messages.StatusCompleted {
		t.Fatalf("stream ended %+v with statuses %v", got.s.end, got.s.statuses)
	}
	if result := ingress.api.resultText(id); got.s.text() != result || result != want {
		t.Fatalf("streamed %q\nresult   %q\nunstreamed answer %q: want all three equal", got.s.text(), result, want)
	}
	if got.s.before < 5 {
		t.Errorf("%d deltas came through the relay while the job ran, want the answer in pieces as it arrived", got.s.before)
	}
	if st := fmsimStats(t, sim); st.DroppedStreams < 2 || st.ResumedStreams != st.DroppedStreams {
		t.Errorf("fmsim: %d streams, %d dropped, %d resumed; want every drop resumed", st.Streams, st.DroppedStreams, st.ResumedStreams)
	}
	k := <-other
	if k.s.text() != want || k.s.end.Outcome != "complete" {
		t.Errorf("ingress without the relay key: %q (%+v), want the whole answer at the end", k.s.text(), k.s.end)
	}

	// A second job, followed by a client that leaves after some deltas and comes back with
	// the Last-Event-ID it saw, while the job still streams.
	id2 := ingress.api.submit(fmt.Sprintf(`{"task":"t","input":{"text":%q},"stream":true}`, streamText+" again"))
	first, last := followSome(t, ingress.api.base, id2, 3)
	rest := followEvents(t, ingress.api.base, id2, map[string]string{"Last-Event-ID": last})
	if joined, result := first+rest.text(), ingress.api.resultText(id2); joined != result || rest.end.Outcome != "complete" {
		t.Errorf("reconnected stream: %q + %q, want %q", first, rest.text(), result)
	}
	if strings.Count(first+rest.text(), "fmsim [") != 1 {
		t.Errorf("the answer's head came twice: %q", first+rest.text())
	}
}
