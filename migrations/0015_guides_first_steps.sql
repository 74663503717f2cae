-- What the integration guides' first steps need.

-- `GET /api-customers` without an identifier lists the business's customers, newest first.
CREATE INDEX customers_by_created ON customers (business_id, created_at, id);

-- A customer's ids in every connector's CRM, read with each customer lookup: Krayin's contacts
-- and Kustomer's record links, found by our id within the business.
CREATE INDEX crm_contacts_by_customer ON crm_contacts (business_id, customer_id);
CREATE INDEX crm_links_by_local_id ON crm_links (business_id, kind, local_id);

-- A resolved or closed conversation that the customer writes to again is reopened (README,
-- "Conversations"): how often, from which status the last time, and which message did it, so the
-- event of the reopening is written in the same batch as the message.
ALTER TABLE conversations ADD COLUMN reopen_count INTEGER NOT NULL DEFAULT 0;
ALTER TABLE conversations ADD COLUMN reopened_from TEXT;
ALTER TABLE conversations ADD COLUMN reopened_by TEXT;
