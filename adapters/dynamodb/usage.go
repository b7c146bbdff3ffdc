package dynamodb

import (
	"context"
	"fmt"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	ddb "github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/infleet/infleet/pipeline"
)

var _ pipeline.UsageStore = (*Store)(nil)

// Usage items: pk "usage#<day>\x1f<tenant>\x1f<model>\x1f<task>", with the key parts as
// attributes and additive counters. They are also in IndexByCreated under list_pk
// "usage#<day>" (no job partition is named so), which lists one day's rows without a scan.
const (
	usagePrefix     = "usage#"
	usageSep        = "\x1f"
	attrDay         = "day"
	attrCalls       = "calls"
	attrInTokens    = "input_tokens"
	attrOutTokens   = "output_tokens"
	attrCostNanoUSD = "cost_nano_usd"
)

// AddUsage implements pipeline.UsageStore: one UpdateItem with ADD per row, atomic and
// shared by every process using the table.
func (s *Store) AddUsage(ctx context.Context, rows []pipeline.UsageRow) error {
	for _, r := range rows {
		tail := strings.Join([]string{r.Tenant, r.Model, r.Task}, usageSep)
		names := map[string]string{
			"#lpk": attrListPK, "#lsk": attrListSK, "#day": attrDay,
			"#calls": attrCalls, "#in": attrInTokens, "#out": attrOutTokens, "#cost": attrCostNanoUSD,
		}
		values := map[string]types.AttributeValue{
			":lpk": strAttr(usagePrefix + r.Day), ":lsk": strAttr(tail + usageSep), ":day": strAttr(r.Day),
			":calls": numAttr(r.Calls), ":in": numAttr(r.InputTokens), ":out": numAttr(r.OutputTokens), ":cost": numAttr(r.CostNanoUSD),
		}
		set := "SET #lpk = :lpk, #lsk = :lsk, #day = :day"
		// Empty key parts are left out, as a job item's empty values are.
		for _, c := range []struct{ attr, v string }{{attrTenant, r.Tenant}, {attrModel, r.Model}, {attrTask, r.Task}} {
			if c.v != "" {
				names["#"+c.attr], values[":"+c.attr] = c.attr, strAttr(c.v)
				set += ", #" + c.attr + " = :" + c.attr
			}
		}
		_, err := s.client.UpdateItem(ctx, &ddb.UpdateItemInput{
			TableName:                 aws.String(s.table),
			Key:                       map[string]types.AttributeValue{attrPK: strAttr(usagePrefix + r.Day + usageSep + tail)},
			UpdateExpression:          aws.String(set + " ADD #calls :calls, #in :in, #out :out, #cost :cost"),
			ExpressionAttributeNames:  names,
			ExpressionAttributeValues: values,
		})
		if err != nil {
			return fmt.Errorf("%w: %w", pipeline.ErrUnavailable, s.wrap("add usage of "+r.Day, err))
		}
	}
	return nil
}

// Usage implements pipeline.UsageStore: one Query of IndexByCreated per day (eventually
// consistent, as the index is), filtered in the store by tenant, model and task.
func (s *Store) Usage(ctx context.Context, f pipeline.UsageFilter) ([]pipeline.UsageRow, error) {
	var out []pipeline.UsageRow
	for _, day := range pipeline.UsageDays(f) {
		in := &ddb.QueryInput{
			TableName:                 aws.String(s.table),
			IndexName:                 aws.String(IndexByCreated),
			KeyConditionExpression:    aws.String("#lpk = :lpk"),
			ExpressionAttributeNames:  map[string]string{"#lpk": attrListPK},
			ExpressionAttributeValues: map[string]types.AttributeValue{":lpk": strAttr(usagePrefix + day)},
		}
		var conds []string
		for _, c := range []struct{ attr, v string }{{attrTenant, f.Tenant}, {attrModel, f.Model}, {attrTask, f.Task}} {
			if c.v != "" {
				in.ExpressionAttributeNames["#"+c.attr] = c.attr
				in.ExpressionAttributeValues[":"+c.attr] = strAttr(c.v)
				conds = append(conds, "#"+c.attr+" = :"+c.attr)
			}
		}
		if len(conds) > 0 {
			in.FilterExpression = aws.String(strings.Join(conds, " AND "))
		}
		p := ddb.NewQueryPaginator(s.client, in)
		for p.HasMorePages() {
			page, err := p.NextPage(ctx)
			if err != nil {
				return nil, fmt.Errorf("%w: %w", pipeline.ErrUnavailable, s.wrap("read usage of "+day, err))
			}
			for _, item := range page.Items {
				r := pipeline.UsageRow{Day: str(item, attrDay), Tenant: str(item, attrTenant), Model: str(item, attrModel), Task: str(item, attrTask)}
				for _, c := range []struct {
					attr string
					to   *int64
				}{{attrCalls, &r.Calls}, {attrInTokens, &r.InputTokens}, {attrOutTokens, &r.OutputTokens}, {attrCostNanoUSD, &r.CostNanoUSD}} {
					if *c.to, err = num(item, c.attr); err != nil {
						return nil, fmt.Errorf("dynamodb store: usage item of %s is corrupt: %w", day, err)
					}
				}
				out = append(out, r)
			}
		}
	}
	return out, nil
}
