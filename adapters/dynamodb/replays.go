package dynamodb

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	ddb "github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/infleet/infleet/pipeline"
)

// A replay (pipeline.ReplayStore) is one item, "replay#<name>", written on conditions: a start
// only over no item or a finished one, progress only by the process named in it, a claim only
// once its lease (lease_us) ran out. The item "replays#recent" lists them for Replays: one
// attribute "r#<name>" per replay, "<started_us>|<tenant>", set by each start (UpdateItem
// SET, so starts never contend); the oldest beyond replaysRecentKeep are removed when listed.
// Empty strings are left out of items.
const (
	replaysRecentPK   = "replays#recent"
	attrReplayPrefix  = "r#"
	replaysRecentKeep = 2 * pipeline.ReplaysMaxList

	attrRplName      = "name"
	attrRplFilters   = "filters"
	attrRplMatched   = "matched"
	attrRplPublished = "published"
	attrRplCursor    = "cursor"
	attrRplDone      = "done"
	attrRplError     = "error"
	attrRplDryRun    = "dry_run"
	attrRplStartedUs = "started_us"
	attrRplUpdatedUs = "updated_us"
	attrRplProcess   = "process"
	attrRplLeaseUs   = "lease_us"
)

var _ pipeline.ReplayStore = (*Store)(nil)

func replayPK(name string) string { return "replay#" + name }

// StartReplay implements pipeline.ReplayStore with one conditional PutItem, then one
// UpdateItem of the list of recent replays.
func (s *Store) StartReplay(ctx context.Context, r pipeline.Replay) (pipeline.Replay, bool, error) {
	item := map[string]types.AttributeValue{
		attrPK:           strAttr(replayPK(r.Name)),
		attrRplName:      strAttr(r.Name),
		attrRplMatched:   numAttr(int64(r.Matched)),
		attrRplPublished: numAttr(int64(r.Published)),
		attrRplDone:      &types.AttributeValueMemberBOOL{Value: r.Done},
		attrRplDryRun:    &types.AttributeValueMemberBOOL{Value: r.DryRun},
		attrRplStartedUs: numAttr(toMicros(r.StartedAt)),
		attrRplUpdatedUs: numAttr(toMicros(r.UpdatedAt)),
		attrRplLeaseUs:   numAttr(toMicros(r.LeaseUntil)),
	}
	for name, v := range map[string]string{attrTenant: r.Tenant, attrRplFilters: r.Filters, attrRplCursor: r.Cursor,
		attrRplError: r.Error, attrRplProcess: r.Process} {
		if v != "" {
			item[name] = strAttr(v)
		}
	}
	_, err := s.client.PutItem(ctx, &ddb.PutItemInput{
		TableName:                 aws.String(s.table),
		Item:                      item,
		ConditionExpression:       aws.String("attribute_not_exists(#pk) OR #done = :t"),
		ExpressionAttributeNames:  map[string]string{"#pk": attrPK, "#done": attrRplDone},
		ExpressionAttributeValues: map[string]types.AttributeValue{":t": &types.AttributeValueMemberBOOL{Value: true}},
	})
	if isConditionFailed(err) {
		cur, err := s.GetReplay(ctx, r.Name)
		return cur, false, err
	}
	if err != nil {
		return pipeline.Replay{}, false, fmt.Errorf("%w: %w", pipeline.ErrUnavailable, s.wrap("start replay "+r.Name, err))
	}
	_, err = s.client.UpdateItem(ctx, &ddb.UpdateItemInput{
		TableName:                 aws.String(s.table),
		Key:                       key(replaysRecentPK),
		UpdateExpression:          aws.String("SET #r = :v"),
		ExpressionAttributeNames:  map[string]string{"#r": attrReplayPrefix + r.Name},
		ExpressionAttributeValues: map[string]types.AttributeValue{":v": strAttr(strconv.FormatInt(toMicros(r.StartedAt), 10) + "|" + r.Tenant)},
	})
	if err != nil {
		return pipeline.Replay{}, false, fmt.Errorf("%w: %w", pipeline.ErrUnavailable, s.wrap("list replay "+r.Name, err))
	}
	r.StartedAt, r.UpdatedAt, r.LeaseUntil = fromMicros(toMicros(r.StartedAt)), fromMicros(toMicros(r.UpdatedAt)), fromMicros(toMicros(r.LeaseUntil))
	return r, true, nil
}

