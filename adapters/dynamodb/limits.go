package dynamodb

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"strconv"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	ddb "github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/infleet/infleet/pipeline"
)

// Attributes of the limit items.
const (
	attrTokens    = "tokens"     // a bucket's tokens after its last update
	attrUpdatedNs = "updated_ns" // the caller's clock at a bucket's last update, Unix ns
	attrUsed      = "used"       // a quota counter
)

// Take implements pipeline.LimitStore. The bucket is one item shared by every process using
// the table, so a fleet's ingresses enforce one rate between them. A take reads the bucket
// (strongly consistent) and, when it holds enough tokens, writes it back only over the version
// it read, reading again when another take came first; a refused take writes nothing.
func (s *Store) Take(ctx context.Context, key string, rate float64, burst, cost int, now time.Time) (pipeline.RateDecision, error) {
	if cost > burst {
		return pipeline.RateDecision{RetryAfter: time.Hour}, nil
	}
	pk := "rate#" + key
	nowNs := now.UnixNano()
	delay := time.Millisecond
	for {
		out, err := s.client.GetItem(ctx, &ddb.GetItemInput{TableName: aws.String(s.table), Key: map[string]types.AttributeValue{attrPK: strAttr(pk)}, ConsistentRead: aws.Bool(true)})
		if err != nil {
			return pipeline.RateDecision{}, fmt.Errorf("%w: %w", pipeline.ErrUnavailable, s.wrap("read rate bucket "+key, err))
		}
		tokens, updatedNs, version := float64(burst), nowNs, int64(-1)
		if out.Item != nil {
			if tokens, err = float(out.Item, attrTokens); err == nil {
				if updatedNs, err = num(out.Item, attrUpdatedNs); err == nil {
					version, err = num(out.Item, attrVersion)
				}
			}
			if err != nil {
				return pipeline.RateDecision{}, fmt.Errorf("dynamodb store: rate bucket %s is corrupt (delete item %s): %w", key, pk, err)
			}
			tokens = math.Min(float64(burst), tokens+float64(max(0, nowNs-updatedNs))*rate/float64(time.Second))
		}
		if tokens < float64(cost) {
			return pipeline.RateDecision{Remaining: int(math.Floor(tokens)), RetryAfter: pipeline.RefillWait(tokens, rate, cost)}, nil
		}
		left := math.Round((tokens-float64(cost))*1e9) / 1e9
		in := &ddb.PutItemInput{
			TableName: aws.String(s.table),
			Item: map[string]types.AttributeValue{
				attrPK:        strAttr(pk),
				attrTokens:    &types.AttributeValueMemberN{Value: strconv.FormatFloat(left, 'f', -1, 64)},
				attrUpdatedNs: numAttr(max(updatedNs, nowNs)),
				attrVersion:   numAttr(version + 1),
			},
		}
		_, err = s.client.PutItem(ctx, ifVersion(in, version))
		if err == nil {
			return pipeline.RateDecision{Allowed: true, Remaining: int(math.Floor(left))}, nil
		}
		if !isConditionFailed(err) {
			return pipeline.RateDecision{}, fmt.Errorf("%w: %w", pipeline.ErrUnavailable, s.wrap("update rate bucket "+key, err))
		}
		// Another take came first: read again after a short, jittered pause.
		if err := sleep(ctx, delay/2+rand.N(delay)); err != nil {
			return pipeline.RateDecision{}, fmt.Errorf("%w: dynamodb store: take from rate bucket %s: %w", pipeline.ErrUnavailable, key, err)
		}
		delay = min(2*delay, 50*time.Millisecond)
	}
}

