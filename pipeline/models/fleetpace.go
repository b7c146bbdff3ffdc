package models

import (
	"context"
	"math"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/infleet/infleet/pipeline"
)

// Fleet pacing constants.
const (
	// fleetPaceRefresh is how often a process reads its models' shared pace while it calls
	// them, and how often it reports its answers while the model is throttled or paced.
	fleetPaceRefresh = 200 * time.Millisecond
	// fleetPaceReport is how often a process reports its answers otherwise.
	fleetPaceReport = time.Second
	// fleetPaceWindow is the back-off window: the fleet's rate is cut at most once in it,
	// however many processes see the throttling.
	fleetPaceWindow = 2 * time.Second
	// fleetPaceActive is how long after its last throttle a process reports at every refresh.
	fleetPaceActive = time.Minute
	// fleetPaceRetry is how long the local pace stands in after the store failed.
	fleetPaceRetry = 5 * time.Second
	// fleetPaceSwaps bounds the compare-and-set tries of one sync.
	fleetPaceSwaps = 4
	// fleetPaceIO bounds one sync's store calls.
	fleetPaceIO = 2 * time.Second
)

// fleetPace shares a model's pace with every process of the fleet through a
// pipeline.PaceStore, so that the processes pace the model as one AIMD limiter. Each
// process's pacer still decides when the throttling it sees calls for a cut (with a run of
// throttles as long as its callers, at least paceFleetRunMin, since each process has only its
// share of the fleet's callers); the rate is the fleet's, in one row per model. A cut any
// process proposes lowers it at once, and at most once per fleetPaceWindow, to the lesser of
// 80 % of it and 85 % of the rate the fleet was answered at lately (every process reports its
// answers into the row). The cut is judged by the fleet's answers in a full second starting a
// second or more after it: when they fall clearly short of the rate it set (paceKeptFleet)
// while the process that cut still sees throttles, the throttling was not about the callers'
// rate, so the cut is undone and cuts are held for paceTolerance (fewer answers without
// throttles are the callers calling less, and the cut stands). Each success earns its share
// of the additive increase, which its process adds at its next write; the pace is lifted as
// the per-process one is. The rate is split
// among the processes by a token bucket of the store (LimitStore.Take at the fleet rate),
// taken by one waiting caller per process at a time, so a paced call costs one store write
// and an unpaced one none; the row is read every fleetPaceRefresh in the background while
// calls flow (answers are written with it while the model throttles or is paced, else once a
// second). Processes' clocks are taken to agree within a fraction of a second. When the store
// fails, the process's own pace stands in for fleetPaceRetry. Safe for concurrent use.
type fleetPace struct {
	store  pipeline.PaceStore
	bucket pipeline.LimitStore
	name   string
	log    *zerolog.Logger
	warned *sync.Once
	gate   chan struct{} // one caller per process takes from the bucket at a time

	mu           sync.Mutex
	row          pipeline.Pace
	readAt       time.Time
	syncing      bool
	standing     bool // the last sync read the row; until then, or after a failure, the local pace decides
	failedUntil  time.Time
	lastThrottle time.Time
	reportedAt   time.Time
	answers      int64           // answered calls not yet reported
	raise        float64         // additive increase not yet applied
	cut          float64         // a cut proposed (the local pacer's rate), 0 for none
	cutAnswered  float64         // this process's answers per second when it proposed the cut
	cutSeen      time.Duration   // how long it had called the model then
	mine         map[int64]int64 // this process's answers reported per Unix second, the last few
	ours         time.Time       // when this process's last cut was made, until it is judged
	oursUndo     float64         // the rate before it, to restore when it is undone
}

func newFleetPace(store pipeline.PaceStore, bucket pipeline.LimitStore, name string, log *zerolog.Logger, warned *sync.Once) *fleetPace {
	return &fleetPace{store: store, bucket: bucket, name: name, log: log, warned: warned, gate: make(chan struct{}, 1)}
}

