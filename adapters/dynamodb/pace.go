package dynamodb

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	ddb "github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/infleet/infleet/pipeline"
)

// A model's pace (pipeline.PaceStore) is one item, "pace#<model>", written whole with PutItem
// on the condition that its version is still the one read (or that it is absent, for version
// 0), and read strongly consistent.
const (
	attrPaceRate    = "rate"
	attrPaceBase    = "base"
	attrPaceCutUs   = "cut_us"
	attrPaceHoldUs  = "hold_us"
	attrPaceSecond  = "second"
	attrPaceAnswers = "answers"
	attrPacePrev    = "prev_answers"
)

var _ pipeline.PaceStore = (*Store)(nil)

func pacePK(model string) string { return "pace#" + model }

// Pace implements pipeline.PaceStore with one strongly consistent GetItem.
func (s *Store) Pace(ctx context.Context, model string) (pipeline.Pace, error) {
	out, err := s.client.GetItem(ctx, &ddb.GetItemInput{TableName: aws.String(s.table), Key: key(pacePK(model)), ConsistentRead: aws.Bool(true)})
	if err != nil {
		return pipeline.Pace{}, fmt.Errorf("%w: %w", pipeline.ErrUnavailable, s.wrap("read the pace of "+model, err))
	}
	if out.Item == nil {
		return pipeline.Pace{}, nil
	}
	var p pipeline.Pace
	var cut, hold int64
	for _, f := range []struct {
		name string
		dst  *float64
	}{{attrPaceRate, &p.Rate}, {attrPaceBase, &p.Base}} {
		if *f.dst, err = float(out.Item, f.name); err != nil {
			return pipeline.Pace{}, fmt.Errorf("dynamodb store: the pace of %s is corrupt (delete item %s): %w", model, pacePK(model), err)
		}
	}
	for _, f := range []struct {
		name string
		dst  *int64
	}{{attrPaceCutUs, &cut}, {attrPaceHoldUs, &hold}, {attrPaceSecond, &p.Second}, {attrPaceAnswers, &p.Answers},
		{attrPacePrev, &p.PrevAnswers}, {attrVersion, &p.Version}} {
		if *f.dst, err = num(out.Item, f.name); err != nil {
			return pipeline.Pace{}, fmt.Errorf("dynamodb store: the pace of %s is corrupt (delete item %s): %w", model, pacePK(model), err)
		}
	}
	p.CutAt, p.HoldUntil = fromMicros(cut), fromMicros(hold)
	return p, nil
}

// SwapPace implements pipeline.PaceStore with one conditional PutItem.
func (s *Store) SwapPace(ctx context.Context, model string, next pipeline.Pace) (bool, error) {
	in := &ddb.PutItemInput{
		TableName: aws.String(s.table),
		Item: map[string]types.AttributeValue{
			attrPK:          strAttr(pacePK(model)),
			attrPaceRate:    floatAttr(next.Rate),
			attrPaceBase:    floatAttr(next.Base),
			attrPaceCutUs:   numAttr(toMicros(next.CutAt)),
			attrPaceHoldUs:  numAttr(toMicros(next.HoldUntil)),
			attrPaceSecond:  numAttr(next.Second),
			attrPaceAnswers: numAttr(next.Answers),
			attrPacePrev:    numAttr(next.PrevAnswers),
			attrVersion:     numAttr(next.Version + 1),
		},
	}
	version := next.Version
	if version == 0 {
		version = -1 // absent
	}
	_, err := s.client.PutItem(ctx, ifVersion(in, version))
	if isConditionFailed(err) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("%w: %w", pipeline.ErrUnavailable, s.wrap("write the pace of "+model, err))
	}
	return true, nil
}

func floatAttr(v float64) types.AttributeValue {
	return &types.AttributeValueMemberN{Value: strconv.FormatFloat(v, 'f', -1, 64)}
}

// toMicros is t in Unix microseconds; 0 for the zero time.
func toMicros(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMicro()
}

// fromMicros reads toMicros back.
func fromMicros(us int64) time.Time {
	if us == 0 {
		return time.Time{}
	}
	return time.UnixMicro(us).UTC()
}
