package ops

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/infleet/infleet/messages"
	"github.com/infleet/infleet/pipeline"
)

// DefaultReplayRate is how many jobs a replay re-publishes per second unless told otherwise.
const DefaultReplayRate = 100

// DefaultReplayLease is how long a replay stays with the process running it without word
// from it, unless OperatorConfig.ReplayLease says otherwise: after that any process with an
// Operator continues it.
const DefaultReplayLease = 15 * time.Second

// ReplaySaveInterval is how often a running replay writes its progress to the store (and
// renews its lease), besides once at its end.
const ReplaySaveInterval = 500 * time.Millisecond

// ReplayRequest selects archived jobs to run again.
type ReplayRequest struct {
	// From and To bound when the jobs were accepted; To defaults to now.
	From, To time.Time
	// Since, when set, is how far back from now the range was asked for (From is then now
	// less Since); a repeated start under the same name compares it instead of From.
	Since time.Duration
	Task  string
	// Status selects jobs whose current status is this one.
	Status messages.Status
	JobIDs []string
	// Tenant scopes to one tenant's jobs (empty: all, for operators).
	Tenant string
	DryRun bool
	// Rate caps re-publishing, jobs per second (default 100), so a replay does not starve live
	// traffic.
	Rate float64
	// Priority is the queue the replayed jobs go to (default low).
	Priority messages.Priority
	// Name is the replay_name put on every replayed job (default replay-<time>).
	Name string
}

// ReplayStatus is a replay's progress, as the store holds it and any process reads it.
type ReplayStatus struct {
	Name      string `json:"replay_name"`
	Tenant    string `json:"tenant,omitempty"`
	Matched   int    `json:"matched"`
	Published int    `json:"published"`
	Done      bool   `json:"done"`
	// Interrupted is true while the replay is unfinished and its lease ran out: the process
	// running it stopped and no other has continued it yet.
	Interrupted bool      `json:"interrupted"`
	DryRun      bool      `json:"dry_run,omitempty"`
	Error       string    `json:"error,omitempty"`
	StartedAt   time.Time `json:"started_at"`
	UpdatedAt   time.Time `json:"updated_at,omitzero"`
	// Process names the process running the replay (or that ran it last).
	Process string `json:"process,omitempty"`
}

// ReplayConflictError refuses the start of a replay under the name of a running one with
// other filters; Field names the first filter that differs. Answered with 409.
type ReplayConflictError struct {
	Name, Field string
	Running     ReplayStatus
}

func (e *ReplayConflictError) Error() string {
	return fmt.Sprintf("replay %s is running with another %s; wait for it to finish (GET /v1/replays/%s), or start this one under another name",
		e.Name, e.Field, e.Name)
}

// replayFilters is a replay's request as the store keeps it (pipeline.Replay.Filters): the
// range and filters as asked, for comparing a repeated start, and as resolved, for continuing.
type replayFilters struct {
	Since     string            `json:"since,omitempty"`
	AskedFrom time.Time         `json:"asked_from,omitzero"`
	AskedTo   time.Time         `json:"asked_to,omitzero"`
	From      time.Time         `json:"from"`
	To        time.Time         `json:"to"`
	Task      string            `json:"task,omitempty"`
	Status    messages.Status   `json:"status,omitempty"`
	JobIDs    []string          `json:"job_ids,omitempty"`
	Rate      float64           `json:"rate"`
	Priority  messages.Priority `json:"priority"`
}

// differs names the first filter of f that g does not share ("" when none does).
func (f replayFilters) differs(g replayFilters) string {
	ids := func(s []string) []string { s = slices.Clone(s); slices.Sort(s); return slices.Compact(s) }
	switch {
	case f.Since != g.Since:
		return "since"
	case f.Since == "" && !f.AskedFrom.Equal(g.AskedFrom):
		return "from"
	case !f.AskedTo.Equal(g.AskedTo):
		return "to"
	case f.Task != g.Task:
		return "task"
	case f.Status != g.Status:
		return "status"
	case !slices.Equal(ids(f.JobIDs), ids(g.JobIDs)):
		return "job_ids"
	}
	return ""
}

func (f replayFilters) request(r pipeline.Replay) ReplayRequest {
	return ReplayRequest{From: f.From, To: f.To, Task: f.Task, Status: f.Status, JobIDs: f.JobIDs, Tenant: r.Tenant,
		Rate: f.Rate, Priority: f.Priority, Name: r.Name}
}

func statusOf(r pipeline.Replay, now time.Time) ReplayStatus {
	return ReplayStatus{Name: r.Name, Tenant: r.Tenant, Matched: r.Matched, Published: r.Published, Done: r.Done,
		Interrupted: r.Interrupted(now), DryRun: r.DryRun, Error: r.Error, StartedAt: r.StartedAt, UpdatedAt: r.UpdatedAt,
		Process: r.Process}
}

