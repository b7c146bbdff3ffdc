package handlers

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/pubsub/gochannel"
	"github.com/rs/zerolog"

	"github.com/infleet/infleet/adapters/file"
	"github.com/infleet/infleet/adapters/sqlite"
	"github.com/infleet/infleet/messages"
	"github.com/infleet/infleet/pipeline"
	"github.com/infleet/infleet/pipeline/intake"
)

// slowStore is a real job store whose Create does not get through before the client has gone,
// as a store under load: it waits for release and then writes the record.
type slowStore struct {
	pipeline.JobStore
	entered chan struct{} // receives once per Create
	release chan struct{} // closed once the client has hung up
}

func (s *slowStore) Create(ctx context.Context, rec messages.JobRecord) (messages.JobRecord, bool, error) {
	s.entered <- struct{}{}
	<-s.release
	return s.JobStore.Create(ctx, rec)
}

// slowIntake is the API over a real Service whose job store is a slowStore; logs collects
// every log line from debug up.
func slowIntake(t *testing.T) (b *testBundle, slow *slowStore, logs *syncBuffer) {
	t.Helper()
	dir := t.TempDir()
	store, err := sqlite.Open(t.Context(), sqlite.Config{Path: filepath.Join(dir, "jobs.db")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = store.Close() })
	results, err := file.New(file.Config{Dir: filepath.Join(dir, "results")})
	if err != nil {
		t.Fatal(err)
	}
	pubsub := gochannel.NewGoChannel(gochannel.Config{Persistent: true}, watermill.NopLogger{})
	t.Cleanup(func() { _ = pubsub.Close() })
	slow = &slowStore{JobStore: store, entered: make(chan struct{}, maxBatchJobs), release: make(chan struct{})}
	svc, err := intake.New(intake.Config{
		Store: slow, Results: results, Publisher: pubsub, Hub: pipeline.NewHub(),
		Topics: pipeline.Topics{High: "high", Normal: "normal", Low: "low", Dead: "dead"},
	})
	if err != nil {
		t.Fatal(err)
	}
	logs = &syncBuffer{}
	b = setup(t, func(c *APIConfig) {
		c.Jobs = svc
		c.Logger = zerolog.New(logs).Level(zerolog.DebugLevel)
	})
	return b, slow, logs
}

// leave posts body to path and hangs up once the store has been reached, lets the store go on,
// then waits for the server's access log line of the request.
func leave(t *testing.T, b *testBundle, slow *slowStore, logs *syncBuffer, path, body string) {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, b.server.URL+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", contentTypeJS)
	sent := make(chan error, 1)
	go func() {
		resp, err := b.server.Client().Do(req)
		if err == nil {
			resp.Body.Close()
		}
		sent <- err
	}()
	<-slow.entered // the job is being recorded
	cancel()
	if err := <-sent; !errors.Is(err, context.Canceled) {
		t.Fatalf("client: %v, want its own cancellation", err)
	}
	// The server sees the closed connection at once; the pause makes sure it has before the
	// store lets the items under way through.
	time.Sleep(100 * time.Millisecond)
	close(slow.release)
	waitUntil(t, "the access log line", func() bool { return strings.Contains(logs.String(), `"message":"http request"`) })
}

// noFailureLogged fails the test for any warn or error line in logs.
func noFailureLogged(t *testing.T, logs string) {
	t.Helper()
	for line := range strings.Lines(logs) {
		if strings.Contains(line, `"level":"error"`) || strings.Contains(line, `"level":"warn"`) {
			t.Errorf("logged as a failure: %s", line)
		}
	}
}

// recordedJobs counts the jobs the store holds.
func recordedJobs(t *testing.T, slow *slowStore) int {
	t.Helper()
	jobs, _, err := slow.List(t.Context(), pipeline.ListQuery{Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	return len(jobs)
}

// TestBatchClientLeaves sends a batch whose client hangs up while its items are being
// recorded: the items under way are recorded all the same (intake never stops half-way), the
// rest are not submitted, and the server neither answers nor logs it as a dependency failure
// (no 503, no error line) but logs at info that the client went away.
func TestBatchClientLeaves(t *testing.T) {
	t.Parallel()
	b, slow, logs := slowIntake(t)
	var jobs []string
	for i := range 40 {
		jobs = append(jobs, fmt.Sprintf(`{"task":"summarize","input":{"text":"item %d"}}`, i))
	}
	leave(t, b, slow, logs, "/v1/jobs:batch", `{"jobs":[`+strings.Join(jobs, ",")+`]}`)
	out := logs.String()
	noFailureLogged(t, out)
	if !strings.Contains(out, `"status":499`) {
		t.Errorf("want a 499 access line; logs:\n%s", out)
	}
	if !strings.Contains(out, `"level":"info"`) || !strings.Contains(out, "client went away before the batch was answered") {
		t.Errorf("want an info line saying the client left; logs:\n%s", out)
	}
	entered := len(slow.entered) + 1
	if entered > batchParallelism {
		t.Errorf("%d items reached the store after the client left; at most %d were under way", entered, batchParallelism)
	}
	if n := recordedJobs(t, slow); n != entered {
		t.Errorf("%d jobs recorded, want the %d under way when the client left", n, entered)
	}
}

// TestSubmitClientLeaves is TestBatchClientLeaves for POST /v1/jobs: the job is recorded
// although its client hung up, and nothing is logged as a failure.
func TestSubmitClientLeaves(t *testing.T) {
	t.Parallel()
	b, slow, logs := slowIntake(t)
	leave(t, b, slow, logs, "/v1/jobs", validJob)
	noFailureLogged(t, logs.String())
	if n := recordedJobs(t, slow); n != 1 {
		t.Errorf("%d jobs recorded, want 1", n)
	}
}

// waitUntil polls cond until it holds, failing the test after 5s.
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within 5s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
