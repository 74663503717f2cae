-- Files received with messages that no fetch settled (a queue message lost, every try failed):
-- the maintenance sweep hands each back to the media-fetcher once, and fails it after two hours so
-- that its message's held-back event goes out.
ALTER TABLE attachments ADD COLUMN requeued_at TEXT;
CREATE INDEX attachments_pending ON attachments (created_at) WHERE status = 'pending';
