-- Each write of a business's directory entry names the revision it read (edge::db::directory::record):
-- a move, abort or restore step whose entry changed since it read it (another step ran between) is
-- refused, 409, instead of writing over the other's entry.
ALTER TABLE business_shards ADD COLUMN revision INTEGER NOT NULL DEFAULT 0;
