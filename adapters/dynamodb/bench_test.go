package dynamodb_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsmiddleware "github.com/aws/aws-sdk-go-v2/aws/middleware"
	ddb "github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/smithy-go/middleware"

	"github.com/infleet/infleet/adapters/dynamodb"
	"github.com/infleet/infleet/messages"
	"github.com/infleet/infleet/pipeline"
	"github.com/infleet/infleet/pipeline/storetest"
)

// withAndWithoutCounters runs bench twice, on a store that counts each job for JobStats (as
// every store does) and on one that does not, so that the counters' cost shows side by side.
func withAndWithoutCounters(b *testing.B, retention time.Duration, bench func(*testing.B, *dynamodb.Store)) {
	for _, counters := range []bool{false, true} {
		b.Run(fmt.Sprintf("counters=%v", counters), func(b *testing.B) {
			s, _ := setup(b, retention)
			if !counters {
				dynamodb.DisableStatsCounters(s)
			}
			bench(b, s)
			_ = s.Close()
			b.ReportMetric(float64(dynamodb.StatsWrites(s))/float64(b.N), "counter-writes/job")
		})
	}
}

// BenchmarkCreateTransitionParallel runs, per op, the three writes of one job's life: Create
// (with an idempotency key: two conditional writes), QUEUED → PROCESSING and PROCESSING →
// COMPLETED (a read and a conditional write each), from many goroutines at once (32 per CPU, as
// a worker pool runs many jobs per core), with and without the JobStats counters (five more
// UpdateItem calls per job, two of them at once with another). It reports jobs/s. Against
// dynalite the figure is the emulator's (one Node.js process on LevelDB), not DynamoDB's.
func BenchmarkCreateTransitionParallel(b *testing.B) {
	withAndWithoutCounters(b, time.Hour, func(b *testing.B, s *dynamodb.Store) {
		storetest.BenchLifecycle(b, s, job)
	})
}

