package handlers

import (
	"context"
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/infleet/infleet/pipeline"
)

// Operations is what the operator routes need from the pipeline; pipeline.Operator implements
// it. Implementations are safe for concurrent use.
type Operations interface {
	// DeadLetters lists the dead letters matching f, oldest first.
	DeadLetters(ctx context.Context, f pipeline.DeadLetterFilter) ([]pipeline.DeadLetter, error)
	// DeadLetter returns a job's newest dead letter, or pipeline.ErrNotFound.
	DeadLetter(ctx context.Context, jobID, tenant string) (pipeline.DeadLetter, error)
	// Redrive sends the matching dead letters back to their queues; idempotent.
	Redrive(ctx context.Context, f pipeline.DeadLetterFilter) (pipeline.RedriveResult, error)
}

// deadLetterView is a dead letter as the API shows it: the kept message's body as JSON when
// it is JSON.
type deadLetterView struct {
	pipeline.DeadLetter
	Message json.RawMessage `json:"message,omitempty"`
	Body    string          `json:"body,omitempty"`
}

func viewOf(dl pipeline.DeadLetter, withBody bool) deadLetterView {
	v := deadLetterView{DeadLetter: dl}
	if withBody {
		if json.Valid(dl.Payload) {
			v.Message = dl.Payload
		} else {
			v.Body = string(dl.Payload)
		}
	}
	return v
}

// addOperationRoutes registers the operator routes, each behind RequireOperator.
func (a *api) addOperationRoutes(ops Operations) {
	op := func(f http.HandlerFunc) http.Handler { return RequireOperator(f) }
	a.mux.Handle("GET /v1/dead-letters", op(func(w http.ResponseWriter, r *http.Request) {
		f, problems := deadLetterQuery(r)
		if len(problems) > 0 {
			writeProblem(w, r, newProblem(http.StatusBadRequest, SlugInvalidQuery, "fix the query parameters listed in errors", problems...))
			return
		}
		dls, err := ops.DeadLetters(r.Context(), f)
		if err != nil {
			a.failed(w, r, err, "")
			return
		}
		views := make([]deadLetterView, len(dls))
		for i, dl := range dls {
			views[i] = viewOf(dl, false)
		}
		writeJSON(w, http.StatusOK, marshalJSON(map[string]any{"dead_letters": views, "count": len(views)}))
	}))
	a.mux.Handle("GET /v1/dead-letters/{id}", op(func(w http.ResponseWriter, r *http.Request) {
		dl, err := ops.DeadLetter(r.Context(), r.PathValue("id"), TenantFromContext(r.Context()))
		if err != nil {
			a.failed(w, r, err, "no dead letter for job "+strconv.Quote(r.PathValue("id")))
			return
		}
		writeJSON(w, http.StatusOK, marshalJSON(viewOf(dl, true)))
	}))
	a.mux.Handle("POST /v1/dead-letters:redrive", op(func(w http.ResponseWriter, r *http.Request) {
		body := a.readJSONBody(w, r)
		if body == nil {
			return
		}
		defer releaseBody(body)
		var req struct {
			JobIDs []string `json:"job_ids"`
			All    bool     `json:"all"`
			Task   string   `json:"task"`
			Reason string   `json:"reason"`
			Since  string   `json:"since"`
		}
		dec := json.NewDecoder(body)
		dec.DisallowUnknownFields()
		if err := dec.Decode(&req); err != nil {
			writeProblem(w, r, newProblem(http.StatusBadRequest, SlugInvalidBody,
				"the body must be {\"job_ids\": [...], \"task\", \"reason\", \"since\", \"all\": true}: "+err.Error()))
			return
		}
		f := pipeline.DeadLetterFilter{JobIDs: req.JobIDs, Task: req.Task, Reason: req.Reason, Tenant: TenantFromContext(r.Context())}
		var problems []FieldProblem
		if req.Since != "" {
			since, err := parseSince(req.Since, time.Now())
			if err != nil {
				problems = append(problems, FieldProblem{Field: "since", Message: err.Error()})
			}
			f.Since = since
		}
		if !req.All && len(req.JobIDs) == 0 && req.Task == "" && req.Reason == "" && req.Since == "" {
			problems = append(problems, FieldProblem{Field: "", Message: "say which dead letters to redrive: job_ids, task, reason, since, or all: true"})
		}
		if len(problems) > 0 {
			writeProblem(w, r, newProblem(http.StatusBadRequest, SlugInvalidBody, "fix the problems listed in errors", problems...))
			return
		}
		res, err := ops.Redrive(r.Context(), f)
		if err != nil {
			a.failed(w, r, err, "")
			return
		}
		a.log.Info().Str("audit", "redrive").Str("request_id", RequestIDFromContext(r.Context())).
			Int("matched", res.Matched).Int("redriven", res.Redriven).Msg("operator action")
		writeJSON(w, http.StatusOK, marshalJSON(res))
	}))
}

// deadLetterQuery reads ?task=&reason=&since=&job_id=&limit= into a filter.
func deadLetterQuery(r *http.Request) (pipeline.DeadLetterFilter, []FieldProblem) {
	q := r.URL.Query()
	f := pipeline.DeadLetterFilter{Task: q.Get("task"), Reason: q.Get("reason"), JobIDs: q["job_id"],
		Tenant: TenantFromContext(r.Context())}
	var problems []FieldProblem
	if s := q.Get("since"); s != "" {
		since, err := parseSince(s, time.Now())
		if err != nil {
			problems = append(problems, FieldProblem{Field: "since", Message: err.Error()})
		}
		f.Since = since
	}
	if s := q.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > 10000 {
			problems = append(problems, FieldProblem{Field: "limit", Message: "must be a whole number from 1 to 10000"})
		}
		f.Limit = n
	}
	return f, problems
}

// parseSince reads a Go duration back from now ("2h") or an RFC 3339 time.
func parseSince(s string, now time.Time) (time.Time, error) {
	if d, err := time.ParseDuration(s); err == nil && d >= 0 {
		return now.Add(-d), nil
	}
	if t, err := time.Parse(time.RFC3339, strings.TrimSpace(s)); err == nil {
		return t, nil
	}
	return time.Time{}, &sinceError{s}
}

type sinceError struct{ v string }

func (e *sinceError) Error() string {
	return strconv.Quote(e.v) + " is neither a duration back from now (2h, 30m) nor an RFC 3339 time"
}