// healthy reports whether the shared pace stands (the store answered the last sync), kicking
// a sync when the row is stale (after a failure, not before fleetPaceRetry), and returns the
// fleet's rate (0: unpaced).
func (fp *fleetPace) healthy(now time.Time) (rate float64, ok bool) {
	fp.mu.Lock()
	defer fp.mu.Unlock()
	if now.Sub(fp.readAt) >= fleetPaceRefresh && !now.Before(fp.failedUntil) {
		fp.kickLocked()
	}
	return fp.row.Rate, fp.standing
}

// wait holds a call to the fleet's pace. handled is false when the shared pace does not
// stand (the store failed) and the local pace is to decide.
func (fp *fleetPace) wait(ctx context.Context) (handled bool, err error) {
	rate, ok := fp.healthy(time.Now())
	if !ok {
		return false, nil
	}
	if rate <= 0 {
		return true, nil
	}
	select {
	case fp.gate <- struct{}{}:
	case <-ctx.Done():
		return true, pacedErr(fp.name, time.Duration(float64(time.Second)/max(rate, paceFloor)), ctx.Err())
	}
	defer func() { <-fp.gate }()
	for {
		d, err := fp.bucket.Take(ctx, fp.key(), rate, fleetPaceBurst(rate), 1, time.Now())
		if err != nil {
			if ctx.Err() != nil {
				return true, pacedErr(fp.name, time.Duration(float64(time.Second)/max(rate, paceFloor)), ctx.Err())
			}
			fp.failed(err)
			return false, nil
		}
		if d.Allowed {
			return true, nil
		}
		if err := sleepCtx(ctx, jitter(max(d.RetryAfter, sharedPollMin))); err != nil {
			return true, pacedErr(fp.name, d.RetryAfter, err)
		}
		if rate, ok = fp.healthy(time.Now()); !ok || rate <= 0 {
			return ok, nil
		}
	}
}

func (fp *fleetPace) key() string { return "model:" + fp.name + ":pace" }

// fleetPaceBurst is the fleet bucket's burst at rate: a twentieth of a second's calls, at
// least 1.
func fleetPaceBurst(rate float64) int { return max(1, int(rate/20)) }

// rate returns the fleet's rate as last read; 0 when unpaced or when the shared pace does not
// stand.
func (fp *fleetPace) rate() float64 {
	fp.mu.Lock()
	defer fp.mu.Unlock()
	if !fp.standing {
		return 0
	}
	return fp.row.Rate
}

// answered counts an answered call: it is reported to the row, and while the fleet is paced
// it earns its share of the additive increase, paceRecover of the cut's rate per second
// summed over the fleet's answers.
func (fp *fleetPace) answered() {
	fp.mu.Lock()
	defer fp.mu.Unlock()
	fp.answers++
	if fp.row.Rate > 0 {
		fp.raise += paceRecover * cmpPosF(fp.row.Base, fp.row.Rate) / fp.row.Rate
	}
}

// throttled notes a throttled call: answers are then reported at every refresh.
func (fp *fleetPace) throttled(now time.Time) {
	fp.mu.Lock()
	fp.lastThrottle = now
	fp.mu.Unlock()
}

// proposeCut asks for the fleet's rate to be cut, now: the local pacer decided a cut (to
// local calls per second) on the throttling it saw, while this process was answered
// answered times a second, having called the model for seen.
func (fp *fleetPace) proposeCut(local, answered float64, seen time.Duration) {
	fp.mu.Lock()
	defer fp.mu.Unlock()
	fp.cut, fp.cutAnswered, fp.cutSeen = local, answered, seen
	fp.kickLocked()
}

func (fp *fleetPace) kickLocked() {
	if fp.syncing {
		return
	}
	fp.syncing = true
	go fp.sync()
}

