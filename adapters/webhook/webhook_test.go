package webhook_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/infleet/infleet/adapters/webhook"
	"github.com/infleet/infleet/messages"
	"github.com/infleet/infleet/pipeline"
)

const secret = "whsec_test_secret"

// receiver is a webhook endpoint that verifies, records and answers deliveries.
type receiver struct {
	*httptest.Server
	mu       sync.Mutex
	requests []*http.Request
	bodies   [][]byte
	verrs    []error
	// respond writes the answer to the n-th (0-based) request.
	respond func(n int, w http.ResponseWriter, r *http.Request)
}

func newReceiver(t *testing.T, respond func(n int, w http.ResponseWriter, r *http.Request)) *receiver {
	t.Helper()
	rc := &receiver{respond: respond}
	rc.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		verr := webhook.Verify(secret, r.Header.Get(webhook.SignatureHeader), body, 5*time.Minute, time.Now())
		rc.mu.Lock()
		n := len(rc.requests)
		rc.requests = append(rc.requests, r)
		rc.bodies = append(rc.bodies, body)
		rc.verrs = append(rc.verrs, verr)
		rc.mu.Unlock()
		if rc.respond != nil {
			rc.respond(n, w, r)
		}
	}))
	t.Cleanup(rc.Close)
	return rc
}

func (rc *receiver) count() int {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return len(rc.requests)
}

func statuses(codes ...int) func(int, http.ResponseWriter, *http.Request) {
	return func(n int, w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(codes[min(n, len(codes)-1)])
	}
}

// logBuffer is a goroutine-safe log sink.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) lines() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return strings.Split(strings.TrimSpace(b.buf.String()), "\n")
}

type bundle struct {
	logs *logBuffer
}

// setup returns a Notifier for cfg with fast retries, private targets allowed (httptest
// listens on loopback) and its logs captured, unless cfg says otherwise.
func setup(t *testing.T, cfg webhook.Config) (*webhook.Notifier, bundle) {
	t.Helper()
	logs := &logBuffer{}
	cfg.Logger = zerolog.New(logs)
	if cfg.Secret == "" {
		cfg.Secret = secret
	}
	if cfg.InitialBackoff == 0 {
		cfg.InitialBackoff = time.Millisecond
	}
	n, err := webhook.New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return n, bundle{logs: logs}
}

func note(callback string) pipeline.Notification {
	rec := messages.JobRecord{
		JobID:     "job-123",
		Status:    messages.StatusCompleted,
		Task:      "summarize",
		Tenant:    "acme",
		ResultURL: "/v1/jobs/job-123/result",
	}
	return pipeline.Notification{
		Event:       messages.EventFor(rec, time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)),
		CallbackURL: callback,
	}
}

func TestDeliversSignedEvent(t *testing.T) {
	t.Parallel()
	rc := newReceiver(t, statuses(http.StatusNoContent))
	n, _ := setup(t, webhook.Config{URL: rc.URL + "/hook", AllowPrivate: true})
	nt := note("")
	nt.Event.ID = "0193f1c2-event"
	if err := n.Notify(context.Background(), nt); err != nil {
		t.Fatalf("Notify: %v", err)
	}
	if rc.count() != 1 {
		t.Fatalf("%d requests, want 1", rc.count())
	}
	r, body := rc.requests[0], rc.bodies[0]
	if rc.verrs[0] != nil {
		t.Errorf("signature does not verify: %v", rc.verrs[0])
	}
	if r.Method != http.MethodPost || r.URL.Path != "/hook" {
		t.Errorf("request %s %s, want POST /hook", r.Method, r.URL.Path)
	}
	for h, want := range map[string]string{
		"Content-Type":        "application/json",
		"User-Agent":          webhook.UserAgent,
		webhook.EventHeader:   messages.EventCompleted,
		webhook.EventIDHeader: "0193f1c2-event",
	} {
		if got := r.Header.Get(h); got != want {
			t.Errorf("header %s = %q, want %q", h, got, want)
		}
	}
	var got messages.Event
	if err := json.Unmarshal(body, &got); err != nil {
		t.Fatalf("body is not an event: %v", err)
	}
	if got != nt.Event {
		t.Errorf("event = %+v, want %+v", got, nt.Event)
	}
	if err := webhook.Verify("other-secret", r.Header.Get(webhook.SignatureHeader), body, time.Minute, time.Now()); err == nil {
		t.Error("signature verified with the wrong secret")
	}
}

