//! The store read and written directly, on every shard (a row is on one of them): where the API
//! shows nothing, and a test's own change to it as a corrupt row or another worker would make it.

use crate::app::App;
use edge::runtime::native::rusqlite;
use serde_json::{Map, Value};

/// The rows `sql` selects with `params` on every shard, as column → value.
pub fn select(app: &App, sql: &str, params: &[&str]) -> Vec<Map<String, Value>> {
    let (names, rows) = read(app, sql, params);
    rows.into_iter()
        .map(|row| names.iter().cloned().zip(row).collect())
        .collect()
}

/// The rows `sql` selects with `params` on every shard, each its columns' values in order.
pub fn select_values(app: &App, sql: &str, params: &[&str]) -> Vec<Vec<Value>> {
    read(app, sql, params).1
}

/// Runs `sql` with `params` on every shard; how many rows it changed.
pub fn execute(app: &App, sql: &str, params: &[&str]) -> usize {
    app.stack
        .shard_bindings()
        .iter()
        .map(|binding| {
            app.stack.sql(binding, |connection| {
                connection
                    .execute(sql, rusqlite::params_from_iter(params))
                    .unwrap_or_else(|error| panic!("{sql}: {error}"))
            })
        })
        .sum()
}

/// The column names of `sql` and the rows it selects on every shard.
fn read(app: &App, sql: &str, params: &[&str]) -> (Vec<String>, Vec<Vec<Value>>) {
    let mut names = Vec::new();
    let mut rows = Vec::new();
    for binding in app.stack.shard_bindings() {
        app.stack.sql(&binding, |connection| {
            let mut statement = connection
                .prepare(sql)
                .unwrap_or_else(|error| panic!("{sql}: {error}"));
            names = statement.column_names().map(str::to_owned).collect();
            let mut answer = statement
                .query(rusqlite::params_from_iter(params))
                .unwrap_or_else(|error| panic!("{sql}: {error}"));
            while let Some(row) = answer.next().unwrap_or_else(|error| panic!("{sql}: {error}")) {
                let values = (0..names.len()).map(|at| {
                    match row.get_ref(at).unwrap_or_else(|error| panic!("{sql}: {error}")) {
                        rusqlite::types::ValueRef::Null => Value::Null,
                        rusqlite::types::ValueRef::Integer(integer) => Value::from(integer),
                        rusqlite::types::ValueRef::Real(real) => Value::from(real),
                        rusqlite::types::ValueRef::Text(text) => {
                            Value::from(String::from_utf8_lossy(text).into_owned())
                        }
                        rusqlite::types::ValueRef::Blob(bytes) => Value::from(bytes.to_vec()),
                    }
                });
                rows.push(values.collect());
            }
        });
    }
    (names, rows)
}