// failed makes the local pace stand in for fleetPaceRetry, with one warning per Fleet.
func (fp *fleetPace) failed(err error) {
	fp.warned.Do(func() {
		fp.log.Warn().Err(err).Str("model", fp.name).Msg("the shared pace cannot be reached (on PostgreSQL, run `infleet init` to create its table); throttled models are paced per process until it can")
	})
	fp.mu.Lock()
	fp.failedUntil, fp.standing = time.Now().Add(fleetPaceRetry), false
	fp.mu.Unlock()
}

// sync reads the row and writes what this process has to add to it (its answers, its
// increases, a cut, the judgement of its cut), until nothing is left to do.
func (fp *fleetPace) sync() {
	for fp.syncOnce() {
	}
}

// syncOnce is one read-modify-swap; it returns whether to run again (a cut came in
// meanwhile).
func (fp *fleetPace) syncOnce() (again bool) {
	ctx, cancel := context.WithTimeout(context.Background(), fleetPaceIO)
	defer cancel()
	fp.mu.Lock()
	var answers int64
	active := time.Since(fp.lastThrottle) < fleetPaceActive || fp.row.Rate > 0
	if active || time.Since(fp.reportedAt) >= fleetPaceReport {
		answers, fp.answers = fp.answers, 0
	}
	raise, cut, cutAnswered, cutSeen := fp.raise, fp.cut, fp.cutAnswered, fp.cutSeen
	fp.raise, fp.cut = 0, 0
	ours, oursUndo, lastThrottle := fp.ours, fp.oursUndo, fp.lastThrottle
	mine := fp.mine[time.Now().Unix()-1] + fp.mine[time.Now().Unix()]
	fp.mu.Unlock()

	var row, next pipeline.Pace
	var err error
	var cutMade, judged, swapped bool
	for try := 0; try < fleetPaceSwaps; try++ {
		if row, err = fp.store.Pace(ctx, fp.name); err != nil {
			break
		}
		now := time.Now().UTC().Truncate(time.Microsecond)
		changed := false
		next, cutMade, judged = row, false, false
		if answers > 0 {
			addAnswers(&next, now, answers)
			changed = true
		}
		if cut > 0 && !now.Before(next.HoldUntil) && (next.Rate <= 0 || now.Sub(next.CutAt) >= fleetPaceWindow) {
			cur := next.Rate
			if cur <= 0 {
				cur = math.Inf(1)
			}
			rate := max(paceFloor, min(paceDecrease*cur, paceAnswered*fleetEstimate(row, now, mine, cutAnswered, cut, cutSeen)))
			oursUndo = next.Rate
			next.Rate, next.Base, next.CutAt = rate, rate, now
			changed, cutMade = true, true
		}
		if !cutMade && !ours.IsZero() {
			// Judge this process's last cut by the fleet's answers in a full second starting
			// at least a second after it (the first second callers still wait out the
			// Retry-After of the throttles that led to it): a rate quota answers nearly the
			// rate the cut set; throttling that no pace cures answers clearly less, and then
			// the cut is undone and cuts are held.
			sec := now.Unix()
			switch {
			case !row.CutAt.Equal(ours) || now.Sub(ours) > 3*fleetPaceWindow:
				judged = true // cut again since, or no answers to judge by
			case row.Second == sec && sec-1 >= ours.Unix()+2:
				judged = true
				// Fewer answers without throttles since are the callers calling less (a
				// fleet short of CPU): the cut stands.
				if float64(row.PrevAnswers) < paceKeptFleet*row.Base && !lastThrottle.Before(time.Unix(sec-1, 0)) {
					next.Rate, next.HoldUntil = oursUndo, now.Add(paceTolerance)
					changed = true
				}
			}
		}
		if raise > 0 && next.Rate > 0 && !cutMade {
			next.Rate += raise
			changed = true
		}
		if next.Rate > 0 && now.Sub(next.CutAt) > paceUnpaceAfter && fleetAnswered(next, now) < next.Rate/2 {
			next.Rate = 0
			changed = true
		}
		if !changed {
			swapped = true // nothing to write
			break
		}
		var ok bool
		if ok, err = fp.store.SwapPace(ctx, fp.name, next); err != nil {
			break
		}
		if ok {
			next.Version++
			row, swapped = next, true
			break
		}
	}
	if err != nil {
		fp.failed(err)
	}
	fp.mu.Lock()
	defer fp.mu.Unlock()
	fp.syncing = false
	if err != nil {
		return false // the additions are dropped: the local pace stands in for a while
	}
	if !swapped {
		// Lost every swap: give the additions back for the next refresh.
		fp.answers += answers
		fp.raise += raise
	}
	if row.Version >= fp.row.Version {
		fp.row = row
	}
	fp.readAt, fp.standing = time.Now(), true
	if swapped && answers > 0 {
		fp.reportedAt = fp.readAt
		if fp.mine == nil {
			fp.mine = map[int64]int64{}
		}
		fp.mine[next.Second] += answers
		for s := range fp.mine {
			if s < next.Second-2 {
				delete(fp.mine, s)
			}
		}
	}
	switch {
	case swapped && cutMade:
		fp.ours, fp.oursUndo = next.CutAt, oursUndo
	case swapped && judged:
		fp.ours = time.Time{}
	}
	if fp.cut > 0 {
		fp.syncing = true
		return true
	}
	return false
}

