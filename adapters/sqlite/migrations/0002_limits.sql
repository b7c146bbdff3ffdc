-- Rate-limit token buckets and quota counters shared by every process using this file.
-- updated_ns is the Unix time in nanoseconds of the last refill; last_ok says whether the last
-- Take was granted (read back with RETURNING).
CREATE TABLE rate_buckets (
	key        TEXT    NOT NULL PRIMARY KEY,
	tokens     REAL    NOT NULL,
	updated_ns INTEGER NOT NULL,
	last_ok    INTEGER NOT NULL DEFAULT 1
) WITHOUT ROWID;

-- Quota usage per key and period (the key names the period).
CREATE TABLE quota_usage (
	key     TEXT    NOT NULL PRIMARY KEY,
	used    INTEGER NOT NULL,
	last_ok INTEGER NOT NULL DEFAULT 1
) WITHOUT ROWID;
