package main

import (
	"cmp"
	"context"
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/infleet/infleet/adapters/bedrockguard"
	"github.com/infleet/infleet/config"
	"github.com/infleet/infleet/pipeline"
	"github.com/infleet/infleet/pipeline/guard"
)

// guards builds the input and output guards of the guardrails section: the built-in policies
// of each side, then the Bedrock guardrail when one is named. A side with nothing configured is
// nil (the worker passes its text through). The interventions counter is registered on reg.
func (a *app) guards(ctx context.Context, cfg config.Config, reg prometheus.Registerer, log zerolog.Logger) (in, out pipeline.Guard, err error) {
	g := cfg.Guardrails
	if !g.Enabled() {
		return nil, nil, nil
	}
	metrics := guard.NewMetrics(reg)
	log = log.With().Str("component", "guardrail").Logger()
	var remote pipeline.Guard
	if b := g.Bedrock; b != nil && b.GuardrailID != "" {
		bg, err := bedrockguard.New(ctx, bedrockguard.Config{GuardrailID: b.GuardrailID, GuardrailVersion: b.GuardrailVersion,
			Region: b.Region, Endpoint: cmp.Or(b.Endpoint, cfg.AWSEndpoint), AWS: a.aws.shared(ctx)})
		if err != nil {
			return nil, nil, fmt.Errorf("guardrails.bedrock: %w", err)
		}
		remote = guard.Observed(bg, metrics, log)
	}
	side := func(name string, p config.GuardrailPolicies) (pipeline.Guard, error) {
		var local pipeline.Guard
		if p.Enabled() {
			gc := guardConfig(p, metrics, log)
			gl, err := guard.New(gc)
			if err != nil {
				return nil, fmt.Errorf("guardrails.%s: %w", name, err)
			}
			local = gl
			if tc := p.TopicClassifier; tc != nil {
				clf, err := a.topicClassifier(ctx, cfg, tc.Model, gc.DeniedTopics)
				if err != nil {
					return nil, fmt.Errorf("guardrails.%s.topic_classifier: %w", name, err)
				}
				local = guard.Chain(gl, guard.Observed(clf, metrics, log))
			}
		}
		switch {
		case local != nil && remote != nil:
			return guard.Chain(local, remote), nil
		case local != nil:
			return local, nil
		case remote != nil:
			return remote, nil
		}
		return nil, nil
	}
	if in, err = side("input", g.Input); err != nil {
		return nil, nil, err
	}
	if out, err = side("output", g.Output); err != nil {
		return nil, nil, err
	}
	return in, out, nil
}

// guardConfig translates one side of the guardrails section.
func guardConfig(p config.GuardrailPolicies, m *guard.Metrics, log zerolog.Logger) guard.Config {
	c := guard.Config{Metrics: m, Logger: log}
	if pii := p.PII; pii != nil {
		pc := &guard.PIIConfig{Entities: pii.Entities, Action: pii.Action, AnonymizeWith: pii.AnonymizeWith,
			Message: pii.Message, Restore: pii.RestoreInOutput, Actions: map[string]string{}, PhoneRegions: pii.PhoneRegions}
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

// topicClassifier builds the denied-topic classifier on the named model.
func (a *app) topicClassifier(ctx context.Context, cfg config.Config, name string, topics []guard.Topic) (pipeline.Guard, error) {
	m, ok := cfg.Model(name)
	if !ok {
		return nil, fmt.Errorf("model %s is not configured", name)
	}
	model, err := a.newModel(ctx, cfg, m)
	if err != nil {
		return nil, err
	}
	return guard.NewTopicClassifier(topics, model.Client, model.ModelID)
}
