package handlers

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"

	"github.com/infleet/infleet/messages"
	"github.com/infleet/infleet/pipeline"
	"github.com/infleet/infleet/pipeline/intake"
	"github.com/infleet/infleet/schemas"
)

// Limits of POST /v1/jobs:batch (schemas/batch.schema.json says the same).
const (
	maxBatchJobs = schemas.MaxBatchJobs
	// batchParallelism bounds how many items of one batch are submitted at once.
	batchParallelism = 8
)

// batchItem is the result of one item of a batch: accepted (JobID...) or refused (Error).
type batchItem struct {
	Index     int             `json:"index"`
	JobID     string          `json:"job_id,omitempty"`
	Status    messages.Status `json:"status,omitempty"`
	StatusURL string          `json:"status_url,omitempty"`
	// Replayed is true when the item's idempotency key returned an existing job.
	Replayed bool     `json:"idempotent_replayed,omitempty"`
	Error    *Problem `json:"error,omitempty"`
}

type batchResults struct {
	Results []batchItem `json:"results"`
}

// postBatch is POST /v1/jobs:batch. Items are validated and submitted independently: invalid
// items do not stop valid ones. An Idempotency-Key header gives item i the key "KEY/i" unless the
// item carries its own idempotency_key, so that retrying a whole batch is safe.
func (a *api) postBatch(w http.ResponseWriter, r *http.Request) {
	buf := a.readJSONBody(w, r)
	if buf == nil {
		return
	}
	defer a.releaseBody(buf)
	results, jobs, ok := decodeBatch(w, r, buf.Bytes(), r.Header.Get(HeaderIdempotencyKey))
	if !ok {
		return
	}

	ctx := r.Context()
	opt := intake.SubmitOptions{
		Tenant:      TenantFromContext(ctx),
		Traceparent: traceparent(r.Header.Get(HeaderTraceparent)),
	}
	sem := make(chan struct{}, batchParallelism)
	var wg sync.WaitGroup
	var storageFull atomic.Bool
launch:
	for i := range results {
		if results[i].Error != nil {
			continue
		}
		if ctx.Err() != nil {
			break // the client left: submit no more of its items
		}
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
			break launch
		}
		wg.Go(func() {
			defer func() { <-sem }()
			// Each item's intake runs to its end even when the client leaves.
			rec, created, err := a.cfg.Jobs.Submit(context.WithoutCancel(ctx), jobs[i], opt)
			if err != nil {
				results[i].Error = a.itemFailure(r, i, err)
				if errors.Is(err, pipeline.ErrStorageFull) {
					storageFull.Store(true)
				}
				return
			}
			results[i].JobID = rec.JobID
			results[i].Status = rec.Status
			results[i].StatusURL = messages.JobPath(rec.JobID)
			results[i].Replayed = !created
		})
	}
	wg.Wait()

	if clientLeft(r) {
		a.batchAbandoned(w, r, results)
		return
	}
	// When nothing was accepted because the queue is down, say so with the whole answer.
	accepted, unavailable := 0, 0
	for _, res := range results {
		switch {
		case res.Error == nil:
			accepted++
		case res.Error.Status == http.StatusServiceUnavailable:
			unavailable++
		}
	}
	if accepted == 0 && unavailable > 0 {
		err := pipeline.ErrUnavailable
		if storageFull.Load() {
			err = fmt.Errorf("%w: %w", pipeline.ErrUnavailable, pipeline.ErrStorageFull)
		}
		a.failed(w, r, err, "")
		return
	}
	writeJSON(w, http.StatusAccepted, marshalJSON(batchResults{Results: results}))
}

// decodeBatch decodes and checks the body of POST /v1/jobs:batch into one result and one job
// per item, the job of an item with a problem left zero and its result holding the problem. A
// body that schemas.DecodeValidBatch takes whole, with no item that checkJob would refuse, is
// decoded by it alone; any other goes the generic way. An Idempotency-Key header gives item i
// the key "KEY/i" unless the item has its own. When ok is false the problem has been written.
func decodeBatch(w http.ResponseWriter, r *http.Request, body []byte, headerKey string) ([]batchItem, []messages.Job, bool) {
	if jobs, ok := schemas.DecodeValidBatch(body); ok && batchTakesAll(jobs, headerKey) {
		results := make([]batchItem, len(jobs))
		for i := range jobs {
			results[i].Index = i
			if headerKey != "" && jobs[i].IdempotencyKey == "" {
				jobs[i].IdempotencyKey = headerKey + "/" + strconv.Itoa(i)
			}
		}
		return results, jobs, true
	}
	return decodeBatchGeneric(w, r, body, headerKey)
}

// batchTakesAll reports whether checkJob would find no problem in any of jobs, decoded from a
// schema-valid batch: none sets job_id or replay_name, and the key the header gives an item
// without its own is short enough.
func batchTakesAll(jobs []messages.Job, headerKey string) bool {
	for i, job := range jobs {
		if job.JobID != "" || job.ReplayName != "" {
			return false
		}
		if headerKey != "" && job.IdempotencyKey == "" && len(headerKey)+1+len(strconv.Itoa(i)) > maxIdempotencyKeyLen {
			return false
		}
	}
	return true
}

