-- Where an escalation goes in the CRM when its caller said (POST and PATCH /api-escalations): the
-- ticket's priority (1 to 5) and the CRM's team id. NULL leaves each to the connector's settings.
ALTER TABLE escalations ADD COLUMN priority INTEGER CHECK (priority BETWEEN 1 AND 5);
ALTER TABLE escalations ADD COLUMN team_id TEXT;
