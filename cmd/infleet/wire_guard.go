package main

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/infleet/infleet/config"
	"github.com/infleet/infleet/pipeline"
	"github.com/infleet/infleet/pipeline/guard"
)

// guards builds the input and output guards of the guardrails section; a side with no policy
// is nil (the worker passes its text through). The interventions counter is registered on reg.
func guards(g config.Guardrails, reg prometheus.Registerer, log zerolog.Logger) (in, out pipeline.Guard, err error) {
	if !g.Enabled() {
		return nil, nil, nil
	}
	metrics := guard.NewMetrics(reg)
	log = log.With().Str("component", "guardrail").Logger()
	if g.Input.Enabled() {
		gi, err := guard.New(guardConfig(g.Input, metrics, log))
		if err != nil {
			return nil, nil, fmt.Errorf("guardrails.input: %w", err)
		}
		in = gi
	}
	if g.Output.Enabled() {
		gout, err := guard.New(guardConfig(g.Output, metrics, log))
		if err != nil {
			return nil, nil, fmt.Errorf("guardrails.output: %w", err)
		}
		out = gout
	}
	return in, out, nil
}

// guardConfig translates one side of the guardrails section.
func guardConfig(p config.GuardrailPolicies, m *guard.Metrics, log zerolog.Logger) guard.Config {
	c := guard.Config{Metrics: m, Logger: log}
	if pii := p.PII; pii != nil {
		pc := &guard.PIIConfig{Entities: pii.Entities, Action: pii.Action, AnonymizeWith: pii.AnonymizeWith,
			Message: pii.Message, Actions: map[string]string{}}
		for _, ea := range pii.EntityActions {
			pc.Actions[ea.Type] = ea.Action
		}
		for _, cp := range pii.Custom {
			pc.Custom = append(pc.Custom, guard.CustomRegex{Name: cp.Name, Pattern: cp.Pattern, Action: cp.Action})
		}
		c.PII = pc
	}
	for _, t := range p.DeniedTopics {
		c.DeniedTopics = append(c.DeniedTopics, guard.Topic{Name: t.Name, Definition: t.Definition, Examples: t.Examples,
			Phrases: t.Phrases, MinKeywords: t.MinKeywords, Message: t.Message})
	}
	wf := p.WordFilter
	if len(p.Words) > 0 || (wf != nil && wf.Profanity) {
		wc := &guard.WordsConfig{Words: p.Words}
		if wf != nil {
			wc.Profanity, wc.Action, wc.Mask, wc.Message = wf.Profanity, wf.Action, wf.Mask, wf.Message
		}
		c.Words = wc
	}
	if pa := p.PromptAttack; pa != nil && pa.Enabled {
		c.PromptAttack = &guard.PromptAttackConfig{Message: pa.Message}
	}
	if gr := p.Grounding; gr != nil && (gr.GroundingThreshold > 0 || gr.RelevanceThreshold > 0) {
		c.Grounding = &guard.GroundingConfig{GroundingThreshold: gr.GroundingThreshold,
			RelevanceThreshold: gr.RelevanceThreshold, Action: gr.Action, Message: gr.Message}
	}
	return c
}
