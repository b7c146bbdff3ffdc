package dynamodb

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	ddb "github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/smithy-go"
	"github.com/rs/zerolog"
)

// The table's schema. deploy/aws/cloudformation.yaml declares the same table; a test keeps
// the two in step.
const (
	// attrPK is the table's only key: "job#<id>" for a job, "idem#..." for an idempotency
	// key, "rate#<key>" and "quota#<key>" for limits.
	attrPK = "pk"
	// attrListPK and attrListSK key IndexByCreated: "jobs#<shard>" and the job's
	// "<created_at ms, 16 digits>#<job id>".
	attrListPK = "list_pk"
	attrListSK = "list_sk"
	// attrStatusPK keys IndexByStatus with attrListSK: "<STATUS>#<shard>".
	attrStatusPK = "status_pk"
	// attrExpiresAt is the TTL attribute (Unix seconds) of finished jobs and their keys.
	attrExpiresAt = "expires_at"
	// attrOutboxPK and attrOutboxDue key IndexByOutbox: "outbox#<shard>" and when the job's
	// earliest kept event may be claimed (Unix ms, a number). A job carries them only while it
	// keeps events, so the index holds exactly the jobs with events to deliver.
	attrOutboxPK  = "outbox_pk"
	attrOutboxDue = "outbox_due"
)

// Index names of the table.
const (
	// IndexByCreated lists every job newest first; its partition key is sharded over
	// ListShards partitions so that no index partition takes every write of the fleet.
	IndexByCreated = "by_created"
	// IndexByStatus lists the jobs in one status newest first, sharded the same way.
	IndexByStatus = "by_status"
	// IndexByOutbox is sparse: the jobs that keep lifecycle events not yet delivered, by the
	// time their earliest event may be claimed, sharded over OutboxShards partitions.
	IndexByOutbox = "by_outbox"
)

// ListShards is how many partitions each index spreads jobs over (a hash of the job id picks
// one). It is part of the table's data: changing it would hide jobs from List.
const ListShards = 4

// tableWait bounds how long EnsureTable waits for a new table to become ACTIVE.
const tableWait = 5 * time.Minute

// tableDefinition returns the CreateTableInput of the job table named table.
func tableDefinition(table string) *ddb.CreateTableInput {
	str := func(name string) types.AttributeDefinition {
		return types.AttributeDefinition{AttributeName: aws.String(name), AttributeType: types.ScalarAttributeTypeS}
	}
	number := func(name string) types.AttributeDefinition {
		return types.AttributeDefinition{AttributeName: aws.String(name), AttributeType: types.ScalarAttributeTypeN}
	}
	key := func(name string, kt types.KeyType) types.KeySchemaElement {
		return types.KeySchemaElement{AttributeName: aws.String(name), KeyType: kt}
	}
	index := func(name, hash, rng string, proj types.ProjectionType) types.GlobalSecondaryIndex {
		return types.GlobalSecondaryIndex{
			IndexName:  aws.String(name),
			KeySchema:  []types.KeySchemaElement{key(hash, types.KeyTypeHash), key(rng, types.KeyTypeRange)},
			Projection: &types.Projection{ProjectionType: proj},
		}
	}
	attrs := []types.AttributeDefinition{
		str(attrPK), str(attrListPK), str(attrListSK), str(attrStatusPK), str(attrOutboxPK), number(attrOutboxDue),
	}
	return &ddb.CreateTableInput{
		TableName:            aws.String(table),
		BillingMode:          types.BillingModePayPerRequest,
		AttributeDefinitions: attrs,
		KeySchema:            []types.KeySchemaElement{key(attrPK, types.KeyTypeHash)},
		GlobalSecondaryIndexes: []types.GlobalSecondaryIndex{
			index(IndexByCreated, attrListPK, attrListSK, types.ProjectionTypeAll),
			index(IndexByStatus, attrStatusPK, attrListSK, types.ProjectionTypeAll),
			// Keys only: a claim reads the job's events from the job itself, and a job write that
			// changes neither key costs the index nothing.
			index(IndexByOutbox, attrOutboxPK, attrOutboxDue, types.ProjectionTypeKeysOnly),
		},
	}
}

