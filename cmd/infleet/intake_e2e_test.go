package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/infleet/infleet/messages"
)

// intakeLedger records, per idempotency key, every job id a 202 answered with.
type intakeLedger struct {
	mu       sync.Mutex
	accepted map[string][]string
	tries    int
}

func newIntakeLedger() *intakeLedger { return &intakeLedger{accepted: map[string][]string{}} }

func (l *intakeLedger) add(key, id string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.accepted[key] = append(l.accepted[key], id)
}

// submitUntilAccepted posts a job with key as its Idempotency-Key until an answer is 202, as a
// client told to retry on its key does: through resets, refused connections and 5xx.
func submitUntilAccepted(client *http.Client, base, key string, deadline time.Time, l *intakeLedger) error {
	body := fmt.Sprintf(`{"task":"summarize","input":{"text":"intake job %s"}}`, key)
	for {
		l.mu.Lock()
		l.tries++
		l.mu.Unlock()
		req, err := http.NewRequest(http.MethodPost, base+"/v1/jobs", strings.NewReader(body))
		if err != nil {
			return err
		}
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Idempotency-Key", key)
		resp, err := client.Do(req)
		if err == nil {
			data, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusAccepted {
				var out struct {
					JobID string `json:"job_id"`
				}
				if err := json.Unmarshal(data, &out); err != nil || out.JobID == "" {
					return fmt.Errorf("key %s: 202 without a job id: %s", key, data)
				}
				l.add(key, out.JobID)
				return nil
			}
			if resp.StatusCode < 500 && resp.StatusCode != http.StatusTooManyRequests {
				return fmt.Errorf("key %s: %d %s", key, resp.StatusCode, data)
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("key %s: no 202 before the deadline (last error %v)", key, err)
		}
		time.Sleep(time.Duration(10+rand.IntN(40)) * time.Millisecond)
	}
}

// checkEveryAcceptedJobRunsOnce waits until every job the store holds has ended and checks
// the promise of intake: each key was answered with one job id however often it was retried,
// that job COMPLETED, and no job exists beyond one per key (nothing half-accepted is left).
func checkEveryAcceptedJobRunsOnce(t *testing.T, api *apiHarness, l *intakeLedger, within time.Duration) {
	t.Helper()
	var jobs map[string]messages.JobRecord
	deadline := time.Now().Add(within)
	for {
		jobs = api.statuses()
		ended := 0
		for _, j := range jobs {
			if j.Status.Terminal() {
				ended++
			}
		}
		if ended == len(jobs) && len(jobs) >= len(l.accepted) {
			break
		}
		if time.Now().After(deadline) {
			byStatus := map[messages.Status]int{}
			for _, j := range jobs {
				byStatus[j.Status]++
			}
			t.Fatalf("after %s: %d jobs for %d keys, by status %v", within, len(jobs), len(l.accepted), byStatus)
		}
		time.Sleep(200 * time.Millisecond)
	}
	for key, ids := range l.accepted {
		for _, id := range ids[1:] {
			if id != ids[0] {
				t.Fatalf("key %s was answered with two jobs: %v", key, ids)
			}
		}
		rec, ok := jobs[ids[0]]
		if !ok {
			t.Fatalf("key %s: job %s was accepted but has no record", key, ids[0])
		}
		if rec.Status != messages.StatusCompleted {
			t.Fatalf("key %s: job %s ended %s: %+v", key, ids[0], rec.Status, rec.Error)
		}
	}
	if len(jobs) != len(l.accepted) {
		t.Fatalf("%d jobs for %d keys: a retried submission made a second job", len(jobs), len(l.accepted))
	}
}

// TestAbandonedPostsAllRun sends hundreds of whole POSTs and abandons each at once, half by
// closing the connection's write side and half by a reset, then retries every key as a client
// would: every job that exists runs to COMPLETED and each key names one job.
func TestAbandonedPostsAllRun(t *testing.T) {
	runsTheBinary(t)
	f := newE2E(t, `
models: [{name: fast, provider: sim, latency: 5ms}]
routes: {default: fast}
workers: {concurrency: 32}
log: {level: warn}
`)
	srv := f.serve()
	const n = 400
	var wg sync.WaitGroup
	// All at once, so that intake is still writing when the clients are gone.
	for i := range n {
		wg.Go(func() {
			body := fmt.Sprintf(`{"task":"summarize","input":{"text":"abandoned %d"}}`, i)
			conn, err := net.Dial("tcp", f.addr)
			if err != nil {
				t.Error(err)
				return
			}
			var req bytes.Buffer
			fmt.Fprintf(&req, "POST /v1/jobs HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\nIdempotency-Key: gone-%d\r\nContent-Length: %d\r\n\r\n%s",
				f.addr, i, len(body), body)
			if _, err := conn.Write(req.Bytes()); err != nil {
				t.Error(err)
			}
			tcp := conn.(*net.TCPConn)
			if i%2 == 0 {
				_ = tcp.CloseWrite()
				time.Sleep(time.Millisecond)
				_ = tcp.Close()
				return
			}
			_ = tcp.SetLinger(0) // Close sends a reset
			_ = tcp.Close()
		})
	}
	wg.Wait()
	l := newIntakeLedger()
	deadline := time.Now().Add(60 * time.Second)
	sem := make(chan struct{}, 64)
	for i := range n {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			if err := submitUntilAccepted(http.DefaultClient, srv.api.base, fmt.Sprintf("gone-%d", i), deadline, l); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	checkEveryAcceptedJobRunsOnce(t, srv.api, l, 60*time.Second)
}

// intakeUnderKills runs clients that submit keyed jobs, one every ~100ms each, and retry on
// their keys while `infleet ROLE` (serve or ingress) behind start is SIGKILLed again and again
// at random points and restarted on the same address; then it checks that every accepted job
// ran once.
func intakeUnderKills(t *testing.T, start func() *child, clients, kills int) {
	t.Helper()
	proc := start()
	api := proc.api
	l := newIntakeLedger()
	deadline := time.Now().Add(3 * time.Minute)
	client := &http.Client{Timeout: 10 * time.Second}
	var stop atomic.Bool
	var wg sync.WaitGroup
	for c := range clients {
		wg.Go(func() {
			for k := 0; !stop.Load(); k++ {
				if err := submitUntilAccepted(client, api.base, fmt.Sprintf("kill-%d-%d", c, k), deadline, l); err != nil {
					t.Error(err)
					return
				}
				time.Sleep(time.Duration(50+rand.IntN(100)) * time.Millisecond)
			}
		})
	}
	for range kills {
		time.Sleep(time.Duration(150+rand.IntN(450)) * time.Millisecond)
		if err := proc.cmd.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		_ = proc.cmd.Wait()
		proc = start()
	}
	time.Sleep(300 * time.Millisecond)
	stop.Store(true)
	wg.Wait()
	if t.Failed() {
		return
	}
	t.Logf("%d keys accepted in %d tries across %d kills", len(l.accepted), l.tries, kills)
	if l.tries == len(l.accepted) {
		t.Fatal("no submission was cut off by a kill: the test proved nothing")
	}
	checkEveryAcceptedJobRunsOnce(t, proc.api, l, 2*time.Minute)
}

// TestIntakeSurvivesKillsOnEmbedded SIGKILLs `infleet serve` on the embedded default at random
// points while 48 clients submit and retry on their keys.
func TestIntakeSurvivesKillsOnEmbedded(t *testing.T) {
	runsTheBinary(t)
	f := newE2E(t, `
models: [{name: fast, provider: sim, latency: 5ms}]
routes: {default: fast}
workers: {concurrency: 32, shutdown_timeout: 1s}
log: {level: warn}
`)
	intakeUnderKills(t, f.serve, 48, 15)
}

// TestIntakeSurvivesKillsOnKafkaAndPostgres SIGKILLs `infleet ingress` at random points while a
// worker keeps running, on Kafka (kfake) and PostgreSQL.
func TestIntakeSurvivesKillsOnKafkaAndPostgres(t *testing.T) {
	dsn, brokers := kafkaFleetPeers(t)
	base := fmt.Sprintf(`store: {kind: postgres, postgres: {dsn: %q}}
log: {level: warn}
transport: {kind: kafka, kafka: {brokers: [%q], session_timeout: 2s}}
`, ownPostgresDatabase(t, dsn), brokers)
	kafkaInit(t, base)
	f := newE2E(t, base+`models: [{name: m, provider: sim, latency: 5ms}]
routes: {default: m}
workers: {concurrency: 32, shutdown_timeout: 1s}
`)
	f.start("worker")
	intakeUnderKills(t, func() *child { return f.startAt("ingress", f.addr) }, 24, 8)
}

// ownPostgresDatabase creates a database of the test's own on the server of dsn, so that listing
// every job sees this test's jobs only, and drops it when the test ends. It returns its DSN.
func ownPostgresDatabase(t *testing.T, dsn string) string {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	name := fmt.Sprintf("infleet_%d_%d", os.Getpid(), rand.Uint32())
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		c, err := pgx.Connect(ctx, dsn)
		if err != nil {
			return
		}
		defer c.Close(ctx)
		_, _ = c.Exec(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)")
	})
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		t.Fatal(err)
	}
	user := url.User(cfg.User)
	if cfg.Password != "" {
		user = url.UserPassword(cfg.User, cfg.Password)
	}
	u := url.URL{Scheme: "postgres", User: user,
		Host: net.JoinHostPort(cfg.Host, strconv.Itoa(int(cfg.Port))), Path: "/" + name, RawQuery: "sslmode=disable"}
	return u.String()
}

