-- Secrets at rest: `channel_accounts.secrets` now holds the JSON object of secrets sealed as one
-- value (`v1:<key id>:<base64url>`, see shared/domain/src/sealed.rs), which is not JSON. SQLite
-- cannot change a CHECK constraint in place, so the table is rebuilt with the check relaxed to
-- "sealed, or the clear JSON of a row written before sealing" (the runtime reseals those when it
-- reads them). `conversations` references the table by name: with the checks of foreign keys
-- deferred to the commit, the rows are copied aside, the table is dropped and created anew, and
-- the rows copied back, which gives every conversation its account again before the commit.
PRAGMA defer_foreign_keys = on;

CREATE TABLE channel_accounts_copy AS SELECT * FROM channel_accounts;
DROP TABLE channel_accounts;
CREATE TABLE channel_accounts (
    id          TEXT PRIMARY KEY,
    business_id TEXT NOT NULL REFERENCES businesses (id),
    channel     TEXT NOT NULL CHECK (channel IN ('whatsapp', 'email', 'sms', 'facebook', 'instagram')),
    provider    TEXT NOT NULL CHECK (provider IN ('meta', 'twilio', 'mailgun')),
    -- The provider's id of the account: WhatsApp phone number id, Facebook page id, Instagram
    -- account id, Twilio phone number (E.164), or the email address mail is received at.
    address     TEXT NOT NULL,
    name        TEXT,
    -- Settings that are not secret (API base URL, Twilio account SID, Mailgun domain).
    settings    TEXT NOT NULL DEFAULT '{}' CHECK (json_valid(settings)),
    -- Secrets (app secret, access token, verify token, auth token, API key, signing key), sealed.
    -- Written by the admin API, read by receivers and senders, never returned.
    secrets     TEXT NOT NULL CHECK (secrets LIKE 'v1:%' OR json_valid(secrets)),
    created_at  TEXT NOT NULL,
    updated_at  TEXT NOT NULL,
    UNIQUE (channel, address)
);
INSERT INTO channel_accounts (id, business_id, channel, provider, address, name, settings, secrets, created_at,
                              updated_at)
SELECT id, business_id, channel, provider, address, name, settings, secrets, created_at, updated_at
FROM channel_accounts_copy;
DROP TABLE channel_accounts_copy;
CREATE INDEX channel_accounts_by_business ON channel_accounts (business_id, channel);
