-- How many pieces hold each word of the full-text index (one row per word, read by the word): a
-- keyword search leaves out the query's words that half the index holds or more, which BM25 gives
-- no weight and which would make it rank every piece that holds them.
CREATE VIRTUAL TABLE knowledge_fts_terms USING fts5vocab(knowledge_fts, 'row');
