package config

import (
	"strconv"
	"time"
)

// Defaults of a batching entry (batching[]), applied by ApplyDefaults (and so by Load).
const (
	DefaultBatchMaxItems = 20
	DefaultBatchMaxWait  = 50 * time.Millisecond
)

// Batching turns on request batching for one task: its jobs that share model and prompt
// version and reach the invoke stage within MaxWait of each other go to the model as one call,
// each job getting its own answer, usage and cost. A group waits in the workers, so a batch
// holds at most workers.concurrency jobs per process.
type Batching struct {
	// Task whose jobs are batched. Required; one entry per task.
	Task string `yaml:"task,omitempty"`
	// MaxItems sends a group when it holds this many jobs. Default 20.
	MaxItems int `yaml:"max_items,omitempty"`
	// MaxWait sends a group this long after its first job arrived. Default 50ms.
	MaxWait time.Duration `yaml:"max_wait,omitempty"`
	// MaxInputTokens sends a group before the next job would take its estimated input tokens
	// (4 per 3 words) past this bound. Default 0: no bound.
	MaxInputTokens int `yaml:"max_input_tokens,omitempty"`
}

// applyBatchingDefaults fills each batching entry's bounds.
func (c *Config) applyBatchingDefaults() {
	if len(c.Batching) == 0 {
		return
	}
	c.Batching = append([]Batching(nil), c.Batching...)
	for i := range c.Batching {
		b := &c.Batching[i]
		if b.MaxItems == 0 {
			b.MaxItems = DefaultBatchMaxItems
		}
		if b.MaxWait == 0 {
			b.MaxWait = DefaultBatchMaxWait
		}
	}
}

// checkBatching checks that each task is batched once, with bounds that can be met.
func (c *Config) checkBatching(p *problems) {
	seen := map[string]int{}
	for i, b := range c.Batching {
		field := "batching[" + strconv.Itoa(i) + "]"
		if b.Task == "" {
			p.add(field+".task", "is required: name the task whose jobs are batched")
		} else if j, dup := seen[b.Task]; dup {
			p.add(field+".task", "%s is already batched by batching[%d]; keep one entry per task", b.Task, j)
		} else {
			seen[b.Task] = i
		}
		if b.MaxItems < 2 {
			p.add(field+".max_items", "is %d; a batch needs at least 2 items (remove the entry to turn batching off)", b.MaxItems)
		}
		if b.MaxWait < 0 {
			p.add(field+".max_wait", "must not be negative (e.g. 50ms)")
		}
		if b.MaxInputTokens < 0 {
			p.add(field+".max_input_tokens", "must not be negative (0 for no bound)")
		}
	}
}
