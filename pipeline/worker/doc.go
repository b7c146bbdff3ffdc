// Package worker is the pipeline's consuming side: it runs each message a transport delivers
// to an outcome, and tells the transport whether to acknowledge the message or deliver it
// again (Outcome). Process runs a delivery through these stages, each a named function:
//
//   - decode (decode.go, envelopes.go): the message into jobs; job messages, and S3,
//     EventBridge and SNS envelopes.
//   - admit (admit.go): claim the job for this attempt, writing its record when it has none.
//   - guardIn, route, invoke, guardOut, storeResult (stages.go): the input guard, the pick of
//     a model, the model call, the output guard, the result written.
//   - record (settle.go): the attempt's outcome, recorded: completed, retried, handed back, or
//     failed and dead-lettered.
//   - notify (settle.go): watchers, metrics and the notifier.
//
// classify.go decides what a failed attempt means from its error's type, in one place;
// infrastructure.go hands back, without spending it, an attempt that infleet's own
// dependencies cut short, and remembers their failures for the backoff. The Scheduler
// (scheduler.go) merges a transport's per-priority subscriptions into the one stream a
// Watermill router hands to the worker, by weight or strictly.
package worker
