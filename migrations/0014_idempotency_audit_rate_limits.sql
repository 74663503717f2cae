-- Idempotency keys: a POST that creates or sends, retried with the same `Idempotency-Key`, gets the
-- first response again instead of running twice (README, "Retrying safely").
CREATE TABLE idempotency_keys (
    business_id    TEXT NOT NULL REFERENCES businesses (id),
    -- The client's key, as sent.
    key            TEXT NOT NULL,
    -- SHA-256 of the method, the path and the body (a multipart body without its boundary): the
    -- same key with another request is refused, not replayed.
    fingerprint    TEXT NOT NULL,
    -- Random per run: only the run that claimed the key completes or releases it.
    claim          TEXT NOT NULL,
    state          TEXT NOT NULL CHECK (state IN ('running', 'done')),
    -- The first response, once done. Its body is sealed with SECRETS_KEY (bound to the claim):
    -- a response may carry a secret shown once, such as a new webhook's signing secret.
    status         INTEGER,
    content_type   TEXT,
    body           TEXT,
    created_us     INTEGER NOT NULL,
    -- A run that has not finished by then (its worker died) may be taken over by a retry.
    lease_until_us INTEGER NOT NULL,
    PRIMARY KEY (business_id, key)
);
-- The maintenance sweep deletes keys older than 24 hours.
CREATE INDEX idempotency_keys_created ON idempotency_keys (created_us);

-- The audit log: who did what to a business's keys, secrets, accounts and tokens, when and from
-- where. Never a secret: details name the fields that changed, not their values.
CREATE TABLE audit_log (
    id          TEXT PRIMARY KEY,
    business_id TEXT NOT NULL REFERENCES businesses (id),
    at_us       INTEGER NOT NULL,
    -- "admin" (the admin token) or "key:<prefix>" (an API key, by its displayed prefix).
    actor       TEXT NOT NULL,
    action      TEXT NOT NULL,
    target_type TEXT NOT NULL,
    target_id   TEXT,
    detail      TEXT NOT NULL DEFAULT '{}',
    client_ip   TEXT
);
CREATE INDEX audit_log_business ON audit_log (business_id, at_us DESC, id DESC);

-- A business's API rate limit (README, "Rate limits"): each of its keys gets a token bucket of
-- `rate_limit_burst` requests refilled at `rate_limit_per_minute`. NULL: the default.
ALTER TABLE businesses ADD COLUMN rate_limit_per_minute INTEGER;
ALTER TABLE businesses ADD COLUMN rate_limit_burst INTEGER;
