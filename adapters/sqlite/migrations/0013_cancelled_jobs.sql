-- The log of cancelled jobs (see pipeline.CancelLog): one row per cancellation, in order, kept
-- as long as the job's record. A worker that holds the log need not read a job's record
-- before running its first delivery to learn that it was cancelled while queued.
CREATE TABLE IF NOT EXISTS cancelled_jobs (
	seq    INTEGER PRIMARY KEY AUTOINCREMENT,
	job_id TEXT    NOT NULL
);
CREATE INDEX IF NOT EXISTS cancelled_jobs_job ON cancelled_jobs (job_id);
INSERT INTO cancelled_jobs (job_id) SELECT job_id FROM jobs WHERE status = 'CANCELLED';
CREATE TRIGGER IF NOT EXISTS jobs_cancelled AFTER UPDATE OF status ON jobs
	WHEN NEW.status = 'CANCELLED' AND OLD.status <> 'CANCELLED'
BEGIN
	INSERT INTO cancelled_jobs (job_id) VALUES (NEW.job_id);
END;
CREATE TRIGGER IF NOT EXISTS jobs_cancelled_deleted AFTER DELETE ON jobs
	WHEN OLD.status = 'CANCELLED'
BEGIN
	DELETE FROM cancelled_jobs WHERE job_id = OLD.job_id;
END;
