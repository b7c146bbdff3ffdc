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
//   - notifiers.go: Notifier, Notifiers (every sink at once), Announce (in a span) and
//     NotificationOf.
//   - outbox.go: Outbox, the optional ability of a JobStore to keep lifecycle events in the
//     write of their transition (Transition.EventID) until delivered, and OutboxWaker.
//   - transport.go: what the pipeline needs of a queue beyond Watermill's Publisher and
//     Subscriber: Topics, DeadLetterBox and the metadata of a dead letter, DepthReporter.
//   - limits.go: LimitStore, the fleet-wide rate limits and quotas, and LeaseStore, the
//     fleet-wide counts of work in flight (a model's max_concurrency).
//   - usage.go: UsageStore, model usage per day, tenant, model and task that every process
//     adds to, and GroupUsage, which sums its rows for reports.
//   - checker.go: Checker, the readiness of a dependency.
//   - errors.go: the typed outcomes of a job (PermanentError, RetryAfterError, BlockedError,
//     InfrastructureError) and the sentinels every store and queue wraps (ErrNotFound,
//     ErrConflict, ErrUnavailable, ErrStorageFull, ErrInvalidCursor).
//   - jobs.go: what every part builds the same way: job ids, QUEUED records, result keys.
//   - backoff.go, hub.go, trace.go: retry backoff, the in-process Hub of job changes and
//     running jobs, and the W3C trace context carried from intake to the model call, with
//     StartSpan, which makes a span only under a recording one (the OpenTelemetry API only;
//     the SDK and exporters are wired in cmd/infleet through adapters/otlp).
//
// The rest of the pipeline lives in rooms below the root, each a package that imports the root
// and never the other way round:
//
//   - pipeline/intake: the Service behind the HTTP API: submit, query, cancel, watch.
//   - pipeline/worker: the Worker and its stages from decode to notify, and the priority
//     Scheduler that feeds it.
//   - pipeline/events: the Dispatcher that delivers the events a store's Outbox keeps.
//   - pipeline/ops: dead letters and their redrive, the archive and replays, the retention
//     Reaper.
//   - pipeline/models: the resilient model fleet and routing; pipeline/guard: the guardrails.
//   - pipeline/telemetry: the Prometheus metrics the rooms record on, their CloudWatch
//     Embedded Metric Format writer, and the log hook adding trace ids.
//   - pipeline/storecodec: the JSON columns and list cursor the job stores share.
//   - pipeline/storetest: the conformance suite every JobStore passes.
//
// Adapters implement the root's ports and import only the root (job stores also storecodec);
// cmd/infleet wires the rooms together.
package pipeline
