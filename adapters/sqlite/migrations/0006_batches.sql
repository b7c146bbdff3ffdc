-- Batch inference: each batch sent to a provider's batch job, with the jobs it holds (job_ids,
-- a JSON array in record order), where its input and output are, the provider job's ARN and
-- status, and which process follows it until lease_until (Unix ms). Times are Unix ms.
CREATE TABLE batches (
	id          TEXT    PRIMARY KEY,
	model       TEXT    NOT NULL,
	model_id    TEXT    NOT NULL,
	job_ids     TEXT    NOT NULL,
	input_uri   TEXT    NOT NULL,
	output_uri  TEXT    NOT NULL,
	arn         TEXT    NOT NULL DEFAULT '',
	state       TEXT    NOT NULL,
	status      TEXT    NOT NULL DEFAULT '',
	owner       TEXT    NOT NULL DEFAULT '',
	lease_until INTEGER NOT NULL,
	created_at  INTEGER NOT NULL,
	updated_at  INTEGER NOT NULL
);
-- The batches still followed, oldest first, for the reconcilers' claims.
CREATE INDEX batches_open ON batches (created_at) WHERE state <> 'DONE';
-- Which batch a job belongs to: a job belongs to one batch at most.
CREATE TABLE batch_jobs (
	job_id   TEXT NOT NULL PRIMARY KEY,
	batch_id TEXT NOT NULL
) WITHOUT ROWID;
