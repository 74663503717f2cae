-- CRM connectors: the CRMs a business connects, the work each does for our events, the ids our
-- records have there, one writer per contact, and a request budget every worker shares.

-- A business's connection to one CRM account. `secrets` is sealed like channel accounts'.
-- `kind` is checked by the code (a new CRM is a new kind, not a table rebuild).
CREATE TABLE crm_connectors (
    id              TEXT PRIMARY KEY,
    business_id     TEXT NOT NULL REFERENCES businesses (id),
    kind            TEXT NOT NULL,
    name            TEXT NOT NULL,
    settings        TEXT NOT NULL,
    secrets         TEXT NOT NULL,
    enabled         INTEGER NOT NULL DEFAULT 1 CHECK (enabled IN (0, 1)),
    -- The request budget (null: no limit of that kind): per minute, per second and per UTC day.
    per_minute      INTEGER,
    per_second      INTEGER,
    per_day         INTEGER,
    -- Requests granted in the UTC day that began at `day_start_us`.
    day_start_us    INTEGER NOT NULL DEFAULT 0,
    day_count       INTEGER NOT NULL DEFAULT 0,
    -- The token of the last grant: the grant's request row is written only under it.
    last_grant      TEXT,
    -- Set by a 429: no worker calls the CRM for this connector before then.
    paused_until_us INTEGER,
    last_error      TEXT,
    last_error_us   INTEGER,
    last_success_us INTEGER,
    revision        INTEGER NOT NULL DEFAULT 0,
    created_at      TEXT NOT NULL,
    updated_at      TEXT NOT NULL
);
CREATE INDEX crm_connectors_of_business ON crm_connectors (business_id, created_at);

-- One row per request made to a connector's CRM in the last two minutes: the budget counts them
-- over a sliding minute and second, so the limit holds across every worker and location (D1 runs
-- one statement at a time); the day's count is a counter on the connector.
CREATE TABLE crm_requests (
    connector_id TEXT NOT NULL,
    at_us        INTEGER NOT NULL
);
CREATE INDEX crm_requests_of_connector ON crm_requests (connector_id, at_us);

-- Our customer / conversation / message and its id in the CRM, per connector.
CREATE TABLE crm_links (
    connector_id TEXT NOT NULL,
    business_id  TEXT NOT NULL,
    kind         TEXT NOT NULL CHECK (kind IN ('customer', 'conversation', 'message')),
    local_id     TEXT NOT NULL,
    crm_id       TEXT NOT NULL,
    created_us   INTEGER NOT NULL,
    PRIMARY KEY (connector_id, kind, local_id)
);
CREATE INDEX crm_links_by_crm_id ON crm_links (connector_id, kind, crm_id);

-- The sync log: one row per piece of CRM work (an event to follow, an escalation, a note), kept
-- with its outcome. `seq` orders the work of one contact; `customer_id` is the contact.
CREATE TABLE crm_sync_jobs (
    seq             INTEGER PRIMARY KEY AUTOINCREMENT,
    id              TEXT NOT NULL UNIQUE,
    business_id     TEXT NOT NULL REFERENCES businesses (id),
    connector_id    TEXT NOT NULL,
    customer_id     TEXT NOT NULL,
    operation       TEXT NOT NULL,
    subject_id      TEXT NOT NULL,
    -- The event followed; null for work asked through the API.
    event_id        TEXT,
    -- What work asked through the API carries (a note's text, an escalation's reason).
    input           TEXT,
    status          TEXT NOT NULL CHECK (status IN ('pending', 'succeeded', 'skipped', 'failed', 'dead')),
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_us INTEGER NOT NULL,
    -- When the current round of retries began (its creation, or its last replay): work is dead
    -- once it has been retried for the whole retry window from here.
    retry_from_us   INTEGER NOT NULL,
    crm_id          TEXT,
    last_status     INTEGER,
    last_error      TEXT,
    duration_ms     INTEGER,
    created_us      INTEGER NOT NULL,
    updated_us      INTEGER NOT NULL,
    UNIQUE (connector_id, event_id)
);
CREATE INDEX crm_sync_jobs_of_contact ON crm_sync_jobs (connector_id, customer_id, status, seq);
CREATE INDEX crm_sync_jobs_of_connector ON crm_sync_jobs (business_id, connector_id, status, seq);
CREATE INDEX crm_sync_jobs_of_record ON crm_sync_jobs (connector_id, subject_id, seq);
CREATE INDEX crm_sync_jobs_due ON crm_sync_jobs (next_attempt_us) WHERE status = 'pending';

-- One writer per contact: a worker works on a contact's jobs only while it holds this lease.
CREATE TABLE crm_contacts (
    connector_id    TEXT NOT NULL,
    customer_id     TEXT NOT NULL,
    business_id     TEXT NOT NULL,
    lease           TEXT,
    leased_until_us INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (connector_id, customer_id)
);

-- Webhook deliveries a CRM made, by the CRM's event id: a repeated delivery is acknowledged and
-- does nothing.
CREATE TABLE crm_inbound_events (
    connector_id TEXT NOT NULL,
    event_id     TEXT NOT NULL,
    business_id  TEXT NOT NULL,
    received_us  INTEGER NOT NULL,
    PRIMARY KEY (connector_id, event_id)
);
CREATE INDEX crm_inbound_events_by_time ON crm_inbound_events (received_us);

-- Conversations handed to a human: through the API or because the customer asked.
CREATE TABLE escalations (
    id              TEXT PRIMARY KEY,
    business_id     TEXT NOT NULL REFERENCES businesses (id),
    conversation_id TEXT NOT NULL,
    customer_id     TEXT NOT NULL,
    reason          TEXT NOT NULL,
    trigger         TEXT NOT NULL CHECK (trigger IN ('api', 'phrase')),
    -- The inbound message whose phrase triggered it (one escalation per message).
    message_id      TEXT UNIQUE,
    -- When the customer was told a person will reply (once per escalation).
    handed_off_us   INTEGER,
    created_us      INTEGER NOT NULL
);
CREATE INDEX escalations_of_business ON escalations (business_id, created_us);

-- Satisfaction results a CRM reported for a conversation (the latest per connector).
CREATE TABLE crm_satisfaction (
    connector_id    TEXT NOT NULL,
    business_id     TEXT NOT NULL,
    conversation_id TEXT NOT NULL,
    score           REAL,
    level           TEXT,
    comment         TEXT,
    updated_us      INTEGER NOT NULL,
    PRIMARY KEY (connector_id, conversation_id)
);
CREATE INDEX crm_satisfaction_of_business ON crm_satisfaction (business_id, updated_us);

-- When a conversation was last resolved or closed (null while it is open or pending): the
-- analytics' resolution time.
ALTER TABLE conversations ADD COLUMN resolved_at TEXT;
