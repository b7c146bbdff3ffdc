-- Per-model call figures of every process sharing this file, for the operator console's Models
-- page and GET /v1/models: one row per model, minute (Unix seconds) and process, holding the
-- process's running totals of that minute (it rewrites the row about once a second) and its
-- breaker state at its last write (seen_ms, Unix milliseconds, is its heartbeat). latency is a
-- histogram as pipeline.ModelLatency.String writes it.
CREATE TABLE IF NOT EXISTS model_stats (
	model         TEXT    NOT NULL,
	minute        INTEGER NOT NULL,
	process       TEXT    NOT NULL,
	calls         INTEGER NOT NULL,
	errors        INTEGER NOT NULL,
	throttles     INTEGER NOT NULL,
	input_tokens  INTEGER NOT NULL,
	output_tokens INTEGER NOT NULL,
	latency       TEXT    NOT NULL,
	circuit       TEXT    NOT NULL,
	seen_ms       INTEGER NOT NULL,
	PRIMARY KEY (model, minute, process)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS model_stats_minute ON model_stats (minute);
