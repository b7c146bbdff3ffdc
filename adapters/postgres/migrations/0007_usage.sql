-- Model usage per UTC day, tenant, model and task, added to by every process of a fleet
-- (GET /v1/usage, infleet usage). cost_nano_usd is in billionths of a US dollar. IF NOT EXISTS
-- keeps the script safe to run again should its position among the migrations change.
CREATE TABLE IF NOT EXISTS model_usage (
	day           text   NOT NULL,
	tenant        text   NOT NULL,
	model         text   NOT NULL,
	task          text   NOT NULL,
	calls         bigint NOT NULL,
	input_tokens  bigint NOT NULL,
	output_tokens bigint NOT NULL,
	cost_nano_usd bigint NOT NULL,
	PRIMARY KEY (day, tenant, model, task)
);
