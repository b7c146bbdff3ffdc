package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/infleet/infleet/config"
	"github.com/infleet/infleet/internal/awstest"
	"github.com/infleet/infleet/internal/otlptest"
	"github.com/infleet/infleet/messages"
)

// lines returns the JSON log lines written so far.
func (b *lockedBuffer) lines() []map[string]any {
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []map[string]any
	sc := bufio.NewScanner(bytes.NewReader(b.buf.Bytes()))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var m map[string]any
		if json.Unmarshal(sc.Bytes(), &m) == nil {
			out = append(out, m)
		}
	}
	return out
}

// TestTracesCoverRequestQueueAndWorker runs serve with telemetry.otlp.endpoint pointing at a
// receiver speaking the collector's OTLP/HTTP protocol, on each transport, and checks what
// arrives on the wire: one trace per job, from the HTTP request through publish, the queue
// wait, every worker stage and the model call attempt (GenAI attributes) to the notification,
// continuing the caller's traceparent when there is one; and log lines carrying its trace_id.
func TestTracesCoverRequestQueueAndWorker(t *testing.T) {
	t.Parallel()
	transports := map[string]func(t *testing.T, dir string) string{
		"embedded": func(*testing.T, string) string { return "" },
		"kafka": func(t *testing.T, _ string) string {
			cluster, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.AllowAutoTopicCreation())
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(cluster.Close)
			return fmt.Sprintf("transport: {kind: kafka, kafka: {brokers: [%q]}}\n", cluster.ListenAddrs()[0])
		},
		"sqs": func(t *testing.T, dir string) string {
			endpoint := awstest.Endpoint(t)
			sfx := fmt.Sprintf("trace-%d-%d", os.Getpid(), time.Now().UnixNano()%1e6)
			return fmt.Sprintf("transport: {kind: sqs, sqs: {endpoint: %q, queues: {high: %s-h, normal: %s-n, low: %s-l}, dead_letter_queue: %s-d}}\n",
				endpoint, sfx, sfx, sfx, sfx)
		},
	}
	for name, transport := range transports {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			testTraces(t, transport(t, t.TempDir()), false)
		})
	}
	t.Run("embedded with OTEL_EXPORTER_OTLP_ENDPOINT", func(t *testing.T) {
		t.Parallel()
		testTraces(t, "", true)
	})
}

// testTraces runs the check on transport, naming the receiver in telemetry.otlp.endpoint or,
// with fromEnv, in the process's OTEL_EXPORTER_OTLP_ENDPOINT.
func testTraces(t *testing.T, transport string, fromEnv bool) {
	rcv, otlpURL := otlptest.StartHTTP(t)
	telemetry := fmt.Sprintf("telemetry: {otlp: {endpoint: %q}}\n", otlpURL)
	var src configSource
	if fromEnv {
		telemetry = ""
		src.environ = []string{"OTEL_EXPORTER_OTLP_ENDPOINT=" + otlpURL}
	}
	recv := &hooks{}
	hookSrv := httptest.NewServer(recv)
	t.Cleanup(hookSrv.Close)

	dir := t.TempDir()
	addr := freeAddr(t)
	body := fmt.Sprintf(`addr: %q
data_dir: %q
models: [{name: fast, provider: sim, model_id: sim-fast-1, latency: 5ms}]
routes: {default: fast}
workers: {concurrency: 4, shutdown_timeout: 1s}
notify: {webhook: {url: %q, secret: s3cret, allow_private: true}}
log: {level: debug, format: json}
%s%s`, addr, filepath.Join(dir, "data"), hookSrv.URL, telemetry, transport)
	path := filepath.Join(dir, "infleet.yaml")
	if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Transport.Kind != config.TransportEmbedded {
		var out, errOut bytes.Buffer
		if rc := run([]string{"init", "--config", path, "--data-dir", filepath.Join(dir, "data")}, &out, &errOut); rc != 0 {
			t.Fatalf("init: rc %d\n%s%s", rc, out.String(), errOut.String())
		}
	}
	logs := &lockedBuffer{}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- serve(ctx, cfg, src, zerolog.New(logs).Level(zerolog.DebugLevel), roles{ingress: true, workers: true})
	}()
	stopped := false
	stop := func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("serve: %v", err)
			}
		case <-time.After(30 * time.Second):
			t.Error("serve did not stop within 30s")
		}
	}
	t.Cleanup(stop)
	h := &apiHarness{base: "http://" + addr, t: t}
	h.eventually(15*time.Second, func() bool {
		resp, err := http.Get(h.base + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})

	// One job continues the caller's trace, the other starts its own.
	const callerTrace, callerSpan = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
	code, _, data := h.do(http.MethodPost, "/v1/jobs", `{"task":"summarize","input":{"text":"trace me"}}`,
		map[string]string{"traceparent": "00-" + callerTrace + "-" + callerSpan + "-01"})
	if code != http.StatusAccepted {
		t.Fatalf("submit: %d %s", code, data)
	}
	withCaller := h.submitted(data)
	own := h.submit(`{"task":"summarize","input":{"text":"trace me too"}}`)
	for _, id := range []string{withCaller, own} {
		h.waitStatus(id, messages.StatusCompleted)
		h.eventually(10*time.Second, func() bool { ev, _ := recv.find(id); return ev.Type == "job.completed" })
	}
	stop() // sends the batched spans

	spans := rcv.Spans()
	traceOf := func(jobID string) string {
		for _, s := range spans {
			if s.Attrs["infleet.job_id"] == jobID && strings.HasPrefix(s.Name, "publish ") {
				return s.TraceID
			}
		}
		t.Fatalf("no publish span for job %s among %v", jobID, otlptest.Names(spans))
		return ""
	}
	for _, tc := range []struct {
		job, wantTrace, wantRootParent string
	}{
		{withCaller, callerTrace, callerSpan},
		{own, "", ""},
	} {
		id := traceOf(tc.job)
		if tc.wantTrace != "" && id != tc.wantTrace {
			t.Errorf("job %s: trace %s, want the caller's %s", tc.job, id, tc.wantTrace)
		}
		checkTrace(t, spans, id, tc.wantRootParent)

		found := false
		for _, l := range logs.lines() {
			if l["job_id"] == tc.job && l["message"] == "job completed" {
				found = true
				if l["trace_id"] != id {
					t.Errorf("job %s: completion log has trace_id %v, want %s", tc.job, l["trace_id"], id)
				}
			}
		}
		if !found {
			t.Errorf("job %s: no completion log line", tc.job)
		}
	}
	accessLogged := false
	for _, l := range logs.lines() {
		if l["message"] == "http request" && l["route"] == "POST /v1/jobs" && l["trace_id"] == callerTrace {
			accessLogged = true
		}
	}
	if !accessLogged {
		t.Error("no access log line of the traced POST /v1/jobs carries its trace_id")
	}
}

