-- CRM links: a business's CRM data, fetched on a schedule and made searchable for the chatbot
-- (the CRM links guide). A source is one URL of one Facebook page, fetched once however many
-- channels it serves; a link is that source on one channel, active or not.

CREATE TABLE knowledge_sources (
    id                     TEXT PRIMARY KEY,
    business_id            TEXT NOT NULL REFERENCES businesses (id),
    -- The Facebook page: the address of one of the business's facebook channel accounts.
    page_id                TEXT NOT NULL,
    url                    TEXT NOT NULL,
    name                   TEXT NOT NULL,
    type                   TEXT NOT NULL CHECK (type IN ('api', 'file', 'webhook', 'database')),
    description            TEXT,
    fetch_interval_minutes INTEGER NOT NULL,
    -- The API key, the custom headers and a webhook link's signing secret, as one JSON object
    -- sealed as one value (domain::sealed, bound to the source's id). Never returned.
    secrets                TEXT NOT NULL,
    state                  TEXT NOT NULL CHECK (state IN ('pending', 'ok', 'failing', 'not_fetched')),
    last_fetched_at        TEXT,
    last_http_status       INTEGER,
    last_error             TEXT,
    -- Failed fetches in a row: the backoff's exponent.
    failures               INTEGER NOT NULL DEFAULT 0,
    records                INTEGER NOT NULL DEFAULT 0,
    -- Bumped whenever the source's pieces change, so that caches of its vectors know.
    version                INTEGER NOT NULL DEFAULT 0,
    -- When the scheduler fetches it next; NULL when it is not fetched (inactive everywhere, or a
    -- type that is never fetched).
    next_fetch_at          TEXT,
    -- A fetch in progress holds the source until then, so two never run at once.
    lease_until            TEXT,
    created_at             TEXT NOT NULL,
    updated_at             TEXT NOT NULL,
    UNIQUE (business_id, page_id, url)
);
CREATE INDEX knowledge_sources_due ON knowledge_sources (next_fetch_at) WHERE next_fetch_at IS NOT NULL;

CREATE TABLE knowledge_links (
    source_id   TEXT NOT NULL REFERENCES knowledge_sources (id) ON DELETE CASCADE,
    business_id TEXT NOT NULL,
    page_id     TEXT NOT NULL,
    channel     TEXT NOT NULL CHECK (channel IN ('facebook', 'messenger', 'instagram', 'whatsapp')),
    is_active   INTEGER NOT NULL CHECK (is_active IN (0, 1)),
    created_at  TEXT NOT NULL,
    updated_at  TEXT NOT NULL,
    PRIMARY KEY (source_id, channel)
);
CREATE INDEX knowledge_links_by_page ON knowledge_links (business_id, page_id, channel);

-- The searchable pieces of a source's data. `id` is also the vector's id in Vectorize.
CREATE TABLE knowledge_chunks (
    id          TEXT PRIMARY KEY,
    business_id TEXT NOT NULL,
    source_id   TEXT NOT NULL REFERENCES knowledge_sources (id) ON DELETE CASCADE,
    -- SHA-256 of the piece's content without its record's position: its identity on refresh.
    hash        TEXT NOT NULL,
    record      TEXT NOT NULL,
    part        INTEGER NOT NULL,
    text        TEXT NOT NULL,
    -- Which model made the vector (domain::links::search::Embedder::id).
    embedder    TEXT NOT NULL,
    -- The vector (f32 little-endian, base64) when D1 is the vector store; NULL when Vectorize is.
    vector      TEXT,
    created_at  TEXT NOT NULL,
    updated_at  TEXT NOT NULL,
    UNIQUE (source_id, hash)
);
