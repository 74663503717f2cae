-- Channel accounts, conversations, messages and attachments.

-- A business's account on a channel provider, which inbound webhooks name in their path and
-- outbound messages are sent from.
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
    -- Secrets (app secret, access token, verify token, auth token, API key, signing key).
    -- Written by the admin API, read by receivers and senders, never returned.
    secrets     TEXT NOT NULL DEFAULT '{}' CHECK (json_valid(secrets)),
    created_at  TEXT NOT NULL,
    updated_at  TEXT NOT NULL,
    UNIQUE (channel, address)
);
CREATE INDEX channel_accounts_by_business ON channel_accounts (business_id, channel);

-- How a customer is known on a channel: a phone, an email, or a page-scoped id.
CREATE TABLE customer_identities (
    business_id TEXT NOT NULL REFERENCES businesses (id),
    channel     TEXT NOT NULL,
    address     TEXT NOT NULL,
    customer_id TEXT NOT NULL REFERENCES customers (id),
    PRIMARY KEY (business_id, channel, address)
);
CREATE INDEX customer_identities_by_customer ON customer_identities (customer_id);

-- One conversation per customer and channel.
CREATE TABLE conversations (
    id                 TEXT PRIMARY KEY,
    business_id        TEXT NOT NULL REFERENCES businesses (id),
    customer_id        TEXT NOT NULL REFERENCES customers (id),
    channel            TEXT NOT NULL,
    channel_account_id TEXT REFERENCES channel_accounts (id),
    status             TEXT NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'pending', 'resolved', 'closed')),
    assignee           TEXT,
    last_message_at    TEXT,
    created_at         TEXT NOT NULL,
    updated_at         TEXT NOT NULL,
    UNIQUE (business_id, customer_id, channel)
);

CREATE TABLE messages (
    id                  TEXT PRIMARY KEY,
    business_id         TEXT NOT NULL REFERENCES businesses (id),
    conversation_id     TEXT NOT NULL REFERENCES conversations (id),
    customer_id         TEXT NOT NULL REFERENCES customers (id),
    channel             TEXT NOT NULL,
    direction           TEXT NOT NULL CHECK (direction IN ('inbound', 'outbound')),
    content             TEXT NOT NULL DEFAULT '',
    status              TEXT NOT NULL CHECK (status IN ('received', 'queued', 'sent', 'delivered', 'read', 'failed')),
    status_reason       TEXT,
    provider_message_id TEXT,
    -- Microseconds since the epoch, strictly increasing per business in commit order: each
    -- insert takes max(now, latest + 1). Polling by it never misses or repeats a message.
    created_us          INTEGER NOT NULL,
    updated_at          TEXT NOT NULL,
    UNIQUE (business_id, created_us),
    -- Provider retries of one message are one message.
    UNIQUE (business_id, channel, provider_message_id)
);
CREATE INDEX messages_by_conversation ON messages (conversation_id, created_us);

CREATE TABLE attachments (
    id          TEXT PRIMARY KEY,
    business_id TEXT NOT NULL REFERENCES businesses (id),
    message_id  TEXT REFERENCES messages (id),
    filename    TEXT NOT NULL,
    mime_type   TEXT NOT NULL,
    size        INTEGER NOT NULL,
    -- The R2 object key: businesses/<business id>/attachments/<attachment id>.
    storage_key TEXT NOT NULL,
    created_at  TEXT NOT NULL
);
CREATE INDEX attachments_by_message ON attachments (message_id);

-- Inbound WhatsApp messages find their customer by WhatsApp number as well as by phone.
CREATE INDEX customers_by_whatsapp_number ON customers (business_id, whatsapp_number);
