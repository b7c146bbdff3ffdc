package dynamodb

import (
	"context"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	ddb "github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/infleet/infleet/messages"
	"github.com/infleet/infleet/pipeline"
)

// JobByIdempotencyKey returns the job holding tenant's idempotency key, or an error wrapping
// pipeline.ErrNotFound, also while the key's claim names a job not written yet; see
// pipeline.KeyLookup. Two consistent reads: the claim, then its job.
func (s *Store) JobByIdempotencyKey(ctx context.Context, tenant, idemKey string) (messages.JobRecord, error) {
	out, err := s.client.GetItem(ctx, &ddb.GetItemInput{
		TableName: aws.String(s.table), Key: key(idemPK(tenant, idemKey)), ConsistentRead: aws.Bool(true),
	})
	if err != nil {
		return messages.JobRecord{}, s.wrap("read an idempotency key", err)
	}
	holder := str(out.Item, attrJobID)
	if holder == "" {
		return messages.JobRecord{}, fmt.Errorf("idempotency key: %w", pipeline.ErrNotFound)
	}
	rec, _, err := s.get(ctx, holder)
	return rec, err
}
