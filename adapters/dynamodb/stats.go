package dynamodb

import (
	"context"
	"math"
	"math/rand/v2"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	ddb "github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"golang.org/x/sync/errgroup"

	"github.com/infleet/infleet/messages"
	"github.com/infleet/infleet/pipeline"
)

// The store's figures for operators (pipeline.StatsReader) are counters, because the table's
// indexes cannot count jobs by time without reading every one:
//
//   - a minute item per minute and shard, "stats#<minute, UTC>#<shard>", with the minute's
//     accepted, completed and failed jobs and a histogram of the completed jobs' end-to-end
//     latency (a count and a sum of milliseconds per bucket of LatencyBucketsMs);
//   - a live item per shard, "stats#live#<shard>", with the jobs QUEUED and PROCESSING now.
//
// Each Create, Transition and Delete that changes a figure adds its changes, once its own
// write succeeded, to a buffer in the process; every statsFlush the process adds the buffer
// to the items with UpdateItem ADD (atomic, commutative): one write per minute touched and one
// of the live counts, however many jobs. So the job path pays no write for the figures (a
// transaction with the job write would double each write's cost, and DynamoDB's emulators
// have none), and a process writes about two counter items a second at any rate of jobs.
// Each write picks a shard at random, so that no item takes the writes of the whole fleet
// (one item takes about 1,000 writes a second); JobStats sums the shards, after flushing this
// process's buffer, so a process sees its own jobs at once and the others' within statsFlush.
// Close flushes. A process that dies unflushed loses its last second of counts: the minute's
// figures miss them until the minute expires, the live counts for good. A failed counter
// write is tried again with the next flush. Minute items carry expires_at (TTL) 48 hours after
// their minute.
const (
	// StatsShards is how many items each minute's counters and the live counters are spread
	// over. It is part of the table's data: lowering it would hide counts.
	StatsShards = 8
	// statsKeep is how long after its minute a minute item is kept (longer than
	// ops.MaxStatsWindow, the longest window read).
	statsKeep = 48 * time.Hour
	// batchGetKeys is the most keys one BatchGetItem reads.
	batchGetKeys = 100
	// statsReaders bounds the BatchGetItem calls of one JobStats in flight.
	statsReaders = 4
	// statsFlush is how often a process writes the counts of its job writes.
	statsFlush = time.Second
	// statsWriteWait bounds one counter write.
	statsWriteWait = 10 * time.Second
)

// LatencyBucketsMs are the upper bounds, in milliseconds, of the latency histogram's buckets;
// a last bucket takes everything longer. A bucket's percentile is the mean of the latencies
// in it: exact when they are equal, else between the bucket's bounds.
var LatencyBucketsMs = []int64{50, 100, 250, 500, 1_000, 2_000, 3_000, 5_000, 7_500, 10_000, 15_000, 20_000,
	30_000, 45_000, 60_000, 90_000, 120_000, 180_000, 300_000, 600_000, 1_200_000, 1_800_000, 3_600_000}

// Attributes of the stats items.
const (
	attrAccepted   = "accepted"
	attrCompleted  = "completed"
	attrFailed     = "failed"
	attrQueued     = "queued"
	attrProcessing = "processing"
	// attrLatencyN and attrLatencyMs, with a bucket's index, are its count and sum.
	attrLatencyN  = "lat_n_"
	attrLatencyMs = "lat_ms_"
)

func minutePK(minute int64, shard int) string {
	return "stats#" + time.Unix(minute, 0).UTC().Format("2006-01-02T15:04") + "#" + strconv.Itoa(shard)
}

func livePK(shard int) string { return "stats#live#" + strconv.Itoa(shard) }

// latencyBucket returns the histogram bucket of ms.
func latencyBucket(ms int64) int {
	for i, le := range LatencyBucketsMs {
		if ms <= le {
			return i
		}
	}
	return len(LatencyBucketsMs)
}

// minuteDelta is what one write changes in one minute's counters.
type minuteDelta struct {
	accepted, completed, failed int64
	// latN and latMs are the histogram's changes by bucket.
	latN, latMs map[int]int64
}

// statsDelta is what one job write changes in the counters.
type statsDelta struct {
	minutes            map[int64]*minuteDelta // by minute, Unix seconds
	queued, processing int64
}

