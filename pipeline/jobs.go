package pipeline

import (
	"time"

	"github.com/google/uuid"

	"github.com/infleet/infleet/messages"
)

// NewJobID returns a new job id: a UUIDv7, so ids sort by creation time.
func NewJobID() string {
	id, err := uuid.NewV7()
	if err != nil {
		return uuid.NewString()
	}
	return id.String()
}

// NewJobRecord is the QUEUED record of a job as intake and workers write it: the one place a
// record is built from a job, its encoded body and its tenant.
func NewJobRecord(job messages.Job, spec []byte, tenant string, now time.Time) messages.JobRecord {
	return messages.JobRecord{
		JobID:          job.JobID,
		Status:         messages.StatusQueued,
		Task:           job.Task,
		Priority:       job.Priority.OrNormal(),
		Model:          job.Model,
		CreatedAt:      now,
		UpdatedAt:      now,
		Tenant:         tenant,
		IdempotencyKey: job.IdempotencyKey,
		ReplayName:     job.ReplayName,
		Spec:           spec,
	}
}

// ResultKey is the result store key of a job's result.
func ResultKey(jobID string) string { return jobID + ".json" }
