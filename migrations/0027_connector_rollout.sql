-- A connector's rollout (issue 48, "gradual re-enable"): the share of the business's customers it
-- works for, 1 to 100 percent; who is in is a stable hash of the connector and the customer
-- (domain::crm::rollout), so nothing else is stored. Every connector so far works for everyone.
ALTER TABLE crm_connectors ADD COLUMN rollout_percent INTEGER NOT NULL DEFAULT 100
  CHECK (rollout_percent BETWEEN 1 AND 100);
