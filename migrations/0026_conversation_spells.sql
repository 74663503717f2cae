-- A customer who writes after their resolved or closed conversation on a channel has been quiet
-- for the business's window gets a new conversation (with its own conversation.created); within
-- the window the old one is reopened, as before. So a customer has one *current* conversation per
-- channel, and any number of earlier ones, each pointing at the one that followed it.
--
-- SQLite cannot drop a table constraint in place: `UNIQUE (business_id, customer_id, channel)`
-- becomes a unique index over the current conversations only, and the table is rebuilt for it.
-- `messages` references the table by name: with the checks of foreign keys deferred to the
-- commit, the rows are copied aside, the table is dropped and created anew, and the rows copied
-- back, which gives every message its conversation again before the commit.
PRAGMA defer_foreign_keys = on;

CREATE TABLE conversations_copy AS SELECT * FROM conversations;
DROP TABLE conversations;
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
    resolved_at        TEXT,
    reopen_count       INTEGER NOT NULL DEFAULT 0,
    reopened_from      TEXT,
    reopened_by        TEXT,
    -- The conversation the customer's next message on the channel opened after this one had been
    -- resolved and quiet; NULL for the current one.
    superseded_by      TEXT
);
INSERT INTO conversations (id, business_id, customer_id, channel, channel_account_id, status, assignee,
                           last_message_at, created_at, updated_at, resolved_at, reopen_count, reopened_from,
                           reopened_by)
SELECT id, business_id, customer_id, channel, channel_account_id, status, assignee, last_message_at, created_at,
       updated_at, resolved_at, reopen_count, reopened_from, reopened_by
FROM conversations_copy;
DROP TABLE conversations_copy;
CREATE UNIQUE INDEX conversations_current ON conversations (business_id, customer_id, channel)
    WHERE superseded_by IS NULL;
-- A customer's conversations, current and earlier (GET /api-conversations-by-customer).
CREATE INDEX conversations_by_customer ON conversations (business_id, customer_id, channel);
CREATE INDEX conversations_by_account ON conversations (channel_account_id, business_id);

-- The business's window, in hours; NULL is the default (shared/domain/src/message.rs).
ALTER TABLE businesses ADD COLUMN new_conversation_after_hours INTEGER
    CHECK (new_conversation_after_hours BETWEEN 0 AND 8760);
