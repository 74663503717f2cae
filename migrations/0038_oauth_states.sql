-- An OAuth authorisation started and not yet finished (edge::db::oauth_states): the nonce its sealed
-- state carries, taken (deleted) by the one completion that uses it. A state is good once, for 10
-- minutes; the maintenance sweep deletes those that expired unused.
CREATE TABLE oauth_states (
    nonce       TEXT PRIMARY KEY,
    business_id TEXT NOT NULL REFERENCES businesses (id),
    expires_ms  INTEGER NOT NULL
);

CREATE INDEX oauth_states_expired ON oauth_states (expires_ms);
