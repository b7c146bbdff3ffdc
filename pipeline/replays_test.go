package pipeline_test

import (
	"fmt"
	"time"

	"github.com/infleet/infleet/pipeline"
)

// A replay is interrupted while it is unfinished and its process has let its lease run out.
func ExampleReplay_Interrupted() {
	t0 := time.Date(2026, 11, 23, 9, 0, 0, 0, time.UTC)
	r := pipeline.Replay{Name: "nightly", Process: "ingress-a", LeaseUntil: t0.Add(15 * time.Second)}
	fmt.Println(r.Interrupted(t0.Add(10 * time.Second)))
	fmt.Println(r.Interrupted(t0.Add(20 * time.Second)))
	r.Done = true
	fmt.Println(r.Interrupted(t0.Add(20 * time.Second)))
	// Output:
	// false
	// true
	// false
}
