package dynamodb_test

import (
	"fmt"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	ddb "github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/infleet/infleet/adapters/dynamodb"
	"github.com/infleet/infleet/messages"
	"github.com/infleet/infleet/pipeline"
)

// TestStatsCountersAcrossProcesses counts the jobs two stores on one table (two processes)
// write at once: every shard's counts add up, a redrive
// takes its failure back, a deleted job leaves the figures, latencies in one histogram
// bucket give its mean, the minute items expire 48 hours after their minute, and a store
// that closes writes what it had buffered.
func TestStatsCountersAcrossProcesses(t *testing.T) {
	t.Parallel()
	one, cfg := setup(t, 0)
	two := reopen(t, cfg)
	t0 := time.Now().UTC().Truncate(time.Minute).Add(-10 * time.Minute)
	at := func(d time.Duration) time.Time { return t0.Add(d) }
	ctx := t.Context()

	const n = 40
	var wg sync.WaitGroup
	for i := range n {
		s := []*dynamodb.Store{one, two}[i%2]
		wg.Go(func() {
			id := fmt.Sprintf("job-%02d", i)
			if _, _, err := s.Create(ctx, job(id, at(time.Duration(i)*time.Second))); err != nil {
				t.Error(err)
				return
			}
			to, lat := messages.StatusCompleted, 1100*time.Millisecond // 1.1 s and 1.9 s: one bucket
			switch {
			case i%4 == 1:
				lat = 1900 * time.Millisecond
			case i%4 == 2:
				to = messages.StatusFailed
			case i%4 == 3:
				return // stays QUEUED
			}
			s = []*dynamodb.Store{one, two}[(i+1)%2]
			if _, err := s.Transition(ctx, id, pipeline.Transition{To: messages.StatusProcessing, At: at(time.Duration(i) * time.Second)}); err != nil {
				t.Error(err)
				return
			}
			if _, err := s.Transition(ctx, id, pipeline.Transition{To: to, At: at(time.Duration(i)*time.Second + lat)}); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	stats := func() pipeline.JobStats {
		t.Helper()
		dynamodb.FlushStats(one) // the other process's next flush; two's own comes with JobStats
		got, err := two.JobStats(ctx, at(0), at(2*time.Minute))
		if err != nil {
			t.Fatal(err)
		}
		if len(got.Buckets) != 2 {
			t.Fatalf("buckets %+v", got.Buckets)
		}
		return got
	}
	got := stats()
	b := got.Buckets[0]
	if b.Accepted != n || b.Completed != 20 || b.Failed != 10 || got.Queued != 10 || got.Processing != 0 ||
		b.LatencyP50 != 1500*time.Millisecond || b.LatencyP95 != 1500*time.Millisecond || got.Buckets[1] != (pipeline.StatsBucket{Start: at(time.Minute)}) {
		t.Fatalf("figures %+v", got)
	}
	shards := 0
	for sh := range dynamodb.StatsShards {
		item := rawItem(t, cfg, "stats#"+t0.Format("2006-01-02T15:04")+"#"+strconv.Itoa(sh))
		if item == nil {
			continue
		}
		shards++
		if exp, ok := expiresAt(item); !ok || exp != strconv.FormatInt(t0.Add(48*time.Hour).Unix(), 10) {
			t.Fatalf("minute item of shard %d expires at %q, want its minute + 48h", sh, exp)
		}
	}
	if shards == 0 {
		t.Fatal("no minute item in any shard")
	}

	// A redrive takes the failure back; a deleted job leaves every figure.
	if _, err := one.Transition(ctx, "job-02", pipeline.Transition{From: []messages.Status{messages.StatusFailed}, To: messages.StatusQueued, At: at(90 * time.Second)}); err != nil {
		t.Fatal(err)
	}
	if err := two.Delete(ctx, "job-03"); err != nil {
		t.Fatal(err)
	}
	if err := one.Delete(ctx, "job-00"); err != nil {
		t.Fatal(err)
	}
	got = stats()
	if b := got.Buckets[0]; b.Accepted != n-2 || b.Completed != 19 || b.Failed != 9 || got.Queued != 10 {
		t.Fatalf("after a redrive and two deletes: %+v", got)
	}

	// A job that took longer than the last bound lands in the last bucket, at its own latency.
	if _, _, err := one.Create(ctx, job("slow", at(-3*time.Hour))); err != nil {
		t.Fatal(err)
	}
	if _, err := one.Transition(ctx, "slow", pipeline.Transition{To: messages.StatusCompleted, At: at(61 * time.Second)}); err != nil {
		t.Fatal(err)
	}
	if got = stats(); got.Buckets[1].Completed != 1 || got.Buckets[1].LatencyP95 != 3*time.Hour+61*time.Second {
		t.Fatalf("a 3-hour job: %+v", got.Buckets[1])
	}

	// A third process counts a job and shuts down well before its next flush.
	three := reopen(t, cfg)
	if _, _, err := three.Create(ctx, job("late", at(70*time.Second))); err != nil {
		t.Fatal(err)
	}
	if err := three.Close(); err != nil {
		t.Fatal(err)
	}
	if got = stats(); got.Buckets[1].Accepted != 1 || got.Queued != 11 {
		t.Fatalf("after a store closed: %+v", got)
	}
}

// TestStatsCountersSurviveAFailedWrite keeps the counts of a flush that fails (the table is
// gone for a while) and writes them with a later flush.
func TestStatsCountersSurviveAFailedWrite(t *testing.T) {
	t.Parallel()
	s, cfg := setup(t, 0)
	dynamodb.StopStatsFlushes(s)
	ctx := t.Context()
	minute := time.Now().UTC().Truncate(time.Minute)
	if _, _, err := s.Create(ctx, job("kept", minute)); err != nil {
		t.Fatal(err)
	}
	if _, err := cfg.Client.DeleteTable(ctx, &ddb.DeleteTableInput{TableName: aws.String(cfg.Table)}); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, err := cfg.Client.DescribeTable(ctx, &ddb.DescribeTableInput{TableName: aws.String(cfg.Table)})
		if err != nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the table was not deleted within 10s")
		}
		time.Sleep(50 * time.Millisecond)
	}
	dynamodb.FlushStats(s) // fails: no table
	if err := dynamodb.EnsureTable(ctx, cfg.Client, cfg.Table); err != nil {
		t.Fatal(err)
	}
	got, err := s.JobStats(ctx, minute, minute.Add(time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	if got.Buckets[0].Accepted != 1 || got.Queued != 1 {
		t.Fatalf("after a failed flush and a good one: %+v", got)
	}
}

// TestRecountRepairsLostLiveCounts stands for a process killed before it flushed: the live
// counters are off by jobs it created and moved. RecountLive counts the jobs in the status
// index and adds the difference, so the figures are right again; a second recount finds
// nothing to repair; and a recount while another process writes leaves the counters alone.
func TestRecountRepairsLostLiveCounts(t *testing.T) {
	t.Parallel()
	s, cfg := setup(t, 0)
	dynamodb.SetRecountSettle(s, 100*time.Millisecond)
	ctx := t.Context()
	now := time.Now().UTC()
	for i := range 5 {
		id := fmt.Sprintf("job-%d", i)
		if _, _, err := s.Create(ctx, job(id, now)); err != nil {
			t.Fatal(err)
		}
		if i < 2 {
			if _, err := s.Transition(ctx, id, pipeline.Transition{To: messages.StatusProcessing, At: now}); err != nil {
				t.Fatal(err)
			}
		}
	}
	dynamodb.FlushStats(s)
	// The lost writes of a killed process: three creates never counted, one start counted twice.
	if _, err := cfg.Client.UpdateItem(ctx, &ddb.UpdateItemInput{
		TableName:                 aws.String(cfg.Table),
		Key:                       map[string]types.AttributeValue{"pk": &types.AttributeValueMemberS{Value: "stats#live#3"}},
		UpdateExpression:          aws.String("ADD queued :q, processing :p"),
		ExpressionAttributeValues: map[string]types.AttributeValue{":q": &types.AttributeValueMemberN{Value: "-3"}, ":p": &types.AttributeValueMemberN{Value: "1"}},
	}); err != nil {
		t.Fatal(err)
	}
	live := func() (int64, int64) {
		t.Helper()
		got, err := s.JobStats(ctx, now.Truncate(time.Minute), now.Truncate(time.Minute).Add(time.Minute))
		if err != nil {
			t.Fatal(err)
		}
		return got.Queued, got.Processing
	}
	if q, p := live(); q != 0 || p != 3 {
		t.Fatalf("before the recount: queued %d processing %d, want the drift 0 and 3", q, p)
	}
	r, err := s.RecountLive(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !r.Applied || r.Queued != 3 || r.Processing != 2 || r.CountedQueued != 0 || r.CountedProcessing != 3 {
		t.Fatalf("recount %+v", r)
	}
	if q, p := live(); q != 3 || p != 2 {
		t.Fatalf("after the recount: queued %d processing %d, want 3 and 2", q, p)
	}
	if r, err := s.RecountLive(ctx); err != nil || !r.Applied || r.Queued != r.CountedQueued || r.Processing != r.CountedProcessing {
		t.Fatalf("second recount %+v %v", r, err)
	}

	// Another process creates jobs while this one counts: its flushes move the counters, so
	// the recount writes nothing.
	other := reopen(t, cfg)
	dynamodb.SetRecountSettle(s, 3*time.Second)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			case <-time.After(100 * time.Millisecond):
			}
			if _, _, err := other.Create(ctx, job(fmt.Sprintf("busy-%d", i), now)); err != nil {
				t.Error(err)
				return
			}
		}
	})
	r, err = s.RecountLive(ctx)
	close(stop)
	wg.Wait()
	if err != nil || r.Applied {
		t.Fatalf("recount during writes: %+v %v, want nothing applied", r, err)
	}
}

// TestRecountLeaseTakesOneProcessPerTurn: of two processes, one takes the recount lease; the
// other takes it only once the lease has run out.
func TestRecountLeaseTakesOneProcessPerTurn(t *testing.T) {
	t.Parallel()
	one, cfg := setup(t, 0)
	two := reopen(t, cfg)
	now := time.Now()
	if ok, err := dynamodb.TakeRecount(one, now); err != nil || !ok {
		t.Fatalf("first take: %v %v", ok, err)
	}
	if ok, err := dynamodb.TakeRecount(two, now.Add(time.Minute)); err != nil || ok {
		t.Fatalf("second process within the turn: %v %v, want refused", ok, err)
	}
	if ok, err := dynamodb.TakeRecount(two, now.Add(5*time.Minute)); err != nil || !ok {
		t.Fatalf("second process after the turn: %v %v", ok, err)
	}
}
