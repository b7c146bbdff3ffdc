package eventbridge_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	awseb "github.com/aws/aws-sdk-go-v2/service/eventbridge"

	"github.com/infleet/infleet/adapters/eventbridge"
	"github.com/infleet/infleet/adapters/eventbridge/ebtest"
	"github.com/infleet/infleet/messages"
	"github.com/infleet/infleet/pipeline"
)

// bundle is a fake EventBridge with a bus "jobs" and a client on it.
type bundle struct {
	srv    *ebtest.Server
	client *awseb.Client
}

func setup(t *testing.T) *bundle {
	t.Helper()
	srv := ebtest.New(t)
	srv.AddBus("jobs")
	client := awseb.New(awseb.Options{
		Region:       ebtest.Region,
		BaseEndpoint: aws.String(srv.URL),
		Credentials:  credentials.NewStaticCredentialsProvider("test", "test", ""),
	})
	return &bundle{srv: srv, client: client}
}

func (b *bundle) notifier(t *testing.T, cfg eventbridge.Config) *eventbridge.Notifier {
	t.Helper()
	cfg.Client = b.client
	cfg.Bus = cmpOr(cfg.Bus, "jobs")
	n, err := eventbridge.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = n.Close() })
	return n
}

func cmpOr(a, b string) string {
	if a == "" {
		return b
	}
	return a
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// eventually waits up to 10s for cond.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func note(id string) pipeline.Notification {
	return pipeline.Notification{Event: messages.Event{
		Type: messages.EventCompleted, JobID: id, Status: messages.StatusCompleted, Task: "summarize",
		OccurredAt: time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC),
	}}
}

// notifyAll sends the events of ids concurrently and returns each one's outcome.
func notifyAll(t *testing.T, n *eventbridge.Notifier, ids []string) map[string]error {
	t.Helper()
	ctx := ctxT(t)
	var mu sync.Mutex
	out := map[string]error{}
	var wg sync.WaitGroup
	for _, id := range ids {
		wg.Go(func() {
			err := n.Notify(ctx, note(id))
			mu.Lock()
			out[id] = err
			mu.Unlock()
		})
	}
	wg.Wait()
	return out
}

func ids(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("j%02d", i)
	}
	return out
}

// puts counts how many times each job's event was put.
func puts(t *testing.T, calls [][]ebtest.Entry) map[string]int {
	t.Helper()
	count := map[string]int{}
	for _, c := range calls {
		for _, e := range c {
			var ev messages.Event
			if err := json.Unmarshal([]byte(e.Detail), &ev); err != nil {
				t.Fatalf("detail %q is not an event: %v", e.Detail, err)
			}
			count[ev.JobID]++
		}
	}
	return count
}

func TestConcurrentNotifiesAreBatched(t *testing.T) {
	t.Parallel()
	b := setup(t)
	n := b.notifier(t, eventbridge.Config{Linger: 500 * time.Millisecond})
	for id, err := range notifyAll(t, n, ids(25)) {
		if err != nil {
			t.Errorf("notify %s: %v", id, err)
		}
	}
	calls := b.srv.Calls()
	if len(calls) < 3 || len(calls) > 5 {
		t.Errorf("25 events took %d PutEvents calls, want about 3", len(calls))
	}
	for i, c := range calls {
		if len(c) > eventbridge.MaxBatchEntries {
			t.Errorf("call %d carried %d entries", i, len(c))
		}
		for _, e := range c {
			if e.Source != "infleet" || e.DetailType != messages.EventCompleted || e.EventBusName != "jobs" || len(e.Resources) != 0 {
				t.Errorf("entry %+v: want source infleet, detail-type %s, bus jobs, no resources", e, messages.EventCompleted)
			}
			if want := float64(time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC).Unix()); e.Time != want {
				t.Errorf("entry time %v, want the event's occurred_at %v", e.Time, want)
			}
		}
	}
	for _, id := range ids(25) {
		if got := puts(t, calls)[id]; got != 1 {
			t.Errorf("%s put %d times, want once", id, got)
		}
	}
}

func TestPartialFailureResendsOnlyTheFailedEntries(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.srv.FailEntry = func(e ebtest.Entry, seen int) string {
		if seen == 0 && (strings.Contains(e.Detail, `"j02"`) || strings.Contains(e.Detail, `"j05"`)) {
			return "InternalFailure"
		}
		return ""
	}
	n := b.notifier(t, eventbridge.Config{Linger: 200 * time.Millisecond, RetryInterval: time.Millisecond})
	for id, err := range notifyAll(t, n, ids(10)) {
		if err != nil {
			t.Errorf("notify %s: %v", id, err)
		}
	}
	calls := b.srv.Calls()
	count := puts(t, calls)
	for _, id := range ids(10) {
		want := 1
		if id == "j02" || id == "j05" {
			want = 2
		}
		if count[id] != want {
			t.Errorf("%s put %d times, want %d", id, count[id], want)
		}
	}
	last := calls[len(calls)-1]
	if len(last) != 2 {
		t.Errorf("the retry call carried %d entries, want only the 2 failed ones", len(last))
	}
}

