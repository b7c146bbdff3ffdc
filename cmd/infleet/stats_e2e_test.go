package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	ddb "github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/infleet/infleet/adapters/dynamodb"
	"github.com/infleet/infleet/messages"
	"github.com/infleet/infleet/pipeline/models"
	"github.com/infleet/infleet/pipeline/ops"
	"github.com/infleet/infleet/schemas"
)

const statsConfig = `
models:
  - {name: fast, provider: sim, latency: 2ms, rpm: 6000, tpm: 900000, price: {input: 1, output: 1}}
  - {name: broken, provider: sim, latency: 1ms, fail_rate: 1}
routes: {default: fast, doomed: broken}
budgets: [{model: fast, daily_usd: 25, downgrade_to: broken}]
workers: {concurrency: 4, max_attempts: 1}
auth:
  api_keys:
    - {key: "k_stats_client_1", tenant: acme}
    - {key: "k_stats_ops_0001", tenant: ops, role: operator}
log: {level: warn}
`

// TestStatsAndModelsRoutes runs jobs that complete and jobs that are dead-lettered on the
// embedded default with auth, then reads GET /v1/stats and GET /v1/models as an operator:
// both answer bodies that their OpenAPI schemas accept, with the figures of those jobs; a
// client key is refused and a bad window is a problem.
func TestStatsAndModelsRoutes(t *testing.T) {
	t.Parallel()
	checkStatsAndModels(t, startServe(t, statsConfig))
}

// TestStatsOnDynamoDB is TestStatsAndModelsRoutes with the DynamoDB job store (dynalite): its
// counters give /v1/stats the same series and live counts as the SQL stores' queries.
func TestStatsOnDynamoDB(t *testing.T) {
	t.Parallel()
	endpoint := os.Getenv("INFLEET_TEST_DYNAMODB_ENDPOINT")
	if endpoint == "" {
		t.Skip("INFLEET_TEST_DYNAMODB_ENDPOINT is unset: run under .ci/peers/with-aws.sh (make test does)")
	}
	table := fmt.Sprintf("stats-e2e-%d-%d", os.Getpid(), time.Now().UnixNano()%1e9)
	client := ddb.New(ddb.Options{Region: "us-east-1", BaseEndpoint: aws.String(endpoint),
		Credentials: credentials.NewStaticCredentialsProvider("test", "test", "")})
	if err := dynamodb.EnsureTable(t.Context(), client, table); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_, _ = client.DeleteTable(context.Background(), &ddb.DeleteTableInput{TableName: aws.String(table)})
	})
	checkStatsAndModels(t, startServe(t, statsConfig+fmt.Sprintf("store: {kind: dynamodb, dynamodb: {table: %s, endpoint: %q}}\n", table, endpoint)))
}

