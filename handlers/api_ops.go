package handlers

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/rs/zerolog"

	"github.com/infleet/infleet/messages"
	"github.com/infleet/infleet/pipeline"
	"github.com/infleet/infleet/pipeline/ops"
)

// Operations is what the operator routes need from the pipeline; ops.Operator implements
// it. Implementations are safe for concurrent use.
type Operations interface {
	// DeadLetters lists the dead letters matching f, oldest first.
	DeadLetters(ctx context.Context, f ops.DeadLetterFilter) ([]ops.DeadLetter, error)
	// DeadLetter returns a job's newest dead letter, or pipeline.ErrNotFound.
	DeadLetter(ctx context.Context, jobID, tenant string) (ops.DeadLetter, error)
	// Redrive sends the matching dead letters back to their queues; idempotent.
	Redrive(ctx context.Context, f ops.DeadLetterFilter) (ops.RedriveResult, error)
	// Replay re-publishes the archived jobs req selects (or counts them, on a dry run); a
	// start under the name of an unfinished replay returns it, or an *ops.ReplayConflictError
	// when its filters differ.
	Replay(ctx context.Context, req ops.ReplayRequest) (ops.ReplayStatus, error)
	// ReplayStatus returns a replay's progress from the fleet's store, or
	// pipeline.ErrNotFound (also for another tenant's replay, unless tenant is "").
	ReplayStatus(ctx context.Context, name, tenant string) (ops.ReplayStatus, error)
	// Replays returns up to limit replays, the latest started first; of tenant only unless
	// tenant is "".
	Replays(ctx context.Context, tenant string, limit int) ([]ops.ReplayStatus, error)
	// Stats returns the fleet's figures over the window ending at now.
	Stats(ctx context.Context, now time.Time, window time.Duration) (ops.Stats, error)
}

// deadLetterView is a dead letter as the API shows it: the kept message's body as JSON when
// it is JSON.
type deadLetterView struct {
	ops.DeadLetter
	Message json.RawMessage `json:"message,omitempty"`
	Body    string          `json:"body,omitempty"`
}

func viewOf(dl ops.DeadLetter, withBody bool) deadLetterView {
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

// addOperationRoutes registers the operator routes, each behind RequireOperator but the
// reads of replays, which a tenant may make for its own.
func (a *api) addOperationRoutes(operations Operations) {
	op := func(f http.HandlerFunc) http.Handler { return RequireOperator(f) }
	a.mux.Handle("POST /v1/replays", op(func(w http.ResponseWriter, r *http.Request) {
		body := a.readJSONBody(w, r)
		if body == nil {
			return
		}
		defer a.releaseBody(body)
		var b replayBody
		dec := json.NewDecoder(bytes.NewReader(body.Bytes()))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&b); err != nil {
			writeProblem(w, r, newProblem(http.StatusBadRequest, SlugInvalidBody, "the body must be a replay request (see GET /openapi.json): "+err.Error()))
			return
		}
		req, problems := b.request(time.Now().UTC())
		if len(problems) > 0 {
			writeProblem(w, r, newProblem(http.StatusBadRequest, SlugInvalidBody, "fix the problems listed in errors", problems...))
			return
		}
		req.Tenant = TenantFromContext(r.Context())
		st, err := operations.Replay(r.Context(), req)
		if conflict, ok := errors.AsType[*ops.ReplayConflictError](err); ok {
			writeProblem(w, r, newProblem(http.StatusConflict, SlugConflict, conflict.Error(),
				FieldProblem{Field: conflict.Field, Message: "differs from the running replay " + strconv.Quote(conflict.Name) + "'s"}))
			return
		}
		if err != nil {
			var perm *pipeline.PermanentError
			if errors.As(err, &perm) {
				writeProblem(w, r, newProblem(http.StatusBadRequest, SlugInvalidBody, perm.Error()))
				return
			}
			a.failed(w, r, err, "")
			return
		}
		audit(a.log, r, "replay").Str("replay_name", st.Name).Str("task", req.Task).Time("from", req.From).
			Time("to", req.To).Int("matched", st.Matched).Bool("dry_run", st.DryRun).Msg("operator action")
		if st.DryRun {
			writeJSON(w, http.StatusOK, marshalJSON(st))
			return
		}
		w.Header().Set("Location", "/v1/replays/"+st.Name)
		writeJSON(w, http.StatusAccepted, marshalJSON(st))
	}))
	// A replay's progress is read by operators (every replay) and tenants (their own).
	a.mux.Handle("GET /v1/replays/{name}", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		st, err := operations.ReplayStatus(r.Context(), r.PathValue("name"), TenantFromContext(r.Context()))
		if err != nil {
			a.failed(w, r, err, "no replay "+strconv.Quote(r.PathValue("name"))+"; GET /v1/replays lists the recent ones")
			return
		}
		w.Header().Set("Cache-Control", "no-store")
		writeJSON(w, http.StatusOK, marshalJSON(st))
	}))
	a.mux.Handle("GET /v1/replays", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		limit := defaultReplayList
		if s := r.URL.Query().Get("limit"); s != "" {
			n, err := strconv.Atoi(s)
			if err != nil || n < 1 || n > pipeline.ReplaysMaxList {
				writeProblem(w, r, newProblem(http.StatusBadRequest, SlugInvalidQuery, "fix the query parameters listed in errors",
					FieldProblem{Field: "limit", Message: "must be a whole number from 1 to " + strconv.Itoa(pipeline.ReplaysMaxList)}))
				return
			}
			limit = n
		}
		list, err := operations.Replays(r.Context(), TenantFromContext(r.Context()), limit)
		if err != nil {
			a.failed(w, r, err, "")
			return
		}
		if list == nil {
			list = []ops.ReplayStatus{}
		}
		w.Header().Set("Cache-Control", "no-store")
		writeJSON(w, http.StatusOK, marshalJSON(map[string]any{"replays": list, "count": len(list)}))
	}))
	a.mux.Handle("GET /v1/dead-letters", op(func(w http.ResponseWriter, r *http.Request) {
		f, problems := deadLetterQuery(r)
		if len(problems) > 0 {
			writeProblem(w, r, newProblem(http.StatusBadRequest, SlugInvalidQuery, "fix the query parameters listed in errors", problems...))
			return
		}
		dls, err := operations.DeadLetters(r.Context(), f)
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
		dl, err := operations.DeadLetter(r.Context(), r.PathValue("id"), TenantFromContext(r.Context()))
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
		defer a.releaseBody(body)
		var req struct {
			JobIDs []string `json:"job_ids"`
			All    bool     `json:"all"`
			Task   string   `json:"task"`
			Reason string   `json:"reason"`
			Since  string   `json:"since"`
		}
		dec := json.NewDecoder(bytes.NewReader(body.Bytes()))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&req); err != nil {
			writeProblem(w, r, newProblem(http.StatusBadRequest, SlugInvalidBody,
				"the body must be {\"job_ids\": [...], \"task\", \"reason\", \"since\", \"all\": true}: "+err.Error()))
			return
		}
		f := ops.DeadLetterFilter{JobIDs: req.JobIDs, Task: req.Task, Reason: req.Reason, Tenant: TenantFromContext(r.Context())}
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
		res, err := operations.Redrive(r.Context(), f)
		if err != nil {
			a.failed(w, r, err, "")
			return
		}
		audit(a.log, r, "redrive").Strs("job_ids", req.JobIDs).Str("task", req.Task).Str("reason", req.Reason).
			Bool("all", req.All).Int("matched", res.Matched).Int("redriven", res.Redriven).Msg("operator action")
		writeJSON(w, http.StatusOK, marshalJSON(res))
	}))
}

