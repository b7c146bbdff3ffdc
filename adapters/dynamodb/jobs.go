package dynamodb

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	ddb "github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/infleet/infleet/messages"
	"github.com/infleet/infleet/pipeline"
	"github.com/infleet/infleet/pipeline/storecodec"
)

// createAttempts bounds how often Create retries when the job that refused its write is
// deleted before it could be read.
const createAttempts = 5

// ifAbsent is the condition of a write that must not overwrite an item.
var ifAbsent = aws.String("attribute_not_exists(" + attrPK + ")")

// Create stores rec unless a job with its JobID, or with its non-empty IdempotencyKey under the
// same Tenant, exists; see pipeline.JobStore. Times are stored at millisecond precision and
// returned in UTC; a zero CreatedAt means now and a zero UpdatedAt means CreatedAt. It is
// atomic and idempotent across processes: racing creates of one id or key store one job and
// every loser gets that job back with created false. A job with a key costs two conditional
// writes (the key's claim, then the job), one without a key one.
func (s *Store) Create(ctx context.Context, rec messages.JobRecord) (messages.JobRecord, bool, error) {
	rec, err := storecodec.ForCreate(rec)
	if err != nil {
		return messages.JobRecord{}, false, fmt.Errorf("dynamodb store: %w", err)
	}
	item, err := s.jobItem(rec, 0)
	if err != nil {
		return messages.JobRecord{}, false, err
	}
	if rec.IdempotencyKey == "" {
		return s.putNewJob(ctx, rec, item, false)
	}
	deadline := time.Now().Add(s.claimWait)
	delay := 2 * time.Millisecond
	for {
		claimed, holder, claimedAt, err := s.claimKey(ctx, rec)
		if err != nil {
			return messages.JobRecord{}, false, err
		}
		if claimed || holder == rec.JobID {
			return s.putNewJob(ctx, rec, item, claimed)
		}
		if holder != "" {
			// As in every store, a job with rec's id wins over the key's holder.
			for _, id := range []string{rec.JobID, holder} {
				cur, _, err := s.get(ctx, id)
				if err == nil {
					return cur, false, nil
				}
				if !errors.Is(err, pipeline.ErrNotFound) {
					return messages.JobRecord{}, false, err
				}
			}
			// The holder's job is not written yet, or its creator died before writing it.
			if time.Since(claimedAt) > ClaimTimeout {
				if err := s.releaseKey(ctx, rec.Tenant, rec.IdempotencyKey, holder); err != nil {
					return messages.JobRecord{}, false, err
				}
				s.log.Warn().Str("job_id", rec.JobID).Str("holder_job_id", holder).Str("tenant", rec.Tenant).
					Time("claimed_at", claimedAt).Msg("idempotency key taken over from a job that was never written")
				continue
			}
			if time.Now().After(deadline) {
				return messages.JobRecord{}, false, fmt.Errorf("%w: dynamodb store: the idempotency key of job %s is held by job %s, which is still being created (retry in a moment)",
					pipeline.ErrUnavailable, rec.JobID, holder)
			}
		}
		if err := sleep(ctx, delay/2+rand.N(delay)); err != nil {
			return messages.JobRecord{}, false, fmt.Errorf("dynamodb store: create job %s: %w", rec.JobID, err)
		}
		delay = min(2*delay, 100*time.Millisecond)
	}
}

// claimKey claims rec's idempotency key for rec.JobID. When another claim holds it, it returns
// that claim's job id and time; holder is "" when the claim vanished before it could be read.
func (s *Store) claimKey(ctx context.Context, rec messages.JobRecord) (claimed bool, holder string, claimedAt time.Time, err error) {
	pk := idemPK(rec.Tenant, rec.IdempotencyKey)
	_, err = s.client.PutItem(ctx, &ddb.PutItemInput{
		TableName: aws.String(s.table),
		Item: map[string]types.AttributeValue{
			attrPK: strAttr(pk), attrJobID: strAttr(rec.JobID), attrClaimedAt: numAttr(time.Now().UnixMilli()),
		},
		ConditionExpression: ifAbsent,
	})
	if err == nil {
		return true, "", time.Time{}, nil
	}
	if !isConditionFailed(err) {
		return false, "", time.Time{}, s.wrap("claim the idempotency key of job "+rec.JobID, err)
	}
	out, err := s.client.GetItem(ctx, &ddb.GetItemInput{
		TableName: aws.String(s.table), Key: key(pk), ConsistentRead: aws.Bool(true),
	})
	if err != nil {
		return false, "", time.Time{}, s.wrap("read the idempotency key of job "+rec.JobID, err)
	}
	at, _ := num(out.Item, attrClaimedAt)
	return false, str(out.Item, attrJobID), time.UnixMilli(at), nil
}

