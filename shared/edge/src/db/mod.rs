//! D1, one module per table. Each table module holds all the SQL, row types and column lists of
//! its table, and nothing else writes that table. Statements that several modules contribute to
//! (an event recorded only if a change applied, say) are composed from [`Sql`] fragments whose
//! parameters are named, so no module depends on another's parameter numbers.
//!
//! This module holds what every table module needs: binding values, reading rows and changed
//! counts back, and telling a constraint violation from any other failure. A statement is made
//! through one of the two doors of [`Db`]: `scoped` (a [`Tenant`]'s rows: it binds the business as
//! `?1`) or `unscoped` (the sweeps, the lookups that find the business, tables with no business).
//!
//! Query plans: D1 keeps no statistics, so SQLite cannot tell that a list of primary keys is
//! narrower than a business. Given `business_id = ?1 AND id IN (...)` it walks the business's
//! rows in an index that starts with `business_id`, reading every row the business has; written
//! `+business_id = ?1` (the unary `+` takes the column out of index choice and changes nothing
//! else), it finds each row by its key and checks the business on the row. The same `+` on an
//! ORDER BY column keeps a lookup on its key's index instead of the index that is already sorted.
//! `statements.rs` holds the plans of the fixed statements to this (`WALKS`).

mod batch;
mod d1;
pub mod directory;
mod error;
mod placements;
#[cfg(test)]
mod statements;

pub mod alert_settings;
pub mod alerts;
pub mod api_key_usage;
pub mod api_keys;
pub mod attachments;
pub mod audit_log;
pub mod bot_answers;
pub mod bot_conversations;
pub mod bot_turns;
pub mod bots;
pub mod business_usage;
pub mod businesses;
pub mod channel_accounts;
pub mod console_sessions;
pub mod conversations;
pub mod crm_call_minutes;
pub mod crm_connectors;
pub mod crm_contacts;
pub mod crm_inbound_events;
pub mod crm_links;
pub mod crm_requests;
pub mod crm_satisfaction;
pub mod crm_sync_jobs;
pub mod customer_erasures;
pub mod customer_identities;
pub mod customers;
pub mod early_statuses;
pub mod escalations;
pub mod idempotency_keys;
pub mod knowledge_chunks;
pub mod knowledge_links;
pub mod knowledge_run_seen;
pub mod knowledge_sources;
pub mod messages;
pub mod moves;
pub mod oauth_states;
pub mod sso_tokens;
pub mod webhook_attempts;
pub mod webhook_deliveries;
pub mod webhook_endpoints;
pub mod webhook_events;

pub use crate::runtime::{D1Result, Param};
pub use batch::{Answers, Batch, Handle, Read, Written, read_together, write_together};
pub use d1::{Db, Rows, Statement};
pub use error::{Error, Violation};
pub use placements::Shard;

use domain::error::ApiError;
use domain::tenant::Tenant;

/// Rows are written as JSON arrays bound to one parameter (`json_each(?)`); each array stays below
/// this size, well inside D1's statement limit.
pub const WRITE_CHUNK_BYTES: usize = 512 * 1024;

/// Serialises rows into JSON arrays of at most [`WRITE_CHUNK_BYTES`] each (a single larger row
/// gets an array of its own).
pub fn json_arrays<T: serde::Serialize>(rows: impl IntoIterator<Item = T>) -> Result<Vec<String>, ApiError> {
    json_arrays_written(rows, |row, out| {
        out.push_str(&serde_json::to_string(&row)?);
        Ok(())
    })
}

/// As [`json_arrays`], each row written by `write` at the end of its array: for rows written by
/// hand, straight into the array rather than each into a string of its own.
pub fn json_arrays_written<T>(
    rows: impl IntoIterator<Item = T>,
    mut write: impl FnMut(T, &mut String) -> Result<(), ApiError>,
) -> Result<Vec<String>, ApiError> {
    let mut arrays = Vec::new();
    let mut current = String::from("[");
    for row in rows {
        let start = current.len();
        if start > 1 {
            current.push(',');
        }
        write(row, &mut current)?;
        if start > 1 && current.len() + 1 > WRITE_CHUNK_BYTES {
            // The row would take its array past the limit: it starts the next one.
            let row = current.split_off(start + 1);
            current.truncate(start);
            current.push(']');
            arrays.push(std::mem::replace(&mut current, format!("[{row}")));
        }
    }
    if current.len() > 1 {
        current.push(']');
        arrays.push(current);
    }
    Ok(arrays)
}

