//! The statements of a business's move to another shard (`crate::shard_move`): one shape for
//! every table of `domain::shard_move::MOVED_TABLES`, each run on the shard it names (`Db::on_shard`)
//! and each reading the business's column, so none reaches another business's rows. A row is
//! copied with the columns it was read with, as it was stored, but for a table's renumbered key and
//! the columns SQLite computes.

use crate::db::{Db, Param, number, text};
use domain::error::ApiError;
use domain::ids::BusinessId;
use domain::shard_move::{MOVED_TABLES, MovedTable};
use serde_json::{Map, Value};

/// The column a read row carries its rowid in (the cursor of a copy).
const ROWID: &str = "move_rowid";

/// A business's rows of a table, as read for the copy: each row's rowid, and its columns.
pub struct Rows {
    pub rowids: Vec<i64>,
    pub rows: Vec<Map<String, Value>>,
}

fn select_after(table: &MovedTable) -> String {
    format!(
        "SELECT rowid AS {ROWID}, * FROM {} WHERE {} = ?1 AND rowid > ?2 ORDER BY rowid LIMIT ?3",
        table.name, table.business_column
    )
}

fn delete_some(table: &MovedTable) -> String {
    format!(
        "DELETE FROM {0} WHERE rowid IN (SELECT rowid FROM {0} WHERE {1} = ?1 LIMIT ?2)",
        table.name, table.business_column
    )
}

fn count(table: &MovedTable) -> String {
    format!(
        "SELECT count(*) AS held FROM {} WHERE {} = ?1",
        table.name, table.business_column
    )
}

fn count_until(table: &MovedTable) -> String {
    format!(
        "SELECT count(*) AS held FROM {} WHERE {} = ?1 AND rowid <= ?2",
        table.name, table.business_column
    )
}

fn delete_past(table: &MovedTable) -> String {
    format!(
        "DELETE FROM {0} WHERE rowid IN (SELECT rowid FROM {0} WHERE {1} = ?1 ORDER BY rowid LIMIT -1 OFFSET ?2)",
        table.name, table.business_column
    )
}

/// The insert of one row with these columns.
fn insert(table: &MovedTable, columns: &[&str]) -> String {
    let marks: Vec<String> = (1..=columns.len()).map(|at| format!("?{at}")).collect();
    format!(
        "INSERT INTO {} ({}) VALUES ({})",
        table.name,
        columns.join(", "),
        marks.join(", ")
    )
}

/// Up to `limit` of the business's rows of `table` past rowid `after`, in rowid order, on the
/// shard of `db` (one from `Db::on_shard`).
pub async fn rows_after(
    db: &Db,
    table: &MovedTable,
    business: &BusinessId,
    after: i64,
    limit: usize,
) -> Result<Rows, ApiError> {
    let read = db
        .unscoped(select_after(table))
        .bind(&[text(business.as_str()), number(after), number(limit as i64)])?
        .all()
        .await?
        .results::<Map<String, Value>>()
        .map_err(|error| ApiError::internal("reading rows to move", error))?;
    let mut rows = Rows {
        rowids: Vec::with_capacity(read.len()),
        rows: Vec::with_capacity(read.len()),
    };
    for mut row in read {
        let rowid = row
            .remove(ROWID)
            .and_then(|value| value.as_i64())
            .ok_or_else(|| {
                ApiError::internal(
                    "reading rows to move",
                    format!("{}: a row without its rowid", table.name),
                )
            })?;
        if let Some(key) = table.renumbered {
            row.remove(key);
        }
        for computed in table.computed {
            row.remove(*computed);
        }
        rows.rowids.push(rowid);
        rows.rows.push(row);
    }
    Ok(rows)
}

/// Writes the rows on the shard of `db`, all or none (one batch).
pub async fn insert_rows(db: &Db, table: &MovedTable, rows: &[Map<String, Value>]) -> Result<(), ApiError> {
    let mut statements = Vec::with_capacity(rows.len());
    for row in rows {
        let columns: Vec<&str> = row.keys().map(String::as_str).collect();
        if let Some(odd) = columns.iter().find(|column| {
            !column
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        }) {
            return Err(ApiError::internal(
                "moving rows",
                format!("{}: column {odd:?}", table.name),
            ));
        }
        let values: Vec<Param> = row.values().map(param).collect::<Result<_, _>>()?;
        statements.push(db.unscoped(insert(table, &columns)).bind(&values)?);
    }
    db.batch(statements).await?;
    Ok(())
}

fn param(value: &Value) -> Result<Param, ApiError> {
    Ok(match value {
        Value::Null => Param::Null,
        Value::String(text) => Param::Text(text.clone()),
        Value::Number(value) => Param::Number(value.as_f64().unwrap_or_default()),
        Value::Bool(flag) => Param::Number(f64::from(u8::from(*flag))),
        other => {
            return Err(ApiError::internal(
                "moving rows",
                format!("a stored value {other}"),
            ));
        }
    })
}

