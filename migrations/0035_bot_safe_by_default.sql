-- The bot, safe by default (docs/bot.md): a turn kept as a row from the moment its message is
-- stored, a comment's public answer apart from its private one, what the answer check refused,
-- links whose records name customers never taken as general knowledge unless the business says
-- so, and a link's pieces re-tagged without being embedded again when what it holds changes.

-- A customer message a page's bot is to answer, written in the message's own batch when the
-- page's bot on the channel is enabled, and deleted when its turn is logged. The queue message
-- that hands it to the bot may be lost (a failed send, a queue outage): the sweep hands over
-- again every turn that waited too long, so no message goes unanswered for that.
CREATE TABLE bot_turns (
    business_id TEXT NOT NULL,
    message_id  TEXT NOT NULL,
    page_id     TEXT NOT NULL,
    channel     TEXT NOT NULL CHECK (channel IN ('facebook', 'messenger')),
    -- A comment's post and the comment's own id (Meta's); NULL for a Messenger message.
    post_id     TEXT,
    comment_id  TEXT,
    -- When it was last handed to the bot's queue (ms): the sweep's clock.
    queued_ms   INTEGER NOT NULL,
    -- How many times the sweep handed it over again.
    requeued    INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (business_id, message_id)
);
CREATE INDEX bot_turns_waiting ON bot_turns (queued_ms);

-- A comment answered under it for everyone: what was said there (general knowledge, or the
-- business's acknowledgement of a private answer). `text` stays what its author was sent.
ALTER TABLE bot_answers ADD COLUMN public_text TEXT;
-- What the answer check refused ([{"kind", "value"}]), for a hand-off with reason `refused`.
ALTER TABLE bot_answers ADD COLUMN refusals TEXT NOT NULL DEFAULT '[]' CHECK (json_valid(refusals));

-- `public` was the default of `comment_reply` and answered a commenter's own record under the
-- post. A bot that holds it was never set otherwise by anyone who saw a choice that safe (the
-- console preselected it): it takes the new default, `auto`, which answers privately wherever
-- the page holds customers' records.
UPDATE bots SET settings = json_set(settings, '$.comment_reply', 'auto')
    WHERE json_extract(settings, '$.comment_reply') = 'public';

-- Whether a link whose `holds` was never stated (NULL) may be taken as general knowledge: NULL
-- until a run has read its data; 'clean' when a whole run saw no customer identifiers in its
-- records; otherwise what was seen, as JSON (`{"field": "email", "key": "email"}`: the field
-- the business is asked to confirm). Only a stated `holds` or 'clean' is ever searched.
ALTER TABLE knowledge_sources ADD COLUMN holds_check TEXT;
-- Every link of unstated holds is read again soon, so that it is checked (its unchanged pieces
-- are not embedded again); until then it is not searched as anyone's knowledge.
UPDATE knowledge_sources SET asked_at = COALESCE(asked_at, strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    next_fetch_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now')
    WHERE holds IS NULL AND type IN ('api', 'file', 'webhook') AND next_fetch_at IS NOT NULL AND run_id IS NULL;

-- The SHA-256 of a piece's content alone, whatever its subject: a piece whose link now holds
-- something else (its subject, and so its identity, changed) takes the vector of the piece with
-- the same content instead of being embedded again. Known for general pieces (their identity is
-- their content's); a customer's piece indexed before this has none, and is embedded again once.
ALTER TABLE knowledge_chunks ADD COLUMN content_hash TEXT;
UPDATE knowledge_chunks SET content_hash = hash WHERE subject IS NULL OR subject = 'general';
CREATE INDEX knowledge_chunks_by_content ON knowledge_chunks (source_id, content_hash)
    WHERE content_hash IS NOT NULL;

-- The console's customer picker (the bot's try box asks as a customer picked by name or email):
-- names found by their lowercase prefix, a range of this index.
CREATE INDEX customers_by_name ON customers (business_id, lower(name));
