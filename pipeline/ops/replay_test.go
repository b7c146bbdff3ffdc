package ops_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/infleet/infleet/adapters/file"
	"github.com/infleet/infleet/adapters/sqlite"
	"github.com/infleet/infleet/messages"
	"github.com/infleet/infleet/pipeline"
	"github.com/infleet/infleet/pipeline/ops"
)

// recordingPublisher counts the replayed messages by job id.
type recordingPublisher struct {
	mu   sync.Mutex
	jobs map[string]int
}

func (p *recordingPublisher) Publish(_ string, msgs ...*message.Message) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, m := range msgs {
		if p.jobs == nil {
			p.jobs = map[string]int{}
		}
		p.jobs[m.UUID]++
	}
	return nil
}

func (p *recordingPublisher) Close() error { return nil }

func (p *recordingPublisher) published() map[string]int {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := map[string]int{}
	for k, v := range p.jobs {
		out[k] = v
	}
	return out
}

// replayFleet is what two operators of one fleet share: the archive and the replay store.
type replayFleet struct {
	results *file.Store
	path    string
	ids     []string
}

// setupReplays archives n jobs of task "t" accepted in the last minutes and returns the fleet.
func setupReplays(t *testing.T, n int) replayFleet {
	t.Helper()
	a, _, fs := setupArchive(t, ops.ArchiveConfig{})
	now := time.Now().UTC()
	f := replayFleet{results: fs, path: filepath.Join(t.TempDir(), "limits.db")}
	for i := range n {
		id := fmt.Sprintf("job-%02d", i)
		f.ids = append(f.ids, id)
		a.Add(entry(id, now.Add(-time.Duration(n-i)*time.Second)))
	}
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	return f
}

// stub stands for the collaborators a replay does not call.
type stub struct {
	pipeline.JobStore
	pipeline.DeadLetterBox
}

// operator returns an operator of the fleet named process, and its publisher.
func (f replayFleet) operator(t *testing.T, process string) (*ops.Operator, *recordingPublisher) {
	t.Helper()
	l, err := sqlite.OpenLimits(t.Context(), sqlite.Config{Path: f.path})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = l.Close() })
	pub := &recordingPublisher{}
	op, err := ops.NewOperator(ops.OperatorConfig{Store: stub{}, Box: stub{}, Results: f.results, Publisher: pub,
		Topics: pipeline.Topics{High: "h", Normal: "n", Low: "l"}, Replays: l, Process: process, ReplayLease: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = op.Close() })
	return op, pub
}

func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", d, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestReplayProgressReadsFromAnotherOperator(t *testing.T) {
	t.Parallel()
	f := setupReplays(t, 6)
	a, pubA := f.operator(t, "a")
	b, _ := f.operator(t, "b")
	req := ops.ReplayRequest{From: time.Now().Add(-time.Hour), Since: time.Hour, Task: "t", Rate: 1000, Name: "r"}
	st, err := a.Replay(t.Context(), req)
	if err != nil || st.Matched != 6 || st.Process != "a" {
		t.Fatalf("start = %+v, %v", st, err)
	}
	waitFor(t, 5*time.Second, "the replay's end, read through the other operator", func() bool {
		st, err := b.ReplayStatus(t.Context(), "r", "")
		return err == nil && st.Done
	})
	st, _ = b.ReplayStatus(t.Context(), "r", "")
	if st.Published != 6 || st.Error != "" || st.Interrupted || st.UpdatedAt.IsZero() {
		t.Fatalf("finished = %+v", st)
	}
	if _, err := b.ReplayStatus(t.Context(), "r", "other"); !errors.Is(err, pipeline.ErrNotFound) {
		t.Fatalf("another tenant's replay: %v, want ErrNotFound", err)
	}
	if list, err := b.Replays(t.Context(), "", 10); err != nil || len(list) != 1 || list[0].Name != "r" {
		t.Fatalf("list = %+v, %v", list, err)
	}
	if got := pubA.published(); len(got) != 6 {
		t.Fatalf("published %v, want the 6 jobs once each", got)
	}
}

