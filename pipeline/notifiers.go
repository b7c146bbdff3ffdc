package pipeline

import (
	"context"
	"encoding/json"
	"errors"
	"sync"
	"unicode/utf8"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"github.com/infleet/infleet/messages"
)

// Notification is a lifecycle event with where the job asked it to go.
type Notification struct {
	Event messages.Event
	// CallbackURL is the job's own callback_url, which overrides a configured webhook URL.
	CallbackURL string
}

// Notifier delivers lifecycle events. Notify returns once the event is delivered or handed to
// a durable retry path; an error means the event was not delivered and will not be retried.
type Notifier interface {
	Notify(ctx context.Context, n Notification) error
}

// Notifiers delivers each event to every sink in it (webhook, SNS, EventBridge, a topic) at
// once. Notify returns when every sink has answered; its error joins the sinks' errors, so a
// sink that fails never keeps the event from the others. Safe for concurrent use when its sinks
// are; nil entries are skipped.
type Notifiers []Notifier

// Notify implements Notifier.
func (ns Notifiers) Notify(ctx context.Context, n Notification) error {
	switch len(ns) {
	case 0:
		return nil
	case 1:
		if ns[0] == nil {
			return nil
		}
		return ns[0].Notify(ctx, n)
	}
	errs := make([]error, len(ns))
	var wg sync.WaitGroup
	for i, s := range ns {
		if s == nil {
			continue
		}
		wg.Go(func() { errs[i] = s.Notify(ctx, n) })
	}
	wg.Wait()
	return errors.Join(errs...)
}

// Announce delivers note through n in a span named notify (a producer span carrying the event's
// type) when ctx's span records; the sinks see the span's context and may send it on.
func Announce(ctx context.Context, n Notifier, note Notification) error {
	if !Tracing(ctx) {
		return n.Notify(ctx, note)
	}
	ctx, span := StartSpan(ctx, "notify", trace.SpanKindProducer)
	span.SetAttributes(attribute.String("infleet.event_type", note.Event.Type),
		attribute.String("infleet.job_id", note.Event.JobID))
	err := n.Notify(ctx, note)
	EndSpan(span, err)
	return err
}

// NotificationOf is the lifecycle event of rec as it stands (its status, at its UpdatedAt),
// addressed to the job's own callback_url when its body has one. Intake and the worker build
// every event they send with it.
func NotificationOf(rec messages.JobRecord) Notification {
	return Notification{Event: messages.EventFor(rec, rec.UpdatedAt), CallbackURL: callbackURL(rec.Spec)}
}

// callbackURL reads callback_url from a job body without decoding the rest.
func callbackURL(spec []byte) string {
	if len(spec) == 0 || !mayHoldKey(spec, "callback_url") {
		return ""
	}
	var v struct {
		CallbackURL string `json:"callback_url"`
	}
	_ = json.Unmarshal(spec, &v)
	return v.CallbackURL
}

// mayHoldKey reports whether the JSON document doc may hold the object key key (lower-case
// ASCII): false only when doc is ASCII without escapes and no spelling of key in any case
// (encoding/json matches keys without regard to case, the Kelvin sign and the long s among
// them, hence ASCII only) appears in it, decided without decoding.
func mayHoldKey(doc []byte, key string) bool {
	first := key[0]
	for i, c := range doc {
		if c == '\\' || c >= utf8.RuneSelf {
			return true
		}
		if c|0x20 == first && i+len(key) <= len(doc) && asciiFold(doc[i:i+len(key)], key) {
			return true
		}
	}
	return false
}

// asciiFold reports whether b is s (lower-case ASCII) in any case.
func asciiFold(b []byte, s string) bool {
	for i := range len(s) {
		c := b[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != s[i] {
			return false
		}
	}
	return true
}
