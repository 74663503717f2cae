-- When a connector's CRM key expires, as the CRM last reported it (Kustomer's
-- `GET /v1/auth/tokens/current`, read by the connection test and each time a credential is saved):
-- the `connector_key_expiring` alert rule reads it, and the connector's status shows it. Null: no
-- expiry reported (a key that never expires, a CRM without the notion, or not read yet).
ALTER TABLE crm_connectors ADD COLUMN key_expires_us INTEGER;
