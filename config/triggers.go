package config

import (
	"cmp"
	"strconv"
)

// Defaults of the triggers section, applied by ApplyDefaults (and so by Load) to every setting left
// unset.
const (
	DefaultTriggerPriority = "normal"
)

// Triggers turn outside events into jobs.
type Triggers struct {
	// S3 rules turn created objects into jobs (S3 notification or EventBridge event); the first
	// matching rule wins.
	S3 []S3Trigger `yaml:"s3,omitempty"`
}

// S3Trigger maps objects of a bucket (and optional key prefix and suffix) to a job.
type S3Trigger struct {
	Bucket string `yaml:"bucket,omitempty"`
	Prefix string `yaml:"prefix,omitempty"`
	Suffix string `yaml:"suffix,omitempty"`
	Task   string `yaml:"task,omitempty"`
	// Model of the jobs. Default: the task's route.
	Model string `yaml:"model,omitempty"`
	// Priority of the jobs. Default normal.
	Priority string `yaml:"priority,omitempty"`
}

// applyDefaults gives every S3 trigger, on a copy of the list, its default priority.
func (t *Triggers) applyDefaults() {
	if len(t.S3) > 0 {
		t.S3 = append([]S3Trigger(nil), t.S3...)
		for i := range t.S3 {
			t.S3[i].Priority = cmp.Or(t.S3[i].Priority, DefaultTriggerPriority)
		}
	}
}

// checkTriggers checks that the model an S3 trigger names is configured.
func (c *Config) checkTriggers(p *problems) {
	for i, t := range c.Triggers.S3 {
		if t.Model != "" {
			if _, ok := c.Model(t.Model); !ok {
				p.add("triggers.s3["+strconv.Itoa(i)+"].model", "names model %s, which is not configured; %s", t.Model, c.modelHint())
			}
		}
	}
}