/// `text` as a JSON string, as serde_json writes it, at the end of `out`: text with nothing to
/// escape, most of it, is copied as it is.
pub fn push_json_text(out: &mut String, text: &str) {
    if text.bytes().any(|b| b < 0x20 || b == b'"' || b == b'\\') {
        out.push_str(&serde_json::Value::from(text).to_string());
    } else {
        out.push('"');
        out.push_str(text);
        out.push('"');
    }
}

pub fn text(value: &str) -> Param {
    Param::Text(value.to_owned())
}

pub fn optional_text(value: Option<&str>) -> Param {
    value.map_or(Param::Null, text)
}

pub fn number(value: i64) -> Param {
    Param::Number(value as f64)
}

pub fn optional_number(value: Option<i64>) -> Param {
    value.map_or(Param::Null, number)
}

/// A list bound as one JSON-array parameter and read back with `json_each`, which keeps any
/// number of keys within D1's limit of 100 bound parameters per statement.
pub fn json_list<'a>(values: impl IntoIterator<Item = &'a str>) -> Param {
    let mut list = String::from("[");
    for (at, value) in values.into_iter().enumerate() {
        if at > 0 {
            list.push(',');
        }
        push_json_text(&mut list, value);
    }
    list.push(']');
    Param::Text(list)
}

/// SQL that selects each of `ids`, for a statement about a list of rows (one parameter).
pub fn listed<'a>(ids: impl IntoIterator<Item = &'a str>) -> Sql {
    Sql::new("SELECT value FROM json_each(:listed)").bind("listed", json_list(ids))
}

pub use batch::{first as first_row, rows};

/// How many rows the statement that gave `result` changed.
pub fn changes(result: &D1Result) -> usize {
    result
        .meta()
        .ok()
        .flatten()
        .and_then(|meta| meta.changes)
        .unwrap_or(0)
}

/// The business a statement finds, read as a tenant: the operator's way to the business that owns
/// a row its path names by id (`SELECT b.id AS business_id, b.default_country FROM … JOIN
/// businesses b …`). Everything after it is scoped by the tenant it returns.
pub async fn owner(statement: Statement) -> Result<Option<Tenant>, ApiError> {
    #[derive(serde::Deserialize)]
    struct Row {
        business_id: String,
        default_country: Option<String>,
    }
    statement
        .first::<Row>(None)
        .await?
        .map(|row| Tenant::from_stored(&row.business_id, row.default_country.as_deref()))
        .transpose()
}

/// A stored value that is not what its column holds: our fault, never the client's.
pub fn corrupt(table: &str, id: &str, what: impl std::fmt::Display) -> ApiError {
    ApiError::internal(
        "reading a stored row",
        format!("{table} {id}: stored {what} is not valid"),
    )
}

/// A statement that rolls back the batch it joins unless `condition` holds when it runs: the
/// batch then fails with [`Violation::Aborted`]. (It inserts NULL into the NOT NULL column of
/// `batch_aborts`, a table made for this; D1 has no other way to fail a statement on purpose,
/// since RAISE works only in triggers, with a fixed message.) Put one in a batch, so the
/// violation says which condition failed.
pub fn abort_unless(condition: Sql) -> Sql {
    Sql::compose(
        "INSERT INTO batch_aborts (aborted) SELECT NULL WHERE NOT ({sql})",
        vec![condition],
    )
}

/// Where a fragment goes in a template of [`Sql::within`] and [`Sql::compose`]; unlike `{}`,
/// it cannot be mistaken for a JSON literal in SQL.
pub const HOLE: &str = "{sql}";

