package pipeline

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/infleet/infleet/messages"
)

// OutboxEvent is a lifecycle event a store keeps, written by the transition that made it,
// until a dispatcher has delivered it.
type OutboxEvent struct {
	// Notification is the event (its Event.ID set) and where it goes.
	Notification
	// Attempts counts the claims of the event so far, this one included.
	Attempts int
}

// ID is the event's stable id.
func (e OutboxEvent) ID() string { return e.Event.ID }

// JobID is the job the event is about.
func (e OutboxEvent) JobID() string { return e.Event.JobID }

// Outbox is an optional ability of a JobStore: lifecycle events recorded in the same atomic
// write as the transition that makes them (Transition.EventID), kept until delivered. It
// serves any number of dispatchers in any number of processes at once.
//
// Order: a job's events are handed out one at a time in the order of their transitions: an
// event is claimable only while no earlier event of its job is still kept, so the next is
// handed out only after the one before it is deleted.
type Outbox interface {
	// ClaimEvents hands holder up to limit kept events that are not claimed (or whose claim has
	// run out), at most one per job, each the earliest kept event of its job, and claims them
	// until now+lease: no other call returns them before then. Each claim counts an attempt.
	ClaimEvents(ctx context.Context, holder string, lease time.Duration, limit int) ([]OutboxEvent, error)
	// DeleteEvents removes evs, delivered; events already gone are not an error.
	DeleteEvents(ctx context.Context, evs []OutboxEvent) error
	// DelayEvent keeps ev claimed until until, when it may be claimed again: a delivery that
	// failed is retried after a backoff, and the job's later events wait behind it.
	DelayEvent(ctx context.Context, ev OutboxEvent, until time.Time) error
}

// OutboxWaker is the dispatcher of this process as the writers of events see it. Wants tells
// whether the event of rec would reach any sink (events no sink would take are not kept); Wake
// is told when a write has just kept an event, so that the dispatcher claims it at once instead
// of at its next poll. Both are safe for concurrent use and never block.
type OutboxWaker interface {
	Wants(rec messages.JobRecord) bool
	Wake()
}

// NewEventID returns a new, unique, time-ordered event id.
func NewEventID() string { return NewJobID() }

// EventOf is the outbox event a transition with event id id records for rec, the record it
// wrote: NotificationOf(rec) with its Event.ID set.
func EventOf(rec messages.JobRecord, id string) Notification {
	n := NotificationOf(rec)
	n.Event.ID = id
	return n
}

// EncodeNotification is n as stores keep it in their outbox (JSON).
func EncodeNotification(n Notification) ([]byte, error) {
	b, err := json.Marshal(storedNotification{Event: n.Event, CallbackURL: n.CallbackURL})
	if err != nil {
		return nil, fmt.Errorf("encode event %s: %w", n.Event.ID, err)
	}
	return b, nil
}

// DecodeNotification reads what EncodeNotification wrote.
func DecodeNotification(b []byte) (Notification, error) {
	var s storedNotification
	if err := json.Unmarshal(b, &s); err != nil {
		return Notification{}, fmt.Errorf("decode a kept event: %w", err)
	}
	return Notification{Event: s.Event, CallbackURL: s.CallbackURL}, nil
}

// storedNotification is the JSON of a kept event.
type storedNotification struct {
	Event       messages.Event `json:"event"`
	CallbackURL string         `json:"callback_url,omitempty"`
}
