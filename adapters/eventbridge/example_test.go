package eventbridge_test

import (
	"fmt"
	"time"

	"github.com/infleet/infleet/adapters/eventbridge"
)

func ExampleReplayStatus_Fraction() {
	from := time.Date(2026, 11, 20, 0, 0, 0, 0, time.UTC)
	st := eventbridge.ReplayStatus{State: eventbridge.ReplayRunning, From: from, To: from.Add(4 * time.Hour),
		LastReplayed: from.Add(time.Hour)}
	fmt.Printf("%s %.0f%% done=%v\n", st.State, 100*st.Fraction(), st.Done())
	// Output: RUNNING 25% done=false
}
