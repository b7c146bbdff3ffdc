package dynamodb

import (
	"cmp"
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	ddb "github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"golang.org/x/sync/errgroup"

	"github.com/infleet/infleet/messages"
	"github.com/infleet/infleet/pipeline"
)

// The outbox lives on the job items themselves, since the store has no transactions: the
// transition that records an event writes it into its own job item, in the same conditional
// PutItem as the status. A job item that keeps events carries
//
//   - attrOutbox: the kept events, oldest first, a list of maps {id, body} (body is
//     pipeline.EncodeNotification's JSON);
//   - attrOutboxPK and attrOutboxDue, the keys of the sparse index IndexByOutbox: the job's
//     shard and the time (Unix ms) from which its earliest event may be claimed;
//   - attrOutboxHolder and attrOutboxAttempts: who holds the claim on the earliest event, and
//     how many claims it has had.
//
// A dispatcher queries the index for jobs due now and claims each with one conditional
// UpdateItem that moves attrOutboxDue to the end of its lease, so no other claim takes the job
// before then; it reads the event from that update's result, which is consistent. Only the
// earliest event of a job is ever claimed, and the next becomes due when it is deleted: order
// per job. Every outbox write bumps the job's version, so a Transition racing it reads again
// and keeps what it wrote; a job's events therefore cost no item of their own.
const (
	attrOutbox         = "outbox"
	attrOutboxHolder   = "outbox_holder"
	attrOutboxAttempts = "outbox_attempts"
	// attrEventID and attrEventBody are the fields of one kept event.
	attrEventID   = "id"
	attrEventBody = "body"
)

// OutboxShards is how many partitions IndexByOutbox spreads the jobs with kept events over (a
// hash of the job id picks one). Like ListShards it is part of the table's data.
const OutboxShards = 4

// outboxWriters bounds the claims or deletes of one call under way at once.
const outboxWriters = 16

var _ pipeline.Outbox = (*Store)(nil)

func outboxPK(shard int) string { return "outbox#" + strconv.Itoa(shard) }

// keptEvents returns the events item keeps, oldest first.
func keptEvents(item map[string]types.AttributeValue) []types.AttributeValue {
	if l, ok := item[attrOutbox].(*types.AttributeValueMemberL); ok {
		return l.Value
	}
	return nil
}

// eventIDOf returns the id of the kept event ev.
func eventIDOf(ev types.AttributeValue) string {
	if m, ok := ev.(*types.AttributeValueMemberM); ok {
		return str(m.Value, attrEventID)
	}
	return ""
}

// keepOutbox carries the events old keeps into item, its next version (the record rec), and
// adds the event of rec with id eventID when it is set and not kept already (a write retried
// after its response was lost). A job that had no events becomes due at now.
func keepOutbox(item, old map[string]types.AttributeValue, rec messages.JobRecord, eventID string, now time.Time) error {
	kept := slices.Clone(keptEvents(old))
	if eventID != "" && !slices.ContainsFunc(kept, func(ev types.AttributeValue) bool { return eventIDOf(ev) == eventID }) {
		body, err := pipeline.EncodeNotification(pipeline.EventOf(rec, eventID))
		if err != nil {
			return fmt.Errorf("dynamodb store: %w", err)
		}
		kept = append(kept, &types.AttributeValueMemberM{Value: map[string]types.AttributeValue{
			attrEventID: strAttr(eventID), attrEventBody: strAttr(string(body)),
		}})
	}
	if len(kept) == 0 {
		return nil
	}
	item[attrOutbox] = &types.AttributeValueMemberL{Value: kept}
	if len(keptEvents(old)) > 0 && old[attrOutboxPK] != nil && old[attrOutboxDue] != nil {
		for _, name := range []string{attrOutboxPK, attrOutboxDue, attrOutboxHolder, attrOutboxAttempts} {
			if v, ok := old[name]; ok {
				item[name] = v
			}
		}
		return nil
	}
	item[attrOutboxPK] = strAttr(outboxPK(shard(rec.JobID) % OutboxShards))
	item[attrOutboxDue] = numAttr(now.UnixMilli())
	return nil
}