// defaultReplayList is how many replays GET /v1/replays lists without a limit.
const defaultReplayList = 20

// replayBody is the body of POST /v1/replays: the filters of `infleet replay`.
type replayBody struct {
	Since    string   `json:"since"`
	From     string   `json:"from"`
	To       string   `json:"to"`
	Task     string   `json:"task"`
	Status   string   `json:"status"`
	JobIDs   []string `json:"job_ids"`
	DryRun   bool     `json:"dry_run"`
	Rate     float64  `json:"rate"`
	Priority string   `json:"priority"`
	Name     string   `json:"name"`
}

func (b replayBody) request(now time.Time) (ops.ReplayRequest, []FieldProblem) {
	req := ops.ReplayRequest{Task: b.Task, Status: messages.Status(b.Status), JobIDs: b.JobIDs, DryRun: b.DryRun,
		Rate: b.Rate, Priority: messages.Priority(b.Priority), Name: b.Name}
	var problems []FieldProblem
	bad := func(field, msg string) { problems = append(problems, FieldProblem{Field: field, Message: msg}) }
	switch {
	case b.Since != "" && (b.From != "" || b.To != ""):
		bad("since", "give since, or from and to, not both")
	case b.Since != "":
		d, err := time.ParseDuration(b.Since)
		if err != nil || d <= 0 {
			bad("since", "must be a positive duration such as 2h")
		}
		req.From, req.Since = now.Add(-d), d
	case b.From != "":
		t, err := time.Parse(time.RFC3339, b.From)
		if err != nil {
			bad("from", "must be an RFC 3339 time such as 2026-11-23T09:00:00Z")
		}
		req.From = t
		if b.To != "" {
			if req.To, err = time.Parse(time.RFC3339, b.To); err != nil {
				bad("to", "must be an RFC 3339 time such as 2026-11-23T10:00:00Z")
			}
		}
	default:
		bad("since", "say which time range to replay: since (2h), or from and to")
	}
	if b.Status != "" && !req.Status.Valid() {
		bad("status", "must be one of QUEUED, PROCESSING, COMPLETED, FAILED, CANCELLED")
	}
	if b.Priority != "" && !req.Priority.Valid() {
		bad("priority", "must be one of high, normal, low")
	}
	if b.Rate < 0 {
		bad("rate", "must be a positive number of jobs per second")
	}
	return req, problems
}

// audit starts the audit line of an operator action: who (the credential's id, "anonymous" on
// an open API) and the request; callers add what, never payloads.
func audit(log zerolog.Logger, r *http.Request, action string) *zerolog.Event {
	actor := "anonymous"
	if p, ok := PrincipalFromContext(r.Context()); ok {
		actor = p.ID
	}
	return log.Info().Bool("audit", true).Str("action", action).Str("actor", actor).
		Str("request_id", RequestIDFromContext(r.Context()))
}

// deadLetterQuery reads ?task=&reason=&since=&job_id=&limit= into a filter.
func deadLetterQuery(r *http.Request) (ops.DeadLetterFilter, []FieldProblem) {
	q := r.URL.Query()
	f := ops.DeadLetterFilter{Task: q.Get("task"), Reason: q.Get("reason"), JobIDs: q["job_id"],
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
