package dynamodb_test

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	ddb "github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/infleet/infleet/adapters/dynamodb"
	"github.com/infleet/infleet/messages"
	"github.com/infleet/infleet/pipeline"
)

// TestCancelledAmongReadsMarkers checks the cancel markers: between sweeps a poll about many
// running jobs finds a cancel made by another store through its marker, ignores a marker
// whose job was not cancelled, and misses a cancel whose marker is gone until the next sweep,
// which finds it.
func TestCancelledAmongReadsMarkers(t *testing.T) {
	t.Parallel()
	a, cfg := setup(t, 0)
	b := reopen(t, cfg)
	ctx := t.Context()
	ids := make([]string, 0, 100)
	for i := range 5 {
		id := fmt.Sprintf("run-%d", i)
		if _, _, err := a.Create(ctx, job(id, time.Now())); err != nil {
			t.Fatal(err)
		}
		if _, err := a.Transition(ctx, id, pipeline.Transition{To: messages.StatusProcessing, AttemptsDelta: 1}); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	for i := len(ids); i < 100; i++ {
		ids = append(ids, fmt.Sprintf("missing-%d", i))
	}
	among := func() []string {
		t.Helper()
		got, err := a.CancelledAmong(ctx, ids)
		if err != nil {
			t.Fatal(err)
		}
		slices.Sort(got)
		return got
	}
	if got := among(); len(got) != 0 {
		t.Fatalf("nothing cancelled yet, CancelledAmong = %v", got)
	}
	cancel := func(id string) {
		t.Helper()
		if _, err := b.Transition(ctx, id, pipeline.Transition{To: messages.StatusCancelled}); err != nil {
			t.Fatal(err)
		}
	}
	marker := func(op, id string) {
		t.Helper()
		_, err := cfg.Client.UpdateItem(ctx, &ddb.UpdateItemInput{
			TableName:                 aws.String(cfg.Table),
			Key:                       map[string]types.AttributeValue{"pk": &types.AttributeValueMemberS{Value: dynamodb.CancelMarkerItem(time.Now())}},
			UpdateExpression:          aws.String(op + " ids :id"),
			ExpressionAttributeValues: map[string]types.AttributeValue{":id": &types.AttributeValueMemberSS{Value: []string{id}}},
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	cancel("run-1")
	marker("ADD", "run-3") // a marker whose cancel did not happen (or not yet)
	if got := among(); !slices.Equal(got, []string{"run-1"}) {
		t.Fatalf("after a cancel by another store, CancelledAmong = %v; want [run-1]", got)
	}
	cancel("run-2")
	marker("DELETE", "run-2") // its marker lost
	if got := among(); !slices.Equal(got, []string{"run-1"}) {
		t.Fatalf("between sweeps with run-2's marker gone, CancelledAmong = %v; want [run-1]: the poll must read only the marked jobs", got)
	}
	dynamodb.ForceCancelSweep(a)
	if got := among(); !slices.Equal(got, []string{"run-1", "run-2"}) {
		t.Fatalf("at the sweep, CancelledAmong = %v; want [run-1 run-2]", got)
	}
}
