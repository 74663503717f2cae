-- A customer erased on request (edge::erasure): the tombstone that says when and by whom, and
-- nothing about the person. While `erasing`, the sweep deletes their rows in bounded steps; once
-- `erased`, none is left. `subjects` keeps the tokens (truncated SHA-256 digests,
-- domain::bot::subject::token) their CRM-link records were indexed by, so a link's next fetch
-- leaves those records out; `crm` the CRM work that deletes their contact in each connected CRM.
CREATE TABLE customer_erasures (
    id                   TEXT NOT NULL,
    business_id          TEXT NOT NULL REFERENCES businesses (id),
    requested_us         INTEGER NOT NULL,
    requested_by         TEXT NOT NULL,
    status               TEXT NOT NULL CHECK (status IN ('erasing', 'erased')),
    subjects             TEXT NOT NULL DEFAULT '[]' CHECK (json_valid(subjects)),
    crm                  TEXT NOT NULL DEFAULT '[]' CHECK (json_valid(crm)),
    messages_deleted     INTEGER NOT NULL DEFAULT 0,
    conversations_deleted INTEGER NOT NULL DEFAULT 0,
    attachments_deleted  INTEGER NOT NULL DEFAULT 0,
    pieces_deleted       INTEGER NOT NULL DEFAULT 0,
    erased_us            INTEGER,
    PRIMARY KEY (business_id, id)
);

CREATE INDEX customer_erasures_erasing ON customer_erasures (requested_us) WHERE status = 'erasing';

-- What an erasure deletes by: a customer's CRM-link pieces by their subject's token, the
-- conversation-keyed rows of satisfaction by conversation.
CREATE INDEX knowledge_chunks_by_subject ON knowledge_chunks (business_id, subject) WHERE subject IS NOT NULL;
CREATE INDEX crm_satisfaction_by_conversation ON crm_satisfaction (conversation_id);
CREATE INDEX escalations_by_customer ON escalations (business_id, customer_id);
CREATE INDEX bot_answers_by_customer ON bot_answers (business_id, customer_id) WHERE customer_id IS NOT NULL;
CREATE INDEX crm_sync_jobs_of_customer ON crm_sync_jobs (customer_id);

-- A customer's row is deleted last, and SQLite checks each table whose foreign key names it for a
-- row that still does, by `customer_id` alone: the indexes by customer lead with it (a customer's
-- id is unique across businesses, so the reads by business and customer find the same rows).
DROP INDEX messages_by_customer;
CREATE INDEX messages_by_customer ON messages (customer_id, created_us);
DROP INDEX conversations_by_customer;
CREATE INDEX conversations_by_customer ON conversations (customer_id, channel);
DROP INDEX sso_tokens_by_customer;
CREATE INDEX sso_tokens_by_customer ON sso_tokens (customer_id);
