-- Moving a business to another shard (docs/scaling.md, `crm-edge move-business`), recorded in
-- its directory entry. While `moving_to` is set the business is paused: its writes are answered
-- 503 from the moment every isolate has seen the entry (`move_started_ms` and the directory's
-- freshness) until the copy is verified and the entry switched. After the switch `moved_from`
-- names the shard whose old copy is deleted once every isolate has seen the new entry
-- (`switched_ms`).
ALTER TABLE business_shards ADD COLUMN moving_to INTEGER CHECK (moving_to >= 0);
ALTER TABLE business_shards ADD COLUMN move_started_ms INTEGER;
ALTER TABLE business_shards ADD COLUMN moved_from INTEGER CHECK (moved_from >= 0);
ALTER TABLE business_shards ADD COLUMN switched_ms INTEGER;
