//! The D1 database as the table modules use it: the runtime's own calls, each counted against the
//! invocation's limits (`crate::env`) before it runs (its SQL's length and bound parameters, one
//! query per statement, one round trip per call) and charged with the rows D1 says it read and
//! wrote after.
//!
//! A statement comes through one of two doors. [`Db::scoped`] takes the [`Tenant`] and binds its
//! business id as `?1` itself, so a statement on a business's rows cannot be made without one, nor
//! bound to another business's id; [`Db::unscoped`] is the door of the few statements that are not
//! one business's (the sweeps, the lookups that find the business, such as an API key's hash or a
//! webhook's path, and the tables that have no business). `statements.rs` holds each unscoped
//! statement on a business's table to a listed reason.

use crate::db::Param;
use crate::env::Env;
use crate::runtime;
use domain::platform::{Resource, check_statement};
use domain::tenant::Tenant;
use serde::de::DeserializeOwned;
use worker::wasm_bindgen::JsValue;
use worker::{D1Database, D1PreparedStatement, D1Result};

pub struct Db {
    inner: D1Database,
    env: Env,
}

impl Db {
    pub(crate) fn new(inner: D1Database, env: Env) -> Self {
        Self { inner, env }
    }

    /// A statement on the tenant's rows: `?1` is its business id, bound here, and
    /// [`Statement::bind`] binds the rest from `?2` on. Its SQL must compare `?1` with a
    /// `business_id` (`statements.rs` checks that it reads one).
    pub fn scoped(&self, tenant: &Tenant, sql: impl Into<String>) -> Statement {
        self.statement(sql.into(), Some(JsValue::from_str(tenant.business_id.as_str())))
    }

    /// A statement that is no one business's: a sweep across every business, a lookup that finds
    /// the business (by an API key's hash, a webhook's path), or a table with no business column.
    /// Nothing is bound for it.
    pub fn unscoped(&self, sql: impl Into<String>) -> Statement {
        self.statement(sql.into(), None)
    }

    fn statement(&self, sql: String, scope: Option<JsValue>) -> Statement {
        Statement {
            inner: self.inner.prepare(&sql),
            sql_bytes: sql.len(),
            start: sql.chars().take(80).collect(),
            parameters: usize::from(scope.is_some()),
            scope,
            env: self.env.clone(),
        }
    }

    /// Runs the statements in one transaction: one round trip, one query per statement.
    pub async fn batch(&self, statements: Vec<Statement>) -> worker::Result<Vec<D1Result>> {
        for statement in &statements {
            statement.check()?;
        }
        let count = u32::try_from(statements.len()).unwrap_or(u32::MAX);
        self.env.charge(Resource::D1Query, count)?;
        self.env.charge_round_trip();
        let called = runtime::now().millis();
        let statements = statements
            .into_iter()
            .map(|statement| statement.bound())
            .collect::<worker::Result<Vec<_>>>()?;
        let results = self.inner.batch(statements).await?;
        charge(&self.env, called, &results);
        Ok(results)
    }
}

/// A prepared statement, with what D1's limits look at.
pub struct Statement {
    inner: D1PreparedStatement,
    sql_bytes: usize,
    /// The SQL's start, for the message of a statement over a limit.
    start: String,
    parameters: usize,
    /// A scoped statement's business id, until [`Statement::bind`] binds it as `?1`.
    scope: Option<JsValue>,
    env: Env,
}

impl Statement {
    /// Binds `values` in order: from `?2` on for a scoped statement (its `?1` is the business),
    /// from `?1` for an unscoped one.
    pub fn bind(self, values: &[Param]) -> worker::Result<Self> {
        let all: Vec<JsValue> = self
            .scope
            .iter()
            .cloned()
            .chain(values.iter().map(js_value))
            .collect();
        Ok(Self {
            inner: self.inner.bind(&all)?,
            parameters: all.len(),
            scope: None,
            ..self
        })
    }

    /// The runtime's statement with everything bound: a scoped statement that took no other
    /// values is bound to its business here. (The runtime's statement is a handle: a clone is
    /// not a copy.)
    fn bound(&self) -> worker::Result<D1PreparedStatement> {
        match &self.scope {
            Some(business) => self.inner.clone().bind(std::slice::from_ref(business)),
            None => Ok(self.inner.clone()),
        }
    }

    /// The first row of the statement's answer (D1 runs the whole statement either way, and
    /// `all` tells the rows it read). `column` must be None: a row is read whole.
    pub async fn first<T: DeserializeOwned>(&self, column: Option<&str>) -> worker::Result<Option<T>> {
        if column.is_some() {
            return Err(worker::Error::RustError("a row is read whole".to_owned()));
        }
        Ok(self.all().await?.results::<T>()?.into_iter().next())
    }

    /// The rows as arrays of values (D1 tells no rows read for these).
    pub async fn raw<T: DeserializeOwned>(&self) -> worker::Result<Vec<Vec<T>>> {
        let called = self.start()?;
        let rows = self.bound()?.raw().await?;
        charge(&self.env, called, &[]);
        Ok(rows)
    }

    pub async fn all(&self) -> worker::Result<D1Result> {
        let called = self.start()?;
        let result = self.bound()?.all().await?;
        charge(&self.env, called, std::slice::from_ref(&result));
        Ok(result)
    }

    pub async fn run(&self) -> worker::Result<D1Result> {
        let called = self.start()?;
        let result = self.bound()?.run().await?;
        charge(&self.env, called, std::slice::from_ref(&result));
        Ok(result)
    }

    /// D1 refuses a statement over its size or parameter limit in production; so do we, always.
    fn check(&self) -> worker::Result<()> {
        check_statement(self.sql_bytes, self.parameters)
            .map_err(|exceeded| worker::Error::RustError(format!("{exceeded}: {}…", self.start)))
    }

    /// Counts one statement run on its own; when it was called (ms), for [`charge`].
    fn start(&self) -> worker::Result<i64> {
        self.check()?;
        self.env.charge(Resource::D1Query, 1)?;
        self.env.charge_round_trip();
        Ok(runtime::now().millis())
    }
}

/// The runtime's value of a bound parameter.
fn js_value(param: &Param) -> JsValue {
    match param {
        Param::Text(text) => JsValue::from_str(text),
        Param::Number(number) => JsValue::from_f64(*number),
        Param::Null => JsValue::NULL,
    }
}

/// Charges a call answered now (called at `called`, ms) with the rows D1 says its statements read
/// and wrote, and times it.
fn charge(env: &Env, called: i64, results: &[D1Result]) {
    let mut sql_ms = 0.0;
    for meta in results.iter().filter_map(|result| result.meta().ok().flatten()) {
        env.charge_rows(
            meta.rows_read.unwrap_or(0) as u64,
            meta.rows_written.unwrap_or(0) as u64,
        );
        sql_ms += meta.duration.unwrap_or(0.0);
    }
    env.waited_on_d1(runtime::now().millis() - called, sql_ms);
}