// BenchmarkCreateTransitionSerial is one job's life at a time: the latency of the five round
// trips (claim, write, then read + write twice), and with the counters of JobStats the
// UpdateItem calls after each write (two at once after Create and after the completion).
func BenchmarkCreateTransitionSerial(b *testing.B) {
	withAndWithoutCounters(b, 0, func(b *testing.B, s *dynamodb.Store) {
		ctx := context.Background()
		b.ReportAllocs()
		for i := 0; b.Loop(); i++ {
			id := fmt.Sprintf("job-%09d", i)
			if _, _, err := s.Create(ctx, job(id, time.Now())); err != nil {
				b.Fatal(err)
			}
			if _, err := s.Transition(ctx, id, pipeline.Transition{To: messages.StatusProcessing, AttemptsDelta: 1}); err != nil {
				b.Fatal(err)
			}
			if _, err := s.Transition(ctx, id, pipeline.Transition{To: messages.StatusCompleted}); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkList reads pages of 50 from 500 jobs, unfiltered and by tenant.
func BenchmarkList(b *testing.B) {
	s, _ := setup(b, 0)
	ctx := context.Background()
	now := time.Now()
	for i := range 500 {
		rec := job(fmt.Sprintf("job-%04d", i), now.Add(time.Duration(i)*time.Millisecond))
		rec.Tenant = []string{"acme", "globex"}[i%2]
		if _, _, err := s.Create(ctx, rec); err != nil {
			b.Fatal(err)
		}
	}
	for _, q := range []pipeline.ListQuery{{}, {Tenant: "globex"}, {Status: messages.StatusQueued}} {
		b.Run(fmt.Sprintf("tenant=%q,status=%q", q.Tenant, q.Status), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				recs, _, err := s.List(ctx, q)
				if err != nil || len(recs) != 50 {
					b.Fatalf("List = %d jobs, %v", len(recs), err)
				}
			}
		})
	}
}

// requestCounts counts a client's DynamoDB requests by operation and the table write units
// the endpoint reports for them.
type requestCounts struct {
	mu         sync.Mutex
	ops        map[string]int
	writeUnits float64
}

// countingClient returns a client of the test endpoint that asks for the consumed capacity of
// every write and counts every request in c.
func countingClient(tb testing.TB, c *requestCounts) *ddb.Client {
	tb.Helper()
	base := newClient(tb)
	c.ops = map[string]int{}
	count := middleware.InitializeMiddlewareFunc("countRequests", func(ctx context.Context, in middleware.InitializeInput, next middleware.InitializeHandler) (middleware.InitializeOutput, middleware.Metadata, error) {
		switch p := in.Parameters.(type) {
		case *ddb.PutItemInput:
			p.ReturnConsumedCapacity = types.ReturnConsumedCapacityTotal
		case *ddb.UpdateItemInput:
			p.ReturnConsumedCapacity = types.ReturnConsumedCapacityTotal
		}
		out, md, err := next.HandleInitialize(ctx, in)
		var units float64
		switch r := out.Result.(type) {
		case *ddb.PutItemOutput:
			if r.ConsumedCapacity != nil {
				units = aws.ToFloat64(r.ConsumedCapacity.CapacityUnits)
			}
		case *ddb.UpdateItemOutput:
			if r.ConsumedCapacity != nil {
				units = aws.ToFloat64(r.ConsumedCapacity.CapacityUnits)
			}
		}
		c.mu.Lock()
		c.ops[awsmiddleware.GetOperationName(ctx)]++
		c.writeUnits += units
		c.mu.Unlock()
		return out, md, err
	})
	return ddb.New(base.Options(), func(o *ddb.Options) {
		o.APIOptions = append(o.APIOptions, func(s *middleware.Stack) error { return s.Initialize.Add(count, middleware.After) })
	})
}

// BenchmarkTransitionEvents is one job's life at a time, as BenchmarkCreateTransitionSerial
// (without the JobStats counters), with and without its COMPLETED event in the outbox. With
// events, each op also does the dispatcher's part for that event: a claim (an index query and
// a conditional update) and a delete (a conditional update); a dispatcher under load claims
// many events per query. It reports the requests per job by operation and the table write
// units dynalite reports for them (DynamoDB's rule for the table: 1 per KB written; dynalite
// does not report index writes), the time of the COMPLETED transition (which keeps the event)
// and the time of the claim and delete.
func BenchmarkTransitionEvents(b *testing.B) {
	for _, events := range []bool{false, true} {
		b.Run(fmt.Sprintf("events=%v", events), func(b *testing.B) {
			var counts requestCounts
			client := countingClient(b, &counts)
			s, err := dynamodb.Open(context.Background(), dynamodb.Config{Client: client, Table: newTable(b, newClient(b))})
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			dynamodb.DisableStatsCounters(s)
			ctx := context.Background()
			rec := job("", time.Now())
			rec.IdempotencyKey = ""
			rec.Spec = []byte(`{"task":"summarize","input":{"text":"x"},"callback_url":"https://example.com/hooks/infleet"}`)
			counts.mu.Lock()
			counts.ops, counts.writeUnits = map[string]int{}, 0
			counts.mu.Unlock()
			var completing, dispatching time.Duration
			for i := 0; b.Loop(); i++ {
				id := fmt.Sprintf("job-%09d", i)
				rec.JobID = id
				if _, _, err := s.Create(ctx, rec); err != nil {
					b.Fatal(err)
				}
				if _, err := s.Transition(ctx, id, pipeline.Transition{To: messages.StatusProcessing, AttemptsDelta: 1}); err != nil {
					b.Fatal(err)
				}
				done := pipeline.Transition{To: messages.StatusCompleted, ResultURL: messages.ResultPath(id)}
				if events {
					done.EventID = pipeline.NewEventID()
				}
				start := time.Now()
				if _, err := s.Transition(ctx, id, done); err != nil {
					b.Fatal(err)
				}
				completing += time.Since(start)
				if events {
					start = time.Now()
					evs, err := s.ClaimEvents(ctx, "bench", time.Minute, 1)
					if err != nil || len(evs) != 1 {
						b.Fatalf("ClaimEvents = %d events, %v", len(evs), err)
					}
					if err := s.DeleteEvents(ctx, evs); err != nil {
						b.Fatal(err)
					}
					dispatching += time.Since(start)
				}
			}
			b.ReportMetric(float64(completing.Microseconds())/float64(b.N), "completing-µs/job")
			b.ReportMetric(float64(dispatching.Microseconds())/float64(b.N), "dispatching-µs/job")
			counts.mu.Lock()
			defer counts.mu.Unlock()
			for op, n := range counts.ops {
				b.ReportMetric(float64(n)/float64(b.N), op+"/job")
			}
			b.ReportMetric(counts.writeUnits/float64(b.N), "table-WCU/job")
		})
	}
}
