//! D1 in the native runtime: each shard an SQLite database in memory, migrated from
//! `migrations/` as wrangler migrates D1, with D1's behaviour where it differs from a bare
//! connection: foreign keys enforced, one statement per prepare, a batch run as one transaction
//! that rolls back whole when any statement fails, results read back as JavaScript would give them
//! (a whole number is a number, whatever SQLite's type), per-statement meta (`changes`,
//! `last_row_id`, `rows_read`, `rows_written`), and failures worded as D1 words them
//! (`D1_ERROR: UNIQUE constraint failed: customers.business_id, customers.email: SQLITE_CONSTRAINT`).
//!
//! `rows_read` counts the rows a statement returned or changed plus the rows SQLite stepped over
//! in full scans: D1 also counts the rows an index search visits, so this is a lower bound.
//! `rows_written` is the rows changed (D1 also counts the index entries a write updates).

use super::clock::Delay;
use crate::runtime::Param;
use rusqlite::types::{Value as Sql, ValueRef};
use rusqlite::{Connection, StatementStatus};
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};
use std::cell::{Cell, RefCell};
use std::path::Path;
use std::rc::Rc;
use std::sync::OnceLock;
use std::time::Duration;
use worker::{D1ResultMeta, Error, Result};

/// The prefix of every error D1 reports.
const D1_ERROR: &str = "D1_ERROR: ";

/// One D1 database.
pub(crate) struct Shard {
    connection: RefCell<Connection>,
    /// What the database answers every call with while it is out of reach (a test's outage),
    /// after how many more calls it still answers.
    outage: RefCell<Option<(u32, String)>>,
    /// How long each call takes to answer (on the virtual clock); zero: at once.
    latency: Cell<Duration>,
}

impl Shard {
    /// A new database with every migration applied.
    pub(crate) fn migrated() -> Self {
        Self {
            connection: RefCell::new(migrated_connection()),
            outage: RefCell::new(None),
            latency: Cell::new(Duration::ZERO),
        }
    }

    /// Every call from now on answers after `latency`, as a round trip to D1 takes time: the
    /// invocations running at once then interleave their statements, as concurrent isolates do.
    pub(crate) fn set_latency(&self, latency: Duration) {
        self.latency.set(latency);
    }

    /// The round trip's wait, if the shard has one.
    async fn round_trip(&self) {
        let latency = self.latency.get();
        if !latency.is_zero() {
            Delay::from(latency).await;
        }
    }

    /// From the call after the next `after` calls on, every call fails with D1's `message`
    /// (`None`: the database answers again).
    pub(crate) fn set_outage(&self, outage: Option<(u32, String)>) {
        *self.outage.borrow_mut() = outage;
    }

    /// The connection itself, for a test's own reads and writes.
    pub(crate) fn with_connection<T>(&self, use_it: impl FnOnce(&Connection) -> T) -> T {
        use_it(&self.connection.borrow())
    }

    fn check_reachable(&self) -> Result<()> {
        match self.outage.borrow_mut().as_mut() {
            Some((0, message)) => Err(Error::RustError(format!("{D1_ERROR}{message}"))),
            Some((after, _)) => {
                *after -= 1;
                Ok(())
            }
            None => Ok(()),
        }
    }
}

/// A connection to a new database with every migration applied: a copy of the one this process
/// migrated first, so that a test's shards cost a copy of some kilobytes, not 21 migrations each.
pub(crate) fn migrated_connection() -> Connection {
    let image = migrated_image();
    let mut connection = Connection::open_in_memory().unwrap_or_else(|error| panic!("SQLite: {error}"));
    connection
        .deserialize_read_exact(rusqlite::MAIN_DB, image, image.len(), false)
        .unwrap_or_else(|error| panic!("SQLite: {error}"));
    // Not kept in the database itself: D1 enforces foreign keys on every connection.
    connection
        .execute_batch("PRAGMA foreign_keys = ON;")
        .unwrap_or_else(|error| panic!("SQLite: {error}"));
    connection
}

