package ops

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/infleet/infleet/pipeline"
)

// A running replay holds a lease on its record in the store, renewed by every write of its
// progress; a replay whose lease ran out is continued by whichever operator claims it first.

// saveReplay writes rec's progress and renews its lease; false when the replay was taken
// over (the caller stops). A store that cannot be reached is logged and tried again at the
// next save: the lease runs out meanwhile only if the store stays away for its whole length.
func (o *Operator) saveReplay(rec *pipeline.Replay) bool {
	now := time.Now().UTC()
	rec.UpdatedAt, rec.LeaseUntil = now, now.Add(o.cfg.ReplayLease)
	ctx, cancel := context.WithTimeout(context.Background(), o.cfg.ReplayLease/2)
	defer cancel()
	ok, err := o.replayStore.SaveReplay(ctx, *rec)
	if err != nil {
		o.cfg.Logger.Warn().Err(err).Str("replay_name", rec.Name).Int("published", rec.Published).
			Msg("replay progress not saved; trying again")
		return true
	}
	if !ok {
		o.cfg.Logger.Warn().Str("replay_name", rec.Name).Int("published", rec.Published).
			Msg("replay taken over by another process (this one was silent past its lease); stopping here")
	}
	return ok
}

// handBack saves rec's progress with its lease ended, for another process to continue it.
func (o *Operator) handBack(rec *pipeline.Replay) {
	now := time.Now().UTC()
	rec.UpdatedAt, rec.LeaseUntil = now, now
	ctx, cancel := context.WithTimeout(context.Background(), closeWait)
	defer cancel()
	if _, err := o.replayStore.SaveReplay(ctx, *rec); err != nil {
		o.cfg.Logger.Warn().Err(err).Str("replay_name", rec.Name).Msg("replay not handed back; its lease runs out instead")
		return
	}
	o.cfg.Logger.Info().Str("replay_name", rec.Name).Int("published", rec.Published).Int("matched", rec.Matched).
		Msg("replay handed back at shutdown; another process continues it")
}

// finishReplay writes rec's last progress, trying a few times; false when it could not.
func (o *Operator) finishReplay(rec *pipeline.Replay) bool {
	for try := range 5 {
		now := time.Now().UTC()
		rec.UpdatedAt, rec.LeaseUntil = now, now.Add(o.cfg.ReplayLease)
		ctx, cancel := context.WithTimeout(context.Background(), o.cfg.ReplayLease/2)
		ok, err := o.replayStore.SaveReplay(ctx, *rec)
		cancel()
		if err == nil {
			if !ok {
				o.cfg.Logger.Warn().Str("replay_name", rec.Name).Msg("replay taken over by another process before its end was recorded")
			}
			return ok
		}
		o.cfg.Logger.Warn().Err(err).Str("replay_name", rec.Name).Int("try", try+1).Msg("replay end not saved; trying again")
		time.Sleep(time.Duration(try+1) * 200 * time.Millisecond)
	}
	return false
}

// ContinueReplays takes over, every interval until ctx ends, the unfinished replays whose
// lease ran out (their process died), and continues each after its cursor from this
// process; with OperatorConfig.ReplayRetention it also deletes, at start and every hour, the
// replays not written nor leased for that long. Jobs the dead process re-published after its last saved progress are re-published
// again (at most ReplaySaveInterval of them) under the same job ids and replay name: a worker
// drops a delivery of a job that already ended under that name, and takes one that arrives
// while the job runs as any redelivery. Call it once per Operator.
func (o *Operator) ContinueReplays(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(cmp.Or(interval, o.cfg.ReplayLease/3))
	defer t.Stop()
	forget := time.NewTicker(replayForgetEvery)
	defer forget.Stop()
	o.forgetReplays(ctx)
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			o.continueInterrupted(ctx)
		case <-forget.C:
			o.forgetReplays(ctx)
		}
	}
}

// replayForgetEvery is how often ContinueReplays deletes old replay records.
const replayForgetEvery = time.Hour

// forgetReplays deletes the replays older than OperatorConfig.ReplayRetention, if set.
func (o *Operator) forgetReplays(ctx context.Context) {
	if o.cfg.ReplayRetention <= 0 || ctx.Err() != nil {
		return
	}
	n, err := o.replayStore.ForgetReplays(ctx, time.Now().Add(-o.cfg.ReplayRetention))
	if err != nil {
		o.cfg.Logger.Warn().Err(err).Msg("could not delete old replay records; trying again in an hour")
		return
	}
	if n > 0 {
		o.cfg.Logger.Info().Int("replays", n).Dur("retention", o.cfg.ReplayRetention).Msg("old replay records deleted")
	}
}

// replayScanLimit is how many of the latest replays a scan for interrupted ones looks at.
const replayScanLimit = 100

func (o *Operator) continueInterrupted(ctx context.Context) {
	if o.ctx.Err() != nil {
		return
	}
	rs, err := o.replayStore.Replays(ctx, "", replayScanLimit)
	if err != nil {
		o.cfg.Logger.Warn().Err(err).Msg("could not look for interrupted replays; looking again later")
		return
	}
	for _, r := range rs {
		now := time.Now().UTC()
		if _, here := o.running.Load(r.Name); here || !r.Interrupted(now) {
			continue
		}
		claimed, ok, err := o.replayStore.ClaimReplay(ctx, r.Name, o.cfg.Process, now, now.Add(o.cfg.ReplayLease))
		if err != nil {
			o.cfg.Logger.Warn().Err(err).Str("replay_name", r.Name).Msg("could not claim an interrupted replay")
			continue
		}
		if ok {
			o.resume(ctx, claimed, r.Process)
		}
	}
}

// resume continues the claimed replay rec after its cursor.
func (o *Operator) resume(ctx context.Context, rec pipeline.Replay, from string) {
	log := o.cfg.Logger.With().Str("replay_name", rec.Name).Logger()
	var f replayFilters
	if err := json.Unmarshal([]byte(rec.Filters), &f); err != nil {
		rec.Error, rec.Done = fmt.Sprintf("cannot continue: its recorded filters are corrupt: %v", err), true
		o.finishReplay(&rec)
		return
	}
	req := f.request(rec)
	entries, err := o.selectReplay(ctx, req)
	if err != nil {
		// Left claimed: the lease runs out and the replay is tried again, here or elsewhere.
		log.Warn().Err(err).Msg("could not read the archive to continue an interrupted replay")
		return
	}
	cut, _ := slices.BinarySearchFunc(entries, rec.Cursor, func(e ArchiveEntry, c string) int {
		return strings.Compare(replayCursor(e), c)
	})
	if cut < len(entries) && rec.Cursor != "" && replayCursor(entries[cut]) == rec.Cursor {
		cut++
	}
	rest := entries[cut:]
	rec.Matched = rec.Published + len(rest)
	log.Info().Str("from_process", from).Int("published", rec.Published).Int("remaining", len(rest)).
		Msg("continuing an interrupted replay")
	if !o.saveReplay(&rec) {
		return
	}
	o.running.Store(rec.Name, true)
	o.runs.Add(1)
	go o.publishReplay(rec, req, rest)
}
