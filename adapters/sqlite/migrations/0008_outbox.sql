-- The outbox: lifecycle events written in the same transaction as the transition that made
-- them, kept until a dispatcher has delivered them. seq orders a job's events; a claim holds an
-- event until claimed_until (Unix ms), so a dispatcher that dies gives its events back.
CREATE TABLE outbox (
	seq           INTEGER PRIMARY KEY AUTOINCREMENT,
	event_id      TEXT    NOT NULL UNIQUE,
	job_id        TEXT    NOT NULL,
	body          BLOB    NOT NULL,
	claimed_until INTEGER NOT NULL DEFAULT 0,
	holder        TEXT    NOT NULL DEFAULT '',
	attempts      INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX outbox_job ON outbox (job_id, seq);