// fleetEstimate is the rate at which the fleet was answered lately, for a cut: the lesser of
// what the row says (the answers of the last full second and of the current one, over the
// time they cover) and of this process's own answer rate (answered, per second) scaled by its
// share of the row's answers in those seconds (mine). The row's seconds are taken to cover
// no more than seen, how long this process has called the model. When the row says nothing
// yet, the local pacer's cut (local) stands for it.
func fleetEstimate(p pipeline.Pace, now time.Time, mine int64, answered, local float64, seen time.Duration) float64 {
	var total int64
	est := math.Inf(1)
	span := 0.0
	switch sec := now.Unix(); p.Second {
	case sec:
		span = 1 + float64(now.Nanosecond())/1e9
	case sec - 1:
		span = 2
	}
	if span > 0 {
		total = p.PrevAnswers + p.Answers
		est = float64(total) / max(min(span, seen.Seconds()), 0.5)
	}
	if mine > 0 && total >= mine && answered > 0 {
		est = min(est, answered*float64(total)/float64(mine))
	}
	if math.IsInf(est, 1) || est <= 0 {
		return local / paceAnswered
	}
	return est
}

// addAnswers counts n answers of the fleet at now into p's current Unix second.
func addAnswers(p *pipeline.Pace, now time.Time, n int64) {
	sec := now.Unix()
	switch {
	case p.Second == sec:
	case p.Second == sec-1:
		p.PrevAnswers, p.Answers, p.Second = p.Answers, 0, sec
	default:
		p.PrevAnswers, p.Answers, p.Second = 0, 0, sec
	}
	p.Answers += n
}

// fleetAnswered is the rate at which the fleet was answered in the last full second, as
// reported into p.
func fleetAnswered(p pipeline.Pace, now time.Time) float64 {
	switch sec := now.Unix(); p.Second {
	case sec:
		return float64(p.PrevAnswers)
	case sec - 1:
		return float64(p.Answers)
	}
	return 0
}

func cmpPosF(a, b float64) float64 {
	if a > 0 {
		return a
	}
	return b
}

// newPacer returns the pacer of the model name: sharing its pace with the fleet when the
// Fleet has a PaceStore.
func (f *Fleet) newPacer(name string) *pacer {
	p := newPacer()
	if f.paceStore != nil {
		p.fleet = newFleetPace(f.paceStore, f.paceBucket, name, &f.log, &f.paceWarned)
	}
	return p
}
