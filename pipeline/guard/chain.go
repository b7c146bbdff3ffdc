package guard

import (
	"context"

	"github.com/rs/zerolog"

	"github.com/infleet/infleet/messages"
	"github.com/infleet/infleet/pipeline"
)

// Chain returns a guard that runs gs in order, each on the texts the one before returned, and
// merges their assessments; it stops at the first guard that blocks. Nil guards are skipped.
// It is safe for concurrent use when every guard of the chain is.
func Chain(gs ...pipeline.Guard) pipeline.Guard {
	var c chain
	for _, g := range gs {
		if g != nil {
			c = append(c, g)
		}
	}
	return c
}

type chain []pipeline.Guard

// Check runs the chain without job context.
func (c chain) Check(ctx context.Context, stage pipeline.GuardStage, texts []string) (pipeline.GuardOutcome, error) {
	return c.CheckWithContext(ctx, stage, texts, pipeline.GuardContext{})
}

// CheckWithContext runs the chain, giving the job context to the guards that take it.
func (c chain) CheckWithContext(ctx context.Context, stage pipeline.GuardStage, texts []string, jc pipeline.GuardContext) (pipeline.GuardOutcome, error) {
	res := pipeline.GuardOutcome{Texts: texts}
	for _, g := range c {
		var out pipeline.GuardOutcome
		var err error
		if cg, ok := g.(pipeline.ContextGuard); ok {
			out, err = cg.CheckWithContext(ctx, stage, res.Texts, jc)
		} else {
			out, err = g.Check(ctx, stage, res.Texts)
		}
		if err != nil {
			return res, err
		}
		res.Assessments = append(res.Assessments, out.Assessments...)
		if out.Blocked {
			res.Blocked, res.Reason = true, out.Reason
			return res, nil
		}
		res.Texts = out.Texts
	}
	return res, nil
}

// Observed wraps a guard from elsewhere (such as a provider's guardrail service) so that its
// findings are counted in m and logged like the built-in policies', without the text. It is
// safe for concurrent use when g is.
func Observed(g pipeline.Guard, m *Metrics, log zerolog.Logger) pipeline.Guard {
	return observed{g: g, m: m, log: log}
}

type observed struct {
	g   pipeline.Guard
	m   *Metrics
	log zerolog.Logger
}

// Check runs the guard without job context.
func (o observed) Check(ctx context.Context, stage pipeline.GuardStage, texts []string) (pipeline.GuardOutcome, error) {
	return o.CheckWithContext(ctx, stage, texts, pipeline.GuardContext{})
}

// CheckWithContext runs the guard and records its findings.
func (o observed) CheckWithContext(ctx context.Context, stage pipeline.GuardStage, texts []string, jc pipeline.GuardContext) (pipeline.GuardOutcome, error) {
	var out pipeline.GuardOutcome
	var err error
	if cg, ok := o.g.(pipeline.ContextGuard); ok {
		out, err = cg.CheckWithContext(ctx, stage, texts, jc)
	} else {
		out, err = o.g.Check(ctx, stage, texts)
	}
	if err != nil {
		return out, err
	}
	for _, a := range out.Assessments {
		if a.Action != messages.GuardActionNone {
			o.m.intervention(a.Policy, a.Action, stage)
		}
		ev := o.log.Info()
		if a.Action == messages.GuardActionBlocked {
			ev = o.log.Warn()
		}
		ev.Str("job_id", jc.JobID).Str("stage", string(stage)).Str("policy", a.Policy).Str("type", a.Type).
			Int("matches", a.Matches).Str("action", a.Action).Msg("guardrail finding")
	}
	return out, nil
}
