package handlers

import (
	"context"
	"encoding/json"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/pubsub/gochannel"

	"github.com/infleet/infleet/adapters/file"
	"github.com/infleet/infleet/adapters/sqlite"
	"github.com/infleet/infleet/messages"
	"github.com/infleet/infleet/pipeline"
	"github.com/infleet/infleet/pipeline/intake"
)

// serviceBundle is the API over the real intake service: a SQLite job store, result files and a
// Watermill publisher. Tests play the worker by writing to the store and the result files.
type serviceBundle struct {
	*testBundle
	store   *sqlite.Store
	results *file.Store
	hub     *pipeline.Hub
	pubsub  *gochannel.GoChannel
}

func setupService(t *testing.T, edit ...func(*intake.Config)) *serviceBundle {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	store, err := sqlite.Open(ctx, sqlite.Config{Path: filepath.Join(dir, "jobs.db")})
	if err != nil {
		t.Fatalf("open job store: %v", err)
	}
	t.Cleanup(func() { _ = store.Close() })
	results, err := file.New(file.Config{Dir: filepath.Join(dir, "results")})
	if err != nil {
		t.Fatalf("open result store: %v", err)
	}
	pubsub := gochannel.NewGoChannel(gochannel.Config{Persistent: true}, watermill.NopLogger{})
	t.Cleanup(func() { _ = pubsub.Close() })
	hub := pipeline.NewHub()
	cfg := intake.Config{
		Store: store, Results: results, Publisher: pubsub, Hub: hub,
		Topics: pipeline.Topics{High: "high", Normal: "normal", Low: "low", Dead: "dead"},
	}
	for _, e := range edit {
		e(&cfg)
	}
	svc, err := intake.New(cfg)
	if err != nil {
		t.Fatalf("NewService: %v", err)
	}
	b := setup(t, func(c *APIConfig) { c.Jobs = svc })
	return &serviceBundle{testBundle: b, store: store, results: results, hub: hub, pubsub: pubsub}
}

// finish ends the job as a worker would: result stored first, then the record.
func (s *serviceBundle) finish(t *testing.T, id string, to messages.Status) {
	t.Helper()
	ctx := context.Background()
	tr := pipeline.Transition{To: to}
	if to == messages.StatusCompleted {
		res, _ := json.Marshal(messages.Result{JobID: id, Output: messages.Output{Text: "done"}, Model: "sim"})
		if err := s.results.Put(ctx, pipeline.ResultKey(id), res); err != nil {
			t.Fatalf("put result: %v", err)
		}
		tr.ResultURL = messages.ResultPath(id)
	}
	if _, err := s.store.Transition(ctx, id, tr); err != nil {
		t.Fatalf("transition %s to %s: %v", id, to, err)
	}
	s.hub.Notify(id)
}

func TestServiceLifecycle(t *testing.T) {
	t.Parallel()
	s := setupService(t)
	id := s.submit(t, "Idempotency-Key: svc-1", tenantHeader+": acme")

	resp := s.do(t, http.MethodPost, "/v1/jobs", validJob, "Idempotency-Key: svc-1", tenantHeader+": acme")
	var acc accepted
	decodeInto(t, resp, &acc)
	if acc.JobID != id || resp.Header.Get(HeaderIdempotentReplayed) != "true" {
		t.Fatalf("replay gave %s (replayed %q), want %s", acc.JobID, resp.Header.Get(HeaderIdempotentReplayed), id)
	}
	readProblem(t, s.do(t, http.MethodGet, "/v1/jobs/"+id, "", tenantHeader+": globex"), http.StatusNotFound, SlugNotFound)
	readProblem(t, s.do(t, http.MethodGet, "/v1/jobs/"+id+"/result", "", tenantHeader+": acme"), http.StatusNotFound, SlugNotFound)

	events := s.do(t, http.MethodGet, "/v1/jobs/"+id+"/events", "", tenantHeader+": acme")
	got := make(chan []sseEvent, 1)
	go func() {
		evs, _ := readEvents(t, events, nil)
		got <- evs
	}()
	s.finish(t, id, messages.StatusCompleted)
	evs := <-got
	if len(evs) == 0 || evs[len(evs)-1].rec.Status != messages.StatusCompleted {
		t.Fatalf("events %+v do not end with COMPLETED", evs)
	}

	var res messages.Result
	decodeInto(t, s.do(t, http.MethodGet, "/v1/jobs/"+id+"/result", "", tenantHeader+": acme"), &res)
	if res.JobID != id || res.Output.Text != "done" {
		t.Fatalf("result %+v", res)
	}
	p := readProblem(t, s.do(t, http.MethodDelete, "/v1/jobs/"+id, "", tenantHeader+": acme"), http.StatusConflict, SlugConflict)
	if !strings.Contains(p.Detail, "COMPLETED") {
		t.Errorf("409 detail %q", p.Detail)
	}
}

