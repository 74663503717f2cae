-- A channel account's conversations, found by key: what deleting an account asks (whether any
-- conversation refers to it) and what the foreign key of conversations.channel_account_id checks
-- when an account is deleted, which would otherwise read every conversation of the shard.
CREATE INDEX conversations_by_account ON conversations (channel_account_id, business_id);
