-- Job records. Times are kept at millisecond precision; usage, guardrail and error are JSON
-- (NULL when unset); spec is the accepted job message body, byte for byte. version counts the
-- row's updates: Transition writes only if it is still the version it read.
CREATE TABLE jobs (
	job_id          text        NOT NULL PRIMARY KEY,
	tenant          text        NOT NULL DEFAULT '',
	idempotency_key text        NOT NULL DEFAULT '',
	status          text        NOT NULL,
	task            text        NOT NULL DEFAULT '',
	priority        text        NOT NULL DEFAULT '',
	model           text        NOT NULL DEFAULT '',
	attempts        integer     NOT NULL DEFAULT 0,
	created_at      timestamptz NOT NULL,
	updated_at      timestamptz NOT NULL,
	usage           jsonb,
	guardrail       jsonb,
	error           jsonb,
	result_url      text        NOT NULL DEFAULT '',
	replay_name     text        NOT NULL DEFAULT '',
	spec            bytea,
	version         bigint      NOT NULL DEFAULT 0
);

-- One job per idempotency key and tenant; jobs without a key are not constrained.
CREATE UNIQUE INDEX jobs_idempotency ON jobs (tenant, idempotency_key) WHERE idempotency_key <> '';

-- List: newest first, optionally by status or tenant.
CREATE INDEX jobs_created ON jobs (created_at DESC, job_id DESC);
CREATE INDEX jobs_status_created ON jobs (status, created_at DESC, job_id DESC);
CREATE INDEX jobs_tenant_created ON jobs (tenant, created_at DESC, job_id DESC);
