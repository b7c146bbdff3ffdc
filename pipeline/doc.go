// Package pipeline is infleet's core vocabulary: the small interfaces that the pipeline's
// parts and the adapters share, and the values that cross them. It knows no AWS, Kafka, NATS
// or HTTP types.
//
// Each concept has a file named after it:
//
//   - jobstore.go: JobStore and the Transition of a job's status; KeyLookup and Expirer, its
//     optional abilities.
//   - blobstore.go: BlobStore, its optional abilities (listing, deleting, signed URLs) and
//     InputFetcher.
//   - model.go: Model, ModelPicker and ModelClient, with a provider-neutral ModelError.
//   - guard.go: Guard and ContextGuard.
//   - notifiers.go: Notifier, Notifiers (every sink at once) and NotificationOf.
//   - transport.go: what the pipeline needs of a queue beyond Watermill's Publisher and
//     Subscriber: Topics, DeadLetterBox, DepthReporter.
//   - limits.go: LimitStore, the fleet-wide rate limits and quotas.
//   - checker.go: Checker, the readiness of a dependency.
//   - errors.go: the typed outcomes of a job (PermanentError, RetryAfterError, BlockedError,
//     InfrastructureError) and the sentinels every store and queue wraps (ErrNotFound,
//     ErrConflict, ErrUnavailable, ErrStorageFull, ErrInvalidCursor).
//   - jobs.go: what every part builds the same way: job ids, QUEUED records, result keys.
//   - backoff.go, hub.go, trace.go: retry backoff, the in-process Hub of job changes and
//     running jobs, and the W3C trace context carried from intake to the model call.
package pipeline
