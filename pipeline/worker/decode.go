package worker

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/infleet/infleet/messages"
	"github.com/infleet/infleet/schemas"
)

// DecodeJob is the decode stage for job messages: it checks the body against the job schema
// and fills job_id and priority from the transport metadata when the body lacks them (the
// message id as a last resort, so every redelivery maps to the same job). The job keeps the
// body it came from (messages.Job.Body). An error lists every problem; such a message can
// never become a job.
func DecodeJob(d Delivery) ([]messages.Job, error) {
	job, err := ParseJob(d.Payload)
	if err != nil {
		return nil, err
	}
	job.Body = d.Payload
	if job.JobID == "" {
		job.JobID = d.Metadata[messages.MetaJobID]
	}
	if job.JobID == "" {
		job.JobID = d.MessageID
	}
	if job.JobID == "" {
		return nil, errors.New("job has no job_id and the message no id")
	}
	if job.Priority == "" {
		if p := messages.Priority(d.Metadata[messages.MetaPriority]); p.Valid() {
			job.Priority = p
		}
	}
	if job.ReplayName == "" {
		job.ReplayName = d.Metadata[messages.MetaReplayName]
	}
	return []messages.Job{job}, nil
}

// ParseJob decodes and validates one job body against schemas/job.schema.json.
func ParseJob(body []byte) (messages.Job, error) {
	if job, ok := schemas.DecodeValidJob(body); ok {
		return job, nil
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	var doc any
	if err := dec.Decode(&doc); err != nil {
		return messages.Job{}, fmt.Errorf("body is not JSON: %w", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return messages.Job{}, fmt.Errorf("body is not one JSON value: unexpected data after byte %d", dec.InputOffset())
	}
	if problems := schemas.ValidateJob(doc); len(problems) > 0 {
		return messages.Job{}, ProblemsError(problems)
	}
	// The job from the document the schema checked, as intake builds it: the body is parsed
	// once.
	job, err := messages.JobFromDoc(doc)
	if err != nil {
		return messages.Job{}, fmt.Errorf("body does not match the job schema: %w", err)
	}
	return job, nil
}

// ProblemsError joins schema problems into one error that names every field.
func ProblemsError(problems []schemas.FieldError) error {
	parts := make([]string, len(problems))
	for i, p := range problems {
		if p.Field == "" {
			parts[i] = p.Message
		} else {
			parts[i] = p.Field + ": " + p.Message
		}
	}
	return errors.New("invalid job: " + strings.Join(parts, "; "))
}
