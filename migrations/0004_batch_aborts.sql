-- A table that never holds a row. A statement that inserts NULL into it fails on the NOT NULL
-- constraint, which rolls back the D1 batch it is part of (a batch is one transaction). The
-- runtime's db::abort_unless builds such a statement around a condition that must hold, so a
-- batch whose earlier statements found the world changed undoes itself; the error names this
-- table, which is how the caller tells it from any other failure.
CREATE TABLE batch_aborts (
    aborted INTEGER NOT NULL
);
