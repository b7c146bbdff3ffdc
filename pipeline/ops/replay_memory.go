package ops

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/infleet/infleet/pipeline"
)

// memReplays is the ReplayStore of an Operator whose fleet shares none: this process's
// replays, lost with it. Safe for concurrent use.
type memReplays struct {
	mu   sync.Mutex
	runs map[string]pipeline.Replay
}

var _ pipeline.ReplayStore = (*memReplays)(nil)

func (m *memReplays) StartReplay(_ context.Context, r pipeline.Replay) (pipeline.Replay, bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if cur, ok := m.runs[r.Name]; ok && !cur.Done {
		return cur, false, nil
	}
	if m.runs == nil {
		m.runs = map[string]pipeline.Replay{}
	}
	m.runs[r.Name] = r
	return r, true, nil
}

func (m *memReplays) SaveReplay(_ context.Context, r pipeline.Replay) (bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	cur, ok := m.runs[r.Name]
	if !ok || cur.Process != r.Process {
		return false, nil
	}
	cur.Matched, cur.Published, cur.Cursor, cur.Done, cur.Error = r.Matched, r.Published, r.Cursor, r.Done, r.Error
	cur.UpdatedAt, cur.LeaseUntil = r.UpdatedAt, r.LeaseUntil
	m.runs[r.Name] = cur
	return true, nil
}

func (m *memReplays) ClaimReplay(_ context.Context, name, process string, now, until time.Time) (pipeline.Replay, bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	cur, ok := m.runs[name]
	if !ok {
		return pipeline.Replay{}, false, fmt.Errorf("replay %s: %w", name, pipeline.ErrNotFound)
	}
	if !cur.Interrupted(now) {
		return pipeline.Replay{}, false, nil
	}
	cur.Process, cur.LeaseUntil, cur.UpdatedAt = process, until, now
	m.runs[name] = cur
	return cur, true, nil
}

func (m *memReplays) GetReplay(_ context.Context, name string) (pipeline.Replay, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if cur, ok := m.runs[name]; ok {
		return cur, nil
	}
	return pipeline.Replay{}, fmt.Errorf("replay %s: %w", name, pipeline.ErrNotFound)
}

func (m *memReplays) Replays(_ context.Context, tenant string, limit int) ([]pipeline.Replay, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []pipeline.Replay
	for _, r := range m.runs {
		if tenant == "" || r.Tenant == tenant {
			out = append(out, r)
		}
	}
	slices.SortFunc(out, func(a, b pipeline.Replay) int {
		return cmp.Or(b.StartedAt.Compare(a.StartedAt), strings.Compare(a.Name, b.Name))
	})
	return out[:min(len(out), max(limit, 1), pipeline.ReplaysMaxList)], nil
}

func (m *memReplays) ForgetReplays(_ context.Context, before time.Time) (int, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	n := 0
	for name, r := range m.runs {
		if r.UpdatedAt.Before(before) && r.LeaseUntil.Before(before) {
			delete(m.runs, name)
			n++
		}
	}
	return n, nil
}
