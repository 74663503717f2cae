-- The business console's sign-in (docs/console.md): a link issued with an API key or the admin
-- token, opened once into a session the browser keeps as a cookie. One row is one link and the
-- session it opens; only SHA-256 hashes of the two secrets are stored.
CREATE TABLE console_sessions (
    id              TEXT PRIMARY KEY,
    business_id     TEXT NOT NULL REFERENCES businesses (id),
    -- Who issued the link, as the audit log names actors: "admin" or "key:<prefix>".
    issued_by       TEXT NOT NULL,
    link_hash       TEXT NOT NULL UNIQUE,
    -- Unix milliseconds; the link opens nothing after this, or once it has been opened.
    link_expires_ms INTEGER NOT NULL,
    created_at      TEXT NOT NULL,
    -- Set when the link is opened: the session's secret (its cookie) and its end.
    session_hash    TEXT UNIQUE,
    opened_at       TEXT,
    expires_ms      INTEGER,
    -- Signed out, or revoked by the business or the operator.
    revoked_at      TEXT
);
CREATE INDEX console_sessions_by_business ON console_sessions (business_id, created_at);
-- The maintenance sweep deletes links and sessions a day after they ended.
CREATE INDEX console_sessions_by_end ON console_sessions (COALESCE(expires_ms, link_expires_ms));
