package dynamodb

import (
	"fmt"
	"hash/fnv"
	"strconv"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/infleet/infleet/messages"
	"github.com/infleet/infleet/pipeline"
	"github.com/infleet/infleet/pipeline/storecodec"
)

// Attributes of a job item besides the keys; empty values are left out.
const (
	attrJobID      = "job_id"
	attrTenant     = "tenant"
	attrIdemKey    = "idem_key"
	attrStatus     = "status"
	attrTask       = "task"
	attrPriority   = "priority"
	attrModel      = "model"
	attrAttempts   = "attempts"
	attrCreatedAt  = "created_at" // Unix milliseconds
	attrUpdatedAt  = "updated_at" // Unix milliseconds
	attrUsage      = "usage"      // JSON, as storecodec.EncodeJSONColumns writes it
	attrGuardrail  = "guardrail"
	attrError      = "error"
	attrModelCall  = "model_call"
	attrResultURL  = "result_url"
	attrReplayName = "replay_name"
	attrSpec       = "spec"
	// attrVersion counts a job's writes; Transition writes only over the version it read.
	attrVersion = "version"
	// attrClaimedAt is when an idempotency key was claimed (Unix milliseconds).
	attrClaimedAt = "claimed_at"
)

func jobPK(id string) string { return "job#" + id }

// idemPK is the key of the item holding tenant's idempotency key; the tenant's length keeps
// any tenant and key apart.
func idemPK(tenant, key string) string {
	return "idem#" + strconv.Itoa(len(tenant)) + ":" + tenant + "#" + key
}

// shard returns the index partition of job id.
func shard(id string) int {
	h := fnv.New32a()
	_, _ = h.Write([]byte(id))
	return int(h.Sum32() % ListShards)
}

func listPK(shard int) string                       { return "jobs#" + strconv.Itoa(shard) }
func statusPK(st messages.Status, shard int) string { return string(st) + "#" + strconv.Itoa(shard) }

// listSK is the index sort key of a job: created_at in milliseconds, 16 digits so that it
// sorts as a number, then the job id, which breaks ties the way storetest orders them.
func listSK(createdAtMs int64, id string) string {
	return fmt.Sprintf("%016d#%s", createdAtMs, id)
}

func strAttr(v string) types.AttributeValue { return &types.AttributeValueMemberS{Value: v} }
func numAttr(v int64) types.AttributeValue {
	return &types.AttributeValueMemberN{Value: strconv.FormatInt(v, 10)}
}

// jobItem returns rec as a table item at version.
func (s *Store) jobItem(rec messages.JobRecord, version int64) (map[string]types.AttributeValue, error) {
	cols, err := storecodec.EncodeJSONColumns(rec)
	if err != nil {
		return nil, fmt.Errorf("dynamodb store: %w", err)
	}
	sh := shard(rec.JobID)
	created := rec.CreatedAt.UnixMilli()
	item := map[string]types.AttributeValue{
		attrPK:        strAttr(jobPK(rec.JobID)),
		attrJobID:     strAttr(rec.JobID),
		attrStatus:    strAttr(string(rec.Status)),
		attrAttempts:  numAttr(int64(rec.Attempts)),
		attrCreatedAt: numAttr(created),
		attrUpdatedAt: numAttr(rec.UpdatedAt.UnixMilli()),
		attrVersion:   numAttr(version),
		attrListPK:    strAttr(listPK(sh)),
		attrListSK:    strAttr(listSK(created, rec.JobID)),
		attrStatusPK:  strAttr(statusPK(rec.Status, sh)),
	}
	for name, v := range map[string]string{
		attrTenant: rec.Tenant, attrIdemKey: rec.IdempotencyKey, attrTask: rec.Task, attrPriority: string(rec.Priority),
		attrModel: rec.Model, attrResultURL: rec.ResultURL, attrReplayName: rec.ReplayName, attrSpec: string(rec.Spec),
	} {
		if v != "" {
			item[name] = strAttr(v)
		}
	}
	for name, v := range map[string]any{attrUsage: cols.Usage, attrGuardrail: cols.Guardrail, attrError: cols.Error, attrModelCall: cols.ModelCall} {
		if v != nil {
			item[name] = strAttr(v.(string))
		}
	}
	if exp, ok := s.expiresAt(rec); ok {
		item[attrExpiresAt] = numAttr(exp)
	}
	if size := itemSize(item); size > maxItemBytes {
		return nil, pipeline.Permanent(messages.ErrCodeInvalidJob, fmt.Errorf("dynamodb store: job %s takes %d bytes, over DynamoDB's 400 KB item limit (send large inputs as s3_uri, or lower http.max_body_bytes)", rec.JobID, size))
	}
	return item, nil
}

