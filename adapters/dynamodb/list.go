package dynamodb

import (
	"context"
	"strings"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"
	ddb "github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/infleet/infleet/messages"
	"github.com/infleet/infleet/pipeline"
	"github.com/infleet/infleet/pipeline/storecodec"
)

const (
	// defaultListLimit is the page size of a List with no Limit.
	defaultListLimit = 50
	// maxListLimit caps the page size of a List.
	maxListLimit = 1000
	// minQueryLimit is the fewest items one index Query asks for.
	minQueryLimit = 10
	// filteredQueryFactor multiplies a Query's item count when a filter may drop items.
	filteredQueryFactor = 4
)

// List returns the jobs matching q, newest first by created_at then job_id, and the cursor of
// the next page ("" after the last). A Limit of 0 means 50; Limits above 1000 are cut to 1000.
// It queries IndexByStatus when q.Status is set, else IndexByCreated, one Query per shard (in
// parallel), between CreatedBefore (in the key condition) and CreatedAfter (where each shard's
// read stops), filters Tenant, Task and Priority in DynamoDB and merges the shards. Pages are keyset
// pages: jobs created while paging never shift or repeat a page. The indexes are eventually
// consistent on DynamoDB, so a job written a moment ago may be missing or show its previous
// status.
func (s *Store) List(ctx context.Context, q pipeline.ListQuery) ([]messages.JobRecord, string, error) {
	limit := q.Limit
	if limit <= 0 {
		limit = defaultListLimit
	}
	limit = min(limit, maxListLimit)
	var before string
	if q.Cursor != "" {
		createdAt, jobID, err := storecodec.DecodeListCursor(q.Cursor)
		if err != nil {
			return nil, "", err
		}
		before = listSK(createdAt, jobID)
	}
	if !q.CreatedBefore.IsZero() {
		// Every sort key of that millisecond sorts after "ms#": they are all excluded.
		if b := listSK(q.CreatedBefore.UnixMilli(), ""); before == "" || b < before {
			before = b
		}
	}
	var after string
	if !q.CreatedAfter.IsZero() {
		after = listSK(q.CreatedAfter.UnixMilli(), "")
	}

	perShard := max(minQueryLimit, (limit+1)/ListShards+2)
	var filters []string
	values := map[string]types.AttributeValue{}
	names := map[string]string{"#pk": attrListPK}
	index := IndexByCreated
	if q.Status != "" {
		index, names["#pk"] = IndexByStatus, attrStatusPK
	}
	for _, f := range []struct{ attr, value string }{{attrTenant, q.Tenant}, {attrTask, q.Task}, {attrPriority, string(q.Priority)}} {
		if f.value != "" {
			names["#"+f.attr] = f.attr
			values[":"+f.attr] = strAttr(f.value)
			filters = append(filters, "#"+f.attr+" = :"+f.attr)
		}
	}
	if len(filters) > 0 {
		perShard = min(maxListLimit, perShard*filteredQueryFactor)
	}
	cond := "#pk = :pk"
	if before != "" {
		cond += " AND #sk < :before"
		names["#sk"] = attrListSK
		values[":before"] = strAttr(before)
	}

	shards := make([]*shardReader, ListShards)
	for i := range shards {
		v := make(map[string]types.AttributeValue, len(values)+1)
		for k, val := range values {
			v[k] = val
		}
		if q.Status != "" {
			v[":pk"] = strAttr(statusPK(q.Status, i))
		} else {
			v[":pk"] = strAttr(listPK(i))
		}
		in := &ddb.QueryInput{
			TableName:                 aws.String(s.table),
			IndexName:                 aws.String(index),
			KeyConditionExpression:    aws.String(cond),
			ExpressionAttributeNames:  names,
			ExpressionAttributeValues: v,
			ScanIndexForward:          aws.Bool(false),
			Limit:                     aws.Int32(int32(perShard)),
		}
		if len(filters) > 0 {
			in.FilterExpression = aws.String(strings.Join(filters, " AND "))
		}
		shards[i] = &shardReader{in: in, after: after}
	}

	recs := make([]messages.JobRecord, 0, min(limit+1, 64))
	for len(recs) <= limit {
		if err := s.fill(ctx, shards); err != nil {
			return nil, "", err
		}
		var best *shardReader
		for _, sh := range shards {
			if len(sh.buf) > 0 && (best == nil || sh.buf[0].sk > best.buf[0].sk) {
				best = sh
			}
		}
		if best == nil {
			break
		}
		recs = append(recs, best.buf[0].rec)
		best.buf = best.buf[1:]
	}
	page, next := storecodec.Page(recs, limit)
	return page, next, nil
}

// shardReader reads one index partition newest first, a Query page at a time.
type shardReader struct {
	in *ddb.QueryInput
	// after is the oldest sort key wanted (ListQuery.CreatedAfter); the read stops below it.
	after string
	buf   []listed
	done  bool
}

// listed is a job read from an index, with its sort key.
type listed struct {
	sk  string
	rec messages.JobRecord
}

// fill reads the next page of every shard whose buffer is empty and that has more, in
// parallel, so that the merge can compare every shard's newest remaining job.
func (s *Store) fill(ctx context.Context, shards []*shardReader) error {
	var wg sync.WaitGroup
	errs := make([]error, len(shards))
	for i, sh := range shards {
		if len(sh.buf) > 0 || sh.done {
			continue
		}
		wg.Go(func() { errs[i] = s.readShard(ctx, sh) })
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return err // the shards fail alike: one error says it
		}
	}
	return nil
}

// readShard reads Query pages of sh until one holds a job or the partition ends.
func (s *Store) readShard(ctx context.Context, sh *shardReader) error {
	for len(sh.buf) == 0 && !sh.done {
		out, err := s.client.Query(ctx, sh.in)
		if err != nil {
			return s.wrap("list jobs", err)
		}
		sh.in.ExclusiveStartKey = out.LastEvaluatedKey
		sh.done = len(out.LastEvaluatedKey) == 0
		for _, item := range out.Items {
			sk := str(item, attrListSK)
			if sk < sh.after {
				// Newest first: everything further is older still.
				sh.done = true
				break
			}
			rec, _, err := decodeJob(item)
			if err != nil {
				return err
			}
			sh.buf = append(sh.buf, listed{sk: sk, rec: rec})
		}
	}
	return nil
}
