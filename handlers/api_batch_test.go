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
)

// slowStore is a real job store whose Create does not get through before the request ends, as
// a store under load: it waits for ctx and then calls the store, which refuses the ended ctx.
type slowStore struct {
	pipeline.JobStore
	entered chan struct{} // receives once per Create
}

func (s *slowStore) Create(ctx context.Context, rec messages.JobRecord) (messages.JobRecord, bool, error) {
	s.entered <- struct{}{}
	<-ctx.Done()
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
	slow = &slowStore{JobStore: store, entered: make(chan struct{}, maxBatchJobs)}
	svc, err := pipeline.NewService(pipeline.ServiceConfig{
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

// leave posts body to path and hangs up once the store has been reached, then waits for the
// server's access log line of the request.
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
	if !strings.Contains(logs, `"status":499`) {
		t.Errorf("want a 499 access line; logs:\n%s", logs)
	}
}

// TestBatchClientLeaves sends a batch whose client hangs up while its items are being
// recorded: the server must not answer or log it as a dependency failure (no 503, no error
// line), must stop submitting the rest, and logs at info that the client went away.
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
	if !strings.Contains(out, `"level":"info"`) || !strings.Contains(out, "client went away before the batch was answered") {
		t.Errorf("want an info line saying the client left; logs:\n%s", out)
	}
	if n := len(slow.entered); n+1 > batchParallelism {
		t.Errorf("%d items reached the store after the client left; at most %d were under way", n+1, batchParallelism)
	}
}

// TestSubmitClientLeaves is TestBatchClientLeaves for POST /v1/jobs.
func TestSubmitClientLeaves(t *testing.T) {
	t.Parallel()
	b, slow, logs := slowIntake(t)
	leave(t, b, slow, logs, "/v1/jobs", validJob)
	noFailureLogged(t, logs.String())
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