// ClaimEvents implements pipeline.Outbox. It queries IndexByOutbox for jobs due now, starting
// at a random shard so that dispatchers spread over them, and claims each with one conditional
// UpdateItem (the job must still be due, read on the job item itself); a job another
// dispatcher claimed first is skipped. The index is eventually consistent on DynamoDB: an event
// may be claimable a moment after its transition returns. A claim that fails after others
// succeeded is logged and the claimed events are returned.
func (s *Store) ClaimEvents(ctx context.Context, holder string, lease time.Duration, limit int) ([]pipeline.OutboxEvent, error) {
	if limit <= 0 {
		return nil, nil
	}
	now := time.Now()
	until := now.Add(lease)
	var (
		got     []pipeline.OutboxEvent
		lastErr error
	)
	start := rand.N(OutboxShards)
	for i := 0; i < OutboxShards && len(got) < limit; i++ {
		sh := (start + i) % OutboxShards
		var from map[string]types.AttributeValue
		for len(got) < limit {
			out, err := s.client.Query(ctx, &ddb.QueryInput{
				TableName:                 aws.String(s.table),
				IndexName:                 aws.String(IndexByOutbox),
				KeyConditionExpression:    aws.String("#pk = :pk AND #due <= :now"),
				ExpressionAttributeNames:  map[string]string{"#pk": attrOutboxPK, "#due": attrOutboxDue},
				ExpressionAttributeValues: map[string]types.AttributeValue{":pk": strAttr(outboxPK(sh)), ":now": numAttr(now.UnixMilli())},
				Limit:                     aws.Int32(int32(min(2*(limit-len(got)), 1000))),
				ExclusiveStartKey:         from,
			})
			if err != nil {
				lastErr = s.wrap("query kept events (an older table lacks index "+IndexByOutbox+": run \"infleet init\")", err)
				break
			}
			cands := out.Items
			for len(cands) > 0 && len(got) < limit {
				n := min(limit-len(got), len(cands))
				evs, err := s.claimJobs(ctx, cands[:n], holder, now, until)
				got = append(got, evs...)
				if err != nil {
					lastErr = err
				}
				cands = cands[n:]
			}
			if out.LastEvaluatedKey == nil {
				break
			}
			from = out.LastEvaluatedKey
		}
	}
	if lastErr != nil {
		if len(got) == 0 {
			return nil, lastErr
		}
		s.log.Warn().Err(lastErr).Int("claimed", len(got)).Msg("some kept events could not be claimed; they are claimed later")
	}
	slices.SortFunc(got, func(a, b pipeline.OutboxEvent) int { return cmp.Compare(a.ID(), b.ID()) })
	return got, nil
}

// claimJobs claims the earliest kept event of each job of keys (index items) for holder until
// until, at once, and returns the events it claimed.
func (s *Store) claimJobs(ctx context.Context, keys []map[string]types.AttributeValue, holder string, now, until time.Time) ([]pipeline.OutboxEvent, error) {
	var (
		mu  sync.Mutex
		got []pipeline.OutboxEvent
	)
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(outboxWriters)
	for _, k := range keys {
		pk := str(k, attrPK)
		g.Go(func() error {
			out, err := s.client.UpdateItem(gctx, &ddb.UpdateItemInput{
				TableName:           aws.String(s.table),
				Key:                 key(pk),
				UpdateExpression:    aws.String("SET #due = :until, #holder = :holder, #att = if_not_exists(#att, :zero) + :one, #v = #v + :one"),
				ConditionExpression: aws.String("#due <= :now AND attribute_exists(#ob)"),
				ExpressionAttributeNames: map[string]string{"#due": attrOutboxDue, "#holder": attrOutboxHolder,
					"#att": attrOutboxAttempts, "#v": attrVersion, "#ob": attrOutbox},
				ExpressionAttributeValues: map[string]types.AttributeValue{":until": numAttr(until.UnixMilli()),
					":holder": strAttr(holder), ":zero": numAttr(0), ":one": numAttr(1), ":now": numAttr(now.UnixMilli())},
				ReturnValues: types.ReturnValueAllNew,
			})
			if isConditionFailed(err) {
				return nil // claimed by another dispatcher, or delivered, since the index was read
			}
			if err != nil {
				return s.wrap("claim the kept events of "+pk, err)
			}
			ev, err := headEvent(out.Attributes)
			if err != nil {
				return err
			}
			mu.Lock()
			got = append(got, ev)
			mu.Unlock()
			return nil
		})
	}
	err := g.Wait()
	return got, err
}

