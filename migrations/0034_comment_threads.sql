-- Comments on a page's posts (the Graph API's page `feed` field) are messages of the `facebook`
-- channel, each author's comments under one post a conversation of their own: `thread` is the
-- post's id, and empty for every other conversation (Messenger, WhatsApp, email, SMS). A
-- customer has one current conversation per channel and thread.
ALTER TABLE conversations ADD COLUMN thread TEXT NOT NULL DEFAULT '';
DROP INDEX conversations_current;
CREATE UNIQUE INDEX conversations_current ON conversations (business_id, customer_id, channel, thread)
    WHERE superseded_by IS NULL;

-- A message that answers a comment: the comment's id, and whether it goes privately (the Send
-- API's private reply, into the author's Messenger) rather than as a comment under it.
ALTER TABLE messages ADD COLUMN send_reply_to TEXT;
ALTER TABLE messages ADD COLUMN send_privately INTEGER NOT NULL DEFAULT 0 CHECK (send_privately IN (0, 1));
