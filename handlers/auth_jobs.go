package handlers

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/rs/zerolog"

	"github.com/infleet/infleet/messages"
	"github.com/infleet/infleet/pipeline"
	"github.com/infleet/infleet/pipeline/intake"
)

// GuardConfig configures GuardJobs.
type GuardConfig struct {
	// Callbacks is the policy for callback_url at submit.
	Callbacks CallbackPolicy
	// Limits counts quotas across the fleet; nil enforces none.
	Limits pipeline.LimitStore
	// Audit receives one line per operator action (who and what, never payloads); the zero
	// logger logs nothing.
	Audit zerolog.Logger
	// Now is the clock; default time.Now.
	Now func() time.Time
	// Budget, when set, reports whether a tenant's spend today reached a budget that refuses
	// new jobs (429 until the next UTC day); an error (the spend cannot be read) fails the
	// submission as the store's errors do.
	Budget func(ctx context.Context, tenant string) (spent, cap float64, over bool, err error)
}

// GuardJobs wraps jobs with the rules that need the job itself: the principal in the context
// (PrincipalFromContext) may submit only its allowed tasks and models (403) within its quota
// (429 with Retry-After until the period ends; a submission that fails or returns an existing
// job gives its unit back); every callback_url passes cfg.Callbacks (400), also on an open API.
// Jobs are created for the principal's tenant. A cancel by an operator is written to the audit
// log. The result is safe for concurrent use when jobs is.
func GuardJobs(jobs Jobs, cfg GuardConfig) Jobs {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &guardedJobs{Jobs: jobs, cfg: cfg}
}

type guardedJobs struct {
	Jobs
	cfg GuardConfig
}

func refusal(status int, slug, detail string, errs ...FieldProblem) error {
	return &ProblemError{Problem: newProblem(status, slug, detail, errs...)}
}

func (g *guardedJobs) Submit(ctx context.Context, job messages.Job, opt intake.SubmitOptions) (messages.JobRecord, bool, error) {
	if job.CallbackURL != "" {
		if err := g.cfg.Callbacks.Check(ctx, job.CallbackURL); err != nil {
			return messages.JobRecord{}, false, refusal(http.StatusBadRequest, SlugInvalidBody,
				"callback_url cannot be used; fix it or leave it out",
				FieldProblem{Field: "callback_url", Message: err.Error()})
		}
	}
	p, ok := PrincipalFromContext(ctx)
	if !ok {
		return g.Jobs.Submit(ctx, job, opt)
	}
	if !p.AllowsTask(job.Task) {
		return messages.JobRecord{}, false, refusal(http.StatusForbidden, SlugForbidden,
			"this credential may not submit task "+strconv.Quote(job.Task))
	}
	if job.Model != "" && !p.AllowsModel(job.Model) {
		return messages.JobRecord{}, false, refusal(http.StatusForbidden, SlugForbidden,
			"this credential may not ask for model "+strconv.Quote(job.Model)+"; leave model out to use the task's route")
	}
	opt.Tenant = p.Tenant
	if g.cfg.Budget != nil {
		spent, cap, over, err := g.cfg.Budget(ctx, p.Tenant)
		if err != nil {
			return messages.JobRecord{}, false, err
		}
		if over {
			now := g.cfg.Now().UTC()
			next := time.Date(now.Year(), now.Month(), now.Day()+1, 0, 0, 0, 0, time.UTC)
			prob := newProblem(http.StatusTooManyRequests, SlugRateLimited, fmt.Sprintf(
				"tenant %s has spent $%.2f of its $%.2f daily budget; new jobs are refused until 00:00 UTC", p.Tenant, spent, cap))
			prob.RetryAfter = ceilSeconds(next.Sub(now))
			return messages.JobRecord{}, false, &ProblemError{Problem: prob}
		}
	}
	lim := p.Limit
	if g.cfg.Limits == nil || lim.Quota <= 0 {
		return g.Jobs.Submit(ctx, job, opt)
	}
	period, end := pipeline.QuotaWindow(lim.QuotaPeriod, g.cfg.Now())
	key := "quota:" + lim.Key + ":" + period
	d, err := g.cfg.Limits.UseQuota(ctx, key, lim.Quota, 1)
	if err != nil {
		return messages.JobRecord{}, false, err
	}
	if !d.Allowed {
		prob := newProblem(http.StatusTooManyRequests, SlugRateLimited,
			"the quota of "+strconv.FormatInt(lim.Quota, 10)+" jobs per "+cmpString(lim.QuotaPeriod, pipeline.QuotaPeriodMonth)+
				" is used up; it renews at "+end.Format(time.RFC3339))
		prob.RetryAfter = ceilSeconds(end.Sub(g.cfg.Now()))
		return messages.JobRecord{}, false, &ProblemError{Problem: prob}
	}
	rec, created, err := g.Jobs.Submit(ctx, job, opt)
	if err != nil || !created {
		// Give the unit back: nothing new was created. A background context, so that a
		// client that went away does not keep its unit spent.
		if _, rerr := g.cfg.Limits.UseQuota(context.WithoutCancel(ctx), key, lim.Quota, -1); rerr != nil {
			g.cfg.Audit.Warn().Err(rerr).Str("principal", p.ID).Msg("quota refund failed")
		}
	}
	return rec, created, err
}

func cmpString(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

func (g *guardedJobs) Cancel(ctx context.Context, id, tenant string) (messages.JobRecord, error) {
	rec, err := g.Jobs.Cancel(ctx, id, tenant)
	if p, ok := PrincipalFromContext(ctx); ok && p.Operator {
		var ev *zerolog.Event
		if err != nil {
			ev = g.cfg.Audit.Warn().Str("outcome", err.Error())
		} else {
			ev = g.cfg.Audit.Info().Str("outcome", "cancelled").Str("job_tenant", rec.Tenant)
		}
		ev.Bool("audit", true).Str("action", "cancel").Str("actor", p.ID).Str("actor_tenant", p.Tenant).
			Str("job_id", id).Str("request_id", RequestIDFromContext(ctx)).Msg("operator action")
	}
	return rec, err
}

// Result, Get, Watch and List pass through: the tenant in their arguments already scopes them.
var _ Jobs = (*guardedJobs)(nil)
