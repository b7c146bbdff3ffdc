-- The list indexes in ascending order, the tenant one holding only jobs that have a tenant. A
-- new job's created_at is the latest, so its entries go at the end of each index (within its
-- status or tenant), where a B-tree appends to its rightmost page and splits it full, instead of
-- at the start of a descending one, split in halves; on an open API (no tenants) a create writes
-- one index fewer. List still reads newest first, scanning them backwards. Rebuilding them
-- blocks writes to jobs while it runs: on a large table, upgrade in a quiet hour.
DROP INDEX IF EXISTS jobs_created;
CREATE INDEX jobs_created ON jobs (created_at, job_id);
DROP INDEX IF EXISTS jobs_status_created;
CREATE INDEX jobs_status_created ON jobs (status, created_at, job_id);
DROP INDEX IF EXISTS jobs_tenant_created;
CREATE INDEX jobs_tenant_created ON jobs (tenant, created_at, job_id) WHERE tenant <> '';
