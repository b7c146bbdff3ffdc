package ops

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/infleet/infleet/messages"
	"github.com/infleet/infleet/pipeline"
)

// DefaultReplayRate is how many jobs a replay re-publishes per second unless told otherwise.
const DefaultReplayRate = 100

// ReplayRequest selects archived jobs to run again.
type ReplayRequest struct {
	// From and To bound when the jobs were accepted; To defaults to now.
	From, To time.Time
	Task     string
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

// ReplayStatus is a replay's progress.
type ReplayStatus struct {
	Name      string    `json:"replay_name"`
	Matched   int       `json:"matched"`
	Published int       `json:"published"`
	Done      bool      `json:"done"`
	DryRun    bool      `json:"dry_run,omitempty"`
	Error     string    `json:"error,omitempty"`
	StartedAt time.Time `json:"started_at"`
}

// replays keeps the progress of this process's replays.
type replays struct {
	mu   sync.Mutex
	runs map[string]*ReplayStatus
}

func (r *replays) set(s ReplayStatus) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.runs == nil {
		r.runs = map[string]*ReplayStatus{}
	}
	r.runs[s.Name] = &s
}

func (r *replays) update(name string, f func(*ReplayStatus)) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if s := r.runs[name]; s != nil {
		f(s)
	}
}

// ReplayStatus returns the progress of a replay started by this process, or pipeline.ErrNotFound.
func (o *Operator) ReplayStatus(name string) (ReplayStatus, error) {
	o.replays.mu.Lock()
	defer o.replays.mu.Unlock()
	if s := o.replays.runs[name]; s != nil {
		return *s, nil
	}
	return ReplayStatus{}, pipeline.ErrNotFound
}

// Replay selects archived jobs and, unless req.DryRun, re-publishes each once with
// req.Name as its replay_name, at req.Rate, in the background. Workers run them again under
// the same job id, replacing the result. It returns the status as it starts.
func (o *Operator) Replay(ctx context.Context, req ReplayRequest) (ReplayStatus, error) {
	if o.cfg.Results == nil {
		return ReplayStatus{}, errors.New("replay needs the result store that holds the archive")
	}
	now := time.Now().UTC()
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
	entries, err := o.selectReplay(ctx, req)
	if err != nil {
		return ReplayStatus{}, err
	}
	st := ReplayStatus{Name: req.Name, Matched: len(entries), DryRun: req.DryRun, StartedAt: now, Done: req.DryRun}
	if req.DryRun {
		return st, nil
	}
	o.replays.set(st)
	o.cfg.Logger.Info().Str("replay_name", req.Name).Int("matched", len(entries)).Msg("replay started")
	go o.publishReplay(req, entries)
	return st, nil
}

// selectReplay reads the archive for the jobs req selects, the newest entry of each job once.
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

// publishReplay re-publishes entries at req.Rate and records progress.
func (o *Operator) publishReplay(req ReplayRequest, entries []ArchiveEntry) {
	tick := time.NewTicker(time.Duration(float64(time.Second) / req.Rate))
	defer tick.Stop()
	topic := o.cfg.Topics.For(req.Priority)
	for i, e := range entries {
		if i > 0 {
			<-tick.C
		}
		var job messages.Job
		if err := json.Unmarshal(e.Body, &job); err != nil {
			o.replays.update(req.Name, func(s *ReplayStatus) { s.Error = fmt.Sprintf("job %s: archived body: %v", e.JobID, err) })
			continue
		}
		job.JobID = e.JobID
		job.ReplayName = req.Name
		body, _ := json.Marshal(job)
		msg := message.NewMessage(req.Name+"/"+e.JobID, body)
		for k, v := range e.Metadata {
			msg.Metadata.Set(k, v)
		}
		msg.Metadata.Set(messages.MetaReplayName, req.Name)
		if err := o.cfg.Publisher.Publish(topic, msg); err != nil {
			o.replays.update(req.Name, func(s *ReplayStatus) {
				s.Error = fmt.Sprintf("queue unreachable after %d jobs: %v", s.Published, err)
				s.Done = true
			})
			o.cfg.Logger.Error().Err(err).Str("replay_name", req.Name).Msg("replay stopped")
			return
		}
		o.cfg.Metrics.Replayed(1)
		o.replays.update(req.Name, func(s *ReplayStatus) { s.Published++ })
	}
	o.replays.update(req.Name, func(s *ReplayStatus) { s.Done = true })
	o.cfg.Logger.Info().Str("replay_name", req.Name).Int("published", len(entries)).Msg("replay finished")
}
