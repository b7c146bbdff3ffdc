-- Retention: finished jobs by their last update, oldest first, for the reaper's DELETE. Partial,
-- so that only the write that finishes a job (or takes it out of a terminal status again)
-- touches it; the statuses must read exactly as in the reaper's query for SQLite to use it.
CREATE INDEX jobs_finished ON jobs (updated_at) WHERE status IN ('COMPLETED', 'FAILED', 'CANCELLED');
