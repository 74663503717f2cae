"""The baseline: the same customer upserts written straight to SQLite, one transaction.

Reads a JSON array of customers on stdin, applies the project's D1 migrations to a fresh SQLite
file, then times (a) inserting every customer as new and (b) upserting the same customers again,
each as one transaction of single-row `INSERT ... ON CONFLICT DO UPDATE` statements.
Prints {"new_ms": [...], "matching_ms": [...]} with one figure per run.
"""

import json
import pathlib
import sqlite3
import sys
import tempfile
import time
import uuid

ROOT = pathlib.Path(__file__).resolve().parent.parent
UPSERT = """
INSERT INTO customers (id, business_id, name, email, phone, whatsapp_number, first_name, last_name,
    address, notes, tags, external_id, external_system, custom_fields, created_at, updated_at)
VALUES (?, ?, ?, ?, ?, NULL, NULL, NULL, NULL, NULL, ?, ?, ?, ?, ?, ?)
ON CONFLICT (business_id, external_id) DO UPDATE SET
    name = excluded.name, email = COALESCE(excluded.email, customers.email),
    phone = COALESCE(excluded.phone, customers.phone), tags = excluded.tags,
    custom_fields = json_patch(customers.custom_fields, excluded.custom_fields),
    updated_at = excluded.updated_at
"""


def fresh_database(directory):
    path = pathlib.Path(directory) / f"{uuid.uuid4()}.sqlite"
    db = sqlite3.connect(path, isolation_level=None)
    for migration in sorted((ROOT / "migrations").glob("*.sql")):
        db.executescript(migration.read_text())
    business = str(uuid.uuid4())
    db.execute("INSERT INTO businesses (id, name, created_at) VALUES (?, 'bench', '2025-01-01T00:00:00.000Z')", (business,))
    return db, business


def upsert_all(db, business, customers):
    now = "2025-11-04T09:00:00.000Z"
    rows = [
        (str(uuid.uuid4()), business, c["name"], c["email"].lower(), c["phone"], json.dumps(c["tags"]),
         c["external_id"], c["external_system"], json.dumps(c["custom_fields"]), now, now)
        for c in customers
    ]
    started = time.perf_counter()
    db.execute("BEGIN")
    db.executemany(UPSERT, rows)
    db.execute("COMMIT")
    return (time.perf_counter() - started) * 1000


def main():
    customers = json.load(sys.stdin)
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 5
    result = {"new_ms": [], "matching_ms": []}
    with tempfile.TemporaryDirectory() as directory:
        for _ in range(runs):
            db, business = fresh_database(directory)
            result["new_ms"].append(upsert_all(db, business, customers))
            result["matching_ms"].append(upsert_all(db, business, customers))
            db.close()
    json.dump(result, sys.stdout)


if __name__ == "__main__":
    main()
