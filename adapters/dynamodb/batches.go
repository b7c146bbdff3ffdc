package dynamodb

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	ddb "github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/infleet/infleet/pipeline"
)

// Batch inference items share the table with the jobs, told apart by their keys:
//
//   - batch#ID holds one batch (attributes below, job_ids a list in record order);
//   - batchjob#JOB names the batch (batch_id) a job belongs to, written with a condition
//     before the batch item, so a job never belongs to two;
//   - batches#open holds the ids of the batches not DONE (a string set), which the claims
//     read instead of scanning the table. Open batches are few: each holds many jobs.
//
// DynamoDB writes them one item at a time (no transactions, which the emulators lack). The
// batch item is what makes a batch exist: a crash that leaves a job's batchjob item without
// its batch item leaves that job out of batch inference for good (it runs on demand), and
// an open-set entry without its batch item is skipped.
const (
	batchOpenPK     = "batches#open"
	attrBatchIDs    = "ids"
	attrBatchID     = "batch_id"
	attrBatchModel  = "model"
	attrBatchModelI = "model_id"
	attrBatchJobs   = "job_ids"
	attrBatchInput  = "input_uri"
	attrBatchOutput = "output_uri"
	attrBatchARN    = "arn"
	attrBatchState  = "state"
	attrBatchStatus = "batch_status"
	attrBatchOwner  = "owner"
	attrBatchLease  = "lease_until" // Unix ms
)

func batchPK(id string) string       { return "batch#" + id }
func batchJobPK(jobID string) string { return "batchjob#" + jobID }

var _ pipeline.BatchStore = (*Store)(nil)

// CreateBatch implements pipeline.BatchStore: a conditional put per job (undone when one is
// taken), the batch id added to the open set, then the batch item, conditional on its id.
func (s *Store) CreateBatch(ctx context.Context, b pipeline.Batch) error {
	if _, err := s.GetBatch(ctx, b.ID); err == nil {
		return fmt.Errorf("batch %s exists: %w", b.ID, pipeline.ErrConflict)
	} else if !errors.Is(err, pipeline.ErrNotFound) {
		return err
	}
	var written []string
	undo := func() {
		for _, j := range written {
			_, _ = s.client.DeleteItem(context.WithoutCancel(ctx), &ddb.DeleteItemInput{
				TableName: aws.String(s.table), Key: key(batchJobPK(j)),
				ConditionExpression:       aws.String("batch_id = :b"),
				ExpressionAttributeValues: map[string]types.AttributeValue{":b": strAttr(b.ID)},
			})
		}
	}
	for _, j := range b.JobIDs {
		_, err := s.client.PutItem(ctx, &ddb.PutItemInput{
			TableName:           aws.String(s.table),
			Item:                map[string]types.AttributeValue{attrPK: strAttr(batchJobPK(j)), attrBatchID: strAttr(b.ID)},
			ConditionExpression: aws.String("attribute_not_exists(pk)"),
		})
		if err != nil {
			undo()
			if isConditionFailed(err) {
				return fmt.Errorf("job %s already belongs to a batch: %w", j, pipeline.ErrConflict)
			}
			return s.wrap("add job "+j+" to batch "+b.ID, err)
		}
		written = append(written, j)
	}
	if _, err := s.client.UpdateItem(ctx, &ddb.UpdateItemInput{
		TableName: aws.String(s.table), Key: key(batchOpenPK),
		UpdateExpression:          aws.String("ADD ids :id"),
		ExpressionAttributeValues: map[string]types.AttributeValue{":id": &types.AttributeValueMemberSS{Value: []string{b.ID}}},
	}); err != nil {
		undo()
		return s.wrap("open batch "+b.ID, err)
	}
	now := time.Now()
	if b.CreatedAt.IsZero() {
		b.CreatedAt = now
	}
	if b.UpdatedAt.IsZero() {
		b.UpdatedAt = now
	}
	_, err := s.client.PutItem(ctx, &ddb.PutItemInput{
		TableName: aws.String(s.table), Item: batchItem(b),
		ConditionExpression: aws.String("attribute_not_exists(pk)"),
	})
	if err != nil {
		undo()
		if isConditionFailed(err) {
			return fmt.Errorf("batch %s exists: %w", b.ID, pipeline.ErrConflict)
		}
		return s.wrap("create batch "+b.ID, err)
	}
	return nil
}

