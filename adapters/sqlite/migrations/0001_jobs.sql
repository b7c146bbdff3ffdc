-- Job records. Times are Unix milliseconds; usage, guardrail and error are JSON text (NULL
-- when unset); spec is the accepted job message body.
CREATE TABLE jobs (
	job_id          TEXT    NOT NULL PRIMARY KEY,
	tenant          TEXT    NOT NULL DEFAULT '',
	idempotency_key TEXT    NOT NULL DEFAULT '',
	status          TEXT    NOT NULL,
	task            TEXT    NOT NULL DEFAULT '',
	priority        TEXT    NOT NULL DEFAULT '',
	model           TEXT    NOT NULL DEFAULT '',
	attempts        INTEGER NOT NULL DEFAULT 0,
	created_at      INTEGER NOT NULL,
	updated_at      INTEGER NOT NULL,
	usage           TEXT,
	guardrail       TEXT,
	error           TEXT,
	result_url      TEXT    NOT NULL DEFAULT '',
	replay_name     TEXT    NOT NULL DEFAULT '',
	spec            BLOB
);

-- One job per idempotency key and tenant; jobs without a key are not constrained.
CREATE UNIQUE INDEX jobs_idempotency ON jobs (tenant, idempotency_key) WHERE idempotency_key <> '';

-- List: newest first, optionally by status or tenant.
CREATE INDEX jobs_created ON jobs (created_at DESC, job_id DESC);
CREATE INDEX jobs_status_created ON jobs (status, created_at DESC, job_id DESC);
CREATE INDEX jobs_tenant_created ON jobs (tenant, created_at DESC, job_id DESC);
