-- The maintenance sweep: lost sends put back on the queue, and retention of webhook history and
-- SSO tokens.

-- What a send was accepted with that the message row did not hold: it travelled only in the
-- queue message, so a send whose queue message was lost could not be sent as the client asked.
ALTER TABLE messages ADD COLUMN send_subject TEXT;
ALTER TABLE messages ADD COLUMN send_media_base_url TEXT;
-- How often the sweep put this message back on the queue; past a few times it is failed.
ALTER TABLE messages ADD COLUMN send_requeues INTEGER NOT NULL DEFAULT 0;
CREATE INDEX messages_queued_outbound ON messages (updated_at) WHERE status = 'queued' AND direction = 'outbound';

-- Retention: events by age, whether an event still has a pending delivery, tokens by expiry.
CREATE INDEX webhook_events_by_age ON webhook_events (created_us) WHERE dispatched_us IS NOT NULL;
CREATE INDEX webhook_deliveries_of_event ON webhook_deliveries (event_id, status);
CREATE INDEX sso_tokens_by_expiry ON sso_tokens (expires_ms);
