package telemetry

import "sync"

// DefaultMaxTaskLabels is how many task names beyond those the configuration names the
// per-task series of one process label by name, unless LimitTaskLabels says otherwise
// (metrics.max_task_labels).
const DefaultMaxTaskLabels = 100

// OtherTasks is the task label of the jobs whose task is past the limit: a task name never
// starts with an underscore, so no job's task reads as it.
const OtherTasks = "_other"

// taskLabels bounds the task label of the per-task series (accepted, finished, duration,
// retries). A job's task is any name a client sends, so labelling by it alone would let
// clients grow every process's series, and the children kept beside them, without end: the
// tasks named in the configuration, and the first max others a process sees, keep their
// names; jobs of any further task count under OtherTasks. Safe for concurrent use.
type taskLabels struct {
	max int

	mu    sync.RWMutex
	named map[string]bool // true: named in the configuration, beyond the count
	seen  int             // tasks let through that the configuration does not name
}

func newTaskLabels(max int, named []string) *taskLabels {
	t := &taskLabels{max: max, named: make(map[string]bool, len(named))}
	for _, task := range named {
		t.named[task] = true
	}
	return t
}

// label returns the label of task's jobs: task itself, or OtherTasks once max tasks the
// configuration does not name have been seen.
func (t *taskLabels) label(task string) string {
	t.mu.RLock()
	_, ok := t.named[task]
	full := t.seen >= t.max
	t.mu.RUnlock()
	if ok {
		return task
	}
	if full {
		return OtherTasks
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if _, ok := t.named[task]; ok {
		return task
	}
	if t.seen >= t.max {
		return OtherTasks
	}
	t.named[task] = false
	t.seen++
	return task
}

// LimitTaskLabels sets how many task names the per-task series (infleet_jobs_accepted_total,
// infleet_jobs_finished_total, infleet_job_duration_seconds, infleet_job_retries_total and
// the EMF documents) label by name besides named, the tasks the configuration names, which
// always keep theirs: jobs of the tasks past that count under task="_other" (OtherTasks).
// max below 1 is DefaultMaxTaskLabels. Call it before m is shared; without it the limit is
// DefaultMaxTaskLabels with no task named.
func (m *Metrics) LimitTaskLabels(max int, named []string) {
	if m == nil {
		return
	}
	if max < 1 {
		max = DefaultMaxTaskLabels
	}
	m.tasks = newTaskLabels(max, named)
}
