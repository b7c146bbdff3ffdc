package handlers

import (
	"context"
	"encoding/json"
	"net/http"

	"github.com/infleet/infleet/messages"
)

// MaskFunc masks, in texts, the values the input guardrails anonymize, and returns them in
// the same order. It is safe for concurrent use.
type MaskFunc func(ctx context.Context, texts []string) ([]string, error)

// jobRequest is the body of GET /v1/jobs/{id}/request.
type jobRequest struct {
	JobID string `json:"job_id"`
	// Masked says whether the input texts went through APIConfig.MaskInput.
	Masked  bool         `json:"masked"`
	Request messages.Job `json:"request"`
}

// getRequest is GET /v1/jobs/{id}/request: the job as it was accepted, in the shape of a
// POST /v1/jobs body, with the values the input guardrails anonymize masked in its texts
// (input text, messages and context).
func (a *api) getRequest(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	rec, err := a.cfg.Jobs.Get(r.Context(), id, TenantFromContext(r.Context()))
	if err != nil {
		a.failed(w, r, err, notFoundDetail(id))
		return
	}
	out := jobRequest{JobID: rec.JobID}
	if len(rec.Spec) > 0 {
		if err := json.Unmarshal(rec.Spec, &out.Request); err != nil {
			a.failed(w, r, err, "")
			return
		}
	}
	out.Request.JobID = rec.JobID
	if a.cfg.MaskInput != nil {
		job := &out.Request
		texts := []string{job.Input.Text, job.Context}
		for _, m := range job.Input.Messages {
			texts = append(texts, m.Content)
		}
		masked, err := a.cfg.MaskInput(r.Context(), texts)
		if err != nil || len(masked) != len(texts) {
			// Better no input than an unmasked one.
			a.log.Warn().Err(err).Str("job_id", id).Msg("input not masked; withheld")
			masked = make([]string, len(texts))
		}
		job.Input.Text, job.Context = masked[0], masked[1]
		for i := range job.Input.Messages {
			job.Input.Messages[i].Content = masked[2+i]
		}
		out.Masked = true
	}
	writeJSON(w, http.StatusOK, marshalJSON(out))
}
