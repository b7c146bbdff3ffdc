-- Counted leases shared by every process using this file: a model's max_concurrency across a
-- fleet. A lease holds its slot until expires_ns (Unix nanoseconds), so a killed process's
-- slots come back on their own.
CREATE TABLE model_leases (
	key        TEXT    NOT NULL,
	holder     TEXT    NOT NULL,
	expires_ns INTEGER NOT NULL,
	PRIMARY KEY (key, holder)
) WITHOUT ROWID;
