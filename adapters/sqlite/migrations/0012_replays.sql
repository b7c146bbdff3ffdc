-- The replays of every process using this file (see pipeline.ReplayStore): one row per
-- replay_name with its tenant, its request as JSON (filters), its progress, the cursor up to
-- which every job was re-published, and the process running it with its lease (Unix
-- microseconds, like started_us and updated_us). A process whose lease ran out lost the replay
-- to whichever claims it first.
CREATE TABLE IF NOT EXISTS replays (
	name       TEXT    NOT NULL PRIMARY KEY,
	tenant     TEXT    NOT NULL,
	filters    TEXT    NOT NULL,
	matched    INTEGER NOT NULL,
	published  INTEGER NOT NULL,
	cursor     TEXT    NOT NULL,
	done       INTEGER NOT NULL,
	error      TEXT    NOT NULL,
	dry_run    INTEGER NOT NULL,
	started_us INTEGER NOT NULL,
	updated_us INTEGER NOT NULL,
	process    TEXT    NOT NULL,
	lease_us   INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS replays_started ON replays (started_us DESC, name);