func TestEachCallerGetsItsOwnOutcome(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.srv.FailEntry = func(e ebtest.Entry, seen int) string {
		switch {
		case strings.Contains(e.Detail, `"j01"`):
			return "ThrottlingException" // never clears
		case strings.Contains(e.Detail, `"j02"`):
			return "AccessDeniedException" // never retried
		}
		return ""
	}
	n := b.notifier(t, eventbridge.Config{Linger: 200 * time.Millisecond, MaxAttempts: 3, RetryInterval: time.Millisecond})
	got := notifyAll(t, n, ids(4))
	if got["j00"] != nil || got["j03"] != nil {
		t.Errorf("good events failed: %v, %v", got["j00"], got["j03"])
	}
	if err := got["j01"]; err == nil || !strings.Contains(err.Error(), "after 3 attempt(s): ThrottlingException") {
		t.Errorf("j01: %v, want a failure after 3 attempts", err)
	}
	if err := got["j02"]; err == nil || !strings.Contains(err.Error(), "after 1 attempt(s): AccessDeniedException") {
		t.Errorf("j02: %v, want a failure after 1 attempt", err)
	}
	count := puts(t, b.srv.Calls())
	if count["j01"] != 3 || count["j02"] != 1 {
		t.Errorf("puts %v: want j01 three times, j02 once", count)
	}
}

func TestWholeCallFailureFailsEveryCaller(t *testing.T) {
	t.Parallel()
	b := setup(t)
	n := b.notifier(t, eventbridge.Config{Bus: "no-such-bus"})
	err := n.Notify(ctxT(t), note("j1"))
	if err == nil || !strings.Contains(err.Error(), "NotFound") {
		t.Fatalf("notify to a missing bus: %v", err)
	}
	if err := n.Check(ctxT(t)); err == nil || !strings.Contains(err.Error(), `EventBridge bus "no-such-bus" does not exist`) {
		t.Fatalf("check of a missing bus: %v", err)
	}
	if err := b.notifier(t, eventbridge.Config{}).Check(ctxT(t)); err != nil {
		t.Fatalf("check of an existing bus: %v", err)
	}
}

func TestCloseFlushesWhatIsQueued(t *testing.T) {
	t.Parallel()
	b := setup(t)
	n := b.notifier(t, eventbridge.Config{Linger: time.Hour})
	result := make(chan error, 1)
	go func() { result <- n.Notify(context.Background(), note("j1")) }()
	eventually(t, "the event to be queued", func() bool { return n.Queued() == 1 })
	if err := n.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-result:
		if err != nil {
			t.Fatalf("notify flushed by close: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("notify did not return after close")
	}
	if got := puts(t, b.srv.Calls())["j1"]; got != 1 {
		t.Fatalf("j1 put %d times, want once", got)
	}
	if err := n.Notify(ctxT(t), note("j2")); !errors.Is(err, eventbridge.ErrClosed) {
		t.Fatalf("notify after close: %v, want ErrClosed", err)
	}
	_ = n.Close() // twice is fine
}

func TestNotifyGivesUpWithItsContext(t *testing.T) {
	t.Parallel()
	b := setup(t)
	n := b.notifier(t, eventbridge.Config{Linger: time.Hour})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if err := n.Notify(ctx, note("j1")); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("notify: %v, want the context's deadline", err)
	}
}

func TestOversizedEventIsRefused(t *testing.T) {
	t.Parallel()
	b := setup(t)
	n := b.notifier(t, eventbridge.Config{})
	big := note("j1")
	big.Event.Error = &messages.JobError{Code: "model_error", Message: strings.Repeat("x", eventbridge.MaxBatchBytes)}
	if err := n.Notify(ctxT(t), big); err == nil || !strings.Contains(err.Error(), "256 KiB") {
		t.Fatalf("notify of a 256 KiB event: %v", err)
	}
	if len(b.srv.Calls()) != 0 {
		t.Fatal("an oversized event was sent")
	}
}

func TestConfigValidation(t *testing.T) {
	t.Parallel()
	_, err := eventbridge.New(eventbridge.Config{Linger: -1})
	for _, want := range []string{"Client is nil", "Bus is empty", "cannot be negative"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("validation error %v does not say %q", err, want)
		}
	}
}
