-- Outbound messages: what a retry must not redo, and what must not be lost while a send is in
-- flight.

-- How many parts of a multi-part send (on providers that take one file per request) the provider
-- has accepted: a retry sends only the rest.
ALTER TABLE messages ADD COLUMN parts_sent INTEGER NOT NULL DEFAULT 0;

-- A provider's status callback for a message id no message of ours holds yet: the callback
-- overtook the answer to the send. It is applied when the dispatcher records that id, and
-- removed then.
CREATE TABLE early_statuses (
    business_id         TEXT NOT NULL REFERENCES businesses (id),
    channel             TEXT NOT NULL,
    provider_message_id TEXT NOT NULL,
    status              TEXT NOT NULL,
    reason              TEXT,
    received_us         INTEGER NOT NULL,
    PRIMARY KEY (business_id, channel, provider_message_id, status)
);
CREATE INDEX early_statuses_by_age ON early_statuses (received_us);

-- The provider's id for the first accepted part while later parts are still to be sent: kept
-- off `provider_message_id` until the whole message is sent, so that a status callback for the
-- first part waits in early_statuses and cannot overtake `message.sent`.
ALTER TABLE messages ADD COLUMN partial_provider_id TEXT;
