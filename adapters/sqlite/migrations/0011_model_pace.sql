-- The pace of each throttled model, shared by every process using this file (see
-- pipeline.PaceStore): the fleet's call rate (calls per second, 0 when unpaced), the rate the
-- last decrease set, when it was made and until when decreases are held (Unix microseconds,
-- 0 for none), the fleet's answered calls of the current and previous Unix second, and a
-- version every write increments (compare-and-set).
CREATE TABLE IF NOT EXISTS model_pace (
	model        TEXT    NOT NULL PRIMARY KEY,
	rate         REAL    NOT NULL,
	base         REAL    NOT NULL,
	cut_us       INTEGER NOT NULL,
	hold_us      INTEGER NOT NULL,
	second       INTEGER NOT NULL,
	answers      INTEGER NOT NULL,
	prev_answers INTEGER NOT NULL,
	version      INTEGER NOT NULL
) WITHOUT ROWID;