// ReplayStatus returns a replay's progress from the store, whichever process runs it, or
// pipeline.ErrNotFound; a tenant other than "" sees its own replays only.
func (o *Operator) ReplayStatus(ctx context.Context, name, tenant string) (ReplayStatus, error) {
	r, err := o.replayStore.GetReplay(ctx, name)
	if err != nil {
		return ReplayStatus{}, err
	}
	if tenant != "" && r.Tenant != tenant {
		return ReplayStatus{}, fmt.Errorf("replay %s: %w", name, pipeline.ErrNotFound)
	}
	return statusOf(r, time.Now()), nil
}

// Replays returns up to limit replays from the store, the latest started first; of tenant
// only unless tenant is "".
func (o *Operator) Replays(ctx context.Context, tenant string, limit int) ([]ReplayStatus, error) {
	rs, err := o.replayStore.Replays(ctx, tenant, limit)
	if err != nil {
		return nil, err
	}
	now := time.Now()
	out := make([]ReplayStatus, len(rs))
	for i, r := range rs {
		out[i] = statusOf(r, now)
	}
	return out, nil
}

// Replay selects archived jobs and, unless req.DryRun, re-publishes each once with
// req.Name as its replay_name, at req.Rate, in the background, recording its progress in the
// store. Workers run them again under the same job id, replacing the result. It returns the
// status as it starts. A start under the name of an unfinished replay with the same filters
// returns that replay's status and starts nothing; with other filters it is a
// *ReplayConflictError.
func (o *Operator) Replay(ctx context.Context, req ReplayRequest) (ReplayStatus, error) {
	if o.cfg.Results == nil {
		return ReplayStatus{}, errors.New("replay needs the result store that holds the archive")
	}
	if o.ctx.Err() != nil {
		return ReplayStatus{}, fmt.Errorf("this process is shutting down; start the replay on another: %w", pipeline.ErrUnavailable)
	}
	now := time.Now().UTC()
	asked := replayFilters{AskedTo: req.To, Task: req.Task, Status: req.Status, JobIDs: req.JobIDs}
	if req.Since > 0 {
		asked.Since = req.Since.String()
	} else {
		asked.AskedFrom = req.From
	}
	if req.To.IsZero() {
		req.To = now
	}
	if req.From.After(req.To) {
		return ReplayStatus{}, pipeline.Permanent(messages.ErrCodeInvalidJob, fmt.Errorf("from (%s) is after to (%s)", req.From, req.To))
	}
	if req.Name == "" {
		req.Name = "replay-" + now.Format("20060102T150405Z")
	}
	if req.Rate <= 0 {
		req.Rate = DefaultReplayRate
	}
	if req.Priority == "" {
		req.Priority = messages.PriorityLow
	}
	asked.From, asked.To, asked.Rate, asked.Priority = req.From, req.To, req.Rate, req.Priority
	if !req.DryRun {
		cur, err := o.replayStore.GetReplay(ctx, req.Name)
		if err != nil && !errors.Is(err, pipeline.ErrNotFound) {
			return ReplayStatus{}, err
		}
		if err == nil && !cur.Done {
			return o.repeated(cur, asked)
		}
	}
	entries, err := o.selectReplay(ctx, req)
	if err != nil {
		return ReplayStatus{}, err
	}
	if req.DryRun {
		return ReplayStatus{Name: req.Name, Tenant: req.Tenant, Matched: len(entries), DryRun: true, StartedAt: now, Done: true}, nil
	}
	filters, _ := json.Marshal(asked)
	rec := pipeline.Replay{Name: req.Name, Tenant: req.Tenant, Filters: string(filters), Matched: len(entries),
		StartedAt: now, UpdatedAt: now, Process: o.cfg.Process, LeaseUntil: now.Add(o.cfg.ReplayLease)}
	cur, started, err := o.replayStore.StartReplay(ctx, rec)
	if err != nil {
		return ReplayStatus{}, fmt.Errorf("record replay %s: %w", req.Name, err)
	}
	if !started {
		return o.repeated(cur, asked)
	}
	o.cfg.Logger.Info().Str("replay_name", req.Name).Int("matched", len(entries)).Str("process", o.cfg.Process).Msg("replay started")
	o.running.Store(cur.Name, true)
	o.runs.Add(1)
	go o.publishReplay(cur, req, entries)
	return statusOf(cur, time.Now()), nil
}

