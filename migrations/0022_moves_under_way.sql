-- The directory's entries a move is under way in or left a copy behind by (docs/operations.md,
-- "Moving a business to another shard"): the sweep reads them every run to leave those businesses
-- alone where their rows are not their settled copy, and to delete copies no command deletes any
-- more. A handful of rows among one a business, so the sweep reads this index, not the table.
CREATE INDEX business_shards_moves ON business_shards (business_id)
    WHERE moving_to IS NOT NULL OR moved_from IS NOT NULL;
