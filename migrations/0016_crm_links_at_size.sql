-- CRM links of any size (README, "CRM links"): a source's data is read and indexed in runs of
-- slices, one invocation each, resumable; keyword search reads SQLite's own full-text index; and
-- vectors live only in the vector store (Vectorize, or the local stand-in), never in D1.

-- The run in progress, if any: which run, where it goes on (the next page and the records the
-- pages before held, as JSON), its next slice, what it has seen, and when it last moved.
ALTER TABLE knowledge_sources ADD COLUMN run_id TEXT;
ALTER TABLE knowledge_sources ADD COLUMN run_next TEXT;
ALTER TABLE knowledge_sources ADD COLUMN run_slice INTEGER NOT NULL DEFAULT 0;
ALTER TABLE knowledge_sources ADD COLUMN run_started_at TEXT;
ALTER TABLE knowledge_sources ADD COLUMN run_touched_at TEXT;
ALTER TABLE knowledge_sources ADD COLUMN run_records INTEGER NOT NULL DEFAULT 0;
ALTER TABLE knowledge_sources ADD COLUMN run_pieces INTEGER NOT NULL DEFAULT 0;
ALTER TABLE knowledge_sources ADD COLUMN run_embedded INTEGER NOT NULL DEFAULT 0;
ALTER TABLE knowledge_sources ADD COLUMN run_removed INTEGER NOT NULL DEFAULT 0;
ALTER TABLE knowledge_sources ADD COLUMN run_changed INTEGER NOT NULL DEFAULT 0;
-- Whether the run already started over once (a resumed page the CRM refused).
ALTER TABLE knowledge_sources ADD COLUMN run_restarted INTEGER NOT NULL DEFAULT 0;
-- A fetch asked for (added, refreshed, pushed to, due) and not started yet: fetches asked while
-- one is queued or running are one fetch.
ALTER TABLE knowledge_sources ADD COLUMN asked_at TEXT;
-- Refreshes asked through the API in the current hour (`2026-11-24T09`), bounded per link.
ALTER TABLE knowledge_sources ADD COLUMN refresh_hour TEXT;
ALTER TABLE knowledge_sources ADD COLUMN refresh_count INTEGER NOT NULL DEFAULT 0;
-- Pieces indexed by the last complete run, and how many of them it embedded and removed (what a
-- refresh cost).
ALTER TABLE knowledge_sources ADD COLUMN pieces INTEGER NOT NULL DEFAULT 0;
ALTER TABLE knowledge_sources ADD COLUMN last_embedded INTEGER NOT NULL DEFAULT 0;
ALTER TABLE knowledge_sources ADD COLUMN last_removed INTEGER NOT NULL DEFAULT 0;
-- A webhook link's last accepted push: its id and signed time (a replay, or an older snapshot
-- arriving late, is refused) and where its body is kept in R2.
ALTER TABLE knowledge_sources ADD COLUMN pushed_id TEXT;
ALTER TABLE knowledge_sources ADD COLUMN pushed_at_seconds INTEGER;
ALTER TABLE knowledge_sources ADD COLUMN pushed_key TEXT;
UPDATE knowledge_sources SET pushed_key = 'knowledge/' || id || '/pushed' WHERE type = 'webhook';
-- Runs not moving (their queue message lost) are found by the sweep.
CREATE INDEX knowledge_sources_running ON knowledge_sources (run_touched_at) WHERE run_id IS NOT NULL;

-- What each slice of a run saw: the pieces' hash prefixes, one row per slice, so that the run's
-- end removes exactly what left the data without a write per unchanged piece.
CREATE TABLE knowledge_run_seen (
    source_id   TEXT NOT NULL REFERENCES knowledge_sources (id) ON DELETE CASCADE,
    business_id TEXT NOT NULL,
    run_id    TEXT NOT NULL,
    slice     INTEGER NOT NULL,
    page      INTEGER NOT NULL,
    -- A JSON array of the first 16 hex digits of each piece's hash.
    hashes    TEXT NOT NULL CHECK (json_valid(hashes)),
    PRIMARY KEY (source_id, run_id, slice, page)
);

