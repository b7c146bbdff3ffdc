package handlers

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/infleet/infleet/messages"
	"github.com/infleet/infleet/pipeline"
	"github.com/infleet/infleet/pipeline/intake"
)

// memJobs is an in-memory Jobs that keeps the contract of intake.Service: idempotency per
// tenant, jobs of other tenants are not found, Watch closes after a terminal status. Tests drive
// the lifecycle with set and complete, as a worker would.
type memJobs struct {
	mu      sync.Mutex
	seq     int
	jobs    map[string]*messages.JobRecord
	order   []string // creation order
	idem    map[[2]string]string
	results map[string][]byte
	changed chan struct{} // closed and replaced at each change
	// submitErr, readyErr fail the calls when set.
	submitErr error
	readyErr  error
	// lastOpt is the options of the last Submit.
	lastOpt intake.SubmitOptions
	// afterSubmit runs (in its own goroutine) after each created job.
	afterSubmit func(id string)
}

func newMemJobs() *memJobs {
	return &memJobs{
		jobs:    map[string]*messages.JobRecord{},
		idem:    map[[2]string]string{},
		results: map[string][]byte{},
		changed: make(chan struct{}),
	}
}

func (m *memJobs) Submit(_ context.Context, job messages.Job, opt intake.SubmitOptions) (messages.JobRecord, bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.lastOpt = opt
	if m.submitErr != nil {
		return messages.JobRecord{}, false, m.submitErr
	}
	if job.IdempotencyKey != "" {
		if id, ok := m.idem[[2]string{opt.Tenant, job.IdempotencyKey}]; ok {
			return *m.jobs[id], false, nil
		}
	}
	m.seq++
	id := fmt.Sprintf("job-%06d", m.seq)
	spec, err := json.Marshal(job)
	if err != nil {
		return messages.JobRecord{}, false, err
	}
	now := time.Now().UTC()
	rec := &messages.JobRecord{
		JobID: id, Status: messages.StatusQueued, Task: job.Task, Priority: job.Priority.OrNormal(),
		Model: job.Model, CreatedAt: now, UpdatedAt: now, Tenant: opt.Tenant,
		IdempotencyKey: job.IdempotencyKey, Spec: spec,
	}
	m.jobs[id] = rec
	m.order = append(m.order, id)
	if job.IdempotencyKey != "" {
		m.idem[[2]string{opt.Tenant, job.IdempotencyKey}] = id
	}
	if m.afterSubmit != nil {
		go m.afterSubmit(id)
	}
	return *rec, true, nil
}

func (m *memJobs) getLocked(id, tenant string) (*messages.JobRecord, error) {
	rec, ok := m.jobs[id]
	if !ok || (tenant != "" && rec.Tenant != tenant) {
		return nil, pipeline.ErrNotFound
	}
	return rec, nil
}

func (m *memJobs) Get(_ context.Context, id, tenant string) (messages.JobRecord, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	rec, err := m.getLocked(id, tenant)
	if err != nil {
		return messages.JobRecord{}, err
	}
	return *rec, nil
}

func (m *memJobs) Cancel(_ context.Context, id, tenant string) (messages.JobRecord, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	rec, err := m.getLocked(id, tenant)
	if err != nil {
		return messages.JobRecord{}, err
	}
	if rec.Status.Terminal() {
		return *rec, pipeline.ErrConflict
	}
	m.updateLocked(rec, messages.StatusCancelled)
	return *rec, nil
}

func (m *memJobs) List(_ context.Context, q pipeline.ListQuery) ([]messages.JobRecord, string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	start := 0
	if q.Cursor != "" {
		n, err := strconv.Atoi(q.Cursor)
		if err != nil || n < 0 {
			return nil, "", fmt.Errorf("%w: %q", pipeline.ErrInvalidCursor, q.Cursor)
		}
		start = n
	}
	limit := q.Limit
	if limit == 0 {
		limit = 50
	}
	var out []messages.JobRecord
	newest := slices.Clone(m.order)
	slices.Reverse(newest)
	for i := start; i < len(newest); i++ {
		rec := m.jobs[newest[i]]
		if (q.Tenant != "" && rec.Tenant != q.Tenant) || (q.Status != "" && rec.Status != q.Status) ||
			(q.Task != "" && rec.Task != q.Task) {
			continue
		}
		if len(out) == limit {
			return out, strconv.Itoa(i), nil
		}
		out = append(out, *rec)
	}
	return out, "", nil
}

func (m *memJobs) Result(_ context.Context, id, tenant string) (io.ReadCloser, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	rec, err := m.getLocked(id, tenant)
	if err != nil {
		return nil, err
	}
	res, ok := m.results[id]
	if rec.Status != messages.StatusCompleted || !ok {
		return nil, pipeline.ErrNotFound
	}
	return io.NopCloser(bytes.NewReader(res)), nil
}

func (m *memJobs) Watch(ctx context.Context, id, tenant string) (<-chan messages.JobRecord, error) {
	m.mu.Lock()
	rec, err := m.getLocked(id, tenant)
	if err != nil {
		m.mu.Unlock()
		return nil, err
	}
	last, changed := *rec, m.changed
	m.mu.Unlock()
	out := make(chan messages.JobRecord, 1)
	go func() {
		defer close(out)
		out <- last
		for !last.Status.Terminal() {
			select {
			case <-ctx.Done():
				return
			case <-changed:
			}
			m.mu.Lock()
			cur := *m.jobs[id]
			changed = m.changed
			m.mu.Unlock()
			if cur.Status == last.Status && cur.UpdatedAt.Equal(last.UpdatedAt) {
				continue
			}
			last = cur
			select {
			case out <- cur:
			case <-ctx.Done():
				return
			}
		}
	}()
	return out, nil
}

func (m *memJobs) Ready(context.Context) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.readyErr
}

func (m *memJobs) updateLocked(rec *messages.JobRecord, s messages.Status) {
	rec.Status = s
	rec.UpdatedAt = time.Now().UTC()
	if rec.UpdatedAt.Equal(rec.CreatedAt) {
		rec.UpdatedAt = rec.UpdatedAt.Add(time.Nanosecond)
	}
	close(m.changed)
	m.changed = make(chan struct{})
}

// set moves a job to status s, as a worker would.
func (m *memJobs) set(id string, s messages.Status) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.updateLocked(m.jobs[id], s)
}

// complete stores a result for the job and marks it COMPLETED.
func (m *memJobs) complete(id, text string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	rec := m.jobs[id]
	res, _ := json.Marshal(messages.Result{JobID: id, Output: messages.Output{Text: text}, Model: "sim"})
	m.results[id] = res
	rec.ResultURL = messages.ResultPath(id)
	m.updateLocked(rec, messages.StatusCompleted)
}

var _ Jobs = (*memJobs)(nil)
var _ Jobs = (*intake.Service)(nil)
