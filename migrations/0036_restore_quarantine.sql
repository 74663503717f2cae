-- A restored business comes back in quarantine (docs/operations.md, "Backups and recovery"):
-- nothing it held reaches a customer, an endpoint or a CRM until the operator resumes each part.

-- A channel account that sends nothing: paused by a restore until it is resumed. NULL: active.
ALTER TABLE channel_accounts ADD COLUMN paused_at TEXT;

-- What a restore paused, to resume exactly that (`{"restored_at", "channel_accounts": [ids],
-- "connectors": [ids], "webhooks": [ids], "links": [[source id, channel]]}`, the parts resumed
-- taken out); NULL when nothing waits to be resumed.
ALTER TABLE businesses ADD COLUMN quarantine TEXT CHECK (quarantine IS NULL OR json_valid(quarantine));