// add counts rec (sign +1) or takes it away (-1): in the live counters by its status, as
// completed or failed in the minute of its UpdatedAt, and as accepted in the minute of its
// CreatedAt when accepted is set (its creation or deletion, not a transition).
func (d *statsDelta) add(rec messages.JobRecord, sign int64, accepted bool) {
	minute := func(t time.Time) *minuteDelta {
		m := t.UTC().Truncate(pipeline.StatsStep).Unix()
		if d.minutes == nil {
			d.minutes = map[int64]*minuteDelta{}
		}
		if d.minutes[m] == nil {
			d.minutes[m] = &minuteDelta{latN: map[int]int64{}, latMs: map[int]int64{}}
		}
		return d.minutes[m]
	}
	if accepted {
		minute(rec.CreatedAt).accepted += sign
	}
	switch rec.Status {
	case messages.StatusQueued:
		d.queued += sign
	case messages.StatusProcessing:
		d.processing += sign
	case messages.StatusCompleted:
		m := minute(rec.UpdatedAt)
		m.completed += sign
		ms := max(rec.UpdatedAt.UnixMilli()-rec.CreatedAt.UnixMilli(), 0)
		b := latencyBucket(ms)
		m.latN[b] += sign
		m.latMs[b] += sign * ms
	case messages.StatusFailed:
		minute(rec.UpdatedAt).failed += sign
	}
}

// merge adds o to d.
func (d *statsDelta) merge(o statsDelta) {
	d.queued += o.queued
	d.processing += o.processing
	for minute, om := range o.minutes {
		if d.minutes == nil {
			d.minutes = map[int64]*minuteDelta{}
		}
		m := d.minutes[minute]
		if m == nil {
			m = &minuteDelta{latN: map[int]int64{}, latMs: map[int]int64{}}
			d.minutes[minute] = m
		}
		m.accepted += om.accepted
		m.completed += om.completed
		m.failed += om.failed
		for b, n := range om.latN {
			m.latN[b] += n
			m.latMs[b] += om.latMs[b]
		}
	}
}

// created, transitioned and deleted are the changes of those writes.
func created(rec messages.JobRecord) statsDelta {
	var d statsDelta
	d.add(rec, 1, true)
	return d
}

func transitioned(cur, next messages.JobRecord) statsDelta {
	var d statsDelta
	d.add(cur, -1, false)
	d.add(next, 1, false)
	return d
}

func deleted(rec messages.JobRecord) statsDelta {
	var d statsDelta
	d.add(rec, -1, true)
	return d
}

// counterUpdate is one UpdateItem of a flush and the part of the changes it carries, which
// goes back to the buffer when the write fails.
type counterUpdate struct {
	input *ddb.UpdateItemInput
	delta statsDelta
}

// updates returns the UpdateItem calls that apply d: one per minute and one of the live
// counts, each on a shard picked at random, none for what cancels out.
func (s *Store) updates(d statsDelta) []counterUpdate {
	var out []counterUpdate
	add := func(pk string, counts map[string]int64, set map[string]int64, part statsDelta) {
		names, values := map[string]string{}, map[string]types.AttributeValue{}
		var adds, sets []string
		i := 0
		for attr, v := range counts {
			if v == 0 {
				continue
			}
			n, val := "#a"+strconv.Itoa(i), ":a"+strconv.Itoa(i)
			names[n], values[val] = attr, numAttr(v)
			adds = append(adds, n+" "+val)
			i++
		}
		if len(adds) == 0 {
			return
		}
		for attr, v := range set {
			n, val := "#s"+strconv.Itoa(i), ":s"+strconv.Itoa(i)
			names[n], values[val] = attr, numAttr(v)
			sets = append(sets, n+" = "+val)
			i++
		}
		expr := "ADD " + strings.Join(adds, ", ")
		if len(sets) > 0 {
			expr += " SET " + strings.Join(sets, ", ")
		}
		out = append(out, counterUpdate{delta: part, input: &ddb.UpdateItemInput{
			TableName: aws.String(s.table), Key: key(pk), UpdateExpression: aws.String(expr),
			ExpressionAttributeNames: names, ExpressionAttributeValues: values,
		}})
	}
	for minute, m := range d.minutes {
		counts := map[string]int64{attrAccepted: m.accepted, attrCompleted: m.completed, attrFailed: m.failed}
		for b, n := range m.latN {
			counts[attrLatencyN+strconv.Itoa(b)] = n
			counts[attrLatencyMs+strconv.Itoa(b)] = m.latMs[b]
		}
		add(minutePK(minute, rand.IntN(StatsShards)), counts,
			map[string]int64{attrExpiresAt: time.Unix(minute, 0).Add(statsKeep).Unix()},
			statsDelta{minutes: map[int64]*minuteDelta{minute: m}})
	}
	add(livePK(rand.IntN(StatsShards)), map[string]int64{attrQueued: d.queued, attrProcessing: d.processing}, nil,
		statsDelta{queued: d.queued, processing: d.processing})
	return out
}

