-- The pace of each throttled model, shared by every process of the fleet (see
-- pipeline.PaceStore): the fleet's call rate (calls per second, 0 when unpaced), the rate the
-- last decrease set, when it was made and until when decreases are held (Unix microseconds,
-- 0 for none), the fleet's answered calls of the current and previous Unix second, and a
-- version every write increments (compare-and-set).
CREATE TABLE IF NOT EXISTS model_pace (
	model        text             NOT NULL PRIMARY KEY,
	rate         double precision NOT NULL,
	base         double precision NOT NULL,
	cut_us       bigint           NOT NULL,
	hold_us      bigint           NOT NULL,
	second       bigint           NOT NULL,
	answers      bigint           NOT NULL,
	prev_answers bigint           NOT NULL,
	version      bigint           NOT NULL
);
