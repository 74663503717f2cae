-- Calls to a business's CRM by the minute (docs/connectors.md, "Health"), of a connector or of a
-- CRM link's fetches: how many, how many failed, the time they took, and how many fell in each
-- response-time class; their status reads the production checklist's KPIs from them (uptime,
-- average and 95th-percentile response time, error rate). A function adds what its calls counted
-- once per invocation, not once per call. Rows older than 35 days go in the maintenance sweep; a
-- deleted connector's or link's go with it.
CREATE TABLE crm_call_minutes (
    business_id  TEXT NOT NULL REFERENCES businesses (id),
    -- The connector's id, or the CRM link's (its knowledge source's).
    source_id    TEXT NOT NULL,
    -- The minute's start, in milliseconds since the epoch.
    minute_ms    INTEGER NOT NULL,
    calls        INTEGER NOT NULL DEFAULT 0,
    failures     INTEGER NOT NULL DEFAULT 0,
    total_ms     INTEGER NOT NULL DEFAULT 0,
    -- Calls by response time: at most 100, 250, 500, 1000, 2000, 5000 ms, and slower.
    under_100ms  INTEGER NOT NULL DEFAULT 0,
    under_250ms  INTEGER NOT NULL DEFAULT 0,
    under_500ms  INTEGER NOT NULL DEFAULT 0,
    under_1s     INTEGER NOT NULL DEFAULT 0,
    under_2s     INTEGER NOT NULL DEFAULT 0,
    under_5s     INTEGER NOT NULL DEFAULT 0,
    slower       INTEGER NOT NULL DEFAULT 0,
    UNIQUE (business_id, source_id, minute_ms)
);
CREATE INDEX crm_call_minutes_by_minute ON crm_call_minutes (minute_ms);
