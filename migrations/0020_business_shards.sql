-- The directory (docs/scaling.md): which shard each business lives on. Read on the first shard
-- only; every shard has the table, as every shard has every migration. A business without a row
-- lives on the first shard.
CREATE TABLE business_shards (
    business_id TEXT PRIMARY KEY,
    shard       INTEGER NOT NULL CHECK (shard >= 0)
);

-- The addresses of channel accounts (a WhatsApp phone number id, a Facebook page, a Twilio
-- number, an email domain), claimed here before the account is written on its business's shard:
-- an address belongs to one business whatever its shard. Read on the first shard only; its rows
-- before shards came are its own accounts'.
CREATE TABLE channel_addresses (
    channel     TEXT NOT NULL,
    address     TEXT NOT NULL,
    business_id TEXT NOT NULL,
    PRIMARY KEY (channel, address)
);
INSERT INTO channel_addresses (channel, address, business_id)
    SELECT channel, address, business_id FROM channel_accounts;