// TestIntakeSurvivesKillsOnSQSAndDynamoDB SIGKILLs `infleet ingress` at random points while a
// worker keeps running, on SQS and DynamoDB (fauxqs and dynalite).
func TestIntakeSurvivesKillsOnSQSAndDynamoDB(t *testing.T) {
	p := needAWSPeers(t)
	runsTheBinary(t)
	sfx := fmt.Sprintf("%d-%d", os.Getpid(), time.Now().UnixNano()%1e6)
	q := func(n string) string { return "intake-" + sfx + "-" + n }
	f := newAWSE2E(t, p.endpoint, fmt.Sprintf(`
transport:
  kind: sqs
  sqs: {queues: {high: %s, normal: %s, low: %s}, dead_letter_queue: %s, visibility_timeout: 10s}
store: {kind: dynamodb, dynamodb: {table: %s, endpoint: %q}}
workers: {concurrency: 32, shutdown_timeout: 1s}
models: [{name: fast, provider: sim, latency: 5ms}]
log: {level: warn}
`, q("high"), q("normal"), q("low"), q("dead"), "intake-jobs-"+sfx, p.dynamo))
	f.dataDir = t.TempDir() // shared by the worker and every ingress, as on the other fleets
	f.start("worker")
	intakeUnderKills(t, func() *child { return f.startAt("ingress", f.addr) }, 16, 6)
}