func batchItem(b pipeline.Batch) map[string]types.AttributeValue {
	jobs := make([]types.AttributeValue, len(b.JobIDs))
	for i, j := range b.JobIDs {
		jobs[i] = strAttr(j)
	}
	item := map[string]types.AttributeValue{
		attrPK: strAttr(batchPK(b.ID)), attrBatchID: strAttr(b.ID),
		attrBatchModel: strAttr(b.Model), attrBatchModelI: strAttr(b.ModelID),
		attrBatchJobs:  &types.AttributeValueMemberL{Value: jobs},
		attrBatchInput: strAttr(b.InputURI), attrBatchOutput: strAttr(b.OutputURI),
		attrBatchState: strAttr(string(b.State)), attrBatchOwner: strAttr(b.Owner),
		attrBatchLease: numAttr(b.LeaseUntil.UnixMilli()),
		attrCreatedAt:  numAttr(b.CreatedAt.UnixMilli()), attrUpdatedAt: numAttr(b.UpdatedAt.UnixMilli()),
	}
	if b.ARN != "" {
		item[attrBatchARN] = strAttr(b.ARN)
	}
	if b.Status != "" {
		item[attrBatchStatus] = strAttr(b.Status)
	}
	return item
}

func decodeBatch(item map[string]types.AttributeValue) (pipeline.Batch, error) {
	b := pipeline.Batch{
		ID: str(item, attrBatchID), Model: str(item, attrBatchModel), ModelID: str(item, attrBatchModelI),
		InputURI: str(item, attrBatchInput), OutputURI: str(item, attrBatchOutput), ARN: str(item, attrBatchARN),
		State: pipeline.BatchState(str(item, attrBatchState)), Status: str(item, attrBatchStatus), Owner: str(item, attrBatchOwner),
	}
	if l, ok := item[attrBatchJobs].(*types.AttributeValueMemberL); ok {
		for _, v := range l.Value {
			if sv, ok := v.(*types.AttributeValueMemberS); ok {
				b.JobIDs = append(b.JobIDs, sv.Value)
			}
		}
	}
	for name, dst := range map[string]*time.Time{attrBatchLease: &b.LeaseUntil, attrCreatedAt: &b.CreatedAt, attrUpdatedAt: &b.UpdatedAt} {
		ms, err := num(item, name)
		if err != nil {
			return b, fmt.Errorf("batch %s is corrupt (fix or delete item %s): %w", b.ID, batchPK(b.ID), err)
		}
		*dst = time.UnixMilli(ms).UTC()
	}
	return b, nil
}

// GetBatch implements pipeline.BatchStore with a strongly consistent read.
func (s *Store) GetBatch(ctx context.Context, id string) (pipeline.Batch, error) {
	out, err := s.client.GetItem(ctx, &ddb.GetItemInput{TableName: aws.String(s.table), Key: key(batchPK(id)), ConsistentRead: aws.Bool(true)})
	if err != nil {
		return pipeline.Batch{}, s.wrap("get batch "+id, err)
	}
	if out.Item == nil {
		return pipeline.Batch{}, fmt.Errorf("batch %s: %w", id, pipeline.ErrNotFound)
	}
	return decodeBatch(out.Item)
}

// BatchOfJob implements pipeline.BatchStore with a strongly consistent read.
func (s *Store) BatchOfJob(ctx context.Context, jobID string) (string, error) {
	out, err := s.client.GetItem(ctx, &ddb.GetItemInput{TableName: aws.String(s.table), Key: key(batchJobPK(jobID)), ConsistentRead: aws.Bool(true)})
	if err != nil {
		return "", s.wrap("read the batch of job "+jobID, err)
	}
	if id := str(out.Item, attrBatchID); id != "" {
		return id, nil
	}
	return "", fmt.Errorf("batch of job %s: %w", jobID, pipeline.ErrNotFound)
}

