package dynamodb_test

import (
	"context"
	"fmt"
	"os"
	"sync"
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
	return clientOf(endpoint)
}

func clientOf(endpoint string) *ddb.Client {
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

// poolSize is how many tables the first test that needs one creates for every test at once:
// dynalite keeps a new table CREATING for 500 ms, and a test waiting alone for its own would
// hold one of the few parallel test slots meanwhile.
const poolSize = 56

var pool struct {
	once  sync.Once
	wg    sync.WaitGroup
	ready chan string // a created table, or "" for a failed creation
	taken atomic.Int64
}

// TestMain deletes the pooled tables no test took.
func TestMain(m *testing.M) {
	code := m.Run()
	if pool.ready != nil {
		pool.wg.Wait()
		close(pool.ready)
		client := clientOf(os.Getenv(endpointEnv))
		for table := range pool.ready {
			if table != "" {
				_, _ = client.DeleteTable(context.Background(), &ddb.DeleteTableInput{TableName: aws.String(table)})
			}
		}
	}
	os.Exit(code)
}

// pooledTable returns a table created by EnsureTable ahead of time, or "" when the pool is
// spent or its creation failed.
func pooledTable(client *ddb.Client) string {
	pool.once.Do(func() {
		pool.ready = make(chan string, poolSize)
		for range poolSize {
			pool.wg.Go(func() {
				table := tableName()
				if dynamodb.EnsureTable(context.Background(), client, table) != nil {
					table = ""
				}
				pool.ready <- table
			})
		}
	})
	if pool.taken.Add(1) > poolSize {
		return ""
	}
	return <-pool.ready
}

// newTable returns a new table made by EnsureTable and deletes it when tb ends.
func newTable(tb testing.TB, client *ddb.Client) string {
	tb.Helper()
	table := pooledTable(client)
	if table == "" {
		table = tableName()
		if err := dynamodb.EnsureTable(context.Background(), client, table); err != nil {
			tb.Fatalf("EnsureTable: %v", err)
		}
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
