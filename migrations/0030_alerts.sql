-- Alerts (docs/alerts.md): rules a business may change, and the alerts they raised. The maintenance
-- sweep measures each rule's condition every minute, raises an alert once when it holds (one open
-- alert per rule and subject at most: the unique index), and resolves it once when it is over;
-- each change is an `alert.raised` or `alert.resolved` webhook event, and an email through the
-- business's Mailgun account when it has one and named recipients.

-- A business's changes to the default rules and who is emailed, as one JSON object
-- (domain::alerts::Settings); no row means the defaults and no email.
CREATE TABLE alert_settings (
    business_id TEXT PRIMARY KEY REFERENCES businesses (id),
    settings    TEXT NOT NULL CHECK (json_valid(settings)),
    updated_at  TEXT NOT NULL
);

CREATE TABLE alerts (
    id             TEXT PRIMARY KEY,
    business_id    TEXT NOT NULL REFERENCES businesses (id),
    -- The rule (domain::alerts::Kind) and what it is about: a connector, a webhook endpoint, a CRM
    -- link (its source), or the business itself; its name as it was when the alert was raised.
    kind           TEXT NOT NULL,
    subject_id     TEXT NOT NULL,
    subject_name   TEXT NOT NULL,
    -- The rule's threshold when it was raised, and the measure that crossed it.
    threshold      INTEGER NOT NULL,
    value          INTEGER NOT NULL,
    message        TEXT NOT NULL,
    raised_ms      INTEGER NOT NULL,
    resolved_ms    INTEGER,
    -- Each of the two emails: 'pending' (to be sent), 'sent', 'failed' (given up on), or 'none'
    -- (nobody to email, or no Mailgun account to send from); the resolution's is null while open.
    raised_email   TEXT NOT NULL CHECK (raised_email IN ('pending', 'sent', 'failed', 'none')),
    resolved_email TEXT CHECK (resolved_email IN ('pending', 'sent', 'failed', 'none')),
    -- Tries of the email being sent, when the next is due, and why the last one failed.
    email_attempts INTEGER NOT NULL DEFAULT 0,
    email_next_ms  INTEGER,
    email_error    TEXT
);
CREATE UNIQUE INDEX alerts_open ON alerts (business_id, kind, subject_id) WHERE resolved_ms IS NULL;
CREATE INDEX alerts_of_business ON alerts (business_id, raised_ms);
CREATE INDEX alerts_email_due ON alerts (email_next_ms) WHERE email_next_ms IS NOT NULL;
CREATE INDEX alerts_resolved ON alerts (resolved_ms) WHERE resolved_ms IS NOT NULL;

-- When the connector's calls began failing: set at the first failure after a success, cleared by
-- the next success (as webhook_endpoints.failing_since_us is), for the "connector failing" rule.
ALTER TABLE crm_connectors ADD COLUMN failing_since_us INTEGER;

-- What the rules read each minute across a shard, found without walking every row: the CRM links
-- whose fetches fail, and the webhook endpoints failing or disabled.
CREATE INDEX knowledge_sources_failing ON knowledge_sources (business_id) WHERE state = 'failing';
CREATE INDEX webhook_endpoints_unwell ON webhook_endpoints (business_id)
    WHERE failing_since_us IS NOT NULL OR enabled = 0;
