package sqlite_test

import (
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/infleet/infleet/adapters/sqlite"
	"github.com/infleet/infleet/messages"
	"github.com/infleet/infleet/pipeline"
)

// TestCompletionsInOneBatchAnswerEachAsAlone hands the writer one batch of 72 unreturned
// transitions (held by the gather until all arrived): 60 completions that apply, 6 from a
// status the job is not in, 4 of missing jobs, and one job written twice, 11 writes apart
// (claimed, then completed from PROCESSING: the second must see the first). Runs of them are written by multi-row statements; every answer
// and every row must be what the writes one by one give.
func TestCompletionsInOneBatchAnswerEachAsAlone(t *testing.T) {
	t.Parallel()
	const jobs, conflicts, missing = 67, 6, 4
	s := gathering(t, 10*time.Second, jobs+missing+1, jobs)
	before, quietBefore := sqlite.Commits(s), sqlite.QuietRows(s)
	type answer struct {
		id  string
		rec messages.JobRecord
		err error
	}
	answers := make(chan answer, jobs+missing+1)
	var wg sync.WaitGroup
	write := func(id string, tr pipeline.Transition) {
		wg.Go(func() {
			rec, err := s.Transition(t.Context(), id, tr)
			answers <- answer{id, rec, err}
		})
	}
	// The job written twice goes first and 12th, with pauses of 50 ms around its writes so
	// that the writes reach the writer in that order, both within what one statement of 64
	// rows could take.
	pause := func() { time.Sleep(50 * time.Millisecond) }
	claim := completion()
	claim.To = messages.StatusProcessing
	write("job-00", claim)
	pause()
	for i := 1; i < jobs; i++ {
		tr := completion()
		if i <= conflicts {
			tr.From = []messages.Status{messages.StatusProcessing}
		}
		write(fmt.Sprintf("job-%02d", i), tr)
		if i == 10 {
			pause()
			done := completion()
			done.From, done.AttemptsDelta = []messages.Status{messages.StatusProcessing}, 0
			write("job-00", done)
			pause()
		}
	}
	for i := range missing {
		write(fmt.Sprintf("missing-%d", i), completion())
	}
	wg.Wait()
	close(answers)

	if got := sqlite.Commits(s) - before; got != 1 {
		t.Fatalf("the writes took %d commits; want 1 batch", got)
	}
	if got := sqlite.QuietRows(s) - quietBefore; got < 64 {
		t.Errorf("%d transitions went through multi-row statements; want at least 64", got)
	}
	for a := range answers {
		var i int
		_, _ = fmt.Sscanf(a.id, "job-%d", &i)
		switch {
		case a.id[0] == 'm':
			if !errors.Is(a.err, pipeline.ErrNotFound) {
				t.Errorf("%s: %v; want ErrNotFound", a.id, a.err)
			}
		case i >= 1 && i <= conflicts:
			if !errors.Is(a.err, pipeline.ErrConflict) || a.rec.Status != messages.StatusQueued || a.rec.JobID != a.id {
				t.Errorf("%s: %s %q, %v; want ErrConflict with its QUEUED record", a.id, a.rec.Status, a.rec.JobID, a.err)
			}
		case a.err != nil:
			t.Errorf("%s: %v", a.id, a.err)
		}
	}
	for i := range jobs {
		id := fmt.Sprintf("job-%02d", i)
		rec, err := s.Get(t.Context(), id)
		if err != nil {
			t.Fatal(err)
		}
		want, attempts, url := messages.StatusCompleted, 1, "file://r.json"
		if i >= 1 && i <= conflicts {
			want, attempts, url = messages.StatusQueued, 0, ""
		}
		if rec.Status != want || rec.Attempts != attempts || rec.ResultURL != url {
			t.Errorf("%s: %s, %d attempts, result %q; want %s, %d, %q", id, rec.Status, rec.Attempts, rec.ResultURL, want, attempts, url)
		}
	}
}
