package handlers

import (
	"context"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/infleet/infleet/messages"
	"github.com/infleet/infleet/pipeline"
	"github.com/infleet/infleet/pipeline/intake"
	"github.com/infleet/infleet/schemas"
)

// Request and response headers of POST /v1/jobs.
const (
	HeaderIdempotencyKey     = "Idempotency-Key"
	HeaderIdempotentReplayed = "Idempotent-Replayed"
	HeaderPrefer             = "Prefer"
	HeaderPreferenceApplied  = "Preference-Applied"
	HeaderTraceparent        = "Traceparent"
)

// maxIdempotencyKeyLen matches idempotency_key's maxLength in schemas/job.schema.json.
const maxIdempotencyKeyLen = 256

const msgJobIDByServer = "job_id is assigned by the server; use Idempotency-Key to make retries safe"

const msgReplayNameByServer = "replay_name is set by infleet replay on the messages it re-publishes; " +
	"leave it out (an operator replays jobs with POST /v1/replays)"

// accepted is the body of a 202 answer to a submitted job.
type accepted struct {
	JobID     string          `json:"job_id"`
	Status    messages.Status `json:"status"`
	StatusURL string          `json:"status_url"`
}

var headerTrue = []string{"true"}

// postJob is POST /v1/jobs.
func (a *api) postJob(w http.ResponseWriter, r *http.Request) {
	buf := a.readJSONBody(w, r)
	if buf == nil {
		return
	}
	defer a.releaseBody(buf)
	key := r.Header.Get(HeaderIdempotencyKey)
	job, ok := decodeJob(w, r, buf.Bytes(), key)
	if !ok {
		return
	}
	if key != "" {
		job.IdempotencyKey = key
	}
	ctx := r.Context()
	tenant := TenantFromContext(ctx)
	// Intake runs to its end even when the client leaves: a job is never half-accepted.
	rec, created, err := a.cfg.Jobs.Submit(context.WithoutCancel(ctx), job, intake.SubmitOptions{
		Tenant:      tenant,
		Traceparent: traceparent(r.Header.Get(HeaderTraceparent)),
	})
	if err != nil {
		a.failed(w, r, err, "the job was not found")
		return
	}
	h := w.Header()
	if !created {
		h[HeaderIdempotentReplayed] = headerTrue
	}
	h["Location"] = []string{messages.JobPath(rec.JobID)}

	if wait, ok := preferWait(r.Header.Values(HeaderPrefer), a.cfg.MaxWait); ok {
		if !rec.Status.Terminal() {
			a.outlast(w, wait)
			rec = a.waitTerminal(ctx, rec, tenant, wait)
		}
		if rec.Status.Terminal() {
			h[HeaderPreferenceApplied] = []string{"wait=" + strconv.Itoa(int(wait/time.Second))}
			writeJSON(w, http.StatusOK, marshalJSON(rec))
			return
		}
	}
	writeJSON(w, http.StatusAccepted, marshalJSON(accepted{
		JobID:     rec.JobID,
		Status:    rec.Status,
		StatusURL: messages.JobPath(rec.JobID),
	}))
}

// decodeJob decodes and checks the body of POST /v1/jobs. A body that is a valid job with no
// problem checkJob would list is decoded by schemas.DecodeValidJob alone; any other goes the
// generic way, which names every problem. When ok is false the problem has been written.
func decodeJob(w http.ResponseWriter, r *http.Request, body []byte, key string) (messages.Job, bool) {
	if job, ok := schemas.DecodeValidJob(body); ok && job.JobID == "" && job.ReplayName == "" &&
		(key == "" || len(key) <= maxIdempotencyKeyLen && (job.IdempotencyKey == "" || job.IdempotencyKey == key)) {
		return job, true
	}
	return decodeJobGeneric(w, r, body, key)
}

// decodeJobGeneric is decodeJob's way for every body: decoded into a generic document, checked
// by checkJob, and turned into the job by messages.JobFromDoc.
func decodeJobGeneric(w http.ResponseWriter, r *http.Request, body []byte, key string) (messages.Job, bool) {
	doc, ok := decodeDoc(w, r, body)
	if !ok {
		return messages.Job{}, false
	}
	problems := checkJob(nil, "", doc, key)
	if len(problems) > 0 {
		writeProblem(w, r, newProblem(http.StatusBadRequest, SlugInvalidBody,
			"the job is not valid; fix every problem listed in errors", problems...))
		return messages.Job{}, false
	}
	job, err := messages.JobFromDoc(doc)
	if err != nil {
		// The schema admitted something the wire type cannot hold.
		writeProblem(w, r, newProblem(http.StatusBadRequest, SlugInvalidBody, "the job is not valid: "+err.Error()))
		return messages.Job{}, false
	}
	return job, true
}