// releaseKey deletes the claim of tenant's key if job id still holds it.
func (s *Store) releaseKey(ctx context.Context, tenant, idemKey, id string) error {
	_, err := s.client.DeleteItem(ctx, &ddb.DeleteItemInput{
		TableName:                 aws.String(s.table),
		Key:                       key(idemPK(tenant, idemKey)),
		ConditionExpression:       aws.String("#job = :job"),
		ExpressionAttributeNames:  map[string]string{"#job": attrJobID},
		ExpressionAttributeValues: map[string]types.AttributeValue{":job": strAttr(id)},
	})
	if err != nil && !isConditionFailed(err) {
		return s.wrap("release the idempotency key of job "+id, err)
	}
	return nil
}

// putNewJob writes item, the job rec, unless a job with its id exists, which it then returns.
// releaseClaim says that this call claimed rec's key, which it gives back when it loses to a job
// that does not hold that key.
func (s *Store) putNewJob(ctx context.Context, rec messages.JobRecord, item map[string]types.AttributeValue, releaseClaim bool) (messages.JobRecord, bool, error) {
	for range createAttempts {
		_, err := s.client.PutItem(ctx, &ddb.PutItemInput{
			TableName: aws.String(s.table), Item: item, ConditionExpression: ifAbsent,
		})
		if err == nil {
			s.count(ctx, created(rec))
			return rec, true, nil
		}
		if !isConditionFailed(err) {
			return messages.JobRecord{}, false, s.wrap("write job "+rec.JobID, err)
		}
		cur, _, err := s.get(ctx, rec.JobID)
		if errors.Is(err, pipeline.ErrNotFound) {
			continue // deleted since: try again
		}
		if err != nil {
			return messages.JobRecord{}, false, err
		}
		// The job with rec's id is rec written by another writer (intake and a worker taking
		// its message race), and holds the key: the claim stays. Only a job that does not hold
		// the key gives back the claim this call took for it.
		if releaseClaim && (cur.Tenant != rec.Tenant || cur.IdempotencyKey != rec.IdempotencyKey) {
			if err := s.releaseKey(ctx, rec.Tenant, rec.IdempotencyKey, rec.JobID); err != nil {
				return messages.JobRecord{}, false, err
			}
		}
		return cur, false, nil
	}
	return messages.JobRecord{}, false, fmt.Errorf("dynamodb store: the write of job %s was refused %d times but no job holds its id (jobs are being deleted as fast as they are created; retry)", rec.JobID, createAttempts)
}

// Get returns the job with that id, or an error wrapping pipeline.ErrNotFound. It reads
// strongly consistently: it sees every write that has returned, from any process.
func (s *Store) Get(ctx context.Context, id string) (messages.JobRecord, error) {
	rec, _, err := s.get(ctx, id)
	return rec, err
}

// get reads job id and its version.
func (s *Store) get(ctx context.Context, id string) (messages.JobRecord, int64, error) {
	rec, version, _, err := s.getItem(ctx, id)
	return rec, version, err
}

// getItem reads job id, its version and its item.
func (s *Store) getItem(ctx context.Context, id string) (messages.JobRecord, int64, map[string]types.AttributeValue, error) {
	out, err := s.client.GetItem(ctx, &ddb.GetItemInput{
		TableName: aws.String(s.table), Key: key(jobPK(id)), ConsistentRead: aws.Bool(true),
	})
	if err != nil {
		return messages.JobRecord{}, 0, nil, s.wrap("get job "+id, err)
	}
	if out.Item == nil {
		return messages.JobRecord{}, 0, nil, fmt.Errorf("job %s: %w", id, pipeline.ErrNotFound)
	}
	rec, version, err := decodeJob(out.Item)
	return rec, version, out.Item, err
}

