-- Files received with a message are fetched from the provider by a queue consumer, after the
-- message is stored: the row comes first (so no stored object is ever without one), `pending`
-- with where to fetch the file from, then `stored`, or `failed` with the reason once every try
-- failed. Uploads and email attachments are `stored` at once.
ALTER TABLE attachments ADD COLUMN status TEXT NOT NULL DEFAULT 'stored' CHECK (status IN ('pending', 'stored', 'failed'));
ALTER TABLE attachments ADD COLUMN status_reason TEXT;
-- The provider's description of a pending file (JSON: its URL or media id), cleared once settled.
ALTER TABLE attachments ADD COLUMN source TEXT;
-- The channel account whose credentials fetch a pending file.
ALTER TABLE attachments ADD COLUMN account_id TEXT;