// checkStatsAndModels runs the jobs of TestStatsAndModelsRoutes on h and checks the figures.
func checkStatsAndModels(t *testing.T, h *apiHarness) {
	t.Helper()
	client := map[string]string{"X-Api-Key": "k_stats_client_1"}
	operator := map[string]string{"X-Api-Key": "k_stats_ops_0001"}
	submit := func(body string) string {
		t.Helper()
		code, _, data := h.do(http.MethodPost, "/v1/jobs", body, client)
		if code != http.StatusAccepted {
			t.Fatalf("submit: %d %s", code, data)
		}
		return h.submitted(data)
	}
	var done []string
	for range 3 {
		done = append(done, submit(`{"task":"summarize","input":{"text":"count me"}}`))
	}
	doomed := []string{submit(`{"task":"doomed","input":{"text":"x"}}`), submit(`{"task":"doomed","input":{"text":"y"}}`)}
	wait := func(id string, want messages.Status) {
		t.Helper()
		h.eventually(15*time.Second, func() bool {
			_, _, data := h.do(http.MethodGet, "/v1/jobs/"+id, "", client)
			var rec messages.JobRecord
			_ = json.Unmarshal(data, &rec)
			return rec.Status == want
		})
	}
	for _, id := range done {
		wait(id, messages.StatusCompleted)
	}
	for _, id := range doomed {
		wait(id, messages.StatusFailed)
	}

	for _, path := range []string{"/v1/stats", "/v1/models"} {
		if code, _, data := h.do(http.MethodGet, path, "", client); code != http.StatusForbidden {
			t.Fatalf("GET %s as a client: %d %s", path, code, data)
		}
	}
	if code, _, data := h.do(http.MethodGet, "/v1/stats?window=2s", "", operator); code != http.StatusBadRequest ||
		!bytes.Contains(data, []byte(`"field":"window"`)) {
		t.Fatalf("GET /v1/stats?window=2s: %d %s", code, data)
	}

	var st ops.Stats
	h.eventually(15*time.Second, func() bool {
		data := getValid(t, h, "/v1/stats", "Stats", operator)
		st = ops.Stats{}
		if err := json.Unmarshal(data, &st); err != nil {
			t.Fatal(err)
		}
		return st.DeadLetters.Total == 2
	})
	if st.Series == nil || len(st.Series.T) < 60 || st.Running == nil || *st.Running != 0 || st.Queued == nil ||
		len(st.QueueDepth) != 3 || st.StepSeconds != 60 {
		t.Fatalf("stats: %+v", st)
	}
	var accepted, completed, failed int64
	var p95 float64
	for i := range st.Series.T {
		accepted += st.Series.Accepted[i]
		completed += st.Series.Completed[i]
		failed += st.Series.Failed[i]
		p95 = max(p95, st.Series.LatencyP95Ms[i])
	}
	if accepted != 5 || completed != 3 || failed != 2 || p95 <= 0 {
		t.Fatalf("series: accepted %d, completed %d, failed %d, p95 %v; want 5, 3, 2, > 0", accepted, completed, failed, p95)
	}
	if r := st.DeadLetters.ByReason; len(r) != 1 || r[0].Key != messages.ErrCodeModelError || r[0].Count != 2 ||
		len(st.DeadLetters.ByTask) != 1 || st.DeadLetters.ByTask[0].Key != "doomed" {
		t.Fatalf("dead letters: %+v", st.DeadLetters)
	}

	var list struct {
		Live   bool            `json:"live"`
		Models []models.Report `json:"models"`
	}
	if err := json.Unmarshal(getValid(t, h, "/v1/models", "ModelList", operator), &list); err != nil {
		t.Fatal(err)
	}
	if !list.Live || len(list.Models) != 2 {
		t.Fatalf("models: %+v", list)
	}
	broken, fast := list.Models[0], list.Models[1]
	if fast.Name != "fast" || fast.Calls != 3 || fast.CallsPerMinute != 3 || fast.TokensPerMinute <= 0 ||
		fast.Limits.RPM != 6000 || fast.BudgetUSD != 25 || fast.SpendTodayUSD <= 0 || fast.ErrorRate != 0 {
		t.Fatalf("fast: %+v", fast)
	}
	if broken.Name != "broken" || broken.ErrorRate != 1 || broken.Calls == 0 {
		t.Fatalf("broken: %+v", broken)
	}
}

// getValid GETs path with header, wants 200 and a body the OpenAPI document's component
// schema accepts, and returns the body.
func getValid(t *testing.T, h *apiHarness, path, schema string, header map[string]string) []byte {
	t.Helper()
	code, _, data := h.do(http.MethodGet, path, "", header)
	if code != http.StatusOK {
		t.Fatalf("GET %s: %d %s", path, code, data)
	}
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(schemas.OpenAPI()))
	if err != nil {
		t.Fatal(err)
	}
	c := jsonschema.NewCompiler()
	if err := c.AddResource("https://infleet.test/openapi.json", doc); err != nil {
		t.Fatal(err)
	}
	sch, err := c.Compile("https://infleet.test/openapi.json#/components/schemas/" + schema)
	if err != nil {
		t.Fatal(err)
	}
	v, err := jsonschema.UnmarshalJSON(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	if err := sch.Validate(v); err != nil {
		t.Fatalf("GET %s does not match components.schemas.%s: %v\n%s", path, schema, err, data)
	}
	return data
}

// TestJobRequestMasksInput submits a job whose input holds an e-mail address under an input
// PII policy that blocks it, and reads GET /v1/jobs/{id}/request: the accepted request, in the
// shape the OpenAPI document gives, with the address masked.
func TestJobRequestMasksInput(t *testing.T) {
	t.Parallel()
	h := startServe(t, `
models: [{name: fast, provider: sim, latency: 1ms}]
guardrails: {input: {pii: {entities: [EMAIL], action: BLOCK}}}
log: {level: warn}
`)
	id := h.submit(`{"task":"summarize","input":{"messages":[{"role":"user","content":"write to jane.doe@example.com"}]},"metadata":{"k":"v"},"context":"cc bob@example.org"}`)
	h.waitStatus(id, messages.StatusFailed)
	var got struct {
		JobID   string       `json:"job_id"`
		Masked  bool         `json:"masked"`
		Request messages.Job `json:"request"`
	}
	data := getValid(t, h, "/v1/jobs/"+id+"/request", "JobRequest", nil)
	if err := json.Unmarshal(data, &got); err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(data, []byte("example.com")) || bytes.Contains(data, []byte("bob@")) || !got.Masked ||
		got.JobID != id || got.Request.Task != "summarize" || len(got.Request.Input.Messages) != 1 ||
		!bytes.Contains(data, []byte("EMAIL")) || string(got.Request.Metadata) != `{"k":"v"}` {
		t.Fatalf("request: %s", data)
	}
}
