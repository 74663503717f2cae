-- A delivery settled by its first attempt is recorded by that attempt alone: webhook_deliveries
-- holds only the deliveries that need more (a retry, a dead letter, a replay), so that the common
-- case writes two rows and their index entries (the attempt, the event's dispatched mark) instead
-- of six. Its id is DeliveryId::of(endpoint, event) and it is listed from the attempt, which now
-- carries its event's time for the endpoint's list (newest event first). Older attempts have none
-- and each has its delivery's row.
ALTER TABLE webhook_attempts ADD COLUMN event_us INTEGER;