-- The pieces, rebuilt: an integer key that never changes or returns (the full-text index's row id),
-- and no vector column. Vectors were kept in D1 by the local stack only (production's were always
-- in Vectorize): those pieces are left behind, and their sources indexed again, their vectors going
-- to the local vector store.
CREATE TABLE knowledge_chunks_new (
    seq         INTEGER PRIMARY KEY AUTOINCREMENT,
    -- Also the vector's id in the vector store.
    id          TEXT NOT NULL UNIQUE,
    business_id TEXT NOT NULL,
    source_id   TEXT NOT NULL REFERENCES knowledge_sources (id) ON DELETE CASCADE,
    -- SHA-256 of the piece's content without its record's position: its identity on refresh.
    hash        TEXT NOT NULL,
    -- Where the piece was first seen (`customers[3]`); an unchanged record that moved keeps it.
    record      TEXT NOT NULL,
    part        INTEGER NOT NULL,
    text        TEXT NOT NULL,
    -- Which model made the vector (domain::links::search::Embedder::id).
    embedder    TEXT NOT NULL,
    -- The run that added the piece, until it ends (NULL: live). Search sees live pieces only,
    -- so a refresh that fails half-way leaves the data as it was.
    run_id      TEXT,
    created_at  TEXT NOT NULL,
    updated_at  TEXT NOT NULL,
    -- The source as one token of the full-text index: `s` and its id without hyphens.
    fts_source  TEXT GENERATED ALWAYS AS ('s' || replace(source_id, '-', '')) VIRTUAL,
    UNIQUE (source_id, hash)
);
INSERT INTO knowledge_chunks_new (id, business_id, source_id, hash, record, part, text, embedder, created_at, updated_at)
    SELECT id, business_id, source_id, hash, record, part, text, embedder, created_at, updated_at
    FROM knowledge_chunks WHERE vector IS NULL ORDER BY source_id, record, part;
UPDATE knowledge_sources SET next_fetch_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now'),
    asked_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now'), version = version + 1
    WHERE id IN (SELECT DISTINCT source_id FROM knowledge_chunks WHERE vector IS NOT NULL);
DROP TABLE knowledge_chunks;
ALTER TABLE knowledge_chunks_new RENAME TO knowledge_chunks;
CREATE INDEX knowledge_chunks_staged ON knowledge_chunks (source_id, run_id) WHERE run_id IS NOT NULL;

-- Keyword search: SQLite's full-text index (FTS5) over the pieces' text, kept by triggers, with
-- the source as a column of its own so that a query is narrowed to the page's active links inside
-- the index.
CREATE VIRTUAL TABLE knowledge_fts USING fts5(
    text, fts_source, content = 'knowledge_chunks', content_rowid = 'seq',
    tokenize = 'unicode61 remove_diacritics 0'
);
CREATE TRIGGER knowledge_fts_insert AFTER INSERT ON knowledge_chunks BEGIN
    INSERT INTO knowledge_fts (rowid, text, fts_source) VALUES (new.seq, new.text, new.fts_source);
END;
CREATE TRIGGER knowledge_fts_delete AFTER DELETE ON knowledge_chunks BEGIN
    INSERT INTO knowledge_fts (knowledge_fts, rowid, text, fts_source) VALUES ('delete', old.seq, old.text, old.fts_source);
END;
CREATE TRIGGER knowledge_fts_update AFTER UPDATE OF text ON knowledge_chunks BEGIN
    INSERT INTO knowledge_fts (knowledge_fts, rowid, text, fts_source) VALUES ('delete', old.seq, old.text, old.fts_source);
    INSERT INTO knowledge_fts (rowid, text, fts_source) VALUES (new.seq, new.text, new.fts_source);
END;
INSERT INTO knowledge_fts (knowledge_fts) VALUES ('rebuild');
