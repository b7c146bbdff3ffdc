-- The replays of the fleet (see pipeline.ReplayStore): one row per replay_name with its
-- tenant, its request as JSON (filters), its progress, the cursor up to which every job was
-- re-published, and the process running it with its lease (Unix microseconds, like
-- started_us and updated_us). A process whose lease ran out lost the replay to whichever
-- claims it first.
CREATE TABLE IF NOT EXISTS replays (
	name       text    NOT NULL PRIMARY KEY,
	tenant     text    NOT NULL,
	filters    text    NOT NULL,
	matched    bigint  NOT NULL,
	published  bigint  NOT NULL,
	cursor     text    NOT NULL,
	done       boolean NOT NULL,
	error      text    NOT NULL,
	dry_run    boolean NOT NULL,
	started_us bigint  NOT NULL,
	updated_us bigint  NOT NULL,
	process    text    NOT NULL,
	lease_us   bigint  NOT NULL
);
CREATE INDEX IF NOT EXISTS replays_started ON replays (started_us DESC, name);