func TestNoSecretNoSignature(t *testing.T) {
	t.Parallel()
	rc := newReceiver(t, statuses(http.StatusOK))
	n, err := webhook.New(webhook.Config{URL: rc.URL, AllowPrivate: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := n.Notify(context.Background(), note("")); err != nil {
		t.Fatal(err)
	}
	if h := rc.requests[0].Header.Get(webhook.SignatureHeader); h != "" {
		t.Errorf("signature header %q sent without a secret", h)
	}
}

func TestRetriesServerErrorsThenSucceeds(t *testing.T) {
	t.Parallel()
	rc := newReceiver(t, statuses(500, 503, 200))
	n, b := setup(t, webhook.Config{URL: rc.URL, AllowPrivate: true})
	if err := n.Notify(context.Background(), note("")); err != nil {
		t.Fatalf("Notify: %v", err)
	}
	if rc.count() != 3 {
		t.Fatalf("%d requests, want 3", rc.count())
	}
	for i, verr := range rc.verrs {
		if verr != nil {
			t.Errorf("attempt %d: signature does not verify: %v", i+1, verr)
		}
	}
	lines := b.logs.lines()
	if len(lines) != 2 {
		t.Fatalf("%d log lines, want one per failed attempt (2): %q", len(lines), lines)
	}
	var entry map[string]any
	if err := json.Unmarshal([]byte(lines[1]), &entry); err != nil {
		t.Fatal(err)
	}
	if entry["job_id"] != "job-123" || entry["attempt"] != float64(2) || entry["status"] != float64(503) {
		t.Errorf("log entry %v lacks job_id, attempt 2 or status 503", entry)
	}
	for _, l := range lines {
		if strings.Contains(l, secret) || strings.Contains(l, "summarize") {
			t.Errorf("log line leaks the secret or the body: %s", l)
		}
	}
}

func TestRetriesTooManyRequests(t *testing.T) {
	t.Parallel()
	rc := newReceiver(t, statuses(429, 200))
	n, _ := setup(t, webhook.Config{URL: rc.URL, AllowPrivate: true})
	if err := n.Notify(context.Background(), note("")); err != nil {
		t.Fatalf("Notify: %v", err)
	}
	if rc.count() != 2 {
		t.Fatalf("%d requests, want 2", rc.count())
	}
}

func TestDoesNotRetryClientErrors(t *testing.T) {
	t.Parallel()
	for _, code := range []int{400, 401, 404, 410, 302} {
		rc := newReceiver(t, statuses(code))
		n, b := setup(t, webhook.Config{URL: rc.URL, AllowPrivate: true})
		err := n.Notify(context.Background(), note(""))
		if err == nil {
			t.Fatalf("status %d: Notify succeeded", code)
		}
		if rc.count() != 1 {
			t.Errorf("status %d: %d requests, want 1", code, rc.count())
		}
		if l := b.logs.lines(); len(l) != 1 {
			t.Errorf("status %d: %d log lines, want 1", code, len(l))
		}
	}
}

func TestGivesUpAfterMaxAttempts(t *testing.T) {
	t.Parallel()
	rc := newReceiver(t, statuses(502))
	n, _ := setup(t, webhook.Config{URL: rc.URL, AllowPrivate: true, MaxAttempts: 3})
	err := n.Notify(context.Background(), note(""))
	if err == nil || !strings.Contains(err.Error(), "gave up after 3 attempt(s)") {
		t.Fatalf("err = %v, want giving up after 3 attempts", err)
	}
	if rc.count() != 3 {
		t.Fatalf("%d requests, want 3", rc.count())
	}
}

func TestRetriesNetworkErrors(t *testing.T) {
	t.Parallel()
	rc := newReceiver(t, nil)
	url := rc.URL
	rc.Close() // nothing listens there now
	n, b := setup(t, webhook.Config{URL: url, AllowPrivate: true, MaxAttempts: 2})
	if err := n.Notify(context.Background(), note("")); err == nil {
		t.Fatal("Notify to a closed port succeeded")
	}
	if l := b.logs.lines(); len(l) != 2 {
		t.Fatalf("%d failed attempts logged, want 2", len(l))
	}
}

func TestCallbackURLOverridesConfiguredURL(t *testing.T) {
	t.Parallel()
	configured := newReceiver(t, statuses(200))
	callback := newReceiver(t, statuses(200))
	n, _ := setup(t, webhook.Config{URL: configured.URL, AllowPrivate: true})
	if err := n.Notify(context.Background(), note(callback.URL+"/cb?token=x")); err != nil {
		t.Fatal(err)
	}
	if configured.count() != 0 || callback.count() != 1 {
		t.Fatalf("configured got %d, callback got %d; want 0 and 1", configured.count(), callback.count())
	}
	if q := callback.requests[0].URL.RawQuery; q != "token=x" {
		t.Errorf("query = %q, want token=x", q)
	}
}

func TestNoTargetIsNoop(t *testing.T) {
	t.Parallel()
	n, _ := setup(t, webhook.Config{})
	if err := n.Notify(context.Background(), note("")); err != nil {
		t.Fatalf("Notify with no target: %v", err)
	}
}

func TestRefusesInternalTargets(t *testing.T) {
	t.Parallel()
	rc := newReceiver(t, statuses(200))
	port := rc.URL[strings.LastIndex(rc.URL, ":")+1:]
	n, b := setup(t, webhook.Config{})
	for _, target := range []string{
		rc.URL, // http://127.0.0.1:port
		"http://localhost:" + port,
		"http://[::1]:" + port,
		"http://[::ffff:127.0.0.1]:" + port,
		"http://169.254.169.254/latest/meta-data/",
		"http://10.0.0.1/",
		"http://0x7f.1:" + port,
		"http://[::127.0.0.1]:" + port,
		"http://[::7f00:1]:" + port,
		"http://[2002:7f00:1::]:" + port,
		"http://[64:ff9b::7f00:1]:" + port,
		"http://[2001:0:4136:e378:8000:63bf:80ff:fffe]:" + port,
	} {
		err := n.Notify(context.Background(), note(target))
		if !errors.Is(err, webhook.ErrForbiddenAddress) {
			t.Errorf("%s: err = %v, want ErrForbiddenAddress", target, err)
		}
	}
	if rc.count() != 0 {
		t.Fatalf("%d requests reached the loopback server", rc.count())
	}
	if l := b.logs.lines(); l[0] != "" {
		t.Errorf("refused targets were attempted: %q", l)
	}
}

// TestDialGuardRefusesResolvedNames checks the connect-time guard end to end: the machine's
// own name is not refused by its spelling, but it resolves to an internal address, which is
// refused when dialled, once, without retries.
func TestDialGuardRefusesResolvedNames(t *testing.T) {
	t.Parallel()
	host, err := os.Hostname()
	if err != nil {
		t.Skipf("no hostname: %v", err)
	}
	addrs, err := net.DefaultResolver.LookupNetIP(context.Background(), "ip", host)
	if err != nil || len(addrs) == 0 {
		t.Skipf("hostname %q does not resolve: %v", host, err)
	}
	for _, a := range addrs {
		if a := a.Unmap(); !a.IsLoopback() && !a.IsPrivate() && !a.IsLinkLocalUnicast() {
			t.Skipf("hostname %q resolves to %s, which is not internal", host, a)
		}
	}
	rc := newReceiver(t, statuses(200))
	port := rc.URL[strings.LastIndex(rc.URL, ":")+1:]
	n, b := setup(t, webhook.Config{})
	err = n.Notify(context.Background(), note("http://"+host+":"+port))
	if !errors.Is(err, webhook.ErrForbiddenAddress) {
		t.Fatalf("%s: err = %v, want ErrForbiddenAddress", host, err)
	}
	if rc.count() != 0 {
		t.Fatalf("%d requests reached the server", rc.count())
	}
	if l := b.logs.lines(); len(l) != 1 || !strings.Contains(l[0], `"will_retry":false`) {
		t.Fatalf("want one failed attempt, not retried; logs: %q", l)
	}
}

func TestConfigURLRefusedAtNew(t *testing.T) {
	t.Parallel()
	for _, u := range []string{"http://127.0.0.1/x", "http://169.254.169.254/", "ftp://example.com/", "not a url", "http:///nohost"} {
		if _, err := webhook.New(webhook.Config{URL: u}); err == nil {
			t.Errorf("New with URL %q: want error", u)
		}
	}
	if _, err := webhook.New(webhook.Config{URL: "http://127.0.0.1/x", AllowPrivate: true}); err != nil {
		t.Errorf("AllowPrivate: %v", err)
	}
	if _, err := webhook.New(webhook.Config{MaxAttempts: -1, Timeout: -1, InitialBackoff: -1}); err == nil ||
		strings.Count(err.Error(), "\n") != 2 {
		t.Errorf("three bad fields: err = %v, want three problems", err)
	}
}

func TestDoesNotFollowRedirects(t *testing.T) {
	t.Parallel()
	elsewhere := newReceiver(t, statuses(200))
	rc := newReceiver(t, func(_ int, w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, elsewhere.URL, http.StatusTemporaryRedirect)
	})
	n, _ := setup(t, webhook.Config{URL: rc.URL, AllowPrivate: true})
	if err := n.Notify(context.Background(), note("")); err == nil {
		t.Fatal("Notify succeeded through a redirect")
	}
	if elsewhere.count() != 0 {
		t.Fatal("the redirect was followed")
	}
}

func TestLargeResponseBodyIsBounded(t *testing.T) {
	t.Parallel()
	rc := newReceiver(t, func(_ int, w http.ResponseWriter, _ *http.Request) {
		chunk := bytes.Repeat([]byte("x"), 32<<10)
		for range 1024 { // 32 MiB unless the client hangs up
			if _, err := w.Write(chunk); err != nil {
				return
			}
		}
	})
	n, _ := setup(t, webhook.Config{URL: rc.URL, AllowPrivate: true})
	if err := n.Notify(context.Background(), note("")); err != nil {
		t.Fatalf("Notify: %v", err)
	}
}

func TestPerAttemptTimeout(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	t.Cleanup(func() { close(release) })
	rc := newReceiver(t, func(n int, w http.ResponseWriter, r *http.Request) {
		if n == 0 {
			select {
			case <-r.Context().Done():
			case <-release:
			}
			return
		}
		w.WriteHeader(http.StatusOK)
	})
	n, _ := setup(t, webhook.Config{URL: rc.URL, AllowPrivate: true, Timeout: 50 * time.Millisecond})
	if err := n.Notify(context.Background(), note("")); err != nil {
		t.Fatalf("Notify: %v", err)
	}
	if rc.count() != 2 {
		t.Fatalf("%d requests, want 2 (a timed-out one, then a success)", rc.count())
	}
}

func TestNotifyHonoursContext(t *testing.T) {
	t.Parallel()
	var arrived atomic.Bool
	rc := newReceiver(t, func(_ int, w http.ResponseWriter, r *http.Request) {
		arrived.Store(true)
		<-r.Context().Done()
	})
	n, _ := setup(t, webhook.Config{URL: rc.URL, AllowPrivate: true, Timeout: time.Hour})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- n.Notify(ctx, note("")) }()
	waitFor(t, arrived.Load)
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("err = %v, want context.Canceled", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Notify did not return after cancellation")
	}
	if rc.count() != 1 {
		t.Fatalf("%d requests, want 1 (no retry after cancellation)", rc.count())
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 10s")
		}
		time.Sleep(time.Millisecond)
	}
}

func BenchmarkNotify(b *testing.B) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
	}))
	b.Cleanup(srv.Close)
	n, err := webhook.New(webhook.Config{URL: srv.URL, Secret: secret, AllowPrivate: true})
	if err != nil {
		b.Fatal(err)
	}
	nt := note("")
	b.ReportAllocs()
	for b.Loop() {
		if err := n.Notify(context.Background(), nt); err != nil {
			b.Fatal(err)
		}
	}
}
