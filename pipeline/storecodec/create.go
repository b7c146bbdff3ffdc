package storecodec

import (
	"errors"
	"time"

	"github.com/infleet/infleet/messages"
)

// ErrNoJobID is ForCreate's answer to a record without a job id.
var ErrNoJobID = errors.New("create a job without a job id (set JobRecord.JobID)")

// ForCreate returns rec as a store writes a new record: times at millisecond precision in UTC,
// a zero CreatedAt taken as now and a zero UpdatedAt as CreatedAt, an empty Spec as none. A
// record without a JobID is ErrNoJobID.
func ForCreate(rec messages.JobRecord) (messages.JobRecord, error) {
	if rec.JobID == "" {
		return rec, ErrNoJobID
	}
	if rec.CreatedAt.IsZero() {
		rec.CreatedAt = time.Now()
	}
	if rec.UpdatedAt.IsZero() {
		rec.UpdatedAt = rec.CreatedAt
	}
	rec.CreatedAt, rec.UpdatedAt = Millis(rec.CreatedAt), Millis(rec.UpdatedAt)
	if len(rec.Spec) == 0 {
		rec.Spec = nil
	}
	return rec, nil
}