/// Deletes up to `limit` of the business's rows of `table` on the shard of `db`: how many.
pub async fn delete_rows(
    db: &Db,
    table: &MovedTable,
    business: &BusinessId,
    limit: usize,
) -> Result<usize, ApiError> {
    let result = db
        .unscoped(delete_some(table))
        .bind(&[text(business.as_str()), number(limit as i64)])?
        .run()
        .await?;
    Ok(crate::db::changes(&result))
}

/// How many of the business's rows of `table` the shard of `db` holds up to rowid `until`.
pub async fn count_up_to(
    db: &Db,
    table: &MovedTable,
    business: &BusinessId,
    until: i64,
) -> Result<usize, ApiError> {
    #[derive(serde::Deserialize)]
    struct Count {
        held: usize,
    }
    let counted = db
        .unscoped(count_until(table))
        .bind(&[text(business.as_str()), number(until)])?
        .first::<Count>(None)
        .await?;
    Ok(counted.map_or(0, |count| count.held))
}

/// Leaves the business's rows of `tables[0]` on the shard of `db` to the first `kept` (in rowid
/// order, the order they were copied in), and none in the tables after it, in one batch: what a
/// copy step that broke off part of the way wrote is gone before it is copied again.
pub async fn trim(
    db: &Db,
    tables: &[MovedTable],
    business: &BusinessId,
    kept: usize,
) -> Result<(), ApiError> {
    let mut statements = Vec::with_capacity(tables.len());
    for (at, table) in tables.iter().enumerate().rev() {
        let keep = if at == 0 { kept } else { 0 };
        statements.push(
            db.unscoped(delete_past(table))
                .bind(&[text(business.as_str()), number(keep as i64)])?,
        );
    }
    db.batch(statements).await?;
    Ok(())
}

/// How many rows of each table of [`MOVED_TABLES`] the business has on the shard of `db`.
pub async fn counts(db: &Db, business: &BusinessId) -> Result<Vec<usize>, ApiError> {
    #[derive(serde::Deserialize)]
    struct Count {
        held: usize,
    }
    let mut statements = Vec::with_capacity(MOVED_TABLES.len());
    for table in &MOVED_TABLES {
        statements.push(db.unscoped(count(table)).bind(&[text(business.as_str())])?);
    }
    let results = db.batch(statements).await?;
    (0..MOVED_TABLES.len())
        .map(|at| Ok(crate::db::first_row::<Count>(&results, at)?.map_or(0, |count| count.held)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::statements::migrated;
    use std::collections::BTreeSet;

    /// The first column of every row `sql` answers, as text.
    fn texts(db: &rusqlite::Connection, sql: &str) -> Vec<String> {
        db.prepare(sql)
            .and_then(|mut statement| {
                statement
                    .query_map([], |row| row.get::<_, String>(0))?
                    .collect::<Result<Vec<_>, _>>()
            })
            .unwrap_or_else(|error| panic!("{sql}: {error}"))
    }

    #[test]
    fn every_table_with_a_business_is_moved_parents_first_and_its_statements_prepare() {
        let db = migrated();
        let mut tables: BTreeSet<String> = texts(
            &db,
            "SELECT m.name FROM sqlite_master m, pragma_table_info(m.name) c \
             WHERE m.type = 'table' AND c.name = 'business_id'",
        )
        .into_iter()
        .collect();
        tables.insert("businesses".to_owned());
        for directory in ["business_shards", "channel_addresses"] {
            tables.remove(directory);
        }
        let moved: BTreeSet<String> = MOVED_TABLES.iter().map(|table| table.name.to_owned()).collect();
        assert_eq!(
            moved, tables,
            "MOVED_TABLES holds every table with a business's rows"
        );

        for (at, table) in MOVED_TABLES.iter().enumerate() {
            let parents = texts(
                &db,
                &format!("SELECT \"table\" FROM pragma_foreign_key_list('{}')", table.name),
            );
            for parent in parents {
                let before = MOVED_TABLES[..at].iter().any(|earlier| earlier.name == parent);
                assert!(
                    before,
                    "{} is copied after {parent}, which it refers to",
                    table.name
                );
            }
            let columns = texts(
                &db,
                &format!("SELECT name FROM pragma_table_info('{}')", table.name),
            );
            if let Some(key) = table.renumbered {
                assert!(columns.iter().any(|column| column == key), "{}.{key}", table.name);
            }
            // pragma_table_info leaves generated columns out; table_xinfo tells them (hidden 2, 3).
            let generated = texts(
                &db,
                &format!(
                    "SELECT name FROM pragma_table_xinfo('{}') WHERE hidden IN (2, 3)",
                    table.name
                ),
            );
            assert_eq!(
                generated, table.computed,
                "{}: the columns SQLite computes are the ones the move leaves out",
                table.name
            );
            let columns: Vec<&str> = columns.iter().map(String::as_str).collect();
            for sql in [
                select_after(table),
                delete_some(table),
                count(table),
                count_until(table),
                delete_past(table),
                insert(table, &columns),
            ] {
                if let Err(error) = db.prepare(&sql) {
                    panic!("{sql}: {error}");
                }
            }
        }
    }
}
