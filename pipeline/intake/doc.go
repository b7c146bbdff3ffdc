// Package intake is the pipeline's producing side: the Service behind the HTTP API, which
// queues and records jobs and answers questions about them.
//
//   - submit.go: Submit queues a job on its priority's topic, then records it QUEUED; a retry
//     with the same idempotency key answers with the first job.
//   - query.go: Get, List, and a completed job's Result or a signed ResultURL, scoped to the
//     caller's tenant.
//   - cancel.go: Cancel ends a live job, stopping it when it runs in this process.
//   - watch.go: Watch streams a job's record at each change until it ends.
//   - service.go: Config, New, and Ready, the readiness of every configured dependency.
//
// The worker (pipeline/worker) runs what intake queued; the two build a job's record, its
// result key and its events the same way, through the pipeline root (NewJobRecord, ResultKey,
// NotificationOf).
package intake