// counters buffers the changes of this process's job writes until the next flush. Safe for
// concurrent use.
type counters struct {
	mu      sync.Mutex
	pending statsDelta
	closed  bool
	// flushMu makes flushes take turns, so that a failed write's changes are back in the
	// buffer before the next flush takes it.
	flushMu sync.Mutex
	stop    chan struct{}
	done    chan struct{}
	once    sync.Once
	// writes counts the counter writes made, for benchmarks.
	writes atomic.Int64
	// warned is when a failed write was last logged (under mu): once a minute at most.
	warned time.Time
}

// count adds the changes of a job write that succeeded to the buffer; after Close, it
// writes them at once.
func (s *Store) count(ctx context.Context, d statsDelta) {
	if s.noStats {
		return
	}
	c := &s.counters
	c.mu.Lock()
	c.pending.merge(d)
	closed := c.closed
	c.mu.Unlock()
	if closed {
		s.flush(context.WithoutCancel(ctx))
	}
}

// runCounters flushes the buffer every statsFlush until Close, then once more; between
// flushes it takes its turns at recounting the live jobs (recount.go).
func (s *Store) runCounters() {
	defer close(s.counters.done)
	tick := time.NewTicker(statsFlush)
	defer tick.Stop()
	// Each process's turns start at a random point, so that the lease is not raced for at once.
	recount := time.NewTicker(recountEvery/2 + rand.N(recountEvery))
	defer recount.Stop()
	// A recount runs beside the flushes (it waits for two of them); Close cancels it.
	rctx, cancel := context.WithCancel(context.Background())
	var recounting sync.WaitGroup
	defer recounting.Wait()
	defer cancel()
	for {
		select {
		case <-tick.C:
			s.flush(context.Background())
		case <-recount.C:
			recount.Reset(recountEvery)
			recounting.Wait() // one at a time
			recounting.Go(func() { s.recountTurn(rctx) })
		case <-s.counters.stop:
			s.flush(context.Background())
			return
		}
	}
}

// closeCounters stops the flushes after a last one; the writes that follow flush at once.
func (s *Store) closeCounters() {
	s.counters.once.Do(func() {
		s.counters.mu.Lock()
		s.counters.closed = true
		s.counters.mu.Unlock()
		if s.counters.stop != nil {
			close(s.counters.stop)
			<-s.counters.done
		}
	})
}

// flush writes the buffered changes, all items at once, each write bounded by statsWriteWait.
// A write that fails puts its changes back for the next flush, and is logged.
func (s *Store) flush(ctx context.Context) {
	c := &s.counters
	c.flushMu.Lock()
	defer c.flushMu.Unlock()
	c.mu.Lock()
	d := c.pending
	c.pending = statsDelta{}
	c.mu.Unlock()
	ups := s.updates(d)
	c.writes.Add(int64(len(ups)))
	var wg sync.WaitGroup
	for _, up := range ups {
		wg.Go(func() {
			wctx, cancel := context.WithTimeout(ctx, statsWriteWait)
			defer cancel()
			if _, err := s.client.UpdateItem(wctx, up.input); err != nil {
				c.mu.Lock()
				// A minute no window reads any more is not worth another try.
				for minute := range up.delta.minutes {
					if time.Since(time.Unix(minute, 0)) > statsKeep {
						delete(up.delta.minutes, minute)
					}
				}
				c.pending.merge(up.delta)
				warn := time.Since(c.warned) >= time.Minute
				if warn {
					c.warned = time.Now()
				}
				c.mu.Unlock()
				if warn {
					s.log.Warn().Err(err).Str("item", str(up.input.Key, attrPK)).
						Msg("job figures not written; trying again with each flush (logged once a minute)")
				}
			}
		})
	}
	wg.Wait()
}