func TestServicePreferWaitAndCancel(t *testing.T) {
	t.Parallel()
	s := setupService(t)
	// The job is finished as soon as its message is on the queue.
	msgs, err := s.pubsub.Subscribe(context.Background(), "high")
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		for msg := range msgs {
			msg.Ack()
			id := msg.Metadata.Get(messages.MetaJobID)
			// The intake publishes before it writes the record, as a real worker may see too:
			// wait for the record rather than fail on a job not yet written.
			for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(time.Millisecond) {
				if _, err := s.store.Get(context.Background(), id); err == nil {
					break
				}
			}
			s.finish(t, id, messages.StatusFailed)
		}
	}()
	resp := s.do(t, http.MethodPost, "/v1/jobs", validJob, "Prefer: wait=10")
	var rec messages.JobRecord
	decodeInto(t, resp, &rec)
	if resp.StatusCode != http.StatusOK || rec.Status != messages.StatusFailed {
		t.Fatalf("Prefer: wait answered %d with %+v", resp.StatusCode, rec)
	}

	low := `{"task":"summarize","input":{"text":"x"},"priority":"low"}`
	resp = s.do(t, http.MethodPost, "/v1/jobs", low)
	decodeInto(t, resp, &rec)
	resp = s.do(t, http.MethodDelete, "/v1/jobs/"+rec.JobID, "")
	decodeInto(t, resp, &rec)
	if resp.StatusCode != http.StatusAccepted || rec.Status != messages.StatusCancelled {
		t.Fatalf("cancel answered %d with %+v", resp.StatusCode, rec)
	}
}

func TestServiceListAndUnavailable(t *testing.T) {
	t.Parallel()
	s := setupService(t)
	for range 3 {
		s.submit(t)
	}
	var page jobList
	decodeInto(t, s.do(t, http.MethodGet, "/v1/jobs?limit=2", ""), &page)
	if len(page.Jobs) != 2 || page.NextCursor == "" {
		t.Fatalf("first page %+v", page)
	}
	var next jobList
	decodeInto(t, s.do(t, http.MethodGet, "/v1/jobs?limit=2&cursor="+page.NextCursor, ""), &next)
	if len(next.Jobs) != 1 {
		t.Fatalf("second page %+v", next)
	}
	readProblem(t, s.do(t, http.MethodGet, "/v1/jobs?cursor=not-a-cursor", ""), http.StatusBadRequest, SlugInvalidQuery)

	// A closed publisher is an unreachable queue: 503, and no job is left behind.
	if err := s.pubsub.Close(); err != nil {
		t.Fatal(err)
	}
	resp := s.do(t, http.MethodPost, "/v1/jobs", validJob)
	readProblem(t, resp, http.StatusServiceUnavailable, SlugUnavailable)
	var all jobList
	decodeInto(t, s.do(t, http.MethodGet, "/v1/jobs", ""), &all)
	if len(all.Jobs) != 3 {
		t.Fatalf("%d jobs after a refused submit, want 3", len(all.Jobs))
	}
}

// signerFunc adapts a function to pipeline.BlobURLSigner.
type signerFunc func(ctx context.Context, key string) (string, error)

