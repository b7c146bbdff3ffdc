//go:build race

package worker_test

// raceEnabled reports whether the tests run with the race detector, whose instrumentation
// deepens every frame.
const raceEnabled = true
