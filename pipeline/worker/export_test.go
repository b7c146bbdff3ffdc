package worker

import "time"

// GrowStack is growStack, for the tests of package worker_test.
var GrowStack = growStack

// SetCancelRefresh sets how old w's copy of the cancel log may be for a job to run unread
// (cancelRefresh by default), for tests whose jobs must not read the log: the read goes deeper
// on the job's stack than the job itself. It must be called before w runs jobs.
func SetCancelRefresh(w *Worker, d time.Duration) {
	if w.cancels != nil {
		w.cancels.refreshEvery = d
	}
}