// EnsureTable creates the job table named table when it is missing (on-demand capacity, the
// indexes IndexByCreated, IndexByStatus and IndexByOutbox), waits until it is ACTIVE and turns
// on TTL on expires_at. It is idempotent and safe to run from several processes at once: an
// existing table is left as it is, but one whose key schema or indexes differ is an error
// naming the difference (for a table made before IndexByOutbox, how to add it). An endpoint
// that does not implement UpdateTimeToLive (an emulator) is logged at warn level and
// tolerated. It logs to the logger of ctx (zerolog.Ctx), if any.
func EnsureTable(ctx context.Context, client *ddb.Client, table string) error {
	log := zerolog.Ctx(ctx).With().Str("component", "dynamodb_store").Logger()
	if client == nil || table == "" {
		return errors.New("dynamodb store: EnsureTable needs a client and a table name (set store.dynamodb.table)")
	}
	def := tableDefinition(table)
	out, err := client.DescribeTable(ctx, &ddb.DescribeTableInput{TableName: aws.String(table)})
	switch {
	case isNotFound(err):
		if _, err := client.CreateTable(ctx, def); err != nil && !isErrorCode(err, "ResourceInUseException") {
			return fmt.Errorf("dynamodb store: create table %q (the credentials need dynamodb:CreateTable, or create it from deploy/aws): %w", table, err)
		}
		log.Info().Str("table", table).Msg("dynamodb table created")
	case err != nil:
		return fmt.Errorf("dynamodb store: describe table %q: %w", table, err)
	default:
		if missingOutboxIndex(def, out.Table) {
			return fmt.Errorf("dynamodb store: table %q lacks the index %s that keeps lifecycle events findable (added in this version): "+
				"add it by updating the stack of deploy/aws, or with `aws dynamodb update-table --table-name %s "+
				"--attribute-definitions AttributeName=%s,AttributeType=S AttributeName=%s,AttributeType=N "+
				"--global-secondary-index-updates '[{\"Create\":{\"IndexName\":\"%s\",\"KeySchema\":[{\"AttributeName\":\"%s\",\"KeyType\":\"HASH\"},{\"AttributeName\":\"%s\",\"KeyType\":\"RANGE\"}],\"Projection\":{\"ProjectionType\":\"KEYS_ONLY\"}}}]'`, then run init again",
				table, IndexByOutbox, table, attrOutboxPK, attrOutboxDue, IndexByOutbox, attrOutboxPK, attrOutboxDue)
		}
		if err := sameSchema(def, out.Table); err != nil {
			return fmt.Errorf("dynamodb store: table %q exists with another schema (%w): use another table name or recreate it from deploy/aws", table, err)
		}
	}
	waiter := ddb.NewTableExistsWaiter(client, func(o *ddb.TableExistsWaiterOptions) {
		o.MinDelay, o.MaxDelay = 100*time.Millisecond, 5*time.Second
	})
	if err := waiter.Wait(ctx, &ddb.DescribeTableInput{TableName: aws.String(table)}, tableWait); err != nil {
		return fmt.Errorf("dynamodb store: wait for table %q to become ACTIVE: %w", table, err)
	}
	return enableTTL(ctx, client, table, log)
}