// UpdateBatch implements pipeline.BatchStore: a write conditional on the owner; a batch that
// became DONE then leaves the open set.
func (s *Store) UpdateBatch(ctx context.Context, b pipeline.Batch) error {
	if b.UpdatedAt.IsZero() {
		b.UpdatedAt = time.Now()
	}
	values := map[string]types.AttributeValue{
		":state": strAttr(string(b.State)), ":lease": numAttr(b.LeaseUntil.UnixMilli()),
		":updated": numAttr(b.UpdatedAt.UnixMilli()), ":owner": strAttr(b.Owner),
	}
	set := "SET #st = :state, lease_until = :lease, updated_at = :updated"
	var remove []string
	for attr, v := range map[string]string{attrBatchARN: b.ARN, attrBatchStatus: b.Status} {
		if v == "" {
			remove = append(remove, attr)
			continue
		}
		values[":"+attr] = strAttr(v)
		set += ", " + attr + " = :" + attr
	}
	expr := set
	if len(remove) > 0 {
		expr += " REMOVE " + remove[0]
		for _, r := range remove[1:] {
			expr += ", " + r
		}
	}
	_, err := s.client.UpdateItem(ctx, &ddb.UpdateItemInput{
		TableName: aws.String(s.table), Key: key(batchPK(b.ID)),
		UpdateExpression:          aws.String(expr),
		ConditionExpression:       aws.String("attribute_exists(pk) AND #owner = :owner"),
		ExpressionAttributeNames:  map[string]string{"#st": attrBatchState, "#owner": attrBatchOwner},
		ExpressionAttributeValues: values,
	})
	if isConditionFailed(err) {
		cur, gerr := s.GetBatch(ctx, b.ID)
		if gerr != nil {
			return gerr
		}
		return fmt.Errorf("batch %s is leased to %s, not %s: %w", b.ID, cur.Owner, b.Owner, pipeline.ErrConflict)
	}
	if err != nil {
		return s.wrap("update batch "+b.ID, err)
	}
	if b.State == pipeline.BatchDone {
		return s.closeBatch(ctx, b.ID)
	}
	return nil
}

// closeBatch takes id out of the open set.
func (s *Store) closeBatch(ctx context.Context, id string) error {
	_, err := s.client.UpdateItem(ctx, &ddb.UpdateItemInput{
		TableName: aws.String(s.table), Key: key(batchOpenPK),
		UpdateExpression:          aws.String("DELETE ids :id"),
		ExpressionAttributeValues: map[string]types.AttributeValue{":id": &types.AttributeValueMemberSS{Value: []string{id}}},
	})
	if err != nil {
		return s.wrap("close batch "+id, err)
	}
	return nil
}

// ClaimBatches implements pipeline.BatchStore: it reads the open set and each open batch,
// then takes the oldest eligible ones, each with a write conditional on its lease having run
// out (or being owner's), so that two claims never both take one.
func (s *Store) ClaimBatches(ctx context.Context, owner string, now, until time.Time, limit int) ([]pipeline.Batch, error) {
	if limit <= 0 {
		return nil, errors.New("dynamodb store: claim batches with a limit below 1")
	}
	out, err := s.client.GetItem(ctx, &ddb.GetItemInput{TableName: aws.String(s.table), Key: key(batchOpenPK), ConsistentRead: aws.Bool(true)})
	if err != nil {
		return nil, s.wrap("read the open batches", err)
	}
	var ids []string
	if ss, ok := out.Item[attrBatchIDs].(*types.AttributeValueMemberSS); ok {
		ids = ss.Value
	}
	var open []pipeline.Batch
	for _, id := range ids {
		b, err := s.GetBatch(ctx, id)
		switch {
		case errors.Is(err, pipeline.ErrNotFound):
			continue // being created, or its creation failed half-way
		case err != nil:
			return nil, err
		case b.State == pipeline.BatchDone:
			if err := s.closeBatch(ctx, id); err != nil {
				return nil, err
			}
			continue
		case b.Owner != owner && b.LeaseUntil.After(now):
			continue
		}
		open = append(open, b)
	}
	pipeline.SortBatches(open)
	var claimed []pipeline.Batch
	for _, b := range open {
		if len(claimed) == limit {
			break
		}
		_, err := s.client.UpdateItem(ctx, &ddb.UpdateItemInput{
			TableName: aws.String(s.table), Key: key(batchPK(b.ID)),
			UpdateExpression:          aws.String("SET #owner = :owner, lease_until = :until"),
			ConditionExpression:       aws.String("#st <> :done AND (lease_until <= :now OR #owner = :owner)"),
			ExpressionAttributeNames:  map[string]string{"#owner": attrBatchOwner, "#st": attrBatchState},
			ExpressionAttributeValues: map[string]types.AttributeValue{":owner": strAttr(owner), ":until": numAttr(until.UnixMilli()), ":now": numAttr(now.UnixMilli()), ":done": strAttr(string(pipeline.BatchDone))},
		})
		if isConditionFailed(err) {
			continue
		}
		if err != nil {
			return claimed, s.wrap("claim batch "+b.ID, err)
		}
		b.Owner, b.LeaseUntil = owner, time.UnixMilli(until.UnixMilli()).UTC()
		claimed = append(claimed, b)
	}
	return claimed, nil
}
