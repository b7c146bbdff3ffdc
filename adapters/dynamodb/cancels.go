package dynamodb

import (
	"context"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	ddb "github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/infleet/infleet/messages"
)

// cancelBatch is the most keys one BatchGetItem takes.
const cancelBatch = 100

// CancelledAmong returns those of ids whose status is CANCELLED; see pipeline.CancelFinder. It
// reads strongly consistently, one BatchGetItem per 100 ids that fetches only the id and status
// attributes, and asks again for keys DynamoDB leaves unprocessed.
func (s *Store) CancelledAmong(ctx context.Context, ids []string) ([]string, error) {
	var out []string
	for len(ids) > 0 {
		n := min(len(ids), cancelBatch)
		keys := make([]map[string]types.AttributeValue, 0, n)
		for _, id := range ids[:n] {
			keys = append(keys, key(jobPK(id)))
		}
		ids = ids[n:]
		req := map[string]types.KeysAndAttributes{s.table: {
			Keys:                     keys,
			ConsistentRead:           aws.Bool(true),
			ProjectionExpression:     aws.String("#id, #st"),
			ExpressionAttributeNames: map[string]string{"#id": attrJobID, "#st": attrStatus},
		}}
		for wait := 10 * time.Millisecond; len(req) > 0; wait = min(2*wait, time.Second) {
			res, err := s.client.BatchGetItem(ctx, &ddb.BatchGetItemInput{RequestItems: req})
			if err != nil {
				return out, s.wrap("read cancelled jobs", err)
			}
			for _, item := range res.Responses[s.table] {
				if str(item, attrStatus) == string(messages.StatusCancelled) {
					out = append(out, str(item, attrJobID))
				}
			}
			req = res.UnprocessedKeys
			if len(req) > 0 {
				if err := sleep(ctx, wait); err != nil {
					return out, err
				}
			}
		}
	}
	return out, nil
}
