-- Rate-limit token buckets and quota counters shared by every ingress of a fleet.
-- updated_ns is the Unix time in nanoseconds of the last refill; last_ok says whether the last
-- call was granted (read back with RETURNING).
CREATE TABLE rate_buckets (
	key        text             NOT NULL PRIMARY KEY,
	tokens     double precision NOT NULL,
	updated_ns bigint           NOT NULL,
	last_ok    boolean          NOT NULL DEFAULT true
);

-- Quota usage per key and period (the key names the period).
CREATE TABLE quota_usage (
	key     text    NOT NULL PRIMARY KEY,
	used    bigint  NOT NULL,
	last_ok boolean NOT NULL DEFAULT true
);
