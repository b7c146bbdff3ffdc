package dynamodb

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strconv"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	ddb "github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/infleet/infleet/pipeline"
)

// attrHolders is a lease item's map of holder to expiry (Unix ns).
const attrHolders = "holders"

var _ pipeline.LeaseStore = (*Store)(nil)

// Lease implements pipeline.LeaseStore. A key's leases are one item holding a map of holder to
// expiry; a lease reads it (strongly consistent), drops the expired entries and, when a slot is
// free, writes it back only over the version it read, reading again when another writer came
// first. A refused lease writes nothing.
func (s *Store) Lease(ctx context.Context, key, holder string, limit int, expires, now time.Time) (bool, error) {
	pk := "lease#" + key
	nowNs := now.UnixNano()
	delay := time.Millisecond
	for {
		out, err := s.client.GetItem(ctx, &ddb.GetItemInput{TableName: aws.String(s.table), Key: map[string]types.AttributeValue{attrPK: strAttr(pk)}, ConsistentRead: aws.Bool(true)})
		if err != nil {
			return false, fmt.Errorf("%w: %w", pipeline.ErrUnavailable, s.wrap("read leases "+key, err))
		}
		version := int64(-1)
		held := map[string]types.AttributeValue{}
		if out.Item != nil {
			if version, err = num(out.Item, attrVersion); err != nil {
				return false, fmt.Errorf("dynamodb store: leases %s are corrupt (delete item %s): %w", key, pk, err)
			}
			if m, ok := out.Item[attrHolders].(*types.AttributeValueMemberM); ok {
				for h, v := range m.Value {
					n, ok := v.(*types.AttributeValueMemberN)
					if !ok {
						continue
					}
					if exp, err := strconv.ParseInt(n.Value, 10, 64); err == nil && exp > nowNs {
						held[h] = v
					}
				}
			}
		}
		if _, mine := held[holder]; !mine && len(held) >= limit {
			return false, nil
		}
		held[holder] = numAttr(expires.UnixNano())
		in := &ddb.PutItemInput{
			TableName: aws.String(s.table),
			Item: map[string]types.AttributeValue{
				attrPK:      strAttr(pk),
				attrHolders: &types.AttributeValueMemberM{Value: held},
				attrVersion: numAttr(version + 1),
			},
		}
		_, err = s.client.PutItem(ctx, ifVersion(in, version))
		if err == nil {
			return true, nil
		}
		if !isConditionFailed(err) {
			return false, fmt.Errorf("%w: %w", pipeline.ErrUnavailable, s.wrap("write leases "+key, err))
		}
		if err := sleep(ctx, delay/2+rand.N(delay)); err != nil {
			return false, fmt.Errorf("%w: dynamodb store: lease %s: %w", pipeline.ErrUnavailable, key, err)
		}
		delay = min(2*delay, 50*time.Millisecond)
	}
}

// Release implements pipeline.LeaseStore: one UpdateItem that removes the holder and bumps the
// version, so that a lease written over an older read cannot bring it back.
func (s *Store) Release(ctx context.Context, key, holder string) error {
	_, err := s.client.UpdateItem(ctx, &ddb.UpdateItemInput{
		TableName:                 aws.String(s.table),
		Key:                       map[string]types.AttributeValue{attrPK: strAttr("lease#" + key)},
		UpdateExpression:          aws.String("REMOVE #hs.#h SET #v = #v + :one"),
		ConditionExpression:       aws.String("attribute_exists(#v)"),
		ExpressionAttributeNames:  map[string]string{"#hs": attrHolders, "#h": holder, "#v": attrVersion},
		ExpressionAttributeValues: map[string]types.AttributeValue{":one": numAttr(1)},
	})
	if err != nil && !isConditionFailed(err) {
		return fmt.Errorf("%w: %w", pipeline.ErrUnavailable, s.wrap("release lease "+key, err))
	}
	return nil
}
