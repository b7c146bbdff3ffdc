-- The tenant list index holds only jobs that have a tenant: on an open API (no tenants) a
-- create writes one B-tree fewer. List's tenant filter repeats the index's condition
-- (tenant <> '') so that SQLite may use it.
DROP INDEX jobs_tenant_created;
CREATE INDEX jobs_tenant_created ON jobs (tenant, created_at DESC, job_id DESC) WHERE tenant <> '';
