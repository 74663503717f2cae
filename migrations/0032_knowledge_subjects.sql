-- Personal and private retrieval for the bot: a link says what it holds, each piece whose it is,
-- and a search for a customer asks the indexes for general knowledge and that customer's pieces
-- only (domain::bot::subject). Nothing already indexed changes identity or is embedded again.

-- What the link holds, as JSON (`{"type":"customers","field":"contact.email","key":"email"}`);
-- NULL: general knowledge, the same for every customer (every link before this migration).
ALTER TABLE knowledge_sources ADD COLUMN holds TEXT;
-- Records of a customers link left out for having no readable key (never general knowledge): by
-- the last complete run, and by the run in progress.
ALTER TABLE knowledge_sources ADD COLUMN without_key INTEGER NOT NULL DEFAULT 0;
ALTER TABLE knowledge_sources ADD COLUMN run_without_key INTEGER NOT NULL DEFAULT 0;

-- The piece's subject as its filter token (domain::bot::subject::token): 'general', or a digest of
-- its customer's key. NULL: indexed before this migration, general, and its vector written without
-- the token, which a vector store filters on only once it is written again (the next run of its
-- link writes it again from the store's own values, without embedding it).
ALTER TABLE knowledge_chunks ADD COLUMN subject TEXT;
-- The token as the full-text index holds it: a piece indexed before subjects is general.
ALTER TABLE knowledge_chunks ADD COLUMN fts_subject TEXT GENERATED ALWAYS AS (COALESCE(subject, 'general')) VIRTUAL;

-- The full-text index again, with the subject as a column of its own beside the source, so that a
-- search for a customer is narrowed to general knowledge and their pieces inside MATCH. Its
-- vocabularies read it by name, and go and come back with it.
DROP TRIGGER knowledge_fts_insert;
DROP TRIGGER knowledge_fts_delete;
DROP TRIGGER knowledge_fts_update;
DROP TABLE knowledge_fts_terms;
DROP TABLE knowledge_fts_instances;
DROP TABLE knowledge_fts;
CREATE VIRTUAL TABLE knowledge_fts USING fts5(
    text, fts_source, fts_subject, content = 'knowledge_chunks', content_rowid = 'seq',
    tokenize = 'unicode61 remove_diacritics 0'
);
CREATE TRIGGER knowledge_fts_insert AFTER INSERT ON knowledge_chunks BEGIN
    INSERT INTO knowledge_fts (rowid, text, fts_source, fts_subject)
        VALUES (new.seq, new.text, new.fts_source, new.fts_subject);
END;
CREATE TRIGGER knowledge_fts_delete AFTER DELETE ON knowledge_chunks BEGIN
    INSERT INTO knowledge_fts (knowledge_fts, rowid, text, fts_source, fts_subject)
        VALUES ('delete', old.seq, old.text, old.fts_source, old.fts_subject);
END;
-- A piece's subject changes only from NULL to 'general' (its vector written again), which its
-- token in the index does not see; its text never changes either, but the trigger stays.
CREATE TRIGGER knowledge_fts_update AFTER UPDATE OF text ON knowledge_chunks BEGIN
    INSERT INTO knowledge_fts (knowledge_fts, rowid, text, fts_source, fts_subject)
        VALUES ('delete', old.seq, old.text, old.fts_source, old.fts_subject);
    INSERT INTO knowledge_fts (rowid, text, fts_source, fts_subject)
        VALUES (new.seq, new.text, new.fts_source, new.fts_subject);
END;
INSERT INTO knowledge_fts (knowledge_fts) VALUES ('rebuild');
CREATE VIRTUAL TABLE knowledge_fts_terms USING fts5vocab(knowledge_fts, 'row');
CREATE VIRTUAL TABLE knowledge_fts_instances USING fts5vocab(knowledge_fts, 'instance');

-- Every source with pieces is fetched again soon, so that its vectors are written again with
-- their token; a link is otherwise searched for customers by its general knowledge only once
-- they are (a piece's vector without a token is not found by a customer's search, never leaked).
UPDATE knowledge_sources SET asked_at = COALESCE(asked_at, strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    next_fetch_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now')
    WHERE type IN ('api', 'file', 'webhook') AND next_fetch_at IS NOT NULL AND run_id IS NULL
    AND id IN (SELECT DISTINCT source_id FROM knowledge_chunks);