// SaveReplay implements pipeline.ReplayStore with one UpdateItem conditioned on the holder.
func (s *Store) SaveReplay(ctx context.Context, r pipeline.Replay) (bool, error) {
	names := map[string]string{"#p": attrRplProcess, "#m": attrRplMatched, "#pub": attrRplPublished, "#d": attrRplDone,
		"#u": attrRplUpdatedUs, "#l": attrRplLeaseUs, "#c": attrRplCursor, "#e": attrRplError}
	values := map[string]types.AttributeValue{":p": strAttr(r.Process), ":m": numAttr(int64(r.Matched)),
		":pub": numAttr(int64(r.Published)), ":d": &types.AttributeValueMemberBOOL{Value: r.Done},
		":u": numAttr(toMicros(r.UpdatedAt)), ":l": numAttr(toMicros(r.LeaseUntil))}
	set, remove := []string{"#m = :m", "#pub = :pub", "#d = :d", "#u = :u", "#l = :l"}, []string{}
	for _, f := range []struct{ name, value string }{{"#c", r.Cursor}, {"#e", r.Error}} {
		if f.value == "" {
			remove = append(remove, f.name)
			continue
		}
		values[":"+f.name[1:]] = strAttr(f.value)
		set = append(set, f.name+" = :"+f.name[1:])
	}
	expr := "SET " + strings.Join(set, ", ")
	if len(remove) > 0 {
		expr += " REMOVE " + strings.Join(remove, ", ")
	}
	_, err := s.client.UpdateItem(ctx, &ddb.UpdateItemInput{
		TableName:                 aws.String(s.table),
		Key:                       key(replayPK(r.Name)),
		UpdateExpression:          aws.String(expr),
		ConditionExpression:       aws.String("#p = :p"),
		ExpressionAttributeNames:  names,
		ExpressionAttributeValues: values,
	})
	if isConditionFailed(err) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("%w: %w", pipeline.ErrUnavailable, s.wrap("save replay "+r.Name, err))
	}
	return true, nil
}

// ClaimReplay implements pipeline.ReplayStore with one UpdateItem conditioned on the expired
// lease, returning the item as written.
func (s *Store) ClaimReplay(ctx context.Context, name, process string, now, until time.Time) (pipeline.Replay, bool, error) {
	out, err := s.client.UpdateItem(ctx, &ddb.UpdateItemInput{
		TableName:                aws.String(s.table),
		Key:                      key(replayPK(name)),
		UpdateExpression:         aws.String("SET #p = :p, #l = :l, #u = :n"),
		ConditionExpression:      aws.String("attribute_exists(#pk) AND #d = :f AND #l < :n"),
		ExpressionAttributeNames: map[string]string{"#pk": attrPK, "#p": attrRplProcess, "#l": attrRplLeaseUs, "#u": attrRplUpdatedUs, "#d": attrRplDone},
		ExpressionAttributeValues: map[string]types.AttributeValue{":p": strAttr(process), ":l": numAttr(toMicros(until)),
			":n": numAttr(toMicros(now)), ":f": &types.AttributeValueMemberBOOL{Value: false}},
		ReturnValues: types.ReturnValueAllNew,
	})
	if isConditionFailed(err) {
		if _, err := s.GetReplay(ctx, name); err != nil {
			return pipeline.Replay{}, false, err
		}
		return pipeline.Replay{}, false, nil
	}
	if err != nil {
		return pipeline.Replay{}, false, fmt.Errorf("%w: %w", pipeline.ErrUnavailable, s.wrap("claim replay "+name, err))
	}
	r, err := decodeReplay(out.Attributes)
	return r, err == nil, err
}

// GetReplay implements pipeline.ReplayStore with one strongly consistent GetItem.
func (s *Store) GetReplay(ctx context.Context, name string) (pipeline.Replay, error) {
	out, err := s.client.GetItem(ctx, &ddb.GetItemInput{TableName: aws.String(s.table), Key: key(replayPK(name)), ConsistentRead: aws.Bool(true)})
	if err != nil {
		return pipeline.Replay{}, fmt.Errorf("%w: %w", pipeline.ErrUnavailable, s.wrap("read replay "+name, err))
	}
	if out.Item == nil {
		return pipeline.Replay{}, fmt.Errorf("replay %s: %w", name, pipeline.ErrNotFound)
	}
	return decodeReplay(out.Item)
}

// recentReplay is one attribute of the list of recent replays.
type recentReplay struct {
	name      string
	startedUs int64
}

