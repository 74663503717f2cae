-- What each business used of what Cloudflare bills, by UTC day (`domain::cost`): counted in each
-- isolate as its invocations end and added here at most every 20 seconds or so per isolate
-- (`edge::bill`), so no request writes a row of its own. One row a business a day; its columns are
-- `domain::cost::COUNTED`, in order.
CREATE TABLE business_usage (
    business_id      TEXT NOT NULL REFERENCES businesses (id),
    -- The UTC day, as `2026-11-29`.
    day              TEXT NOT NULL,
    worker_requests  INTEGER NOT NULL DEFAULT 0,
    d1_rows_read     INTEGER NOT NULL DEFAULT 0,
    d1_rows_written  INTEGER NOT NULL DEFAULT 0,
    kv_reads         INTEGER NOT NULL DEFAULT 0,
    kv_writes        INTEGER NOT NULL DEFAULT 0,
    queue_operations INTEGER NOT NULL DEFAULT 0,
    r2_class_a       INTEGER NOT NULL DEFAULT 0,
    r2_class_b       INTEGER NOT NULL DEFAULT 0,
    do_requests      INTEGER NOT NULL DEFAULT 0,
    UNIQUE (business_id, day)
);

-- The maintenance sweep deletes days past `domain::cost::KEPT_DAYS`, and the operator's total reads
-- a month of every business.
CREATE INDEX business_usage_by_day ON business_usage (day);
