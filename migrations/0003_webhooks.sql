-- Outbound webhooks: the endpoints a business registered, the events that happened, one delivery
-- per event and endpoint, and a log line per attempt.

CREATE TABLE webhook_endpoints (
    id                       TEXT PRIMARY KEY,
    business_id              TEXT NOT NULL REFERENCES businesses (id),
    name                     TEXT NOT NULL,
    url                      TEXT NOT NULL,
    -- JSON array of event names.
    events                   TEXT NOT NULL,
    secret                   TEXT NOT NULL,
    -- The secret before the last rotation, still signing beside the new one until it expires.
    previous_secret          TEXT,
    previous_secret_until_us INTEGER,
    enabled                  INTEGER NOT NULL DEFAULT 1 CHECK (enabled IN (0, 1)),
    disabled_reason          TEXT,
    retry_schedule           TEXT NOT NULL DEFAULT 'standard' CHECK (retry_schedule IN ('standard', 'extended')),
    timeout_seconds          INTEGER NOT NULL,
    disable_after_seconds    INTEGER NOT NULL,
    -- Set at the first failure after a success, cleared by the next success.
    failing_since_us         INTEGER,
    created_at               TEXT NOT NULL,
    updated_at               TEXT NOT NULL
);
CREATE INDEX webhook_endpoints_of_business ON webhook_endpoints (business_id, created_at);

-- Written in the same transaction as the change it reports, and only when an enabled endpoint
-- of the business subscribes to its type. `snapshot` is the record the event is about (with
-- its customer) as that transaction left it; `payload` is the body built from it when the event
-- is first dispatched, so that every attempt and replay sends the same bytes.
CREATE TABLE webhook_events (
    id            TEXT PRIMARY KEY,
    business_id   TEXT NOT NULL REFERENCES businesses (id),
    type          TEXT NOT NULL,
    subject_id    TEXT NOT NULL,
    detail        TEXT,
    snapshot      TEXT,
    base_url      TEXT,
    payload       TEXT,
    created_us    INTEGER NOT NULL,
    dispatched_us INTEGER
);
CREATE INDEX webhook_events_undispatched ON webhook_events (created_us) WHERE dispatched_us IS NULL;
CREATE INDEX webhook_events_of_subject ON webhook_events (business_id, subject_id, type);

CREATE TABLE webhook_deliveries (
    id              TEXT PRIMARY KEY,
    business_id     TEXT NOT NULL REFERENCES businesses (id),
    endpoint_id     TEXT NOT NULL,
    event_id        TEXT NOT NULL,
    event_type      TEXT NOT NULL,
    status          TEXT NOT NULL CHECK (status IN ('pending', 'delivered', 'dead')),
    -- Attempts in the current round (a replay starts a new round).
    attempts        INTEGER NOT NULL DEFAULT 0,
    replays         INTEGER NOT NULL DEFAULT 0,
    next_attempt_us INTEGER,
    -- While an attempt is in flight, no other worker may make one.
    leased_until_us INTEGER,
    last_status     INTEGER,
    last_error      TEXT,
    event_us        INTEGER NOT NULL,
    updated_us      INTEGER NOT NULL,
    UNIQUE (endpoint_id, event_id)
);
CREATE INDEX webhook_deliveries_of_endpoint ON webhook_deliveries (business_id, endpoint_id, status, event_us);
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (next_attempt_us) WHERE status = 'pending';

CREATE TABLE webhook_attempts (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    business_id   TEXT NOT NULL REFERENCES businesses (id),
    endpoint_id   TEXT NOT NULL,
    -- Null for a test event, which has no delivery.
    delivery_id   TEXT,
    event_id      TEXT NOT NULL,
    event_type    TEXT NOT NULL,
    attempt       INTEGER NOT NULL,
    replay        INTEGER NOT NULL DEFAULT 0,
    url           TEXT NOT NULL,
    status_code   INTEGER,
    response_body TEXT,
    duration_ms   INTEGER NOT NULL,
    error         TEXT,
    outcome       TEXT NOT NULL CHECK (outcome IN ('delivered', 'retrying', 'dead')),
    attempted_us  INTEGER NOT NULL
);
CREATE INDEX webhook_attempts_of_endpoint ON webhook_attempts (business_id, endpoint_id, id);
CREATE INDEX webhook_attempts_of_event ON webhook_attempts (business_id, event_id, id);
