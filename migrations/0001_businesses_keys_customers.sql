-- Businesses (tenants), their API keys, and their customers.
-- Timestamps are RFC 3339 UTC text with milliseconds, which sorts in time order.

CREATE TABLE businesses (
    id              TEXT PRIMARY KEY,
    name            TEXT NOT NULL,
    -- ISO 3166-1 alpha-2; completes phone numbers written in national form.
    default_country TEXT,
    created_at      TEXT NOT NULL
);

CREATE TABLE api_keys (
    id          TEXT PRIMARY KEY,
    business_id TEXT NOT NULL REFERENCES businesses (id),
    name        TEXT,
    -- The first characters of the key, to tell keys apart in listings.
    prefix      TEXT NOT NULL,
    -- SHA-256 of the whole key; the key itself is never stored.
    key_hash    TEXT NOT NULL UNIQUE,
    created_at  TEXT NOT NULL,
    revoked_at  TEXT
);
CREATE INDEX api_keys_by_business ON api_keys (business_id, created_at);

CREATE TABLE customers (
    id              TEXT PRIMARY KEY,
    business_id     TEXT NOT NULL REFERENCES businesses (id),
    name            TEXT NOT NULL,
    email           TEXT,   -- lowercased
    phone           TEXT,   -- E.164
    whatsapp_number TEXT,   -- E.164
    first_name      TEXT,
    last_name       TEXT,
    address         TEXT,
    notes           TEXT,
    tags            TEXT NOT NULL DEFAULT '[]' CHECK (json_valid(tags) AND json_type(tags) = 'array'),
    external_id     TEXT,
    external_system TEXT,
    custom_fields   TEXT NOT NULL DEFAULT '{}' CHECK (json_valid(custom_fields) AND json_type(custom_fields) = 'object'),
    created_at      TEXT NOT NULL,
    updated_at      TEXT NOT NULL
);
-- One customer per key within a business: two requests that create the same new customer at
-- the same moment cannot both succeed. (NULLs are distinct in SQLite unique indexes.)
CREATE UNIQUE INDEX customers_by_external_id ON customers (business_id, external_id);
CREATE UNIQUE INDEX customers_by_email ON customers (business_id, email);
CREATE UNIQUE INDEX customers_by_phone ON customers (business_id, phone);
