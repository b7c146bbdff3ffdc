package handlers

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strconv"
	"time"

	"github.com/infleet/infleet/messages"
	"github.com/infleet/infleet/pipeline"
)

// Limits of GET /v1/jobs.
const (
	defaultListLimit = 50
	maxListLimit     = 500
	maxTaskLen       = 128
)

func notFoundDetail(id string) string {
	return "no job " + strconv.Quote(id) + "; check the id (jobs of other tenants are not visible)"
}

// getJob is GET /v1/jobs/{id}.
func (a *api) getJob(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	rec, err := a.cfg.Jobs.Get(r.Context(), id, TenantFromContext(r.Context()))
	if err != nil {
		a.failed(w, r, err, notFoundDetail(id))
		return
	}
	writeJSON(w, http.StatusOK, marshalJSON(rec))
}

// cancelJob is DELETE /v1/jobs/{id}.
func (a *api) cancelJob(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	rec, err := a.cfg.Jobs.Cancel(r.Context(), id, TenantFromContext(r.Context()))
	if errors.Is(err, pipeline.ErrConflict) {
		detail := "job " + strconv.Quote(id) + " has already ended"
		if rec.Status != "" {
			detail += " with status " + string(rec.Status)
		}
		writeProblem(w, r, newProblem(http.StatusConflict, SlugConflict,
			detail+"; only QUEUED or PROCESSING jobs can be cancelled"))
		return
	}
	if err != nil {
		a.failed(w, r, err, notFoundDetail(id))
		return
	}
	writeJSON(w, http.StatusAccepted, marshalJSON(rec))
}

// jobList is the body of GET /v1/jobs.
type jobList struct {
	Jobs       []messages.JobRecord `json:"jobs"`
	NextCursor string               `json:"next_cursor,omitempty"`
}

// listJobs is GET /v1/jobs?status=&task=&tenant=&priority=&created_after=&created_before=&
// idempotency_key=&limit=&cursor=.
func (a *api) listJobs(w http.ResponseWriter, r *http.Request) {
	qv := r.URL.Query()
	q := pipeline.ListQuery{
		Status: messages.Status(qv.Get("status")),
		Task:   qv.Get("task"),
		Tenant: TenantFromContext(r.Context()),
		Limit:  defaultListLimit,
		Cursor: qv.Get("cursor"),
	}
	var problems []FieldProblem
	if q.Tenant == "" {
		// An operator, or the open API, may narrow the list to one tenant; a client's tenant
		// stays its own whatever it asks.
		q.Tenant = qv.Get("tenant")
	}
	q.IdempotencyKey = qv.Get("idempotency_key")
	if p := messages.Priority(qv.Get("priority")); p != "" {
		if !p.Valid() {
			problems = append(problems, FieldProblem{Field: "priority", Message: "must be one of high, normal, low"})
		}
		q.Priority = p
	}
	for _, f := range []struct {
		name string
		to   *time.Time
	}{{"created_after", &q.CreatedAfter}, {"created_before", &q.CreatedBefore}} {
		if v := qv.Get(f.name); v != "" {
			t, err := time.Parse(time.RFC3339Nano, v)
			if err != nil {
				problems = append(problems, FieldProblem{Field: f.name, Message: "must be an RFC 3339 time such as 2026-11-23T09:00:00Z"})
			}
			*f.to = t
		}
	}
	if q.Status != "" && !q.Status.Valid() {
		problems = append(problems, FieldProblem{Field: "status",
			Message: "must be one of QUEUED, PROCESSING, COMPLETED, FAILED, CANCELLED"})
	}
	if len(q.Task) > maxTaskLen {
		problems = append(problems, FieldProblem{Field: "task",
			Message: "must be at most " + strconv.Itoa(maxTaskLen) + " characters"})
	}
	if s := qv.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > maxListLimit {
			problems = append(problems, FieldProblem{Field: "limit",
				Message: "must be a whole number from 1 to " + strconv.Itoa(maxListLimit)})
		} else {
			q.Limit = n
		}
	}
	if len(problems) > 0 {
		writeProblem(w, r, newProblem(http.StatusBadRequest, SlugInvalidQuery,
			"the query is not valid; fix every problem listed in errors", problems...))
		return
	}
	jobs, next, err := a.cfg.Jobs.List(r.Context(), q)
	if err != nil {
		if errors.Is(err, pipeline.ErrInvalidCursor) {
			writeProblem(w, r, newProblem(http.StatusBadRequest, SlugInvalidQuery,
				"the query is not valid; fix every problem listed in errors", FieldProblem{Field: "cursor",
					Message: "is not a cursor this API returned; pass back next_cursor of the previous page, or none"}))
			return
		}
		a.failed(w, r, err, "no jobs")
		return
	}
	if jobs == nil {
		jobs = []messages.JobRecord{}
	}
	writeJSON(w, http.StatusOK, marshalJSON(jobList{Jobs: jobs, NextCursor: next}))
}

// ResultRedirector is an optional ability of Jobs: a direct URL of a job's result (a presigned
// object URL). When it returns one, GET /v1/jobs/{id}/result answers 307 to it; "" streams the
// result through the API.
type ResultRedirector interface {
	ResultURL(ctx context.Context, id, tenant string) (string, error)
}

// getResult is GET /v1/jobs/{id}/result: the stored result JSON, streamed, or a redirect to a
// presigned URL when Jobs is a ResultRedirector that gives one.
func (a *api) getResult(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	id := r.PathValue("id")
	tenant := TenantFromContext(ctx)
	if rd, ok := a.cfg.Jobs.(ResultRedirector); ok {
		url, err := rd.ResultURL(ctx, id, tenant)
		if err == nil && url != "" {
			w.Header().Set("Location", url)
			w.Header().Set("Cache-Control", "no-store")
			w.WriteHeader(http.StatusTemporaryRedirect)
			return
		}
		if err != nil && !errors.Is(err, pipeline.ErrNotFound) {
			a.failed(w, r, err, notFoundDetail(id))
			return
		}
		// Not found or not finished: the streaming path below says which.
	}
	rc, err := a.cfg.Jobs.Result(ctx, id, tenant)
	if errors.Is(err, pipeline.ErrNotFound) {
		// Say why: no such job, or not finished (or not successful) yet.
		if rec, gerr := a.cfg.Jobs.Get(ctx, id, tenant); gerr == nil {
			detail := "job " + strconv.Quote(id) + " is " + string(rec.Status) + "; "
			if rec.Status.Terminal() {
				detail += "only COMPLETED jobs have a result (see GET " + messages.JobPath(id) + " for its error)"
			} else {
				detail += "its result exists once it is COMPLETED (watch GET " + messages.JobPath(id) + "/events)"
			}
			writeProblem(w, r, newProblem(http.StatusNotFound, SlugNotFound, detail))
			return
		}
	}
	if err != nil {
		a.failed(w, r, err, notFoundDetail(id))
		return
	}
	defer rc.Close()
	w.Header()["Content-Type"] = headerJSON
	w.WriteHeader(http.StatusOK)
	if _, err := io.Copy(w, rc); err != nil && ctx.Err() == nil {
		a.log.Warn().Err(err).Str("job_id", id).Str("request_id", RequestIDFromContext(ctx)).
			Msg("result stream cut short")
	}
}
