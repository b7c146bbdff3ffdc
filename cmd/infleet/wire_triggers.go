package main

import (
	"github.com/infleet/infleet/messages"
	"github.com/infleet/infleet/pipeline/worker"
)

// decoder builds the worker's decode stage with the triggers.s3 rules.
func (a *app) decoder() worker.Decoder {
	rules := make([]worker.S3Rule, len(a.cfg.Triggers.S3))
	for i, t := range a.cfg.Triggers.S3 {
		rules[i] = worker.S3Rule{Bucket: t.Bucket, Prefix: t.Prefix, Suffix: t.Suffix, Task: t.Task,
			Model: t.Model, Priority: messages.Priority(t.Priority)}
	}
	return worker.NewDecoder(rules, a.log.With().Str("component", "decode").Logger())
}
