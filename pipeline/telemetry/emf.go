package telemetry

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"io"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/infleet/infleet/messages"
)

// Defaults of an EMF writer.
const (
	// DefaultEMFNamespace is the CloudWatch namespace the metrics go to.
	DefaultEMFNamespace = "infleet"
	// DefaultEMFInterval is how often an EMF writer writes what it gathered: CloudWatch's
	// standard resolution.
	DefaultEMFInterval = time.Minute
	// emfMaxValues is the most values one metric may hold in one EMF document.
	emfMaxValues = 100
)

// EMFConfig configures an EMF writer.
type EMFConfig struct {
	// Out receives the documents, one JSON line each; CloudWatch Logs (the awslogs driver of
	// ECS, Lambda's log capture, the CloudWatch agent) extracts the metrics. Required.
	Out io.Writer
	// Namespace is the CloudWatch namespace. Default DefaultEMFNamespace.
	Namespace string
	// Interval is how often Run writes what was gathered. Default DefaultEMFInterval.
	Interval time.Duration
	// Now is the clock; nil is time.Now.
	Now func() time.Time
}

// EMF gathers the key metrics — jobs completed and failed per task; model calls, their
// latency, failures and tokens per model — and writes them as CloudWatch Embedded Metric
// Format documents: one JSON line per task and per model that saw activity since the last
// write, with its own _aws metadata. It writes through an io.Writer of its own, not the logger,
// so the lines are exactly what CloudWatch parses. Safe for concurrent use.
type EMF struct {
	cfg EMFConfig

	mu     sync.Mutex
	tasks  map[string]*emfTask
	models map[string]*emfModel
}

type emfTask struct{ completed, failed int }

type emfModel struct {
	calls, errors             int
	inputTokens, outputTokens int
	latencyMS                 []float64
}

// NewEMF returns an EMF writer that writes to cfg.Out.
func NewEMF(cfg EMFConfig) *EMF {
	cfg.Namespace = cmp.Or(cfg.Namespace, DefaultEMFNamespace)
	if cfg.Interval <= 0 {
		cfg.Interval = DefaultEMFInterval
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &EMF{cfg: cfg, tasks: map[string]*emfTask{}, models: map[string]*emfModel{}}
}

// JobFinished counts a job that reached rec.Status: completed or failed (other terminal
// statuses are not counted).
func (e *EMF) JobFinished(rec messages.JobRecord) {
	if rec.Status != messages.StatusCompleted && rec.Status != messages.StatusFailed {
		return
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	t := e.tasks[rec.Task]
	if t == nil {
		t = &emfTask{}
		e.tasks[rec.Task] = t
	}
	if rec.Status == messages.StatusCompleted {
		t.completed++
	} else {
		t.failed++
	}
}

// ModelCalled records a model call that took d and, when it succeeded, its tokens.
func (e *EMF) ModelCalled(model string, d time.Duration, u messages.Usage, err error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	m := e.models[model]
	if m == nil {
		m = &emfModel{}
		e.models[model] = m
	}
	m.calls++
	m.latencyMS = append(m.latencyMS, float64(d.Microseconds())/1000)
	if err != nil {
		m.errors++
		return
	}
	m.inputTokens += u.InputTokens
	m.outputTokens += u.OutputTokens
}

// Run writes what was gathered every interval until ctx ends, then once more, and returns
// the first write error.
func (e *EMF) Run(ctx context.Context) error {
	t := time.NewTicker(e.cfg.Interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return e.Flush()
		case <-t.C:
			if err := e.Flush(); err != nil {
				return err
			}
		}
	}
}

// emfMetric is a MetricDefinition of the EMF specification.
type emfMetric struct {
	Name string `json:"Name"`
	Unit string `json:"Unit,omitempty"`
}

// emfDirective is a MetricDirective of the EMF specification.
type emfDirective struct {
	Namespace  string      `json:"Namespace"`
	Dimensions [][]string  `json:"Dimensions"`
	Metrics    []emfMetric `json:"Metrics"`
}

// Flush writes one document per task and per model that saw activity since the last write
// (more for a model with over 100 calls: a metric holds at most 100 values per document) and
// starts gathering afresh. Nothing is written when nothing happened.
func (e *EMF) Flush() error {
	e.mu.Lock()
	tasks, models := e.tasks, e.models
	e.tasks, e.models = map[string]*emfTask{}, map[string]*emfModel{}
	e.mu.Unlock()

	ts := e.cfg.Now().UnixMilli()
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	write := func(dimension, value string, metrics []emfMetric, values map[string]any) error {
		doc := map[string]any{
			"_aws": map[string]any{
				"Timestamp": ts,
				"CloudWatchMetrics": []emfDirective{{
					Namespace: e.cfg.Namespace, Dimensions: [][]string{{dimension}}, Metrics: metrics,
				}},
			},
			dimension: value,
		}
		maps.Copy(doc, values)
		return enc.Encode(doc)
	}
	for _, task := range slices.Sorted(maps.Keys(tasks)) {
		t := tasks[task]
		if err := write("Task", task,
			[]emfMetric{{Name: "JobsCompleted", Unit: "Count"}, {Name: "JobsFailed", Unit: "Count"}},
			map[string]any{"JobsCompleted": t.completed, "JobsFailed": t.failed}); err != nil {
			return err
		}
	}
	for _, model := range slices.Sorted(maps.Keys(models)) {
		m := models[model]
		latency := m.latencyMS
		first := min(len(latency), emfMaxValues)
		if err := write("Model", model,
			[]emfMetric{
				{Name: "ModelCalls", Unit: "Count"}, {Name: "ModelCallErrors", Unit: "Count"},
				{Name: "ModelCallLatency", Unit: "Milliseconds"},
				{Name: "InputTokens", Unit: "Count"}, {Name: "OutputTokens", Unit: "Count"},
			},
			map[string]any{
				"ModelCalls": m.calls, "ModelCallErrors": m.errors, "ModelCallLatency": latency[:first],
				"InputTokens": m.inputTokens, "OutputTokens": m.outputTokens,
			}); err != nil {
			return err
		}
		for rest := latency[first:]; len(rest) > 0; {
			n := min(len(rest), emfMaxValues)
			if err := write("Model", model, []emfMetric{{Name: "ModelCallLatency", Unit: "Milliseconds"}},
				map[string]any{"ModelCallLatency": rest[:n]}); err != nil {
				return err
			}
			rest = rest[n:]
		}
	}
	if buf.Len() == 0 {
		return nil
	}
	_, err := e.cfg.Out.Write(buf.Bytes())
	return err
}