/// A database with every migration applied, as SQLite writes it to a file, made once a process.
fn migrated_image() -> &'static [u8] {
    static IMAGE: OnceLock<Vec<u8>> = OnceLock::new();
    IMAGE.get_or_init(|| {
        let mut connection = Connection::open_in_memory().unwrap_or_else(|error| panic!("SQLite: {error}"));
        connection
            .execute_batch("PRAGMA foreign_keys = ON;")
            .unwrap_or_else(|error| panic!("SQLite: {error}"));
        for (name, sql) in migrations() {
            connection
                .execute_batch(&sql)
                .unwrap_or_else(|error| panic!("migration {name}: {error}"));
        }
        let image = connection
            .serialize(rusqlite::MAIN_DB)
            .unwrap_or_else(|error| panic!("SQLite: {error}"));
        image.to_vec()
    })
}

/// The migrations, in the order wrangler applies them (by file name).
fn migrations() -> Vec<(String, String)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../migrations");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|error| panic!("{}: {error}", dir.display()))
        .filter_map(|entry| entry.ok().map(|entry| entry.path()))
        .filter(|path| path.extension().is_some_and(|extension| extension == "sql"))
        .collect();
    files.sort();
    files
        .into_iter()
        .map(|path| {
            let name = path.file_name().map(|name| name.to_string_lossy().into_owned());
            let sql =
                std::fs::read_to_string(&path).unwrap_or_else(|error| panic!("{}: {error}", path.display()));
            (name.unwrap_or_default(), sql)
        })
        .collect()
}

/// A D1 database binding.
#[derive(Clone)]
pub struct D1Database {
    pub(crate) shard: Rc<Shard>,
}

impl D1Database {
    /// Runs the statements in one transaction: all of them, or, when one fails, none.
    pub async fn batch(&self, statements: Vec<D1PreparedStatement>) -> Result<Vec<D1Result>> {
        self.shard.round_trip().await;
        self.shard.check_reachable()?;
        let connection = self.shard.connection.borrow();
        connection.execute_batch("BEGIN").map_err(d1_error)?;
        let mut results = Vec::with_capacity(statements.len());
        for statement in &statements {
            match execute(&connection, &statement.sql, &statement.values) {
                Ok(result) => results.push(result),
                Err(error) => {
                    let _ = connection.execute_batch("ROLLBACK");
                    return Err(error);
                }
            }
        }
        connection.execute_batch("COMMIT").map_err(d1_error)?;
        Ok(results)
    }
}

/// A statement with its values bound.
pub struct D1PreparedStatement {
    shard: Rc<Shard>,
    sql: String,
    values: Vec<Param>,
}

impl D1PreparedStatement {
    pub async fn all(&self) -> Result<D1Result> {
        self.shard.round_trip().await;
        self.shard.check_reachable()?;
        execute(&self.shard.connection.borrow(), &self.sql, &self.values)
    }

    pub async fn run(&self) -> Result<D1Result> {
        self.all().await
    }

    /// The rows as arrays of values.
    pub async fn raw<T: DeserializeOwned>(&self) -> Result<Vec<Vec<T>>> {
        let result = self.all().await?;
        result
            .rows
            .into_iter()
            .map(|row| Ok(serde_json::from_value(Value::Array(row))?))
            .collect()
    }
}

/// A value bound to a statement, as the runtime takes it.
pub type Bound = Param;

pub fn bound(param: &Param) -> Bound {
    param.clone()
}

pub fn bound_text(text: &str) -> Bound {
    Param::Text(text.to_owned())
}

/// `sql` on `database` with `values` bound in order. D1 takes one statement at a time.
pub fn prepare(database: &D1Database, sql: &str, values: &[Param]) -> Result<D1PreparedStatement> {
    Ok(D1PreparedStatement {
        shard: Rc::clone(&database.shard),
        sql: sql.to_owned(),
        values: values.to_vec(),
    })
}

/// A statement's answer: its rows, and what D1 says of it.
pub struct D1Result {
    columns: Vec<String>,
    rows: Vec<Vec<Value>>,
    meta: D1ResultMeta,
}

impl D1Result {
    /// The rows, each read as `T` from an object of its columns (a later column of the same
    /// name wins, as in a JavaScript object).
    pub fn results<T: DeserializeOwned>(&self) -> Result<Vec<T>> {
        self.rows
            .iter()
            .map(|row| {
                let object: Map<String, Value> =
                    self.columns.iter().cloned().zip(row.iter().cloned()).collect();
                Ok(serde_json::from_value(Value::Object(object))?)
            })
            .collect()
    }

