-- Retention: finished jobs by their last update, oldest first, for the reaper's DELETE. Partial,
-- so that only the write that finishes a job (or takes it out of a terminal status again)
-- touches it. Migrate builds it inside a transaction, which blocks writes to jobs while it
-- builds; on a large table create it first without blocking, with the same statement and
-- CONCURRENTLY, and this migration then finds it there.
CREATE INDEX IF NOT EXISTS jobs_finished ON jobs (updated_at) WHERE status IN ('COMPLETED', 'FAILED', 'CANCELLED');