// repeated answers the start of a replay under the name of the unfinished replay cur.
func (o *Operator) repeated(cur pipeline.Replay, asked replayFilters) (ReplayStatus, error) {
	var f replayFilters
	if err := json.Unmarshal([]byte(cur.Filters), &f); err != nil {
		return ReplayStatus{}, fmt.Errorf("replay %s: its recorded filters are corrupt: %w", cur.Name, err)
	}
	st := statusOf(cur, time.Now())
	if field := f.differs(asked); field != "" {
		return ReplayStatus{}, &ReplayConflictError{Name: cur.Name, Field: field, Running: st}
	}
	return st, nil
}

// selectReplay reads the archive for the jobs req selects, the newest entry of each job once,
// in the order of their cursors (accepted_at, then job id), which a takeover continues.
func (o *Operator) selectReplay(ctx context.Context, req ReplayRequest) ([]ArchiveEntry, error) {
	byID := map[string]int{}
	var entries []ArchiveEntry
	err := ScanArchive(ctx, o.cfg.Results, req.From, req.To, func(e ArchiveEntry) bool {
		if req.Task != "" && e.Task != req.Task {
			return true
		}
		if len(req.JobIDs) > 0 && !contains(req.JobIDs, e.JobID) {
			return true
		}
		if req.Tenant != "" && e.Tenant != req.Tenant {
			return true
		}
		if i, seen := byID[e.JobID]; seen {
			entries[i] = e
			return true
		}
		byID[e.JobID] = len(entries)
		entries = append(entries, e)
		return true
	})
	if err != nil {
		return nil, fmt.Errorf("read the archive: %w", err)
	}
	slices.SortFunc(entries, func(a, b ArchiveEntry) int { return strings.Compare(replayCursor(a), replayCursor(b)) })
	if req.Status == "" {
		return entries, nil
	}
	kept := entries[:0]
	for _, e := range entries {
		rec, err := o.cfg.Store.Get(ctx, e.JobID)
		if err != nil && !errors.Is(err, pipeline.ErrNotFound) {
			return nil, fmt.Errorf("status of %s: %w", e.JobID, err)
		}
		if err == nil && rec.Status == req.Status {
			kept = append(kept, e)
		}
	}
	return kept, nil
}

// replayCursor is e's place in a replay: its accepted time (UTC, fixed width, so that cursors
// sort as strings) and its job id.
func replayCursor(e ArchiveEntry) string {
	return e.AcceptedAt.UTC().Format("2006-01-02T15:04:05.000000000Z") + "|" + e.JobID
}

// publishReplay re-publishes entries at req.Rate, writing rec's progress to the store every
// ReplaySaveInterval (which renews its lease) and at the end. It stops early, leaving the
// replay to its new holder, when another process took it over, and hands it back when the
// Operator closes. The caller marks rec running and counts it in o.runs.
func (o *Operator) publishReplay(rec pipeline.Replay, req ReplayRequest, entries []ArchiveEntry) {
	defer o.runs.Done()
	defer o.running.Delete(rec.Name)
	log := o.cfg.Logger.With().Str("replay_name", rec.Name).Logger()
	tick := time.NewTicker(time.Duration(float64(time.Second) / req.Rate))
	defer tick.Stop()
	save := time.NewTicker(ReplaySaveInterval)
	defer save.Stop()
	topic := o.cfg.Topics.For(req.Priority)
	for i, e := range entries {
		for waiting := i > 0; waiting; {
			select {
			case <-o.ctx.Done():
				o.handBack(&rec)
				return
			case <-tick.C:
				waiting = false
			case <-save.C:
				if !o.saveReplay(&rec) {
					return
				}
			}
		}
		var job messages.Job
		if err := json.Unmarshal(e.Body, &job); err != nil {
			rec.Error = fmt.Sprintf("job %s: archived body: %v", e.JobID, err)
			rec.Cursor = replayCursor(e)
			continue
		}
		job.JobID = e.JobID
		job.ReplayName = rec.Name
		body, _ := json.Marshal(job)
		msg := message.NewMessage(rec.Name+"/"+e.JobID, body)
		for k, v := range e.Metadata {
			msg.Metadata.Set(k, v)
		}
		msg.Metadata.Set(messages.MetaReplayName, rec.Name)
		if err := o.cfg.Publisher.Publish(topic, msg); err != nil {
			if o.ctx.Err() != nil {
				o.handBack(&rec)
				return
			}
			rec.Error = fmt.Sprintf("queue unreachable after %d jobs: %v", rec.Published, err)
			rec.Done = true
			o.finishReplay(&rec)
			log.Error().Err(err).Msg("replay stopped")
			return
		}
		o.cfg.Metrics.Replayed(1)
		rec.Published++
		rec.Cursor = replayCursor(e)
	}
	rec.Done = true
	if o.finishReplay(&rec) {
		log.Info().Int("published", rec.Published).Int("matched", rec.Matched).Msg("replay finished")
	}
}
