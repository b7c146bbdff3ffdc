package dynamodb

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	ddb "github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/infleet/infleet/messages"
)

// The live counts of QUEUED and PROCESSING jobs are counters (see JobStats), so a process that
// dies between a job write and its next flush leaves them off for good by what it had not
// written. The fleet repairs them itself: every recountEvery one process (the one that takes
// the recount lease item) counts the jobs in each status through IndexByStatus and adds the
// difference to the counters. Counting takes time while other processes keep writing, so the
// difference is applied only when the counters did not move from before the count until
// recountSettle after it (every change made before the count had then been flushed, and none
// came after); a busy fleet tries again at the next turn. A repair adds, never sets, so that a
// change flushed meanwhile is never overwritten.
const (
	// recountEvery is how often the fleet recounts its live jobs.
	recountEvery = 5 * time.Minute
	// recountPK is the lease item: at most one process recounts per recountEvery.
	recountPK = "stats#recount"
	// recountWait bounds one recount.
	recountWait = time.Minute
	// attrUntil and attrHolder are the lease item's end (Unix ms) and holder.
	attrUntil  = "until_ms"
	attrHolder = "holder"
)

// Recount is what one RecountLive found: the jobs counted in the index, the counters before
// the repair, and whether the difference was added.
type Recount struct {
	// Queued and Processing are the jobs counted in IndexByStatus.
	Queued, Processing int64
	// CountedQueued and CountedProcessing are the live counters when the count ended.
	CountedQueued, CountedProcessing int64
	// Applied says the counters now hold Queued and Processing; false when they moved while
	// the jobs were counted (nothing was written then).
	Applied bool
}

// RecountLive counts the QUEUED and PROCESSING jobs through IndexByStatus and, when the live
// counters did not move during the count, adds the difference to them, so that JobStats
// reports the counted figures. It reads every such job's index entry (a COUNT query per
// status and shard, paged) and writes at most one item. It takes no lease: the store's own
// runs take one (see recountEvery); operators and tests may call it directly.
func (s *Store) RecountLive(ctx context.Context) (Recount, error) {
	s.flush(context.WithoutCancel(ctx))
	before, err := s.liveCounters(ctx)
	if err != nil {
		return Recount{}, err
	}
	var r Recount
	if r.Queued, err = s.countStatus(ctx, messages.StatusQueued); err != nil {
		return Recount{}, err
	}
	if r.Processing, err = s.countStatus(ctx, messages.StatusProcessing); err != nil {
		return Recount{}, err
	}
	// Every process flushes each statsFlush: after two, what was written before the count
	// began is in the counters.
	if err := sleep(ctx, s.recountSettle); err != nil {
		return Recount{}, err
	}
	s.flush(context.WithoutCancel(ctx))
	after, err := s.liveCounters(ctx)
	if err != nil {
		return Recount{}, err
	}
	r.CountedQueued, r.CountedProcessing = after[0], after[1]
	if before != after {
		return r, nil
	}
	dq, dp := r.Queued-after[0], r.Processing-after[1]
	if dq != 0 || dp != 0 {
		_, err := s.client.UpdateItem(ctx, &ddb.UpdateItemInput{
			TableName:                 aws.String(s.table),
			Key:                       key(livePK(0)),
			UpdateExpression:          aws.String("ADD #q :q, #p :p"),
			ExpressionAttributeNames:  map[string]string{"#q": attrQueued, "#p": attrProcessing},
			ExpressionAttributeValues: map[string]types.AttributeValue{":q": numAttr(dq), ":p": numAttr(dp)},
		})
		if err != nil {
			return r, s.wrap("repair the live job counts", err)
		}
		s.log.Info().Int64("queued", r.Queued).Int64("processing", r.Processing).Int64("queued_fix", dq).
			Int64("processing_fix", dp).Msg("live job counts repaired from the status index")
	}
	r.Applied = true
	return r, nil
}

// liveCounters returns the sums of the live counter items, queued then processing, read
// consistently.
func (s *Store) liveCounters(ctx context.Context) ([2]int64, error) {
	keys := make([]map[string]types.AttributeValue, StatsShards)
	for sh := range StatsShards {
		keys[sh] = key(livePK(sh))
	}
	items, err := s.batchGet(ctx, keys, consistentProjection(attrQueued, attrProcessing))
	if err != nil {
		return [2]int64{}, s.wrap("read the live job counts", err)
	}
	var out [2]int64
	for _, item := range items {
		q, _ := num(item, attrQueued)
		p, _ := num(item, attrProcessing)
		out[0] += q
		out[1] += p
	}
	return out, nil
}

// countStatus counts the jobs in st through IndexByStatus, every shard, every page.
func (s *Store) countStatus(ctx context.Context, st messages.Status) (int64, error) {
	var n int64
	for sh := range ListShards {
		in := &ddb.QueryInput{
			TableName:                 aws.String(s.table),
			IndexName:                 aws.String(IndexByStatus),
			KeyConditionExpression:    aws.String("#pk = :pk"),
			ExpressionAttributeNames:  map[string]string{"#pk": attrStatusPK},
			ExpressionAttributeValues: map[string]types.AttributeValue{":pk": strAttr(statusPK(st, sh))},
			Select:                    types.SelectCount,
		}
		for {
			out, err := s.client.Query(ctx, in)
			if err != nil {
				return 0, s.wrap("count "+string(st)+" jobs", err)
			}
			n += int64(out.Count)
			if len(out.LastEvaluatedKey) == 0 {
				break
			}
			in.ExclusiveStartKey = out.LastEvaluatedKey
		}
	}
	return n, nil
}

// takeRecount takes the recount lease until now+recountEvery when nobody holds it; false when
// another process does.
func (s *Store) takeRecount(ctx context.Context, now time.Time) (bool, error) {
	_, err := s.client.UpdateItem(ctx, &ddb.UpdateItemInput{
		TableName:                aws.String(s.table),
		Key:                      key(recountPK),
		UpdateExpression:         aws.String("SET #u = :until, #h = :me"),
		ConditionExpression:      aws.String("attribute_not_exists(#u) OR #u < :now"),
		ExpressionAttributeNames: map[string]string{"#u": attrUntil, "#h": attrHolder},
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":until": numAttr(now.Add(recountEvery - recountEvery/10).UnixMilli()),
			":now":   numAttr(now.UnixMilli()),
			":me":    strAttr(s.holder),
		},
	})
	var cond *types.ConditionalCheckFailedException
	if errors.As(err, &cond) {
		return false, nil
	}
	if err != nil {
		return false, s.wrap("take the recount lease", err)
	}
	return true, nil
}

// recountTurn runs one recount when this process takes the lease; failures are logged, and
// the next turn tries again.
func (s *Store) recountTurn(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, recountWait)
	defer cancel()
	ok, err := s.takeRecount(ctx, time.Now())
	if err == nil && ok {
		var r Recount
		r, err = s.RecountLive(ctx)
		if err == nil && !r.Applied {
			s.log.Debug().Msg("live job counts moved during the recount; trying at the next turn")
		}
	}
	if err != nil && ctx.Err() == nil {
		s.log.Warn().Err(err).Msg("live job counts not recounted; trying at the next turn")
	}
}

// holderName names this process in the recount lease item, for operators.
func holderName() string {
	host, _ := os.Hostname()
	return fmt.Sprintf("%s/%d/%d", host, os.Getpid(), time.Now().UnixNano())
}