    pub fn meta(&self) -> Result<Option<D1ResultMeta>> {
        Ok(Some(D1ResultMeta {
            changed_db: self.meta.changed_db,
            changes: self.meta.changes,
            duration: self.meta.duration,
            last_row_id: self.meta.last_row_id,
            rows_read: self.meta.rows_read,
            rows_written: self.meta.rows_written,
            size_after: self.meta.size_after,
        }))
    }

    pub fn success(&self) -> bool {
        true
    }
}

fn execute(connection: &Connection, sql: &str, values: &[Param]) -> Result<D1Result> {
    let mut statement = connection.prepare(sql).map_err(d1_error)?;
    let expected = statement.parameter_count();
    if values.len() != expected {
        return Err(Error::RustError(format!(
            "{D1_ERROR}Wrong number of parameter bindings for SQL query: {expected} expected, {} given",
            values.len()
        )));
    }
    for (at, value) in values.iter().enumerate() {
        let bound = match value {
            Param::Text(text) => Sql::Text(text.clone()),
            // A JavaScript number: a whole one is bound as an integer, as D1 binds it.
            Param::Number(number) if number.fract() == 0.0 && number.abs() < 9_007_199_254_740_992.0 => {
                Sql::Integer(*number as i64)
            }
            Param::Number(number) => Sql::Real(*number),
            Param::Null => Sql::Null,
        };
        statement.raw_bind_parameter(at + 1, bound).map_err(d1_error)?;
    }
    let columns: Vec<String> = statement.column_names().map(str::to_owned).collect();
    let writes = !statement.readonly();
    let mut rows = Vec::new();
    {
        let mut answer = statement.raw_query();
        while let Some(row) = answer.next().map_err(d1_error)? {
            let mut values = Vec::with_capacity(columns.len());
            for at in 0..columns.len() {
                values.push(json_of(row.get_ref(at).map_err(d1_error)?));
            }
            rows.push(values);
        }
    }
    let changes = if writes { connection.changes() as usize } else { 0 };
    let scanned = usize::try_from(statement.get_status(StatementStatus::FullscanStep)).unwrap_or(0);
    Ok(D1Result {
        columns,
        meta: D1ResultMeta {
            changed_db: Some(changes > 0),
            changes: Some(changes),
            duration: Some(0.0),
            last_row_id: Some(connection.last_insert_rowid()),
            rows_read: Some(rows.len() + scanned + changes),
            rows_written: Some(changes),
            size_after: None,
        },
        rows,
    })
}

/// A value as JavaScript holds it: numbers are doubles, so a whole one reads as an integer
/// whether SQLite stored it as INTEGER or REAL; a BLOB is an array of bytes.
fn json_of(value: ValueRef<'_>) -> Value {
    match value {
        ValueRef::Null => Value::Null,
        ValueRef::Integer(integer) => Value::from(integer),
        ValueRef::Real(real) if real.fract() == 0.0 && real.abs() < 9_007_199_254_740_992.0 => {
            Value::from(real as i64)
        }
        ValueRef::Real(real) => serde_json::Number::from_f64(real).map_or(Value::Null, Value::Number),
        ValueRef::Text(text) => Value::from(String::from_utf8_lossy(text).into_owned()),
        ValueRef::Blob(bytes) => Value::from(bytes.to_vec()),
    }
}

/// SQLite's failure as D1 reports it: `D1_ERROR: <SQLite's message>: SQLITE_<CODE>`.
fn d1_error(error: rusqlite::Error) -> Error {
    let message = match &error {
        rusqlite::Error::SqliteFailure(failure, message) => format!(
            "{}: SQLITE_{}",
            message.clone().unwrap_or_else(|| failure.to_string()),
            code_name(failure.code)
        ),
        other => format!("{other}: SQLITE_ERROR"),
    };
    Error::RustError(format!("{D1_ERROR}{message}"))
}

