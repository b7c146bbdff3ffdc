package dynamodb_test

import (
	"context"
	"fmt"
	"os"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	ddb "github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/infleet/infleet/adapters/dynamodb"
)

// endpointEnv names the variable holding the test DynamoDB endpoint; .ci/peers/with-aws.sh
// starts dynalite and sets it.
const endpointEnv = "INFLEET_TEST_DYNAMODB_ENDPOINT"

var tableSeq atomic.Int64

// newClient returns a client of the test endpoint, or skips tb when none is set.
func newClient(tb testing.TB) *ddb.Client {
	tb.Helper()
	endpoint := os.Getenv(endpointEnv)
	if endpoint == "" {
		tb.Skipf("%s is unset: run the tests with `.ci/peers/with-aws.sh go test ./adapters/dynamodb/` (make test does)", endpointEnv)
	}
	return ddb.New(ddb.Options{
		Region:       "us-east-1",
		BaseEndpoint: aws.String(endpoint),
		Credentials:  credentials.NewStaticCredentialsProvider("test", "test", ""),
	})
}

// tableName returns a table name no other test uses.
func tableName() string {
	return fmt.Sprintf("infleet-test-%d-%d-%d", os.Getpid(), time.Now().UnixNano()%1e9, tableSeq.Add(1))
}

// newTable creates a table with EnsureTable and deletes it when tb ends.
func newTable(tb testing.TB, client *ddb.Client) string {
	tb.Helper()
	table := tableName()
	if err := dynamodb.EnsureTable(context.Background(), client, table); err != nil {
		tb.Fatalf("EnsureTable: %v", err)
	}
	tb.Cleanup(func() {
		if _, err := client.DeleteTable(context.Background(), &ddb.DeleteTableInput{TableName: aws.String(table)}); err != nil {
			tb.Errorf("delete table %s: %v", table, err)
		}
	})
	return table
}

// setup opens a store on a new table of the test endpoint.
func setup(tb testing.TB, retention time.Duration) (*dynamodb.Store, dynamodb.Config) {
	tb.Helper()
	client := newClient(tb)
	cfg := dynamodb.Config{Client: client, Table: newTable(tb, client), Retention: retention}
	s, err := dynamodb.Open(context.Background(), cfg)
	if err != nil {
		tb.Fatalf("Open: %v", err)
	}
	tb.Cleanup(func() { _ = s.Close() })
	return s, cfg
}

// reopen opens a second store on cfg's table with a client of its own, as another process would.
func reopen(tb testing.TB, cfg dynamodb.Config) *dynamodb.Store {
	tb.Helper()
	cfg.Client = newClient(tb)
	s, err := dynamodb.Open(context.Background(), cfg)
	if err != nil {
		tb.Fatalf("Open: %v", err)
	}
	tb.Cleanup(func() { _ = s.Close() })
	return s
}
