-- The outbox: lifecycle events written by the same statement as the transition that made them
-- (a data-modifying WITH), kept until a dispatcher has delivered them. A row keeps what the
-- event is made of, as the transition left the job; seq orders a job's events; a claim holds
-- an event until claimed_until, so a dispatcher that dies gives its events back.
CREATE TABLE outbox (
	seq           bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	event_id      text        NOT NULL UNIQUE,
	job_id        text        NOT NULL,
	status        text        NOT NULL,
	task          text        NOT NULL DEFAULT '',
	tenant        text        NOT NULL DEFAULT '',
	result_url    text        NOT NULL DEFAULT '',
	error         jsonb,
	occurred_at   timestamptz NOT NULL,
	spec          bytea,
	claimed_until timestamptz NOT NULL DEFAULT '-infinity',
	holder        text        NOT NULL DEFAULT '',
	attempts      integer     NOT NULL DEFAULT 0
);
CREATE INDEX outbox_job ON outbox (job_id, seq);