/// A piece of SQL with its own parameters, written `:name` in the text. Fragments from several
/// table modules combine into one statement; [`Sql::scoped`] or [`Sql::unscoped`] numbers the
/// names. A name bound twice must be bound to the same value. `:business` in any fragment is the
/// tenant's business id, which only [`Sql::scoped`] binds.
#[derive(Clone)]
pub struct Sql {
    text: String,
    params: Vec<(&'static str, Param)>,
}

impl Sql {
    pub fn new(text: impl Into<String>) -> Self {
        Self {
            text: text.into(),
            params: Vec::new(),
        }
    }

    pub fn bind(mut self, name: &'static str, value: Param) -> Self {
        self.params.push((name, value));
        self
    }

    pub fn text(&self) -> &str {
        &self.text
    }

    /// This fragment's text placed where [`HOLE`] stands in `template`, with its parameters.
    pub fn within(self, template: &str) -> Self {
        Self {
            text: template.replacen(HOLE, &self.text, 1),
            params: self.params,
        }
    }

    /// `template` with each [`HOLE`] replaced by the next fragment's text, every parameter kept.
    pub fn compose(template: &str, parts: Vec<Sql>) -> Self {
        let mut text = String::with_capacity(template.len());
        let mut params = Vec::new();
        let mut pieces = template.split(HOLE);
        text.push_str(pieces.next().unwrap_or_default());
        let mut parts = parts.into_iter();
        for piece in pieces {
            if let Some(part) = parts.next() {
                text.push_str(&part.text);
                params.extend(part.params);
            }
            text.push_str(piece);
        }
        Self { text, params }
    }

    /// Both conditions.
    pub fn and(self, other: Sql) -> Self {
        Self::compose("({sql}) AND ({sql})", vec![self, other])
    }

    /// The statement on the tenant's rows: `:business` is its business id, bound by the door
    /// ([`Db::scoped`]) as `?1`, so a fragment never binds it itself; the other `:names` are
    /// numbered from `?2` in order of first appearance. The statement must name `:business`.
    pub fn scoped(self, db: &Db, tenant: &Tenant) -> Result<Statement, ApiError> {
        let (sql, values) = self.numbered(true)?;
        Ok(db.scoped(tenant, sql).bind(&values)?)
    }

    /// The statement of a sweep across every business (no `:business`: it would have no
    /// value), its `:names` numbered in order of first appearance.
    pub fn unscoped(self, db: &Db) -> Result<Statement, ApiError> {
        let (sql, values) = self.numbered(false)?;
        Ok(db.unscoped(sql).bind(&values)?)
    }

    /// The statement's text with its `:names` numbered, and the values to bind in that order:
    /// after the business (`?1`, which the door binds) when `scoped`.
    pub(crate) fn numbered(&self, scoped: bool) -> Result<(String, Vec<Param>), ApiError> {
        if !scoped {
            let (sql, order) = number_params(&self.text, &[]);
            let values = self.values(&sql, &order)?;
            return Ok((sql, values));
        }
        if !number_params(&self.text, &[])
            .1
            .iter()
            .any(|name| name == BUSINESS)
        {
            return Err(ApiError::internal(
                "building a statement",
                format!(
                    "a statement of one business that never names :{BUSINESS}: {}",
                    self.text
                ),
            ));
        }
        if self.params.iter().any(|(name, _)| *name == BUSINESS) {
            return Err(ApiError::internal(
                "building a statement",
                format!(":{BUSINESS} is the tenant's, bound by the door, not by a fragment"),
            ));
        }
        let (sql, order) = number_params(&self.text, &[BUSINESS]);
        let values = self.values(&sql, &order[1..])?;
        Ok((sql, values))
    }