// decodeBatchGeneric is decodeBatch's way for every body: decoded into a generic document,
// each item checked by checkJob and turned into its job by messages.JobFromDoc.
func decodeBatchGeneric(w http.ResponseWriter, r *http.Request, body []byte, headerKey string) ([]batchItem, []messages.Job, bool) {
	doc, ok := decodeDoc(w, r, body)
	if !ok {
		return nil, nil, false
	}
	items, problems := checkBatchEnvelope(doc)
	if len(problems) > 0 {
		writeProblem(w, r, newProblem(http.StatusBadRequest, SlugInvalidBody,
			`the batch is not valid; send {"jobs": [...]} with 1 to `+strconv.Itoa(maxBatchJobs)+" jobs", problems...))
		return nil, nil, false
	}
	results := make([]batchItem, len(items))
	jobs := make([]messages.Job, len(items))
	valid := 0
	for i, item := range items {
		results[i].Index = i
		key := ""
		if headerKey != "" {
			key = headerKey + "/" + strconv.Itoa(i)
		}
		obj, _ := item.(map[string]any)
		if _, own := obj["idempotency_key"]; own {
			key = ""
		}
		prefix := "jobs[" + strconv.Itoa(i) + "]"
		if p := checkJob(nil, prefix, item, key); len(p) > 0 {
			results[i].Error = itemProblem(http.StatusBadRequest, SlugInvalidBody, "the job is not valid", p)
			continue
		}
		var err error
		if jobs[i], err = messages.JobFromDoc(item); err != nil {
			results[i].Error = itemProblem(http.StatusBadRequest, SlugInvalidBody, "the job is not valid: "+err.Error(), nil)
			continue
		}
		if key != "" {
			jobs[i].IdempotencyKey = key
		}
		valid++
	}
	if valid == 0 {
		var all []FieldProblem
		for _, res := range results {
			all = append(all, res.Error.Errors...)
		}
		writeProblem(w, r, newProblem(http.StatusBadRequest, SlugInvalidBody,
			"no job of the batch is valid; fix every problem listed in errors", all...))
		return nil, nil, false
	}
	return results, jobs, true
}

// batchAbandoned ends a batch whose client went away before the answer: no answer (499, for the
// access log) and one info line saying how many items were accepted anyway. Those jobs run; a
// client that sends the batch again with the same Idempotency-Key gets the same jobs back.
func (a *api) batchAbandoned(w http.ResponseWriter, r *http.Request, results []batchItem) {
	accepted := 0
	for _, res := range results {
		if res.JobID != "" {
			accepted++
		}
	}
	a.log.Info().Str("request_id", RequestIDFromContext(r.Context())).Int("items", len(results)).
		Int("accepted", accepted).Msg("client went away before the batch was answered; accepted items run")
	w.WriteHeader(statusClientClosed)
}

// itemFailure turns a Submit error into an item's problem, logging what the caller cannot see.
// A failure after the client went away is its consequence, not a dependency failure: it is
// logged at debug only (batchAbandoned sums up).
func (a *api) itemFailure(r *http.Request, i int, err error) *Problem {
	if p, ok := problemOf(err); ok {
		p.Instance = ""
		return &p
	}
	if clientLeft(r) {
		a.log.Debug().Err(err).Str("request_id", RequestIDFromContext(r.Context())).Int("index", i).
			Msg("batch item not queued: the client went away")
		return itemProblem(statusClientClosed, SlugUnavailable, "the client went away before this job was queued", nil)
	}
	if isPermanent(err) {
		return itemProblem(http.StatusBadRequest, SlugInvalidBody, err.Error(), nil)
	}
	log := a.log.Error().Err(err).Str("request_id", RequestIDFromContext(r.Context())).Int("index", i)
	if errors.Is(err, pipeline.ErrStorageFull) {
		log.Msg("batch item not queued: disk full")
		p := diskFullProblem()
		return &p
	}
	if errors.Is(err, pipeline.ErrUnavailable) || r.Context().Err() != nil {
		log.Msg("batch item not queued: dependency unavailable")
		p := itemProblem(http.StatusServiceUnavailable, SlugUnavailable,
			"the queue or job store cannot be reached and this job was not recorded; send it again later", nil)
		return p
	}
	log.Msg("batch item failed")
	return itemProblem(http.StatusInternalServerError, SlugInternal,
		"the server failed to record this job; send it again later", nil)
}

func itemProblem(status int, slug, detail string, errs []FieldProblem) *Problem {
	p := newProblem(status, slug, detail, errs...)
	return &p
}

// checkBatchEnvelope checks the shape around the jobs and returns them.
func checkBatchEnvelope(doc any) ([]any, []FieldProblem) {
	obj, ok := doc.(map[string]any)
	if !ok {
		return nil, []FieldProblem{{Field: "", Message: `must be an object {"jobs": [...]}`}}
	}
	var problems []FieldProblem
	for _, k := range slices.Sorted(maps.Keys(obj)) {
		if k != "jobs" {
			problems = append(problems, FieldProblem{Field: k, Message: `is not allowed; the batch has only "jobs"`})
		}
	}
	raw, ok := obj["jobs"]
	if !ok {
		return nil, append(problems, FieldProblem{Field: "jobs", Message: "is required"})
	}
	items, ok := raw.([]any)
	switch {
	case !ok:
		problems = append(problems, FieldProblem{Field: "jobs", Message: "must be an array of jobs"})
	case len(items) == 0:
		problems = append(problems, FieldProblem{Field: "jobs", Message: "must hold at least 1 job"})
	case len(items) > maxBatchJobs:
		problems = append(problems, FieldProblem{Field: "jobs",
			Message: "must hold at most " + strconv.Itoa(maxBatchJobs) + " jobs; split the batch"})
	}
	return items, problems
}