// headEvent returns the earliest kept event of the job item item, just claimed.
func headEvent(item map[string]types.AttributeValue) (pipeline.OutboxEvent, error) {
	kept := keptEvents(item)
	if len(kept) == 0 {
		return pipeline.OutboxEvent{}, fmt.Errorf("dynamodb store: job item %s was claimed without kept events", str(item, attrPK))
	}
	m, _ := kept[0].(*types.AttributeValueMemberM)
	if m == nil {
		return pipeline.OutboxEvent{}, fmt.Errorf("dynamodb store: job item %s keeps a corrupt event (remove its %s attribute)", str(item, attrPK), attrOutbox)
	}
	n, err := pipeline.DecodeNotification([]byte(str(m.Value, attrEventBody)))
	if err != nil {
		return pipeline.OutboxEvent{}, fmt.Errorf("dynamodb store: job item %s: %w", str(item, attrPK), err)
	}
	attempts, err := num(item, attrOutboxAttempts)
	if err != nil {
		return pipeline.OutboxEvent{}, fmt.Errorf("dynamodb store: job item %s: %w", str(item, attrPK), err)
	}
	return pipeline.OutboxEvent{Notification: n, Attempts: int(attempts)}, nil
}

// DeleteEvents implements pipeline.Outbox: one conditional UpdateItem per event (two when its
// job keeps later events, which then become due at once), several at once. The condition is
// that the event is still its job's earliest, so an event recorded meanwhile by a transition is
// never removed, and an event already deleted is left alone.
func (s *Store) DeleteEvents(ctx context.Context, evs []pipeline.OutboxEvent) error {
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(outboxWriters)
	for _, ev := range evs {
		g.Go(func() error { return s.deleteEvent(gctx, ev) })
	}
	return g.Wait()
}

// deleteEvent removes ev when it is the earliest event its job keeps.
func (s *Store) deleteEvent(ctx context.Context, ev pipeline.OutboxEvent) error {
	names := map[string]string{"#ob": attrOutbox, "#id": attrEventID, "#pk": attrOutboxPK, "#due": attrOutboxDue,
		"#holder": attrOutboxHolder, "#att": attrOutboxAttempts, "#v": attrVersion}
	values := map[string]types.AttributeValue{":id": strAttr(ev.ID()), ":one": numAttr(1)}
	// The job's last event: the job leaves the index.
	_, err := s.client.UpdateItem(ctx, &ddb.UpdateItemInput{
		TableName:                 aws.String(s.table),
		Key:                       key(jobPK(ev.JobID())),
		UpdateExpression:          aws.String("REMOVE #ob, #pk, #due, #holder, #att SET #v = #v + :one"),
		ConditionExpression:       aws.String("#ob[0].#id = :id AND size(#ob) = :one"),
		ExpressionAttributeNames:  names,
		ExpressionAttributeValues: values,
	})
	if !isConditionFailed(err) {
		return s.wrapEvent("delete", ev, err)
	}
	// Later events wait behind it: the next becomes due now.
	delete(names, "#pk")
	values[":now"] = numAttr(time.Now().UnixMilli())
	_, err = s.client.UpdateItem(ctx, &ddb.UpdateItemInput{
		TableName:                 aws.String(s.table),
		Key:                       key(jobPK(ev.JobID())),
		UpdateExpression:          aws.String("REMOVE #ob[0], #holder, #att SET #due = :now, #v = #v + :one"),
		ConditionExpression:       aws.String("#ob[0].#id = :id AND size(#ob) > :one"),
		ExpressionAttributeNames:  names,
		ExpressionAttributeValues: values,
	})
	if isConditionFailed(err) {
		return nil // deleted already
	}
	return s.wrapEvent("delete", ev, err)
}

// DelayEvent implements pipeline.Outbox: one conditional UpdateItem that makes ev's job due at
// until, if ev is still its earliest event.
func (s *Store) DelayEvent(ctx context.Context, ev pipeline.OutboxEvent, until time.Time) error {
	_, err := s.client.UpdateItem(ctx, &ddb.UpdateItemInput{
		TableName:                aws.String(s.table),
		Key:                      key(jobPK(ev.JobID())),
		UpdateExpression:         aws.String("SET #due = :until, #v = #v + :one"),
		ConditionExpression:      aws.String("#ob[0].#id = :id"),
		ExpressionAttributeNames: map[string]string{"#ob": attrOutbox, "#id": attrEventID, "#due": attrOutboxDue, "#v": attrVersion},
		ExpressionAttributeValues: map[string]types.AttributeValue{":id": strAttr(ev.ID()), ":one": numAttr(1),
			":until": numAttr(until.UnixMilli())},
	})
	if isConditionFailed(err) {
		return nil // deleted already
	}
	return s.wrapEvent("delay", ev, err)
}

// wrapEvent returns err, if any, as the failure to op ev.
func (s *Store) wrapEvent(op string, ev pipeline.OutboxEvent, err error) error {
	if err == nil {
		return nil
	}
	return s.wrap(op+" event "+ev.ID()+" of job "+ev.JobID(), err)
}
