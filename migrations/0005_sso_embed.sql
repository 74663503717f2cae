-- Single sign-on tokens for the embedded inbox, and where each business lets it be framed.

-- Origins allowed to put the inbox in an iframe (CSP frame-ancestors), a JSON array. Empty: none.
ALTER TABLE businesses ADD COLUMN embed_frame_ancestors TEXT NOT NULL DEFAULT '[]'
    CHECK (json_valid(embed_frame_ancestors) AND json_type(embed_frame_ancestors) = 'array');

CREATE TABLE sso_tokens (
    id          TEXT PRIMARY KEY,
    business_id TEXT NOT NULL REFERENCES businesses (id),
    customer_id TEXT NOT NULL REFERENCES customers (id),
    -- SHA-256 of the whole token; the token itself is never stored.
    token_hash  TEXT NOT NULL UNIQUE,
    scope       TEXT NOT NULL CHECK (scope IN ('inbox', 'inbox:reply')),
    created_at  TEXT NOT NULL,
    -- Unix milliseconds, compared with the clock on every request.
    expires_ms  INTEGER NOT NULL,
    revoked_at  TEXT
);
CREATE INDEX sso_tokens_by_customer ON sso_tokens (business_id, customer_id);

-- The embedded inbox reads one customer's messages across all their conversations.
CREATE INDEX messages_by_customer ON messages (business_id, customer_id, created_us);