// Transition applies t to job id atomically with pipeline.Transition.Apply; see
// pipeline.JobStore. It is a compare-and-swap on the job's version attribute: it reads the job,
// checks t.From, applies t and writes the result only if no other write came in between, else
// reads again. Racing transitions serialize and at most one leaves a given status; a job
// deleted meanwhile stays deleted (ErrNotFound). On ErrConflict the returned record is the
// job's current state. The job's kept events (see ClaimEvents) go over to the new item, with
// the event of t.EventID, when set, added in the same write.
func (s *Store) Transition(ctx context.Context, id string, t pipeline.Transition) (messages.JobRecord, error) {
	marked := false
	for {
		cur, version, old, err := s.getItem(ctx, id)
		if err != nil {
			return messages.JobRecord{}, err
		}
		if !t.Allows(cur.Status) {
			return cur, fmt.Errorf("job %s is %s, not one of %v: %w", id, cur.Status, t.From, pipeline.ErrConflict)
		}
		next := t.Apply(cur)
		next.UpdatedAt = storecodec.Millis(next.UpdatedAt)
		if next.Status == messages.StatusCancelled && cur.Status != messages.StatusCancelled && !marked {
			// Before the job's item, so that a poll that finds the job CANCELLED finds its marker.
			s.markCancel(ctx, id, time.Now())
			marked = true
		}
		item, err := s.jobItem(next, version+1)
		if err != nil {
			return messages.JobRecord{}, err
		}
		if err := keepOutbox(item, old, next, t.EventID, time.Now()); err != nil {
			return messages.JobRecord{}, err
		}
		if size := itemSize(item); size > maxItemBytes {
			return messages.JobRecord{}, fmt.Errorf("dynamodb store: job %s with the %d events it keeps takes %d bytes, over DynamoDB's 400 KB item limit (check that a dispatcher runs and that the event sinks answer)",
				id, len(keptEvents(item)), size)
		}
		_, err = s.client.PutItem(ctx, &ddb.PutItemInput{
			TableName:                 aws.String(s.table),
			Item:                      item,
			ConditionExpression:       aws.String("#v = :v"),
			ExpressionAttributeNames:  map[string]string{"#v": attrVersion},
			ExpressionAttributeValues: map[string]types.AttributeValue{":v": numAttr(version)},
		})
		if err == nil {
			s.expireKey(ctx, cur, next)
			s.count(ctx, transitioned(cur, next))
			return next, nil
		}
		if !isConditionFailed(err) {
			return messages.JobRecord{}, s.wrap("update job "+id, err)
		}
		// Another write won the item since the read (or deleted it): start over from its result.
		if err := ctx.Err(); err != nil {
			return messages.JobRecord{}, fmt.Errorf("dynamodb store: transition job %s: %w", id, context.Cause(ctx))
		}
	}
}

// expireKey gives the idempotency key of a job that finished the job's TTL, and takes it away
// again from a job that leaves a terminal status (a replay). It only logs a failure: a key
// that outlives its job is taken over by the next Create that uses it.
func (s *Store) expireKey(ctx context.Context, cur, next messages.JobRecord) {
	if next.IdempotencyKey == "" || s.retention <= 0 {
		return
	}
	var update string
	values := map[string]types.AttributeValue{":job": strAttr(next.JobID)}
	if exp, ok := s.expiresAt(next); ok {
		update = "SET #exp = :exp"
		values[":exp"] = numAttr(exp)
	} else if cur.Status.Terminal() {
		update = "REMOVE #exp"
	} else {
		return
	}
	_, err := s.client.UpdateItem(ctx, &ddb.UpdateItemInput{
		TableName:                 aws.String(s.table),
		Key:                       key(idemPK(next.Tenant, next.IdempotencyKey)),
		UpdateExpression:          aws.String(update),
		ConditionExpression:       aws.String("#job = :job"),
		ExpressionAttributeNames:  map[string]string{"#exp": attrExpiresAt, "#job": attrJobID},
		ExpressionAttributeValues: values,
	})
	if err != nil && !isConditionFailed(err) {
		s.log.Warn().Err(err).Str("job_id", next.JobID).Msg("set the expiry of the job's idempotency key")
	}
}

// Delete removes job id and frees its idempotency key; deleting a missing job is not an error.
func (s *Store) Delete(ctx context.Context, id string) error {
	out, err := s.client.DeleteItem(ctx, &ddb.DeleteItemInput{
		TableName: aws.String(s.table), Key: key(jobPK(id)), ReturnValues: types.ReturnValueAllOld,
	})
	if err != nil {
		return s.wrap("delete job "+id, err)
	}
	if len(out.Attributes) > 0 {
		if old, _, err := decodeJob(out.Attributes); err == nil {
			s.count(ctx, deleted(old))
		}
	}
	if k := str(out.Attributes, attrIdemKey); k != "" {
		return s.releaseKey(ctx, str(out.Attributes, attrTenant), k, id)
	}
	return nil
}

// key returns the primary key of the item pk.
func key(pk string) map[string]types.AttributeValue {
	return map[string]types.AttributeValue{attrPK: strAttr(pk)}
}

// sleep waits for d or until ctx ends.
func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return context.Cause(ctx)
	}
}
