package sqlite_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/infleet/infleet/adapters/sqlite"
	"github.com/infleet/infleet/messages"
	"github.com/infleet/infleet/pipeline"
)

func ExampleOpen() {
	dir, _ := os.MkdirTemp("", "infleet-example")
	defer os.RemoveAll(dir)
	ctx := context.Background()

	store, err := sqlite.Open(ctx, sqlite.Config{Path: filepath.Join(dir, "jobs.db")})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer store.Close()

	rec := messages.JobRecord{JobID: "job-1", Status: messages.StatusQueued, Task: "summarize", IdempotencyKey: "k1"}
	_, created, _ := store.Create(ctx, rec)
	fmt.Println("created:", created)

	rec.JobID = "job-2" // same idempotency key: the first job comes back
	stored, created, _ := store.Create(ctx, rec)
	fmt.Println("created:", created, "job:", stored.JobID)

	running, _ := store.Transition(ctx, "job-1", pipeline.Transition{To: messages.StatusProcessing, AttemptsDelta: 1})
	fmt.Println(running.Status, running.Attempts)
	// Output:
	// created: true
	// created: false job: job-1
	// PROCESSING 1
}