// Replays implements pipeline.ReplayStore: one strongly consistent GetItem of the list of
// recent replays, then BatchGetItem of the latest limit of them.
func (s *Store) Replays(ctx context.Context, tenant string, limit int) ([]pipeline.Replay, error) {
	limit = min(max(limit, 1), pipeline.ReplaysMaxList)
	out, err := s.client.GetItem(ctx, &ddb.GetItemInput{TableName: aws.String(s.table), Key: key(replaysRecentPK), ConsistentRead: aws.Bool(true)})
	if err != nil {
		return nil, fmt.Errorf("%w: %w", pipeline.ErrUnavailable, s.wrap("list replays", err))
	}
	var all, kept []recentReplay
	for attr, v := range out.Item {
		name, ok := strings.CutPrefix(attr, attrReplayPrefix)
		sv, isStr := v.(*types.AttributeValueMemberS)
		if !ok || !isStr {
			continue
		}
		us, t, _ := strings.Cut(sv.Value, "|")
		started, err := strconv.ParseInt(us, 10, 64)
		if err != nil {
			return nil, fmt.Errorf("dynamodb store: the list of replays is corrupt at %s (remove that attribute of item %s): %w", attr, replaysRecentPK, err)
		}
		all = append(all, recentReplay{name: name, startedUs: started})
		if tenant == "" || t == tenant {
			kept = append(kept, recentReplay{name: name, startedUs: started})
		}
	}
	byLatest := func(a, b recentReplay) int {
		return cmp.Or(cmp.Compare(b.startedUs, a.startedUs), strings.Compare(a.name, b.name))
	}
	if len(all) > replaysRecentKeep {
		slices.SortFunc(all, byLatest)
		s.forgetReplays(ctx, all[replaysRecentKeep:])
	}
	slices.SortFunc(kept, byLatest)
	kept = kept[:min(len(kept), limit)]
	if len(kept) == 0 {
		return nil, nil
	}
	keys := make([]map[string]types.AttributeValue, len(kept))
	for i, k := range kept {
		keys[i] = key(replayPK(k.name))
	}
	items, err := s.batchGet(ctx, keys, types.KeysAndAttributes{ConsistentRead: aws.Bool(true)})
	if err != nil {
		return nil, fmt.Errorf("%w: %w", pipeline.ErrUnavailable, s.wrap("list replays", err))
	}
	byName := make(map[string]pipeline.Replay, len(items))
	for _, item := range items {
		r, err := decodeReplay(item)
		if err != nil {
			return nil, err
		}
		byName[r.Name] = r
	}
	res := make([]pipeline.Replay, 0, len(kept))
	for _, k := range kept {
		// A replay restarted since the list was read shows as it is now; its place in the list
		// follows the start the list recorded.
		if r, ok := byName[k.name]; ok && (tenant == "" || r.Tenant == tenant) {
			res = append(res, r)
		}
	}
	return res, nil
}

// forgetReplays removes old replays from the list of recent replays, best effort: their items
// stay, readable by name.
func (s *Store) forgetReplays(ctx context.Context, old []recentReplay) {
	for lo := 0; lo < len(old); lo += 100 {
		names := map[string]string{}
		var parts []string
		for i, r := range old[lo:min(lo+100, len(old))] {
			names["#r"+strconv.Itoa(i)] = attrReplayPrefix + r.name
			parts = append(parts, "#r"+strconv.Itoa(i))
		}
		if _, err := s.client.UpdateItem(ctx, &ddb.UpdateItemInput{TableName: aws.String(s.table), Key: key(replaysRecentPK),
			UpdateExpression: aws.String("REMOVE " + strings.Join(parts, ", ")), ExpressionAttributeNames: names}); err != nil {
			s.log.Warn().Err(err).Int("replays", len(old)).Msg("could not trim the list of recent replays; retried at the next list")
			return
		}
	}
}

// decodeReplay reads a replay item.
func decodeReplay(item map[string]types.AttributeValue) (pipeline.Replay, error) {
	r := pipeline.Replay{Name: str(item, attrRplName), Tenant: str(item, attrTenant), Filters: str(item, attrRplFilters),
		Cursor: str(item, attrRplCursor), Error: str(item, attrRplError), Process: str(item, attrRplProcess)}
	if b, ok := item[attrRplDone].(*types.AttributeValueMemberBOOL); ok {
		r.Done = b.Value
	}
	if b, ok := item[attrRplDryRun].(*types.AttributeValueMemberBOOL); ok {
		r.DryRun = b.Value
	}
	var matched, published, started, updated, lease int64
	for _, f := range []struct {
		name string
		dst  *int64
	}{{attrRplMatched, &matched}, {attrRplPublished, &published}, {attrRplStartedUs, &started},
		{attrRplUpdatedUs, &updated}, {attrRplLeaseUs, &lease}} {
		var err error
		if *f.dst, err = num(item, f.name); err != nil {
			return pipeline.Replay{}, fmt.Errorf("dynamodb store: replay %s is corrupt (delete item %s): %w", r.Name, replayPK(r.Name), err)
		}
	}
	r.Matched, r.Published = int(matched), int(published)
	r.StartedAt, r.UpdatedAt, r.LeaseUntil = fromMicros(started), fromMicros(updated), fromMicros(lease)
	return r, nil
}

