// Package ops is what operators do with jobs beyond running them:
//
//   - operator.go: the Operator, which serves the operator routes of the API and the CLI.
//   - deadletters.go: list the dead letters a transport keeps (through its
//     pipeline.DeadLetterBox) and redrive them to their queues, idempotently.
//   - archive.go: the Archive, which keeps every accepted job message as hour-partitioned JSON
//     lines in the result store, written in batches whose writes the worker waits for before
//     it acks a message.
//   - archive_scan.go: ScanArchive, which reads the archive back, and the archive's retention.
//   - replay.go: run archived jobs again under a replay name, at a bounded rate, with the
//     replay's progress in a pipeline.ReplayStore that every process of the fleet reads.
//   - replay_lease.go: a running replay's lease, renewed by every write of its progress, and
//     ContinueReplays, which continues after its cursor a replay whose process died.
//   - replay_memory.go: the ReplayStore of a process whose fleet shares none.
//   - retention.go: the Reaper, which deletes finished jobs and their results after
//     store.retention, in small batches, through a pipeline.Expirer.
package ops
