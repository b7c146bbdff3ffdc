-- The list indexes in ascending order, the tenant one holding only jobs that have a tenant. A
-- new job's created_at is the latest, so its entries go at the end of each index (within its
-- status or tenant), where a B-tree appends to its rightmost page and splits it full, instead of
-- at the start of a descending one, split in halves; on an open API (no tenants) a create writes
-- one index fewer. List still reads newest first, scanning them backwards. Migrate builds them
-- inside a transaction, which blocks writes to jobs while it builds; on a large table create
-- them first without blocking, with the same CREATE INDEX statements and CONCURRENTLY (then
-- DROP INDEX CONCURRENTLY the three old ones), and this migration then finds them there.
CREATE INDEX IF NOT EXISTS jobs_created_asc ON jobs (created_at, job_id);
CREATE INDEX IF NOT EXISTS jobs_status_created_asc ON jobs (status, created_at, job_id);
CREATE INDEX IF NOT EXISTS jobs_tenant_created_asc ON jobs (tenant, created_at, job_id) WHERE tenant <> '';
DROP INDEX IF EXISTS jobs_created;
DROP INDEX IF EXISTS jobs_status_created;
DROP INDEX IF EXISTS jobs_tenant_created;
