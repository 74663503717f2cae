-- The bot that answers a page's customers from its CRM links (README.md, "The bot"): one per
-- Facebook page and channel (`facebook`: comments on the page's posts; `messenger`: the page's
-- chats), its settings, the state it keeps per conversation, and the log of every turn it took.

CREATE TABLE bots (
    business_id TEXT NOT NULL REFERENCES businesses (id),
    -- The Facebook page: the address of one of the business's facebook channel accounts.
    page_id     TEXT NOT NULL,
    channel     TEXT NOT NULL CHECK (channel IN ('facebook', 'messenger')),
    -- Whether it answers (the settings' `enabled`), kept apart so that the inbound path reads it
    -- without parsing the settings.
    enabled     INTEGER NOT NULL CHECK (enabled IN (0, 1)),
    -- domain::bot::settings::BotSettings as the API wrote it (its `enabled` included).
    settings    TEXT NOT NULL CHECK (json_valid(settings)),
    created_at  TEXT NOT NULL,
    updated_at  TEXT NOT NULL,
    PRIMARY KEY (business_id, page_id, channel)
);

-- What the bot has done in one conversation since it was last resolved. A conversation resolved
-- and reopened (its reopen_count moved on) or a new one after it starts with no row: fresh. A
-- person's reply in the spell (an outbound message that is none of the bot's) is read from
-- `messages`, not kept here.
CREATE TABLE bot_conversations (
    business_id     TEXT NOT NULL,
    conversation_id TEXT NOT NULL,
    -- The conversation's reopen_count when the row was written: a row of an earlier spell of the
    -- conversation is stale.
    reopen_count    INTEGER NOT NULL,
    answers         INTEGER NOT NULL DEFAULT 0,
    -- When the bot handed the conversation to people; NULL while it answers.
    handed_off_at   TEXT,
    updated_at      TEXT NOT NULL,
    PRIMARY KEY (business_id, conversation_id)
);

-- Every turn of the bot: the question, what it did and why, the pieces it drew on (by link and
-- record), the model and how long it took; and, for a reply or a hand-off, the message it sent.
-- Asking the bot in the console (`is_try`) is logged too, and sends nothing.
CREATE TABLE bot_answers (
    id               TEXT PRIMARY KEY,
    business_id      TEXT NOT NULL REFERENCES businesses (id),
    page_id          TEXT NOT NULL,
    channel          TEXT NOT NULL,
    customer_id      TEXT,
    conversation_id  TEXT,
    -- The customer's message answered (one turn per message: a redelivery is the same turn).
    message_id       TEXT UNIQUE,
    question         TEXT NOT NULL,
    action           TEXT NOT NULL CHECK (action IN ('reply', 'handoff', 'silent')),
    -- Why: asked, most_answers, low_score, model, refused, unreadable, generator_failed,
    -- disabled, outside_hours, with_people; NULL for a reply.
    reason           TEXT,
    text             TEXT,
    -- [{"source_id", "record", "part", "score", "kind", "used"}], best first.
    pieces           TEXT NOT NULL DEFAULT '[]' CHECK (json_valid(pieces)),
    model            TEXT,
    generator_ms     INTEGER,
    total_ms         INTEGER NOT NULL,
    -- The message the bot sent: its reply, or the hand-off message; and, for a comment answered
    -- both in public and privately, the private one.
    reply_message_id TEXT,
    private_message_id TEXT,
    is_try           INTEGER NOT NULL DEFAULT 0 CHECK (is_try IN (0, 1)),
    created_at       TEXT NOT NULL
);
CREATE INDEX bot_answers_by_bot ON bot_answers (business_id, page_id, channel, created_at);
CREATE INDEX bot_answers_by_conversation ON bot_answers (conversation_id, created_at)
    WHERE conversation_id IS NOT NULL;
CREATE INDEX bot_answers_by_reply ON bot_answers (reply_message_id) WHERE reply_message_id IS NOT NULL;
CREATE INDEX bot_answers_by_private_reply ON bot_answers (private_message_id) WHERE private_message_id IS NOT NULL;

-- A bot's hand-off is an escalation like the API's and a phrase's: the trigger `bot` joins them.
-- SQLite cannot change a CHECK in place; the table is rebuilt (nothing references it).
CREATE TABLE escalations_new (
    id              TEXT PRIMARY KEY,
    business_id     TEXT NOT NULL REFERENCES businesses (id),
    conversation_id TEXT NOT NULL,
    customer_id     TEXT NOT NULL,
    reason          TEXT NOT NULL,
    trigger         TEXT NOT NULL CHECK (trigger IN ('api', 'phrase', 'bot')),
    message_id      TEXT UNIQUE,
    handed_off_us   INTEGER,
    created_us      INTEGER NOT NULL,
    priority        INTEGER CHECK (priority BETWEEN 1 AND 5),
    team_id         TEXT
);
INSERT INTO escalations_new (id, business_id, conversation_id, customer_id, reason, trigger, message_id,
                             handed_off_us, created_us, priority, team_id)
SELECT id, business_id, conversation_id, customer_id, reason, trigger, message_id, handed_off_us, created_us,
       priority, team_id
FROM escalations;
DROP TABLE escalations;
ALTER TABLE escalations_new RENAME TO escalations;
CREATE INDEX escalations_of_business ON escalations (business_id, created_us);
-- A conversation's escalations (the bot's KPIs ask whether one followed its reply).
CREATE INDEX escalations_by_conversation ON escalations (conversation_id, created_us);