// checkJob lists every problem of one job document: its schema errors, a client-chosen job_id
// or replay_name (the job schema has them for messages dropped straight on a queue; over HTTP
// they are the server's), and an Idempotency-Key header that contradicts the body. prefix
// locates the job in the body.
func checkJob(dst []FieldProblem, prefix string, doc any, headerKey string) []FieldProblem {
	dst = fieldProblems(dst, prefix, schemas.ValidateJob(doc))
	obj, _ := doc.(map[string]any)
	if _, ok := obj["job_id"]; ok {
		dst = append(dst, FieldProblem{Field: joinField(prefix, "job_id"), Message: msgJobIDByServer})
	}
	if _, ok := obj["replay_name"]; ok {
		dst = append(dst, FieldProblem{Field: joinField(prefix, "replay_name"), Message: msgReplayNameByServer})
	}
	if headerKey != "" {
		if len(headerKey) > maxIdempotencyKeyLen {
			dst = append(dst, FieldProblem{Field: HeaderIdempotencyKey,
				Message: "must be at most " + strconv.Itoa(maxIdempotencyKeyLen) + " characters"})
		}
		if bodyKey, ok := obj["idempotency_key"].(string); ok && bodyKey != headerKey {
			dst = append(dst, FieldProblem{Field: joinField(prefix, "idempotency_key"),
				Message: "differs from the Idempotency-Key header; give the key once, or the same in both"})
		}
	}
	return dst
}

// waitTerminal waits, at most d, for the job to end, and returns its last known record.
func (a *api) waitTerminal(ctx context.Context, rec messages.JobRecord, tenant string, d time.Duration) messages.JobRecord {
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	updates, err := a.cfg.Jobs.Watch(ctx, rec.JobID, tenant)
	if err != nil {
		if ctx.Err() == nil {
			a.log.Warn().Err(err).Str("job_id", rec.JobID).Str("request_id", RequestIDFromContext(ctx)).
				Msg("Prefer: wait could not watch the job; answering 202")
		}
		return rec
	}
	for cur := range updates {
		rec = cur
		if cur.Status.Terminal() {
			cancel()
			// Watch closes the channel once ctx ends; drain it so its goroutine can leave.
			for range updates {
			}
			return rec
		}
	}
	return rec
}

// preferWait reads the wait preference of RFC 7240 Prefer headers ("wait=N", N seconds). It
// returns false when there is none, it is malformed or zero; larger values are capped to max.
func preferWait(values []string, maxWait time.Duration) (time.Duration, bool) {
	for _, v := range values {
		for pref := range strings.SplitSeq(v, ",") {
			pref, _, _ = strings.Cut(pref, ";")
			name, val, ok := strings.Cut(strings.TrimSpace(pref), "=")
			if !ok || !strings.EqualFold(strings.TrimSpace(name), "wait") {
				continue
			}
			n, err := strconv.ParseUint(strings.Trim(strings.TrimSpace(val), `"`), 10, 31)
			if err != nil || n == 0 {
				return 0, false
			}
			d := time.Duration(n) * time.Second
			if maxWait > 0 && d > maxWait {
				d = maxWait.Truncate(time.Second)
			}
			return d, d > 0
		}
	}
	return 0, false
}

// traceContext is r's context carrying its trace: the server span's when tracing is on, else
// the one of the request's traceparent header, if any. Logs take trace_id from it.
func traceContext(r *http.Request) context.Context {
	ctx := r.Context()
	if pipeline.TraceID(ctx) != "" {
		return ctx
	}
	return pipeline.ContextWithTraceparent(ctx, traceparent(r.Header.Get(HeaderTraceparent)))
}

// traceparent returns h when it is a well-formed W3C traceparent header, else "".
func traceparent(h string) string {
	// version "-" trace-id "-" parent-id "-" flags: 2+1+32+1+16+1+2 = 55 characters; future
	// versions may append "-" and more.
	if len(h) < 55 || (len(h) > 55 && h[55] != '-') || h[2] != '-' || h[35] != '-' || h[52] != '-' {
		return ""
	}
	version, trace, parent, flags := h[:2], h[3:35], h[36:52], h[53:55]
	if !lowerHex(version) || version == "ff" || (version == "00" && len(h) != 55) ||
		!lowerHex(trace) || allZero(trace) || !lowerHex(parent) || allZero(parent) || !lowerHex(flags) {
		return ""
	}
	return h
}

func lowerHex(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

func allZero(s string) bool {
	return strings.Trim(s, "0") == ""
}