// JobStats returns the figures of [from, to) and the live job counts from the counter items;
// see pipeline.StatsReader. Each bucket counts its whole minute (a window ending inside a
// minute takes what that minute counted until now). It reads StatsShards items per minute
// and StatsShards live items with eventually consistent BatchGetItem calls, after writing this
// process's buffered counts,, at most
// statsReaders at once: a one-hour window is 496 items, five calls. Latency percentiles come
// from the histogram: the mean of the bucket holding the percentile's rank.
func (s *Store) JobStats(ctx context.Context, from, to time.Time) (pipeline.JobStats, error) {
	out := pipeline.JobStats{Buckets: pipeline.NewStatsBuckets(from, to)}
	keys := make([]map[string]types.AttributeValue, 0, (len(out.Buckets)+1)*StatsShards)
	for _, b := range out.Buckets {
		for sh := range StatsShards {
			keys = append(keys, key(minutePK(b.Start.Unix(), sh)))
		}
	}
	for sh := range StatsShards {
		keys = append(keys, key(livePK(sh)))
	}
	s.flush(context.WithoutCancel(ctx))
	items, err := s.batchGet(ctx, keys, types.KeysAndAttributes{})
	if err != nil {
		return pipeline.JobStats{}, s.wrap("read job figures", err)
	}

	index := make(map[string]int, len(out.Buckets))
	for i, b := range out.Buckets {
		index[minutePK(b.Start.Unix(), 0)] = i
	}
	nb := len(LatencyBucketsMs) + 1
	latN, latMs := make([][]int64, len(out.Buckets)), make([][]int64, len(out.Buckets))
	for _, item := range items {
		pk := str(item, attrPK)
		get := func(name string) int64 { v, _ := num(item, name); return v }
		if strings.HasPrefix(pk, "stats#live#") {
			out.Queued += get(attrQueued)
			out.Processing += get(attrProcessing)
			continue
		}
		cut := strings.LastIndexByte(pk, '#')
		i, ok := index[pk[:max(cut, 0)]+"#0"]
		if !ok {
			continue
		}
		b := &out.Buckets[i]
		b.Accepted += get(attrAccepted)
		b.Completed += get(attrCompleted)
		b.Failed += get(attrFailed)
		if latN[i] == nil {
			latN[i], latMs[i] = make([]int64, nb), make([]int64, nb)
		}
		for h := range nb {
			latN[i][h] += get(attrLatencyN + strconv.Itoa(h))
			latMs[i][h] += get(attrLatencyMs + strconv.Itoa(h))
		}
	}
	for i := range out.Buckets {
		out.Buckets[i].LatencyP50 = histogramPercentile(latN[i], latMs[i], 0.50)
		out.Buckets[i].LatencyP95 = histogramPercentile(latN[i], latMs[i], 0.95)
	}
	return out, nil
}

// histogramPercentile returns the p-th percentile (nearest rank) of the histogram of counts n
// and sums ms: the mean of the bucket that holds the rank. Zero when it is empty.
func histogramPercentile(n, ms []int64, p float64) time.Duration {
	var total int64
	for _, c := range n {
		total += max(c, 0)
	}
	if total == 0 {
		return 0
	}
	rank := max(int64(math.Ceil(float64(total)*p)), 1)
	var seen int64
	for i, c := range n {
		if c <= 0 {
			continue
		}
		if seen += c; seen >= rank {
			return time.Duration(ms[i]/c) * time.Millisecond
		}
	}
	return 0
}

// batchGet reads keys, batchGetKeys at a time and statsReaders calls at once, each call made
// from how (its consistency and projection; its Keys are ignored), reading again the keys
// DynamoDB leaves unprocessed (with backoff). Missing items are left out.
func (s *Store) batchGet(ctx context.Context, keys []map[string]types.AttributeValue, how types.KeysAndAttributes) ([]map[string]types.AttributeValue, error) {
	var (
		mu  sync.Mutex
		out []map[string]types.AttributeValue
	)
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(statsReaders)
	for lo := 0; lo < len(keys); lo += batchGetKeys {
		chunk := keys[lo:min(lo+batchGetKeys, len(keys))]
		g.Go(func() error {
			ka := how
			ka.Keys = chunk
			req := map[string]types.KeysAndAttributes{s.table: ka}
			delay := 10 * time.Millisecond
			for len(req) > 0 {
				res, err := s.client.BatchGetItem(gctx, &ddb.BatchGetItemInput{RequestItems: req})
				if err != nil {
					return err
				}
				mu.Lock()
				out = append(out, res.Responses[s.table]...)
				mu.Unlock()
				req = res.UnprocessedKeys
				if len(req[s.table].Keys) == 0 {
					break
				}
				if err := sleep(gctx, delay); err != nil {
					return err
				}
				delay = min(2*delay, time.Second)
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	return out, nil
}