// ForgetReplays implements pipeline.ReplayStore over the list of recent replays: one GetItem
// of the list, BatchGetItem of its replays, and for each old one a DeleteItem conditioned on
// it being old still (a replay written or leased meanwhile is kept), then an UpdateItem that
// removes it from the list only if the list still names that start (a replay started again
// under the name meanwhile stays listed). Replays no longer listed (beyond the latest
// replaysRecentKeep) are not found here: they stay readable by name.
func (s *Store) ForgetReplays(ctx context.Context, before time.Time) (int, error) {
	out, err := s.client.GetItem(ctx, &ddb.GetItemInput{TableName: aws.String(s.table), Key: key(replaysRecentPK), ConsistentRead: aws.Bool(true)})
	if err != nil {
		return 0, fmt.Errorf("%w: %w", pipeline.ErrUnavailable, s.wrap("forget replays", err))
	}
	listed := map[string]string{} // name -> its list entry
	var keys []map[string]types.AttributeValue
	for attr, v := range out.Item {
		name, ok := strings.CutPrefix(attr, attrReplayPrefix)
		if sv, isStr := v.(*types.AttributeValueMemberS); ok && isStr {
			listed[name] = sv.Value
			keys = append(keys, key(replayPK(name)))
		}
	}
	if len(keys) == 0 {
		return 0, nil
	}
	items, err := s.batchGet(ctx, keys, types.KeysAndAttributes{ConsistentRead: aws.Bool(true)})
	if err != nil {
		return 0, fmt.Errorf("%w: %w", pipeline.ErrUnavailable, s.wrap("forget replays", err))
	}
	b := toMicros(before)
	n := 0
	found := make(map[string]bool, len(items))
	for _, item := range items {
		found[str(item, attrRplName)] = true
	}
	for name, entry := range listed {
		// A list entry whose item is gone (a process died between the two writes below)
		// is removed once its start is old.
		us, _, _ := strings.Cut(entry, "|")
		if started, err := strconv.ParseInt(us, 10, 64); err == nil && !found[name] && started < b {
			if err := s.unlist(ctx, name, entry); err != nil {
				return n, err
			}
		}
	}
	for _, item := range items {
		r, err := decodeReplay(item)
		if err != nil || !r.UpdatedAt.Before(before) || !r.LeaseUntil.Before(before) {
			continue
		}
		_, err = s.client.DeleteItem(ctx, &ddb.DeleteItemInput{
			TableName:                 aws.String(s.table),
			Key:                       key(replayPK(r.Name)),
			ConditionExpression:       aws.String("#u < :b AND #l < :b"),
			ExpressionAttributeNames:  map[string]string{"#u": attrRplUpdatedUs, "#l": attrRplLeaseUs},
			ExpressionAttributeValues: map[string]types.AttributeValue{":b": numAttr(b)},
		})
		if isConditionFailed(err) {
			continue
		}
		if err != nil {
			return n, fmt.Errorf("%w: %w", pipeline.ErrUnavailable, s.wrap("forget replay "+r.Name, err))
		}
		n++
		if err := s.unlist(ctx, r.Name, listed[r.Name]); err != nil {
			return n, err
		}
	}
	return n, nil
}

// unlist removes name from the list of recent replays if the list still holds entry for it.
func (s *Store) unlist(ctx context.Context, name, entry string) error {
	_, err := s.client.UpdateItem(ctx, &ddb.UpdateItemInput{
		TableName:                 aws.String(s.table),
		Key:                       key(replaysRecentPK),
		UpdateExpression:          aws.String("REMOVE #r"),
		ConditionExpression:       aws.String("#r = :v"),
		ExpressionAttributeNames:  map[string]string{"#r": attrReplayPrefix + name},
		ExpressionAttributeValues: map[string]types.AttributeValue{":v": strAttr(entry)},
	})
	if err != nil && !isConditionFailed(err) {
		return fmt.Errorf("%w: %w", pipeline.ErrUnavailable, s.wrap("forget replay "+name, err))
	}
	return nil
}
