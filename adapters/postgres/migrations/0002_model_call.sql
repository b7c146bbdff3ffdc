-- How the model layer answered a job (degraded, fallbacks, prompt); NULL when nothing is worth
-- recording.
ALTER TABLE jobs ADD COLUMN model_call jsonb;