// enableTTL turns on TTL on attrExpiresAt unless it is on already.
func enableTTL(ctx context.Context, client *ddb.Client, table string, log zerolog.Logger) error {
	desc, err := client.DescribeTimeToLive(ctx, &ddb.DescribeTimeToLiveInput{TableName: aws.String(table)})
	if err == nil && desc.TimeToLiveDescription != nil && aws.ToString(desc.TimeToLiveDescription.AttributeName) == attrExpiresAt {
		switch desc.TimeToLiveDescription.TimeToLiveStatus {
		case types.TimeToLiveStatusEnabled, types.TimeToLiveStatusEnabling:
			return nil
		}
	}
	_, err = client.UpdateTimeToLive(ctx, &ddb.UpdateTimeToLiveInput{
		TableName: aws.String(table),
		TimeToLiveSpecification: &types.TimeToLiveSpecification{
			AttributeName: aws.String(attrExpiresAt), Enabled: aws.Bool(true),
		},
	})
	switch {
	case err == nil:
		log.Info().Str("table", table).Str("attribute", attrExpiresAt).Msg("dynamodb ttl enabled")
	case isErrorCode(err, "UnknownOperationException"):
		log.Warn().Str("table", table).Msg("dynamodb endpoint does not support UpdateTimeToLive (an emulator?): finished jobs will not expire")
	default:
		return fmt.Errorf("dynamodb store: enable TTL on %s of table %q (the credentials need dynamodb:UpdateTimeToLive): %w", attrExpiresAt, table, err)
	}
	return nil
}

// sameSchema returns an error naming the first difference between the keys and indexes of
// want and of the existing table got.
func sameSchema(want *ddb.CreateTableInput, got *types.TableDescription) error {
	keys := func(ks []types.KeySchemaElement) []string {
		var out []string
		for _, k := range ks {
			out = append(out, string(k.KeyType)+":"+aws.ToString(k.AttributeName))
		}
		return out
	}
	if !slices.Equal(keys(want.KeySchema), keys(got.KeySchema)) {
		return fmt.Errorf("key schema %v, want %v", keys(got.KeySchema), keys(want.KeySchema))
	}
	for _, wi := range want.GlobalSecondaryIndexes {
		i := slices.IndexFunc(got.GlobalSecondaryIndexes, func(g types.GlobalSecondaryIndexDescription) bool {
			return aws.ToString(g.IndexName) == aws.ToString(wi.IndexName)
		})
		if i < 0 {
			return fmt.Errorf("index %s is missing", aws.ToString(wi.IndexName))
		}
		if g := got.GlobalSecondaryIndexes[i]; !slices.Equal(keys(g.KeySchema), keys(wi.KeySchema)) {
			return fmt.Errorf("index %s has keys %v, want %v", aws.ToString(wi.IndexName), keys(g.KeySchema), keys(wi.KeySchema))
		}
	}
	return nil
}

// missingOutboxIndex reports whether got is the table of want but for IndexByOutbox, which
// tables created before the outbox lack.
func missingOutboxIndex(want *ddb.CreateTableInput, got *types.TableDescription) bool {
	hasOutbox := slices.ContainsFunc(got.GlobalSecondaryIndexes, func(g types.GlobalSecondaryIndexDescription) bool {
		return aws.ToString(g.IndexName) == IndexByOutbox
	})
	if hasOutbox {
		return false
	}
	older := *want
	older.GlobalSecondaryIndexes = slices.DeleteFunc(slices.Clone(want.GlobalSecondaryIndexes), func(i types.GlobalSecondaryIndex) bool {
		return aws.ToString(i.IndexName) == IndexByOutbox
	})
	return sameSchema(&older, got) == nil
}

// isNotFound reports whether err says the table does not exist.
func isNotFound(err error) bool {
	var nf *types.ResourceNotFoundException
	return errors.As(err, &nf) || isErrorCode(err, "ResourceNotFoundException")
}

// isConditionFailed reports whether err is a failed condition of a conditional write.
func isConditionFailed(err error) bool {
	var cf *types.ConditionalCheckFailedException
	return errors.As(err, &cf) || isErrorCode(err, "ConditionalCheckFailedException")
}

// isErrorCode reports whether err is an AWS API error with that code.
func isErrorCode(err error, code string) bool {
	var ae smithy.APIError
	return errors.As(err, &ae) && ae.ErrorCode() == code
}
