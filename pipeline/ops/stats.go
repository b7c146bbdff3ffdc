package ops

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/infleet/infleet/messages"
	"github.com/infleet/infleet/pipeline"
)

// Stats window bounds.
const (
	// DefaultStatsWindow is the window of Stats when none is asked for.
	DefaultStatsWindow = time.Hour
	// MaxStatsWindow is the longest window Stats reads.
	MaxStatsWindow = 24 * time.Hour
)

// Stats are the fleet's figures over a window, from the job store and the transport: what
// every process of the fleet shares, not this process's memory.
type Stats struct {
	GeneratedAt time.Time `json:"generated_at"`
	// From and To bound the series; StepSeconds is the width of one point.
	From        time.Time `json:"from"`
	To          time.Time `json:"to"`
	StepSeconds int       `json:"step_seconds"`
	// QueueDepth is the number of messages waiting per priority; nil when the transport cannot
	// tell.
	QueueDepth map[messages.Priority]int64 `json:"queue_depth"`
	// Queued and Running count the jobs QUEUED and PROCESSING now; nil when the job store
	// cannot tell.
	Queued  *int64 `json:"queued"`
	Running *int64 `json:"running"`
	// Series are the per-step figures, as columns; nil when the job store cannot tell.
	Series *StatsSeries `json:"series"`
	// DeadLetters counts the dead letters kept now.
	DeadLetters DeadLetterCounts `json:"dead_letters"`
}

// StatsSeries are per-step figures as parallel columns: T[i] is the start of step i in Unix
// seconds.
type StatsSeries struct {
	T            []int64   `json:"t"`
	Accepted     []int64   `json:"accepted"`
	Completed    []int64   `json:"completed"`
	Failed       []int64   `json:"failed"`
	LatencyP50Ms []float64 `json:"latency_p50_ms"`
	LatencyP95Ms []float64 `json:"latency_p95_ms"`
}

// DeadLetterCounts counts dead letters by their error code and by task, most first.
type DeadLetterCounts struct {
	Total    int          `json:"total"`
	ByReason []GroupCount `json:"by_reason"`
	ByTask   []GroupCount `json:"by_task"`
}

// GroupCount is the size of one group of dead letters.
type GroupCount struct {
	Key   string `json:"key"`
	Count int    `json:"count"`
}

// Stats returns the figures of the window ending at now. window is cut to MaxStatsWindow;
// zero or less means DefaultStatsWindow. Queue depths come from the transport when it can
// report them (OperatorConfig.Depth), the series and live counts from the job store when it
// is a pipeline.StatsReader, the dead letters from the transport's dead-letter place. The
// minutes that ended more than two minutes ago are kept between calls and read again in full
// every five minutes, so a call reads the store for the recent minutes only; a replay,
// redrive or retention that changes an older minute shows within five minutes.
func (o *Operator) Stats(ctx context.Context, now time.Time, window time.Duration) (Stats, error) {
	if window <= 0 {
		window = DefaultStatsWindow
	}
	window = min(window, MaxStatsWindow)
	now = now.UTC()
	st := Stats{GeneratedAt: now, From: now.Add(-window).Truncate(pipeline.StatsStep), To: now,
		StepSeconds: int(pipeline.StatsStep / time.Second)}
	if o.cfg.Depth != nil {
		st.QueueDepth = map[messages.Priority]int64{}
		for _, p := range []messages.Priority{messages.PriorityHigh, messages.PriorityNormal, messages.PriorityLow} {
			n, err := o.cfg.Depth.QueueDepth(ctx, o.cfg.Topics.For(p))
			if err != nil {
				return Stats{}, fmt.Errorf("queue depth of %s: %w", p, err)
			}
			st.QueueDepth[p] = n
		}
	}
	if r, ok := o.cfg.Store.(pipeline.StatsReader); ok {
		js, err := o.stats.jobStats(ctx, r, st.From, now)
		if err != nil {
			return Stats{}, err
		}
		st.Queued, st.Running = &js.Queued, &js.Processing
		st.Series = seriesOf(js.Buckets)
	}
	dl, err := o.countDeadLetters(ctx, "")
	if err != nil {
		return Stats{}, err
	}
	st.DeadLetters = dl
	return st, nil
}

func seriesOf(buckets []pipeline.StatsBucket) *StatsSeries {
	n := len(buckets)
	s := &StatsSeries{T: make([]int64, n), Accepted: make([]int64, n), Completed: make([]int64, n),
		Failed: make([]int64, n), LatencyP50Ms: make([]float64, n), LatencyP95Ms: make([]float64, n)}
	for i, b := range buckets {
		s.T[i] = b.Start.Unix()
		s.Accepted[i], s.Completed[i], s.Failed[i] = b.Accepted, b.Completed, b.Failed
		s.LatencyP50Ms[i] = float64(b.LatencyP50) / float64(time.Millisecond)
		s.LatencyP95Ms[i] = float64(b.LatencyP95) / float64(time.Millisecond)
	}
	return s
}

// countDeadLetters groups the kept dead letters (of tenant, when set) by code and by task.
func (o *Operator) countDeadLetters(ctx context.Context, tenant string) (DeadLetterCounts, error) {
	reasons, tasks := map[string]int{}, map[string]int{}
	var out DeadLetterCounts
	err := o.cfg.Box.ScanDeadLetters(ctx, o.cfg.Topics.Dead, func(id string, payload []byte, md map[string]string) bool {
		dl := DeadLetterFromMessage(id, nil, md)
		if tenant != "" && md[messages.MetaTenant] != tenant {
			return true
		}
		out.Total++
		reasons[cmp.Or(dl.Code, "unknown")]++
		tasks[dl.Task]++
		return true
	})
	if err != nil {
		return DeadLetterCounts{}, fmt.Errorf("count dead letters: %w", err)
	}
	out.ByReason, out.ByTask = sortedCounts(reasons), sortedCounts(tasks)
	return out, nil
}

// sortedCounts returns m's groups, most first, then by key.
func sortedCounts(m map[string]int) []GroupCount {
	out := make([]GroupCount, 0, len(m))
	for k, n := range m {
		out = append(out, GroupCount{Key: k, Count: n})
	}
	slices.SortFunc(out, func(a, b GroupCount) int {
		return cmp.Or(cmp.Compare(b.Count, a.Count), cmp.Compare(a.Key, b.Key))
	})
	return out
}
