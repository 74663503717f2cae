-- Krayin connectors, and CRM work that comes from another platform's webhooks (Chatwoot's).

-- What a connector keeps of its CRM's own configuration (Krayin's pipelines and stages) and when
-- it read it: read again once it is an hour old, and whenever the settings are saved.
ALTER TABLE crm_connectors ADD COLUMN crm_cache TEXT;
ALTER TABLE crm_connectors ADD COLUMN crm_cache_us INTEGER;

-- A contact's records in the connector's CRM, in the CRM's own external id form (Krayin's
-- `krayin:person:1|krayin:lead:2|krayin:organization:3|krayin:activity:4`), and the stage moves
-- already made for it (each is made once). The contact is one of our customers, or a contact of
-- the platform whose webhooks feed the connector (`chatwoot:<contact id>`).
ALTER TABLE crm_contacts ADD COLUMN external_id TEXT;
ALTER TABLE crm_contacts ADD COLUMN stages_done TEXT;
CREATE INDEX crm_contacts_by_external_id ON crm_contacts (connector_id, external_id);
