-- API usage per key (docs/limits.md, "Usage per key"): each key's requests by the hour and
-- endpoint, by what they were answered with, and its latest request. The gateway counts them in
-- its isolate and the key's limiter object adds them here now and then, so a row is written per
-- report, not per request. Rows older than 35 days go in the maintenance sweep.
CREATE TABLE api_key_usage (
    business_id  TEXT NOT NULL REFERENCES businesses (id),
    key_id       TEXT NOT NULL REFERENCES api_keys (id),
    -- The hour's start, in milliseconds since the epoch (UTC).
    hour_ms      INTEGER NOT NULL,
    -- The method and the route that served it: `POST /api-customers-sync`, `DELETE /api-keys/*`.
    endpoint     TEXT NOT NULL,
    status_2xx   INTEGER NOT NULL DEFAULT 0,
    status_3xx   INTEGER NOT NULL DEFAULT 0,
    status_4xx   INTEGER NOT NULL DEFAULT 0,
    status_5xx   INTEGER NOT NULL DEFAULT 0,
    -- Refused by the key's rate limit (also counted in status_4xx).
    rate_limited INTEGER NOT NULL DEFAULT 0,
    UNIQUE (business_id, hour_ms, key_id, endpoint)
);
-- The sweep finds the old rows by it; adding to a row's counts leaves it as it is.
CREATE INDEX api_key_usage_by_hour ON api_key_usage (hour_ms);

ALTER TABLE api_keys ADD COLUMN last_used_at TEXT;
ALTER TABLE api_keys ADD COLUMN last_used_address TEXT;
ALTER TABLE api_keys ADD COLUMN last_used_endpoint TEXT;
