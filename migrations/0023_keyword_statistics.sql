-- Keyword search ranks with the business's own statistics (README, "CRM links"): FTS5's bm25()
-- takes its piece count, word counts and average length from the whole index, which every
-- business on the shard shares, so a score would tell whether a word occurs in another business's
-- data. The ranking is now computed from counts within the searched sources only.

-- How often each word occurs in each piece (one row per occurrence, read by the word): a word's
-- frequency in the pieces that hold it.
CREATE VIRTUAL TABLE knowledge_fts_instances USING fts5vocab(knowledge_fts, 'instance');

-- The words (tokens) of the pieces the last complete run indexed, and of those the run in
-- progress has read: with `pieces`, a source's average piece length. A source indexed before
-- this migration has 0 until its next run, and ranks without length normalisation until then.
ALTER TABLE knowledge_sources ADD COLUMN tokens INTEGER NOT NULL DEFAULT 0;
ALTER TABLE knowledge_sources ADD COLUMN run_tokens INTEGER NOT NULL DEFAULT 0;