// maxItemBytes is DynamoDB's item size limit.
const maxItemBytes = 400 * 1024

// itemSize returns the size DynamoDB counts for item (names and values, numbers counted as
// their text: an upper bound).
func itemSize(item map[string]types.AttributeValue) int {
	size := 0
	for name, v := range item {
		size += len(name) + valueSize(v)
	}
	return size
}

// valueSize returns the size DynamoDB counts for v (an upper bound, as itemSize), with 3 bytes
// per list or map and 1 per element.
func valueSize(v types.AttributeValue) int {
	switch v := v.(type) {
	case *types.AttributeValueMemberS:
		return len(v.Value)
	case *types.AttributeValueMemberN:
		return len(v.Value)
	case *types.AttributeValueMemberL:
		size := 3
		for _, e := range v.Value {
			size += 1 + valueSize(e)
		}
		return size
	case *types.AttributeValueMemberM:
		return itemSize(v.Value) + 3 + len(v.Value)
	}
	return 0
}

// expiresAt returns the TTL of rec (Unix seconds) when it has one: a finished job with a
// retention configured.
func (s *Store) expiresAt(rec messages.JobRecord) (int64, bool) {
	if s.retention <= 0 || !rec.Status.Terminal() {
		return 0, false
	}
	return rec.UpdatedAt.Add(s.retention).Unix(), true
}

// decodeJob reads a job item, returning its record and version.
func decodeJob(item map[string]types.AttributeValue) (messages.JobRecord, int64, error) {
	rec := messages.JobRecord{
		JobID:          str(item, attrJobID),
		Tenant:         str(item, attrTenant),
		IdempotencyKey: str(item, attrIdemKey),
		Status:         messages.Status(str(item, attrStatus)),
		Task:           str(item, attrTask),
		Priority:       messages.Priority(str(item, attrPriority)),
		Model:          str(item, attrModel),
		ResultURL:      str(item, attrResultURL),
		ReplayName:     str(item, attrReplayName),
	}
	attempts, err1 := num(item, attrAttempts)
	created, err2 := num(item, attrCreatedAt)
	updated, err3 := num(item, attrUpdatedAt)
	version, err4 := num(item, attrVersion)
	for _, err := range []error{err1, err2, err3, err4} {
		if err != nil {
			return rec, 0, fmt.Errorf("dynamodb store: job %s has a corrupt item (fix or delete it): %w", rec.JobID, err)
		}
	}
	rec.Attempts = int(attempts)
	rec.CreatedAt, rec.UpdatedAt = time.UnixMilli(created).UTC(), time.UnixMilli(updated).UTC()
	if spec := str(item, attrSpec); spec != "" {
		rec.Spec = []byte(spec)
	}
	if err := storecodec.DecodeJSONColumns(&rec, bytesOf(item, attrUsage), bytesOf(item, attrGuardrail),
		bytesOf(item, attrError), bytesOf(item, attrModelCall)); err != nil {
		return rec, 0, fmt.Errorf("dynamodb store: %w", err)
	}
	return rec, version, nil
}

// str returns the string attribute name of item, "" when absent.
func str(item map[string]types.AttributeValue, name string) string {
	if v, ok := item[name].(*types.AttributeValueMemberS); ok {
		return v.Value
	}
	return ""
}

// bytesOf returns the string attribute name of item as bytes, nil when absent.
func bytesOf(item map[string]types.AttributeValue, name string) []byte {
	if v, ok := item[name].(*types.AttributeValueMemberS); ok {
		return []byte(v.Value)
	}
	return nil
}

// num returns the integer attribute name of item, 0 when absent.
func num(item map[string]types.AttributeValue, name string) (int64, error) {
	v, ok := item[name].(*types.AttributeValueMemberN)
	if !ok {
		return 0, nil
	}
	i, err := strconv.ParseInt(v.Value, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("attribute %s = %q is not an integer", name, v.Value)
	}
	return i, nil
}