// UseQuota implements pipeline.LimitStore; usage is durable and shared by the fleet. A use is
// one conditional UpdateItem (the counter stays within the limit); a refused use reads the
// counter; a refund that would go below zero sets zero.
func (s *Store) UseQuota(ctx context.Context, key string, limit, cost int64) (pipeline.QuotaDecision, error) {
	if cost > limit {
		return pipeline.QuotaDecision{}, nil
	}
	k := map[string]types.AttributeValue{attrPK: strAttr("quota#" + key)}
	names := map[string]string{"#used": attrUsed}
	update := func(expr, cond string, values map[string]types.AttributeValue) (int64, bool, error) {
		out, err := s.client.UpdateItem(ctx, &ddb.UpdateItemInput{
			TableName: aws.String(s.table), Key: k, UpdateExpression: aws.String(expr), ConditionExpression: aws.String(cond),
			ExpressionAttributeNames: names, ExpressionAttributeValues: values, ReturnValues: types.ReturnValueUpdatedNew,
		})
		if isConditionFailed(err) {
			return 0, false, nil
		}
		if err != nil {
			return 0, false, fmt.Errorf("%w: %w", pipeline.ErrUnavailable, s.wrap("use quota "+key, err))
		}
		used, err := num(out.Attributes, attrUsed)
		return used, err == nil, err
	}
	if cost >= 0 {
		used, ok, err := update("SET #used = if_not_exists(#used, :zero) + :cost", "attribute_not_exists(#used) OR #used <= :max",
			map[string]types.AttributeValue{":zero": numAttr(0), ":cost": numAttr(cost), ":max": numAttr(limit - cost)})
		if err != nil || ok {
			return pipeline.QuotaDecision{Allowed: ok, Used: used}, err
		}
		out, err := s.client.GetItem(ctx, &ddb.GetItemInput{TableName: aws.String(s.table), Key: k, ConsistentRead: aws.Bool(true)})
		if err != nil {
			return pipeline.QuotaDecision{}, fmt.Errorf("%w: %w", pipeline.ErrUnavailable, s.wrap("read quota "+key, err))
		}
		used, err = num(out.Item, attrUsed)
		return pipeline.QuotaDecision{Used: used}, err
	}
	// A refund: subtract, or set zero when the counter holds less than the refund.
	for {
		used, ok, err := update("SET #used = #used + :cost", "#used >= :refund",
			map[string]types.AttributeValue{":cost": numAttr(cost), ":refund": numAttr(-cost)})
		if err != nil || ok {
			return pipeline.QuotaDecision{Allowed: err == nil, Used: used}, err
		}
		_, ok, err = update("SET #used = :zero", "attribute_not_exists(#used) OR #used < :refund",
			map[string]types.AttributeValue{":zero": numAttr(0), ":refund": numAttr(-cost)})
		if err != nil || ok {
			return pipeline.QuotaDecision{Allowed: err == nil}, err
		}
		if err := ctx.Err(); err != nil {
			return pipeline.QuotaDecision{}, fmt.Errorf("%w: dynamodb store: refund quota %s: %w", pipeline.ErrUnavailable, key, err)
		}
	}
}

// float returns the number attribute name of item, 0 when absent.
func float(item map[string]types.AttributeValue, name string) (float64, error) {
	v, ok := item[name].(*types.AttributeValueMemberN)
	if !ok {
		return 0, nil
	}
	f, err := strconv.ParseFloat(v.Value, 64)
	if err != nil {
		return 0, fmt.Errorf("attribute %s = %q is not a number", name, v.Value)
	}
	return f, nil
}

// ifVersion makes in, a put of an item that carries attrVersion, conditional on the item read
// before: absent when version < 0, else still at version. A condition failure then means another
// writer came between the read and the put. It returns in.
func ifVersion(in *ddb.PutItemInput, version int64) *ddb.PutItemInput {
	if version < 0 {
		in.ConditionExpression = ifAbsent
		return in
	}
	in.ConditionExpression = aws.String("#v = :v")
	in.ExpressionAttributeNames = map[string]string{"#v": attrVersion}
	in.ExpressionAttributeValues = map[string]types.AttributeValue{":v": numAttr(version)}
	return in
}
