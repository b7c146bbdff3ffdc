package worker

import (
	"time"

	"github.com/infleet/infleet/messages"
)

// Delivery is a message as a transport handed it over.
type Delivery struct {
	// MessageID is the transport's message id.
	MessageID string
	Payload   []byte
	Metadata  map[string]string
}

// Outcome is what the transport should do with a delivery: acknowledge it (the job completed,
// failed for good, or was dropped deliberately) or deliver it again after Delay.
type Outcome struct {
	Retry bool
	Delay time.Duration
	// Reason says why a retry was asked for, for logs.
	Reason string
	// HandedBack marks a Retry that returns a job cut off by shutdown to its queue without
	// spending an attempt: expected at shutdown, not a failure, and summarised by the caller
	// (Worker.HandedBack) rather than logged per delivery.
	HandedBack bool

	// infrastructure marks a retry asked for because infleet's own dependencies failed: the
	// worker keeps counting the job's failures in a row for its backoff.
	infrastructure bool
	// archived are the archive writes of the delivery's jobs that its acknowledgement waits
	// for (archive.write: before_ack); none when it is asked for again.
	archived []archiveWait
}

// Decoder turns a delivery into the jobs it carries (a job message is one job; an S3 event may
// be several). An error means the delivery can never become a job: it is dead-lettered.
type Decoder func(d Delivery) ([]messages.Job, error)
