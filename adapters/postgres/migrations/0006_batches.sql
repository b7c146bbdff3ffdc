-- Batch inference: each batch sent to a provider's batch job, with the jobs it holds (job_ids,
-- a JSON array in record order), where its input and output are, the provider job's ARN and
-- status, and which process follows it until lease_until (Unix ms). Times are Unix ms.
CREATE TABLE batches (
	id          text    PRIMARY KEY,
	model       text    NOT NULL,
	model_id    text    NOT NULL,
	job_ids     text    NOT NULL,
	input_uri   text    NOT NULL,
	output_uri  text    NOT NULL,
	arn         text    NOT NULL DEFAULT '',
	state       text    NOT NULL,
	status      text    NOT NULL DEFAULT '',
	owner       text    NOT NULL DEFAULT '',
	lease_until bigint NOT NULL,
	created_at  bigint NOT NULL,
	updated_at  bigint NOT NULL
);
-- The batches still followed, oldest first, for the reconcilers' claims.
CREATE INDEX batches_open ON batches (created_at) WHERE state <> 'DONE';
-- Which batch a job belongs to: a job belongs to one batch at most.
CREATE TABLE batch_jobs (
	job_id   text NOT NULL PRIMARY KEY,
	batch_id text NOT NULL
);
