package dynamodb

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	ddb "github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"golang.org/x/sync/errgroup"

	"github.com/infleet/infleet/pipeline"
)

// Model figures (pipeline.ModelStatsStore) are one item per model and minute,
// "mstats#<model>#<minute, UTC>", holding one map attribute per process, "p#<process>", with
// that process's running totals of the minute, its breaker state and its heartbeat. A process
// writes only its own attribute (UpdateItem SET), so processes never contend for a write and a
// write tried again counts nothing twice; any process reads every process's figures of a
// window with BatchGetItem, knowing the models and minutes. Items carry expires_at (TTL)
// pipeline.ModelStatsKeep after their minute.
const (
	// modelStatsWriters bounds the UpdateItem calls of one PutModelStats in flight.
	modelStatsWriters = 4
	// attrProcessPrefix prefixes a process's attribute in a model figures item.
	attrProcessPrefix = "p#"
)

// Fields of a process's map attribute.
const (
	figCalls     = "calls"
	figErrors    = "errors"
	figThrottles = "throttles"
	figInput     = "input_tokens"
	figOutput    = "output_tokens"
	figLatency   = "latency"
	figCircuit   = "circuit"
	figSeenMs    = "seen_ms"
)

var _ pipeline.ModelStatsStore = (*Store)(nil)

func modelStatsPK(model string, minute time.Time) string {
	return "mstats#" + model + "#" + minute.UTC().Format("2006-01-02T15:04")
}

// PutModelStats implements pipeline.ModelStatsStore: one UpdateItem per figure, at most
// modelStatsWriters at once.
func (s *Store) PutModelStats(ctx context.Context, process string, figures []pipeline.ModelFigures) error {
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(modelStatsWriters)
	for _, f := range figures {
		minute := f.Minute.UTC().Truncate(pipeline.ModelStatsStep)
		in := &ddb.UpdateItemInput{
			TableName:        aws.String(s.table),
			Key:              key(modelStatsPK(f.Model, minute)),
			UpdateExpression: aws.String("SET #p = :p, #x = :x"),
			ExpressionAttributeNames: map[string]string{
				"#p": attrProcessPrefix + process, "#x": attrExpiresAt,
			},
			ExpressionAttributeValues: map[string]types.AttributeValue{
				":p": &types.AttributeValueMemberM{Value: map[string]types.AttributeValue{
					figCalls: numAttr(f.Calls), figErrors: numAttr(f.Errors), figThrottles: numAttr(f.Throttles),
					figInput: numAttr(f.InputTokens), figOutput: numAttr(f.OutputTokens),
					figLatency: strAttr(f.Latency.String()), figCircuit: strAttr(f.Circuit), figSeenMs: numAttr(f.Seen.UnixMilli()),
				}},
				":x": numAttr(minute.Add(pipeline.ModelStatsKeep).Unix()),
			},
		}
		g.Go(func() error {
			if _, err := s.client.UpdateItem(gctx, in); err != nil {
				return fmt.Errorf("%w: %w", pipeline.ErrUnavailable, s.wrap("write model figures of "+f.Model, err))
			}
			return nil
		})
	}
	return g.Wait()
}

// ModelStats implements pipeline.ModelStatsStore: it reads the items of every model and minute
// from since to the next minute (for clocks a little ahead) with eventually consistent
// BatchGetItem calls.
func (s *Store) ModelStats(ctx context.Context, models []string, since time.Time) ([]pipeline.ModelFigures, error) {
	start := since.UTC().Truncate(pipeline.ModelStatsStep)
	end := time.Now().UTC().Truncate(pipeline.ModelStatsStep).Add(pipeline.ModelStatsStep)
	var keys []map[string]types.AttributeValue
	for _, m := range models {
		for t := start; !t.After(end); t = t.Add(pipeline.ModelStatsStep) {
			keys = append(keys, key(modelStatsPK(m, t)))
		}
	}
	if len(keys) == 0 {
		return nil, nil
	}
	items, err := s.batchGet(ctx, keys, types.KeysAndAttributes{})
	if err != nil {
		return nil, s.wrap("read model figures", err)
	}
	var out []pipeline.ModelFigures
	for _, item := range items {
		pk := strings.TrimPrefix(str(item, attrPK), "mstats#")
		cut := strings.LastIndexByte(pk, '#')
		if cut < 0 {
			continue
		}
		minute, err := time.Parse("2006-01-02T15:04", pk[cut+1:])
		if err != nil {
			return nil, fmt.Errorf("dynamodb store: model figures item %s: %w", pk, err)
		}
		for name, v := range item {
			m, ok := v.(*types.AttributeValueMemberM)
			if !ok || !strings.HasPrefix(name, attrProcessPrefix) {
				continue
			}
			f := pipeline.ModelFigures{Model: pk[:cut], Process: strings.TrimPrefix(name, attrProcessPrefix), Minute: minute,
				Circuit: str(m.Value, figCircuit)}
			var seenMs int64
			for _, n := range []struct {
				field string
				dst   *int64
			}{{figCalls, &f.Calls}, {figErrors, &f.Errors}, {figThrottles, &f.Throttles},
				{figInput, &f.InputTokens}, {figOutput, &f.OutputTokens}, {figSeenMs, &seenMs}} {
				if *n.dst, err = num(m.Value, n.field); err != nil {
					return nil, fmt.Errorf("dynamodb store: model figures item %s: %w", pk, err)
				}
			}
			if f.Latency, err = pipeline.ParseModelLatency(str(m.Value, figLatency)); err != nil {
				return nil, fmt.Errorf("dynamodb store: model figures item %s: %w", pk, err)
			}
			f.Seen = time.UnixMilli(seenMs).UTC()
			out = append(out, f)
		}
	}
	return out, nil
}