    /// The values bound to `names`, in order; each name bound, and bound to one value.
    fn values(&self, sql: &str, names: &[String]) -> Result<Vec<Param>, ApiError> {
        let mut values = Vec::with_capacity(names.len());
        for name in names {
            let mut bound = self.params.iter().filter(|(given, _)| given == name);
            let (_, value) = bound.next().ok_or_else(|| {
                ApiError::internal("building a statement", format!(":{name} is not bound in {sql}"))
            })?;
            if bound.any(|(_, other)| other != value) {
                return Err(ApiError::internal(
                    "building a statement",
                    format!(":{name} is bound to two values"),
                ));
            }
            values.push(value.clone());
        }
        Ok(values)
    }
}

/// The name every statement of one business gives its business id.
const BUSINESS: &str = "business";

/// Rewrites `:name` placeholders (outside quoted strings) to `?1, ?2, …` in order of first
/// appearance after the `reserved` names (which take `?1…` whether or not they appear), and
/// returns the names in that order.
fn number_params(sql: &str, reserved: &[&str]) -> (String, Vec<String>) {
    let mut out = String::with_capacity(sql.len());
    let mut names: Vec<String> = reserved.iter().map(|name| (*name).to_owned()).collect();
    let mut chars = sql.char_indices().peekable();
    let mut quote: Option<char> = None;
    while let Some((at, c)) = chars.next() {
        match quote {
            Some(q) => {
                out.push(c);
                if c == q {
                    quote = None;
                }
            }
            None if c == '\'' || c == '"' => {
                quote = Some(c);
                out.push(c);
            }
            None if c == ':'
                && chars
                    .peek()
                    .is_some_and(|(_, next)| next.is_ascii_alphabetic() || *next == '_') =>
            {
                let start = at + 1;
                let mut end = start;
                while let Some(&(i, next)) = chars.peek() {
                    if next.is_ascii_alphanumeric() || next == '_' {
                        end = i + next.len_utf8();
                        chars.next();
                    } else {
                        break;
                    }
                }
                let name = &sql[start..end];
                let number = match names.iter().position(|known| known == name) {
                    Some(index) => index + 1,
                    None => {
                        names.push(name.to_owned());
                        names.len()
                    }
                };
                out.push('?');
                out.push_str(&number.to_string());
            }
            None => out.push(c),
        }
    }
    (out, names)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_list_is_a_json_array_of_its_texts_each_escaped_where_it_must_be() {
        let cases: [(&[&str], &str); 3] = [
            (&[], "[]"),
            (
                &["ada@example.com", "+353871234567"],
                r#"["ada@example.com","+353871234567"]"#,
            ),
            (
                &["a \"b\"", "c\\d", "e\nf\u{1}", "é 😀"],
                r#"["a \"b\"","c\\d","e\nf\u0001","é 😀"]"#,
            ),
        ];
        for (values, expected) in cases {
            let Param::Text(list) = json_list(values.iter().copied()) else {
                panic!("{values:?}: a list is text");
            };
            assert_eq!(list, expected, "{values:?}");
        }
    }

    #[test]
    fn named_parameters_are_numbered_in_order_of_first_appearance() {
        let (sql, names) = number_params(
            "SELECT ':not_a_param', \"x:y\" FROM t WHERE a = :business AND b = :id AND c = :business",
            &[],
        );
        assert_eq!(
            sql,
            "SELECT ':not_a_param', \"x:y\" FROM t WHERE a = ?1 AND b = ?2 AND c = ?1"
        );
        assert_eq!(names, vec!["business", "id"]);
    }

    #[test]
    fn the_business_is_first_in_a_statement_of_one_business() {
        let (sql, names) = number_params(
            "SELECT 1 FROM t WHERE id = :id AND business_id = :business",
            &[BUSINESS],
        );
        assert_eq!(sql, "SELECT 1 FROM t WHERE id = ?2 AND business_id = ?1");
        assert_eq!(names, vec!["business", "id"]);
    }

    #[test]
    fn a_json_path_or_time_in_a_string_is_left_alone() {
        let (sql, names) = number_params("SELECT json_extract(v, '$.a'), '10:30' WHERE x = :x", &[]);
        assert_eq!(sql, "SELECT json_extract(v, '$.a'), '10:30' WHERE x = ?1");
        assert_eq!(names, vec!["x"]);
    }

    #[test]
    fn fragments_compose_without_sharing_parameter_numbers() {
        let a = Sql::new("a = :x");
        let b = Sql::new("b = :y");
        let both = Sql::compose("SELECT '{}' WHERE {sql} AND {sql}", vec![a, b]);
        assert_eq!(both.text(), "SELECT '{}' WHERE a = :x AND b = :y");
        assert_eq!(
            number_params(both.text(), &[]).0,
            "SELECT '{}' WHERE a = ?1 AND b = ?2"
        );
    }
}
