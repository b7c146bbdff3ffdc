package dynamodb

import (
	"context"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	ddb "github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/infleet/infleet/messages"
)

// Cancel markers. A job's item carries its whole spec, and a consistent read costs one read
// unit per 4 KB of each item read, projection or not: asking about every running job on every
// poll would cost a worker with 64 jobs at least 256 read units a second. So a cancel also adds
// the job's id to a small marker item of its time window ("cancel#<window>", a string set,
// expiring after a day), written before the job's own item; a poll reads the marker items of
// the current window and the ones either side (three small items, whatever the number of jobs)
// and checks only the running jobs named there. A full check of every running job still runs
// every CancelSweep, for a cancel whose marker could not be written (the item holds about
// 10,000 ids: a window with more cancels than that loses markers, and the sweep finds them).
const (
	// CancelWindow is the span of one marker item; the windows either side of the current one
	// are read too, which covers clock skew between processes of up to one window.
	CancelWindow = 10 * time.Second
	// CancelSweep is how often CancelledAmong checks every running job instead of the markers.
	CancelSweep = 10 * time.Second
	// cancelMarkerTTL is how long a marker item stays before DynamoDB's TTL removes it.
	cancelMarkerTTL = 24 * time.Hour
	// attrIDs is the marker item's string set of job ids.
	attrIDs = "ids"
	// markerReads is how many marker items one poll reads: below it, asking about each job
	// costs no more.
	markerReads = 3
)

// cancelPK is the key of the marker item of window w (Unix time / CancelWindow).
func cancelPK(w int64) string { return "cancel#" + strconv.FormatInt(w, 10) }

// cancelWindowOf returns the marker window of t.
func cancelWindowOf(t time.Time) int64 { return t.UnixNano() / int64(CancelWindow) }

// markCancel adds id to the marker item of now's window. A failure is logged, not returned:
// the cancel itself stands, and the next sweep finds it.
func (s *Store) markCancel(ctx context.Context, id string, now time.Time) {
	_, err := s.client.UpdateItem(ctx, &ddb.UpdateItemInput{
		TableName:                aws.String(s.table),
		Key:                      key(cancelPK(cancelWindowOf(now))),
		UpdateExpression:         aws.String("ADD #ids :id SET #exp = if_not_exists(#exp, :exp)"),
		ExpressionAttributeNames: map[string]string{"#ids": attrIDs, "#exp": attrExpiresAt},
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":id":  &types.AttributeValueMemberSS{Value: []string{id}},
			":exp": numAttr(now.Add(cancelMarkerTTL).Unix()),
		},
	})
	if err != nil {
		s.log.Warn().Err(err).Str("job_id", id).Dur("found_within", CancelSweep).
			Msg("cannot write the cancel marker; workers find the cancel at their next full check")
	}
}

// CancelledAmong returns those of ids whose status is CANCELLED; see pipeline.CancelFinder.
// Asked about more jobs than it has marker items to read, it reads the markers of the last
// windows and checks only the jobs named there, and every CancelSweep it checks them all; see
// CancelWindow. Checks are strongly consistent reads of the id and status, one BatchGetItem
// per 100 ids, asked again for keys DynamoDB leaves unprocessed.
func (s *Store) CancelledAmong(ctx context.Context, ids []string) ([]string, error) {
	now := time.Now()
	if len(ids) <= markerReads || now.UnixNano()-s.lastSweep.Load() >= int64(CancelSweep) {
		out, err := s.cancelledAmong(ctx, ids)
		if err == nil && len(ids) > markerReads {
			s.lastSweep.Store(now.UnixNano())
		}
		return out, err
	}
	w := cancelWindowOf(now)
	marked := map[string]bool{}
	keys := []map[string]types.AttributeValue{key(cancelPK(w - 1)), key(cancelPK(w)), key(cancelPK(w + 1))}
	items, err := s.batchGet(ctx, keys, consistentProjection(attrIDs))
	if err != nil {
		return nil, s.wrap("read cancel markers", err)
	}
	for _, item := range items {
		if set, ok := item[attrIDs].(*types.AttributeValueMemberSS); ok {
			for _, id := range set.Value {
				marked[id] = true
			}
		}
	}
	var named []string
	for _, id := range ids {
		if marked[id] {
			named = append(named, id)
		}
	}
	return s.cancelledAmong(ctx, named)
}

// cancelledAmong checks each of ids.
func (s *Store) cancelledAmong(ctx context.Context, ids []string) ([]string, error) {
	if len(ids) == 0 {
		return nil, nil
	}
	keys := make([]map[string]types.AttributeValue, 0, len(ids))
	for _, id := range ids {
		keys = append(keys, key(jobPK(id)))
	}
	items, err := s.batchGet(ctx, keys, consistentProjection(attrJobID, attrStatus))
	if err != nil {
		return nil, s.wrap("read cancelled jobs", err)
	}
	var out []string
	for _, item := range items {
		if str(item, attrStatus) == string(messages.StatusCancelled) {
			out = append(out, str(item, attrJobID))
		}
	}
	return out, nil
}

// consistentProjection is a BatchGetItem request template: strongly consistent reads of the
// attributes named.
func consistentProjection(attrs ...string) types.KeysAndAttributes {
	names := make(map[string]string, len(attrs))
	placeholders := make([]string, len(attrs))
	for i, name := range attrs {
		placeholders[i] = "#p" + strconv.Itoa(i)
		names[placeholders[i]] = name
	}
	return types.KeysAndAttributes{
		ConsistentRead:           aws.Bool(true),
		ProjectionExpression:     aws.String(strings.Join(placeholders, ", ")),
		ExpressionAttributeNames: names,
	}
}