func (f signerFunc) SignedURL(ctx context.Context, key string) (string, error) { return f(ctx, key) }

func TestResultRedirectsToASignedURL(t *testing.T) {
	t.Parallel()
	s := setupService(t, func(c *intake.Config) {
		c.ResultURLs = signerFunc(func(_ context.Context, key string) (string, error) {
			return "https://results.example.com/" + key + "?sig=1", nil
		})
	})
	id := s.submit(t)
	p := readProblem(t, s.do(t, http.MethodGet, "/v1/jobs/"+id+"/result", ""), http.StatusNotFound, SlugNotFound)
	if !strings.Contains(p.Detail, "QUEUED") {
		t.Errorf("detail %q does not say the job is QUEUED", p.Detail)
	}
	readProblem(t, s.do(t, http.MethodGet, "/v1/jobs/no-such-job/result", ""), http.StatusNotFound, SlugNotFound)

	s.finish(t, id, messages.StatusCompleted)
	s.server.Client().CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	resp := s.do(t, http.MethodGet, "/v1/jobs/"+id+"/result", "")
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusTemporaryRedirect {
		t.Fatalf("result answered %d, want 307", resp.StatusCode)
	}
	if got, want := resp.Header.Get("Location"), "https://results.example.com/"+id+".json?sig=1"; got != want {
		t.Fatalf("Location = %q, want %q", got, want)
	}
}

// TestServiceListFiltersAndKeyLookup lists over the real service by tenant, priority and
// creation time, finds a job by its idempotency key, and answers bad filters with problems.
func TestServiceListFiltersAndKeyLookup(t *testing.T) {
	t.Parallel()
	s := setupService(t)
	post := func(body, tenant, key string) string {
		t.Helper()
		headers := []string{tenantHeader + ": " + tenant}
		if key != "" {
			headers = append(headers, "Idempotency-Key: "+key)
		}
		var acc struct {
			JobID string `json:"job_id"`
		}
		decodeInto(t, s.do(t, http.MethodPost, "/v1/jobs", body, headers...), &acc)
		return acc.JobID
	}
	high := post(`{"task":"summarize","input":{"text":"a"},"priority":"high"}`, "acme", "order-1")
	low := post(`{"task":"summarize","input":{"text":"b"},"priority":"low"}`, "globex", "order-1")
	ids := func(path string, headers ...string) []string {
		t.Helper()
		var page jobList
		decodeInto(t, s.do(t, http.MethodGet, path, "", headers...), &page)
		var out []string
		for _, j := range page.Jobs {
			out = append(out, j.JobID)
		}
		return out
	}
	for path, want := range map[string][]string{
		"/v1/jobs?priority=high":                                    {high},
		"/v1/jobs?tenant=globex":                                    {low},
		"/v1/jobs?idempotency_key=order-1&tenant=acme":              {high},
		"/v1/jobs?idempotency_key=order-1&tenant=globex":            {low},
		"/v1/jobs?idempotency_key=order-1&tenant=initech":           nil,
		"/v1/jobs?idempotency_key=order-1&tenant=acme&priority=low": nil,
		"/v1/jobs?created_after=2000-01-01T00:00:00Z&priority=low":  {low},
		"/v1/jobs?created_before=2000-01-01T00:00:00Z":              nil,
	} {
		if got := ids(path); strings.Join(got, ",") != strings.Join(want, ",") {
			t.Errorf("GET %s: %v, want %v", path, got, want)
		}
	}
	// A client's own tenant wins over the tenant it asks for.
	if got := ids("/v1/jobs?tenant=globex", tenantHeader+": acme"); len(got) != 1 || got[0] != high {
		t.Errorf("acme asking for globex's jobs got %v, want its own %s", got, high)
	}
	p := readProblem(t, s.do(t, http.MethodGet, "/v1/jobs?priority=urgent&created_after=yesterday", ""), http.StatusBadRequest, SlugInvalidQuery)
	if len(p.Errors) != 2 {
		t.Errorf("problems %+v, want priority and created_after", p.Errors)
	}
}
