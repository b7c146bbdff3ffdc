-- Counted leases shared by every process of a fleet: a model's max_concurrency across it. A
-- lease holds its slot until expires_ns (Unix nanoseconds), so a killed process's slots come
-- back on their own.
CREATE TABLE model_leases (
	key        text   NOT NULL,
	holder     text   NOT NULL,
	expires_ns bigint NOT NULL,
	PRIMARY KEY (key, holder)
);