// checkTrace checks that trace id holds one request's spans, parented as the pipeline runs.
func checkTrace(t *testing.T, all []otlptest.Span, id, rootParent string) {
	t.Helper()
	byName := map[string]otlptest.Span{}
	var names []string
	for _, s := range all {
		if s.TraceID != id {
			continue
		}
		key := s.Name
		if strings.HasPrefix(key, "publish ") {
			key = "publish"
		}
		if _, dup := byName[key]; dup {
			t.Errorf("trace %s: two spans named %s", id, key)
		}
		byName[key] = s
		names = append(names, s.Name)
		if s.Resource["service.name"] != "infleet" {
			t.Errorf("span %s: resource %v", s.Name, s.Resource)
		}
	}
	slices.Sort(names)
	want := []string{"http", "publish", "queue wait", "process job", "decode", "admit", "guard_in", "route", "invoke",
		"chat sim-fast-1", "guard_out", "store", "record", "notify"}
	var server otlptest.Span
	for _, s := range byName {
		if s.Kind == 2 { // SPAN_KIND_SERVER
			server = s
			byName["http"] = s
		}
	}
	for _, n := range want {
		if _, ok := byName[n]; !ok {
			t.Fatalf("trace %s lacks span %q; has %v", id, n, names)
		}
	}
	if server.ParentSpanID != rootParent {
		t.Errorf("HTTP span %q has parent %q, want %q", server.Name, server.ParentSpanID, rootParent)
	}
	parent := func(child, par string) {
		t.Helper()
		if byName[child].ParentSpanID != byName[par].SpanID {
			t.Errorf("span %s is not a child of %s", child, par)
		}
	}
	parent("publish", "http")
	parent("queue wait", "publish")
	parent("process job", "publish")
	for _, stage := range []string{"decode", "admit", "guard_in", "route", "invoke", "guard_out", "store", "record", "notify"} {
		parent(stage, "process job")
	}
	parent("chat sim-fast-1", "invoke")
	if q := byName["queue wait"]; !q.End.After(q.Start) || q.End.After(byName["process job"].Start.Add(time.Millisecond)) {
		t.Errorf("queue wait %v..%v does not end as the worker takes the message at %v", q.Start, q.End, byName["process job"].Start)
	}
	chat := byName["chat sim-fast-1"]
	for k, v := range map[string]any{"gen_ai.system": "infleet.sim", "gen_ai.request.model": "sim-fast-1", "gen_ai.operation.name": "chat"} {
		if chat.Attrs[k] != v {
			t.Errorf("model call span %s = %v, want %v (all %v)", k, chat.Attrs[k], v, chat.Attrs)
		}
	}
	for _, k := range []string{"gen_ai.usage.input_tokens", "gen_ai.usage.output_tokens"} {
		if n, ok := chat.Attrs[k].(int64); !ok || n <= 0 {
			t.Errorf("model call span %s = %v, want a positive count", k, chat.Attrs[k])
		}
	}
	if byName["notify"].Attrs["infleet.event_type"] != "job.completed" {
		t.Errorf("notify span attributes %v", byName["notify"].Attrs)
	}
}
