-- Per-model call figures of every process of a fleet, for the operator console's Models page
-- and GET /v1/models: one row per model, minute (Unix seconds) and process, holding the
-- process's running totals of that minute (it rewrites the row about once a second) and its
-- breaker state at its last write (seen_ms, Unix milliseconds, is its heartbeat). latency is a
-- histogram as pipeline.ModelLatency.String writes it.
CREATE TABLE IF NOT EXISTS model_stats (
	model         text   NOT NULL,
	minute        bigint NOT NULL,
	process       text   NOT NULL,
	calls         bigint NOT NULL,
	errors        bigint NOT NULL,
	throttles     bigint NOT NULL,
	input_tokens  bigint NOT NULL,
	output_tokens bigint NOT NULL,
	latency       text   NOT NULL,
	circuit       text   NOT NULL,
	seen_ms       bigint NOT NULL,
	PRIMARY KEY (model, minute, process)
);
CREATE INDEX IF NOT EXISTS model_stats_minute ON model_stats (minute);
