-- Model usage per UTC day, tenant, model and task, added to by every process using this file
-- (GET /v1/usage, infleet usage). cost_nano_usd is in billionths of a US dollar. IF NOT EXISTS
-- keeps the script safe to run again should its position among the migrations change.
CREATE TABLE IF NOT EXISTS model_usage (
	day           TEXT    NOT NULL,
	tenant        TEXT    NOT NULL,
	model         TEXT    NOT NULL,
	task          TEXT    NOT NULL,
	calls         INTEGER NOT NULL,
	input_tokens  INTEGER NOT NULL,
	output_tokens INTEGER NOT NULL,
	cost_nano_usd INTEGER NOT NULL,
	PRIMARY KEY (day, tenant, model, task)
) WITHOUT ROWID;