func TestReplayRepeatedStart(t *testing.T) {
	t.Parallel()
	f := setupReplays(t, 4)
	a, _ := f.operator(t, "a")
	b, pubB := f.operator(t, "b")
	req := ops.ReplayRequest{From: time.Now().Add(-time.Hour), Since: time.Hour, Task: "t", Rate: 1, Name: "slow"}
	first, err := a.Replay(t.Context(), req)
	if err != nil {
		t.Fatal(err)
	}
	again := req
	again.From = again.From.Add(time.Second) // a retry a second later: since is compared, not from
	st, err := b.Replay(t.Context(), again)
	if err != nil || st.Name != "slow" || st.Process != "a" || !st.StartedAt.Equal(first.StartedAt.Truncate(time.Microsecond)) {
		t.Fatalf("repeated start = %+v, %v; want the running replay", st, err)
	}
	other := req
	other.Task = "classify"
	_, err = b.Replay(t.Context(), other)
	if conflict, ok := errors.AsType[*ops.ReplayConflictError](err); !ok || conflict.Field != "task" || conflict.Running.Process != "a" {
		t.Fatalf("start with another task: %v, want a conflict naming task", err)
	}
	if got := pubB.published(); len(got) != 0 {
		t.Fatalf("the repeated starts published %v", got)
	}
}

func TestReplayHandedBackIsContinuedAfterItsCursor(t *testing.T) {
	t.Parallel()
	const n = 20
	f := setupReplays(t, n)
	a, pubA := f.operator(t, "a")
	b, pubB := f.operator(t, "b")
	if _, err := a.Replay(t.Context(), ops.ReplayRequest{From: time.Now().Add(-time.Hour), Rate: 10, Name: "moved",
		Priority: messages.PriorityLow}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, "some progress", func() bool {
		st, err := b.ReplayStatus(t.Context(), "moved", "")
		return err == nil && st.Published >= 3
	})
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	st, _ := b.ReplayStatus(t.Context(), "moved", "")
	if !st.Interrupted || st.Done {
		t.Fatalf("after its process closed = %+v, want interrupted", st)
	}
	if _, err := a.Replay(t.Context(), ops.ReplayRequest{From: time.Now().Add(-time.Hour), Name: "late"}); !errors.Is(err, pipeline.ErrUnavailable) {
		t.Fatalf("a start on a closed operator: %v, want ErrUnavailable", err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	go b.ContinueReplays(ctx, 50*time.Millisecond)
	waitFor(t, 10*time.Second, "the replay's end on the other operator", func() bool {
		st, err := b.ReplayStatus(t.Context(), "moved", "")
		return err == nil && st.Done
	})
	st, _ = b.ReplayStatus(t.Context(), "moved", "")
	if st.Matched != n || st.Published != n || st.Process != "b" || st.Error != "" {
		t.Fatalf("finished = %+v; want %d of %d published by b", st, n, n)
	}
	byA, byB := pubA.published(), pubB.published()
	for _, id := range f.ids {
		if byA["moved/"+id]+byB["moved/"+id] != 1 {
			t.Errorf("job %s published %d times by a and %d by b; want once in all (a handed back its exact cursor)",
				id, byA["moved/"+id], byB["moved/"+id])
		}
	}
	if len(byA) == 0 || len(byB) == 0 {
		t.Fatalf("a published %d, b %d: the takeover proved nothing", len(byA), len(byB))
	}
}

// TestOldReplayRecordsAreForgotten checks that an operator with a replay retention deletes,
// as it starts continuing replays, the records older than it, and keeps the others.
func TestOldReplayRecordsAreForgotten(t *testing.T) {
	l, err := sqlite.OpenLimits(t.Context(), sqlite.Config{Path: filepath.Join(t.TempDir(), "replays.db")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = l.Close() })
	now := time.Now().UTC()
	old, fresh := now.Add(-10*24*time.Hour), now.Add(-time.Hour)
	for name, at := range map[string]time.Time{"old": old, "fresh": fresh} {
		if _, started, err := l.StartReplay(t.Context(), pipeline.Replay{Name: name, Filters: "{}", Done: true,
			StartedAt: at, UpdatedAt: at, Process: "gone", LeaseUntil: at}); err != nil || !started {
			t.Fatalf("start %s: %v %v", name, started, err)
		}
	}
	op, err := ops.NewOperator(ops.OperatorConfig{Store: stub{}, Box: stub{}, Publisher: &recordingPublisher{},
		Topics: pipeline.Topics{High: "h", Normal: "n", Low: "l"}, Replays: l, Process: "a", ReplayLease: time.Second,
		ReplayRetention: 7 * 24 * time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = op.Close() })
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	go op.ContinueReplays(ctx, time.Hour)
	waitFor(t, 5*time.Second, "the old replay's record to go", func() bool {
		_, err := l.GetReplay(t.Context(), "old")
		return errors.Is(err, pipeline.ErrNotFound)
	})
	if _, err := l.GetReplay(t.Context(), "fresh"); err != nil {
		t.Fatalf("the replay within the retention: %v", err)
	}
}
