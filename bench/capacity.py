#!/usr/bin/env python3
"""How long one D1 database lasts: bytes per row of every table, measured on the rows the stack
itself wrote, and the days until a database reaches D1's size limit for a number of businesses
and messages a day.

    python3 bench/capacity.py STATE_DIR

STATE_DIR is a local stack's state (CRM_EDGE_STATE): scripts/bench runs this last, after the
benches that fill the database. Sizes come from SQLite's dbstat (the pages each table and its
indexes take, so free space inside pages counts, as it does in D1's size). The model's
assumptions are printed with it.
"""

import glob
import sqlite3
import sys

#: D1's limit on one database (Cloudflare's D1 limits page, paid plan).
DATABASE_BYTES = 10 * 1000**3
#: How long swept rows stay (RETENTION_DAYS' default) and how many rows of each table one sweep
#: deletes (edge::ops::maintenance, once a minute).
RETENTION_DAYS = 30
SWEEP_ROWS_PER_DAY = 1000 * 60 * 24
#: What one message brings, by table: kept for good, or kept RETENTION_DAYS.
KEPT = {"messages": 1.0, "conversations": 0.1}
SWEPT = {"webhook_events": 1.0, "webhook_deliveries": 1.0, "webhook_attempts": 1.0, "crm_sync_jobs": 1.0}
CUSTOMERS_PER_BUSINESS = 20_000
#: Below this many rows a table's bytes per row is mostly its pages' free space: shown, not used.
MIN_ROWS = 300


def database(state_dir):
    for path in sorted(glob.glob(f"{state_dir}/**/*.sqlite", recursive=True)):
        db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        if "customers" in tables and "messages" in tables:
            return db
        db.close()
    sys.exit(f"no crm-edge D1 database under {state_dir}")


def sizes(db):
    """Per table: rows, bytes of its pages and its indexes' pages."""
    out = {}
    tables = [row[0] for row in db.execute(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' "
        "AND name NOT LIKE '_cf_%' AND name <> 'd1_migrations' ORDER BY name")]
    for table in tables:
        rows = db.execute(f'SELECT count(*) FROM "{table}"').fetchone()[0]
        names = [table] + [row[0] for row in db.execute(
            "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = ?", (table,))]
        marks = ",".join("?" * len(names))
        table_bytes, index_bytes = db.execute(
            f"SELECT coalesce(sum(CASE WHEN name = ? THEN pgsize END), 0), "
            f"coalesce(sum(CASE WHEN name <> ? THEN pgsize END), 0) FROM dbstat WHERE name IN ({marks})",
            (table, table, *names)).fetchone()
        out[table] = (rows, table_bytes, index_bytes)
    return out


def per_row(measured, table):
    rows, table_bytes, index_bytes = measured.get(table, (0, 0, 0))
    return (table_bytes + index_bytes) / rows if rows >= MIN_ROWS else None


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    measured = sizes(database(sys.argv[1]))
    print("bytes per row, measured (pages of the table and of its indexes, over its rows)")
    print(f"{'table':28} {'rows':>9} {'table KB':>9} {'index KB':>9} {'bytes/row':>10}")
    for table, (rows, table_bytes, index_bytes) in measured.items():
        if rows:
            few = "" if rows >= MIN_ROWS else "  (too few rows to say)"
            print(f"{table:28} {rows:9} {table_bytes / 1024:9.0f} {index_bytes / 1024:9.0f} "
                  f"{(table_bytes + index_bytes) / rows:10.0f}{few}")
    missing = [t for t in [*KEPT, *SWEPT, "customers"] if per_row(measured, t) is None]
    if missing:
        sys.exit(f"no rows to measure in {', '.join(missing)}: run the benches that write them first")
    chunks = measured.get("knowledge_chunks", (0, 0, 0))[0]
    if chunks >= MIN_ROWS:
        index = sum(t + i for name, (_, t, i) in measured.items() if name.startswith("knowledge_fts"))
        print(f"a CRM link's piece: {per_row(measured, 'knowledge_chunks'):.0f} bytes, and {index / chunks:.0f} of "
              "the keyword index (knowledge_fts_*) with it")
    kept = sum(per_row(measured, t) * n for t, n in KEPT.items())
    swept = sum(per_row(measured, t) * n for t, n in SWEPT.items())
    customer = per_row(measured, "customers")
    print()
    print(f"the model: a message keeps {kept:.0f} bytes for good ({', '.join(f'{n} {t}' for t, n in KEPT.items())}),")
    print(f"and {swept:.0f} bytes for {RETENTION_DAYS} days ({', '.join(f'{n} {t}' for t, n in SWEPT.items())}: one webhook")
    print(f"endpoint and one CRM connector subscribed); each business holds {CUSTOMERS_PER_BUSINESS:,} customers")
    print(f"({customer:.0f} bytes each). Days until one database holds {DATABASE_BYTES / 1e9:.0f} GB:")
    print("(retained: the customers and the last 30 days' history; growth: what messages keep for good)")
    print(f"{'businesses':>10} {'messages a day each':>20} {'retained GB':>12} {'GB a day':>9} {'days':>8}  note")
    for businesses in (10, 100, 1000):
        for per_business in (100, 1000, 10_000):
            per_day = businesses * per_business
            fixed = businesses * CUSTOMERS_PER_BUSINESS * customer + per_day * RETENTION_DAYS * swept
            growth = per_day * kept
            days = (DATABASE_BYTES - fixed) / growth
            note = []
            if fixed >= DATABASE_BYTES:
                note.append("full before it starts")
            if per_day * max(SWEPT.values()) > SWEEP_ROWS_PER_DAY:
                note.append(f"the sweep deletes at most {SWEEP_ROWS_PER_DAY:,} rows a day a table")
            shown = "—" if days <= 0 else f"{days:8.0f}"
            print(f"{businesses:10} {per_business:20,} {fixed / 1e9:12.2f} {growth / 1e9:9.3f} {shown:>8}  {'; '.join(note)}")


if __name__ == "__main__":
    main()