fn code_name(code: rusqlite::ErrorCode) -> &'static str {
    use rusqlite::ErrorCode as Code;
    match code {
        Code::ConstraintViolation => "CONSTRAINT",
        Code::DatabaseBusy => "BUSY",
        Code::DatabaseLocked => "LOCKED",
        Code::TooBig => "TOOBIG",
        Code::TypeMismatch => "MISMATCH",
        Code::ApiMisuse => "MISUSE",
        Code::ParameterOutOfRange => "RANGE",
        _ => "ERROR",
    }
}

/// What D1 said of a statement it refused, when the error is D1's.
pub fn d1_cause(error: &Error) -> Option<String> {
    match error {
        Error::RustError(message) => message.strip_prefix(D1_ERROR).map(str::to_owned),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::native::clock::block_on;

    fn database() -> D1Database {
        D1Database {
            shard: Rc::new(Shard::migrated()),
        }
    }

    fn run(database: &D1Database, sql: &str, values: &[Param]) -> Result<D1Result> {
        block_on(prepare(database, sql, values)?.all())
    }

    #[test]
    fn a_violated_constraint_is_worded_as_d1_words_it() {
        let db = database();
        let insert =
            "INSERT INTO businesses (id, name, created_at) VALUES (?1, 'Acme', '2026-11-26T12:00:00Z')";
        run(&db, insert, &[Param::Text("b1".into())]).unwrap_or_else(|error| panic!("{error}"));
        let error = run(&db, insert, &[Param::Text("b1".into())])
            .err()
            .map(|error| error.to_string());
        let error = error.unwrap_or_default();
        assert!(
            error.starts_with("D1_ERROR: UNIQUE constraint failed: businesses.id")
                && error.ends_with(": SQLITE_CONSTRAINT"),
            "{error}"
        );
    }

    #[test]
    fn a_batch_that_fails_leaves_nothing_behind() {
        let db = database();
        let insert = |id: &str| {
            prepare(
                &db,
                "INSERT INTO businesses (id, name, created_at) VALUES (?1, 'Acme', '2026-11-26T12:00:00Z')",
                &[Param::Text(id.into())],
            )
        };
        let statements = vec![
            insert("b1").unwrap_or_else(|e| panic!("{e}")),
            insert("b1").unwrap_or_else(|e| panic!("{e}")),
        ];
        assert!(block_on(db.batch(statements)).is_err());
        let count = run(&db, "SELECT count(*) AS n FROM businesses", &[]).unwrap_or_else(|e| panic!("{e}"));
        #[derive(serde::Deserialize)]
        struct Count {
            n: i64,
        }
        let counted: Vec<Count> = count.results().unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(counted.first().map(|row| row.n), Some(0));
    }

    #[test]
    fn whole_numbers_read_as_integers_and_meta_counts_changes() {
        let db = database();
        let answer = run(
            &db,
            "SELECT 2.0 AS two, 2.5 AS half, ?1 AS bound",
            &[Param::Number(7.0)],
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let rows: Vec<(i64, f64, i64)> = block_on(
            prepare(&db, "SELECT 2.0, 2.5, ?1", &[Param::Number(7.0)])
                .unwrap_or_else(|e| panic!("{e}"))
                .raw(),
        )
        .unwrap_or_else(|e| panic!("{e}"))
        .into_iter()
        .map(|row: Vec<Value>| {
            (
                row[0].as_i64().unwrap_or(-1),
                row[1].as_f64().unwrap_or(-1.0),
                row[2].as_i64().unwrap_or(-1),
            )
        })
        .collect();
        assert_eq!(rows, vec![(2, 2.5, 7)]);
        assert_eq!(
            answer.meta().ok().flatten().and_then(|meta| meta.changes),
            Some(0)
        );
        let written = run(
            &db,
            "INSERT INTO businesses (id, name, created_at) VALUES ('b2', 'Acme', '2026-11-26T12:00:00Z')",
            &[],
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let meta = written.meta().ok().flatten();
        assert_eq!(meta.as_ref().and_then(|meta| meta.changes), Some(1));
        assert_eq!(meta.and_then(|meta| meta.rows_written), Some(1));
    }

    #[test]
    fn a_statement_bound_with_the_wrong_number_of_values_is_refused() {
        let db = database();
        assert!(run(&db, "SELECT ?1, ?2", &[Param::Null]).is_err());
    }
}
