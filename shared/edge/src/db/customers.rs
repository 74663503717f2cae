//! `customers`: the customers of each business. Every statement is scoped by the tenant's
//! business id (`?1`, or `:business` in composed statements).

use crate::db::crm_contacts::{self, CrmId};
use crate::db::{self, HOLE, Sql, json_arrays, text};
use crate::db::{Db, Statement};
use crate::runtime::D1Result;
use domain::customer::{Customer, CustomerDraft};
use domain::customer_list::ListQuery;
use domain::email::Email;
use domain::error::ApiError;
use domain::ids::CustomerId;
use domain::lookup::{CustomerKey, KeyKind};
use domain::phone::Phone;
use domain::tenant::Tenant;
use domain::time::Timestamp;
use domain::upsert::KnownCustomer;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

const COLUMNS: &str = "id, name, email, phone, whatsapp_number, first_name, last_name, address, notes, \
                       tags, external_id, external_system, custom_fields, created_at, updated_at";

const INSERT_SQL: &str = "INSERT INTO customers (id, business_id, name, email, phone, whatsapp_number, \
    first_name, last_name, address, notes, tags, external_id, external_system, custom_fields, created_at, updated_at) \
    SELECT json_extract(value, '$.id'), ?1, json_extract(value, '$.name'), json_extract(value, '$.email'), \
    json_extract(value, '$.phone'), json_extract(value, '$.whatsapp_number'), json_extract(value, '$.first_name'), \
    json_extract(value, '$.last_name'), json_extract(value, '$.address'), json_extract(value, '$.notes'), \
    COALESCE(json_extract(value, '$.tags'), '[]'), json_extract(value, '$.external_id'), \
    json_extract(value, '$.external_system'), json_patch('{}', COALESCE(json_extract(value, '$.custom_fields'), '{}')), \
    ?2, ?2 FROM json_each(?3)";

/// Absent fields keep their stored value; `custom_fields` is merged as a JSON merge patch
/// (RFC 7396: a key set to null is removed). A customer the update would leave as it is is not
/// written at all: its `updated_at` stays, D1 bills no row for it, and its `customer.updated`
/// event is not recorded (`Guard::SubjectUpdatedAt`): a CRM's nightly full sync of unchanged
/// customers costs their reads only.
///
/// The rows are materialised first so that each one finds its customer by primary key; left to
/// itself, SQLite re-reads the JSON for every stored customer of the business.
const UPDATE_SQL: &str = "WITH u AS MATERIALIZED (SELECT json_extract(value, '$.id') AS id, \
      json_extract(value, '$.name') AS name, json_extract(value, '$.email') AS email, \
      json_extract(value, '$.phone') AS phone, json_extract(value, '$.whatsapp_number') AS whatsapp_number, \
      json_extract(value, '$.first_name') AS first_name, json_extract(value, '$.last_name') AS last_name, \
      json_extract(value, '$.address') AS address, json_extract(value, '$.notes') AS notes, \
      json_extract(value, '$.tags') AS tags, json_extract(value, '$.external_id') AS external_id, \
      json_extract(value, '$.external_system') AS external_system, \
      json_extract(value, '$.custom_fields') AS custom_fields FROM json_each(?3)) \
    UPDATE customers SET name = u.name, email = COALESCE(u.email, customers.email), \
    phone = COALESCE(u.phone, customers.phone), whatsapp_number = COALESCE(u.whatsapp_number, customers.whatsapp_number), \
    first_name = COALESCE(u.first_name, customers.first_name), last_name = COALESCE(u.last_name, customers.last_name), \
    address = COALESCE(u.address, customers.address), notes = COALESCE(u.notes, customers.notes), \
    tags = COALESCE(u.tags, customers.tags), external_id = COALESCE(u.external_id, customers.external_id), \
    external_system = COALESCE(u.external_system, customers.external_system), \
    custom_fields = CASE WHEN u.custom_fields IS NULL THEN customers.custom_fields \
                    ELSE json_patch(customers.custom_fields, u.custom_fields) END, \
    updated_at = ?2 \
    FROM u WHERE customers.id = u.id AND customers.business_id = ?1 \
    AND (customers.name IS NOT u.name OR customers.email IS NOT COALESCE(u.email, customers.email) \
      OR customers.phone IS NOT COALESCE(u.phone, customers.phone) \
      OR customers.whatsapp_number IS NOT COALESCE(u.whatsapp_number, customers.whatsapp_number) \
      OR customers.first_name IS NOT COALESCE(u.first_name, customers.first_name) \
      OR customers.last_name IS NOT COALESCE(u.last_name, customers.last_name) \
      OR customers.address IS NOT COALESCE(u.address, customers.address) \
      OR customers.notes IS NOT COALESCE(u.notes, customers.notes) \
      OR customers.tags IS NOT COALESCE(u.tags, customers.tags) \
      OR customers.external_id IS NOT COALESCE(u.external_id, customers.external_id) \
      OR customers.external_system IS NOT COALESCE(u.external_system, customers.external_system) \
      OR (u.custom_fields IS NOT NULL \
          AND customers.custom_fields IS NOT json_patch(customers.custom_fields, u.custom_fields)))";

#[derive(Deserialize)]
struct CustomerRow {
    id: String,
    name: String,
    email: Option<String>,
    phone: Option<String>,
    whatsapp_number: Option<String>,
    first_name: Option<String>,
    last_name: Option<String>,
    address: Option<String>,
    notes: Option<String>,
    tags: String,
    external_id: Option<String>,
    external_system: Option<String>,
    custom_fields: String,
    created_at: String,
    updated_at: String,
}

impl CustomerRow {
    fn into_customer(self) -> Result<Customer, ApiError> {
        let corrupt = |what: &str| db::corrupt("customer", &self.id, what);
        Ok(Customer {
            id: CustomerId::parse(&self.id).ok_or_else(|| corrupt("id"))?,
            tags: serde_json::from_str::<Vec<String>>(&self.tags).map_err(|_| corrupt("tags"))?,
            custom_fields: serde_json::from_str::<Map<String, Value>>(&self.custom_fields)
                .map_err(|_| corrupt("custom_fields"))?,
            name: self.name,
            email: self.email,
            phone: self.phone,
            whatsapp_number: self.whatsapp_number,
            first_name: self.first_name,
            last_name: self.last_name,
            address: self.address,
            notes: self.notes,
            external_id: self.external_id,
            external_system: self.external_system,
            created_at: self.created_at,
            updated_at: self.updated_at,
        })
    }
}

/// SQL for the JSON of the tenant's customer whose id is `id_expression`, as stored at the
/// moment the statement runs (null if there is none); [`from_snapshot`] reads it back.
pub fn snapshot_sql(id_expression: &str) -> String {
    format!(
        "(SELECT {} FROM customers cu WHERE cu.business_id = :business AND cu.id = {id_expression})",
        json_object_of(COLUMNS, "cu")
    )
}

/// A customer from the JSON [`snapshot_sql`] made.
pub fn from_snapshot(value: Value) -> Result<Customer, ApiError> {
    serde_json::from_value::<CustomerRow>(value)
        .map_err(|e| ApiError::internal("reading a customer snapshot", e))?
        .into_customer()
}

/// A `json_object(...)` expression of the columns of a select list (`a, b, t.c, (expr) AS d`),
/// each keyed by its name; bare columns are qualified with `alias`. Reading a row back through
/// this JSON gives the same fields a plain `SELECT` of the list gives.
pub(crate) fn json_object_of(columns: &str, alias: &str) -> String {
    let mut entries = Vec::new();
    let (mut depth, mut start) = (0usize, 0usize);
    let mut push = |column: &str| {
        let column = column.trim();
        let (expression, name) = match column.rsplit_once(" AS ") {
            Some((expression, name)) => (expression.trim().to_owned(), name.trim().to_owned()),
            None => match column.split_once('.') {
                Some((_, name)) => (column.to_owned(), name.to_owned()),
                None => (format!("{alias}.{column}"), column.to_owned()),
            },
        };
        entries.push(format!("'{name}', {expression}"));
    };
    for (at, c) in columns.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth = depth.saturating_sub(1),
            ',' if depth == 0 => {
                push(&columns[start..at]);
                start = at + 1;
            }
            _ => {}
        }
    }
    push(&columns[start..]);
    format!("json_object({})", entries.join(", "))
}

/// The condition that the tenant's customer `id` exists when the statement runs.
pub fn exists(id: &CustomerId) -> Sql {
    Sql::new("EXISTS (SELECT 1 FROM customers WHERE business_id = :business AND id = :customer_id)")
        .bind("customer_id", text(id.as_str()))
}

/// The statement reading the tenant's customer `key` names.
fn by_key(db: &Db, tenant: &Tenant, key: &CustomerKey) -> Result<Statement, ApiError> {
    // The column name comes from a closed enum, never from the request.
    let column = key.kind().name();
    let sql = format!("SELECT {COLUMNS} FROM customers WHERE business_id = ?1 AND {column} = ?2");
    Ok(db.scoped(tenant, sql).bind(&[db::text(key.as_str())])?)
}

/// The tenant's customer whose id the fragment `id` selects (one column), for a caller's batch;
/// [`customer_at`] reads its answer. Our own id is the primary key: `+business_id` keeps SQLite
/// on it (see the module note in `db`).
pub fn with_id_of(id: Sql) -> Sql {
    id.within(&format!(
        "SELECT {COLUMNS} FROM customers WHERE +business_id = :business AND id = ({HOLE})"
    ))
}

/// The customer the statement of [`with_id_of`] at `position` of a batch found, or None.
pub fn customer_at(results: &[D1Result], position: usize) -> Result<Option<Customer>, ApiError> {
    db::first_row::<CustomerRow>(results, position)?
        .map(CustomerRow::into_customer)
        .transpose()
}

pub async fn find_one(db: &Db, tenant: &Tenant, key: &CustomerKey) -> Result<Option<Customer>, ApiError> {
    let row = by_key(db, tenant, key)?.first::<CustomerRow>(None).await?;
    row.map(CustomerRow::into_customer).transpose()
}

/// The tenant's customer `key` names, with the ids connectors keep it by in their CRMs: both
/// read in one round trip.
async fn find_one_with_crm_ids(
    db: &Db,
    tenant: &Tenant,
    key: &CustomerKey,
) -> Result<Option<(Customer, Vec<CrmId>)>, ApiError> {
    let column = key.kind().name();
    let named = Sql::new(format!(
        "SELECT id FROM customers WHERE business_id = :business AND {column} = :key"
    ))
    .bind("key", text(key.as_str()));
    let results = db
        .batch(vec![
            by_key(db, tenant, key)?,
            crm_contacts::crm_ids_of(named).scoped(db, tenant)?,
        ])
        .await?;
    let Some(row) = db::first_row::<CustomerRow>(&results, 0)? else {
        return Ok(None);
    };
    Ok(Some((
        row.into_customer()?,
        crm_contacts::crm_ids_at(&results, 1)?,
    )))
}

/// The customer the first of `keys` that names one of the tenant's customers names; a request
/// that names its customer several ways (our id, the CRM's id) is answered by the first that
/// matches. Another business's customer is not found, exactly like one that does not exist.
/// `named_by` says how the request named the customer, for the 404.
pub async fn first_named(
    db: &Db,
    tenant: &Tenant,
    keys: &[CustomerKey],
    named_by: &str,
) -> Result<Customer, ApiError> {
    first_found(keys, named_by, |key| find_one(db, tenant, key)).await
}

/// The statements reading the customer each of `keys` names, in order, for a caller's batch
/// (the request names one customer, usually by one key); [`first_named_at`] reads their answer.
pub fn named_by(db: &Db, tenant: &Tenant, keys: &[CustomerKey]) -> Result<Vec<Statement>, ApiError> {
    keys.iter().map(|key| by_key(db, tenant, key)).collect()
}

/// The customer the first of the `count` statements of [`named_by`] from `position` of a batch
/// found, or the 404 that says how the request named the customer (`named_by`).
pub fn first_named_at(
    results: &[D1Result],
    position: usize,
    count: usize,
    named_by: &str,
) -> Result<Customer, ApiError> {
    for at in position..position + count {
        if let Some(customer) = customer_at(results, at)? {
            return Ok(customer);
        }
    }
    Err(not_named(named_by))
}

/// The 404 of a request whose customer (named by `named_by`) is not there.
fn not_named(named_by: &str) -> ApiError {
    ApiError::not_found(format!("no customer with {named_by}"))
}

/// [`first_named`], with the customer's CRM ids read in the same round trip.
pub async fn first_named_with_crm_ids(
    db: &Db,
    tenant: &Tenant,
    keys: &[CustomerKey],
    named_by: &str,
) -> Result<(Customer, Vec<CrmId>), ApiError> {
    first_found(keys, named_by, |key| find_one_with_crm_ids(db, tenant, key)).await
}

/// What `read` finds for the first of `keys` that finds anything, or the 404 that says how the
/// request named the customer.
async fn first_found<'k, T, Found>(
    keys: &'k [CustomerKey],
    named_by: &str,
    read: impl Fn(&'k CustomerKey) -> Found,
) -> Result<T, ApiError>
where
    Found: Future<Output = Result<Option<T>, ApiError>>,
{
    for key in keys {
        if let Some(found) = read(key).await? {
            return Ok(found);
        }
    }
    Err(not_named(named_by))
}

/// A page of the tenant's customers, newest first, after the query's cursor and narrowed by its
/// filters; at most `limit` of them. Walks `customers_by_created` backwards, so a page costs
/// the rows it returns (plus those a filter passes over).
pub async fn list(
    db: &Db,
    tenant: &Tenant,
    query: &ListQuery,
    limit: usize,
) -> Result<Vec<Customer>, ApiError> {
    let sql = format!(
        "SELECT {COLUMNS} FROM customers WHERE business_id = ?1 \
         AND (?2 IS NULL OR created_at < ?2 OR (created_at = ?2 AND id < ?3)) \
         AND (?4 IS NULL OR EXISTS (SELECT 1 FROM json_each(customers.tags) WHERE value = ?4)) \
         AND (?5 IS NULL OR external_system = ?5) \
         AND (?6 IS NULL OR updated_at > ?6) \
         ORDER BY created_at DESC, id DESC LIMIT ?7"
    );
    let result = db
        .scoped(tenant, sql)
        .bind(&[
            db::optional_text(query.after.as_ref().map(|after| after.created_at.as_str())),
            db::optional_text(query.after.as_ref().map(|after| after.id.as_str())),
            db::optional_text(query.tag.as_deref()),
            db::optional_text(query.external_system.as_deref()),
            db::optional_text(query.updated_since.map(Timestamp::to_rfc3339).as_deref()),
            db::number(limit as i64),
        ])?
        .all()
        .await?;
    result
        .results::<CustomerRow>()?
        .into_iter()
        .map(CustomerRow::into_customer)
        .collect()
}

/// One statement selecting `columns` of every customer of `?1` whose key column is in the JSON
/// list bound at the paired parameter. A UNION of one indexed lookup per key column, so its cost
/// follows the number of keys, not the size of the business.
/// Our own id is the primary key: `+business_id` keeps SQLite on it (see the module note in
/// `db`).
pub(crate) fn select_by_keys(columns: &str, keys: &[(KeyKind, u8)]) -> String {
    keys.iter()
        .map(|(kind, param)| {
            let business = if *kind == KeyKind::Id { "+business_id" } else { "business_id" };
            format!(
                "SELECT {columns} FROM customers WHERE {business} = ?1 AND {} IN (SELECT value FROM json_each(?{param}))",
                kind.name()
            )
        })
        .collect::<Vec<_>>()
        .join(" UNION ")
}

/// Every customer holding any of the keys, each once, in one statement.
pub async fn find_many(db: &Db, tenant: &Tenant, keys: &[CustomerKey]) -> Result<Vec<Customer>, ApiError> {
    let of_kind = |kind: KeyKind| {
        db::json_list(
            keys.iter()
                .filter(move |key| key.kind() == kind)
                .map(CustomerKey::as_str),
        )
    };
    let sql = select_by_keys(
        COLUMNS,
        &[
            (KeyKind::Id, 2),
            (KeyKind::ExternalId, 3),
            (KeyKind::Email, 4),
            (KeyKind::Phone, 5),
        ],
    );
    let result = db
        .scoped(tenant, sql)
        .bind(&[
            of_kind(KeyKind::Id),
            of_kind(KeyKind::ExternalId),
            of_kind(KeyKind::Email),
            of_kind(KeyKind::Phone),
        ])?
        .all()
        .await?;
    result
        .results::<CustomerRow>()?
        .into_iter()
        .map(CustomerRow::into_customer)
        .collect()
}

/// The identifying keys of every stored customer that shares a key with `drafts`.
pub async fn find_known(
    db: &Db,
    tenant: &Tenant,
    drafts: &[&CustomerDraft],
) -> Result<Vec<KnownCustomer>, ApiError> {
    #[derive(Deserialize)]
    struct KeyRow {
        id: String,
        external_id: Option<String>,
        email: Option<String>,
        phone: Option<String>,
    }
    let sql = select_by_keys(
        "id, external_id, email, phone",
        &[(KeyKind::ExternalId, 2), (KeyKind::Email, 3), (KeyKind::Phone, 4)],
    );
    let result = db
        .scoped(tenant, sql)
        .bind(&[
            db::json_list(drafts.iter().filter_map(|d| d.external_id.as_deref())),
            db::json_list(drafts.iter().filter_map(|d| d.email.as_ref().map(Email::as_str))),
            db::json_list(drafts.iter().filter_map(|d| d.phone.as_ref().map(Phone::as_str))),
        ])?
        .all()
        .await?;
    result
        .results::<KeyRow>()?
        .into_iter()
        .map(|row| {
            Ok(KnownCustomer {
                id: CustomerId::parse(&row.id).ok_or_else(|| {
                    ApiError::internal(
                        "reading customer keys",
                        format!("stored id {} is not valid", row.id),
                    )
                })?,
                external_id: row.external_id,
                email: row.email.and_then(|email| Email::parse(&email).ok()),
                phone: row.phone.and_then(|phone| Phone::parse(&phone, None).ok()),
            })
        })
        .collect()
}

/// A draft as one JSON row of a write; `None` fields are written as null.
#[derive(Serialize)]
struct WriteRow<'a> {
    id: &'a str,
    name: &'a str,
    email: Option<&'a Email>,
    phone: Option<&'a Phone>,
    whatsapp_number: Option<&'a Phone>,
    first_name: Option<&'a str>,
    last_name: Option<&'a str>,
    address: Option<&'a str>,
    notes: Option<&'a str>,
    tags: Option<&'a Vec<String>>,
    external_id: Option<&'a str>,
    external_system: Option<&'a str>,
    custom_fields: Option<&'a Map<String, Value>>,
}

impl<'a> WriteRow<'a> {
    fn new(id: &'a CustomerId, draft: &'a CustomerDraft) -> Self {
        Self {
            id: id.as_str(),
            name: &draft.name,
            email: draft.email.as_ref(),
            phone: draft.phone.as_ref(),
            whatsapp_number: draft.whatsapp_number.as_ref(),
            first_name: draft.first_name.as_deref(),
            last_name: draft.last_name.as_deref(),
            address: draft.address.as_deref(),
            notes: draft.notes.as_deref(),
            tags: draft.tags.as_ref(),
            external_id: draft.external_id.as_deref(),
            external_system: draft.external_system.as_deref(),
            custom_fields: draft.custom_fields.as_ref(),
        }
    }
}

/// The statements that write every planned customer, in one transaction when run in one batch:
/// for each step in order, one INSERT of its new customers and one UPDATE of its matched ones
/// (more only when a step's rows exceed the chunk size).
pub fn write(
    db: &Db,
    tenant: &Tenant,
    now: Timestamp,
    writes: &[PlannedWrite<'_>],
) -> Result<Vec<Statement>, ApiError> {
    let stamp = text(&now.to_rfc3339());
    let mut statements = Vec::new();
    for step in writes.chunk_by(|a, b| a.step == b.step) {
        for (sql, is_new) in [(INSERT_SQL, true), (UPDATE_SQL, false)] {
            let rows = step
                .iter()
                .filter(|w| w.is_new == is_new)
                .map(|w| WriteRow::new(w.id, w.draft));
            for chunk in json_arrays(rows)? {
                statements.push(db.scoped(tenant, sql).bind(&[stamp.clone(), text(&chunk)])?);
            }
        }
    }
    Ok(statements)
}

/// One customer to write, in the step its plan gave it.
pub struct PlannedWrite<'a> {
    pub step: usize,
    pub id: &'a CustomerId,
    pub draft: &'a CustomerDraft,
    pub is_new: bool,
}

/// A sender a channel knows only by its address, about to become a customer.
pub struct NewSender<'a> {
    pub id: &'a CustomerId,
    pub name: &'a str,
    pub email: Option<&'a str>,
    pub phone: Option<&'a str>,
    pub whatsapp_number: Option<&'a str>,
}

/// Creates the sender's customer, unless their address on the channel is linked to a customer
/// already, or a customer holds their phone or email. The `customer_identities` link follows in
/// the same batch.
pub fn create_sender(
    db: &Db,
    tenant: &Tenant,
    sender: &NewSender<'_>,
    channel: &str,
    address: &str,
    now: &str,
) -> Result<Statement, ApiError> {
    Ok(db
        .scoped(tenant, "INSERT INTO customers (id, business_id, name, email, phone, whatsapp_number, tags, custom_fields, created_at, updated_at) \
             SELECT ?2, ?1, ?3, ?4, ?5, ?6, '[]', '{}', ?7, ?7 \
             WHERE NOT EXISTS (SELECT 1 FROM customer_identities WHERE business_id = ?1 AND channel = ?8 AND address = ?9) \
             AND NOT EXISTS (SELECT 1 FROM customers WHERE business_id = ?1 AND \
                 ((?5 IS NOT NULL AND (phone = ?5 OR whatsapp_number = ?5)) OR (?4 IS NOT NULL AND email = ?4))) \
             ON CONFLICT DO NOTHING",
        )
        .bind(&[
            text(sender.id.as_str()),
            text(sender.name),
            db::optional_text(sender.email),
            db::optional_text(sender.phone),
            db::optional_text(sender.whatsapp_number),
            text(now),
            text(channel),
            text(address),
        ])?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_select_list_becomes_a_json_object_keyed_by_column_name() {
        assert_eq!(
            json_object_of(
                "id, name,\n  t.kind, (SELECT COUNT(*) FROM m WHERE m.a = t.id, 1) AS n",
                "t"
            ),
            "json_object('id', t.id, 'name', t.name, 'kind', t.kind, 'n', (SELECT COUNT(*) FROM m WHERE m.a = t.id, 1))"
        );
    }

    #[test]
    fn rows_are_chunked_below_the_size_limit_and_each_chunk_is_a_json_array() {
        let id = CustomerId::generate([1; 16]);
        let draft = CustomerDraft {
            name: "n".repeat(100_000),
            email: None,
            phone: None,
            whatsapp_number: None,
            first_name: None,
            last_name: None,
            address: None,
            notes: None,
            tags: None,
            external_id: None,
            external_system: None,
            custom_fields: None,
        };
        let chunks = json_arrays((0..12).map(|_| WriteRow::new(&id, &draft))).unwrap_or_default();
        assert_eq!(chunks.len(), 3);
        let mut rows = 0;
        for chunk in &chunks {
            assert!(chunk.len() <= db::WRITE_CHUNK_BYTES);
            let parsed: Vec<Value> = serde_json::from_str(chunk).unwrap_or_default();
            rows += parsed.len();
        }
        assert_eq!(rows, 12);
        assert!(
            json_arrays(std::iter::empty::<WriteRow>())
                .unwrap_or_default()
                .is_empty()
        );
    }

    #[test]
    fn a_customer_the_update_would_leave_as_it_is_is_not_written() {
        let db = crate::db::statements::migrated();
        db.execute(
            "INSERT INTO businesses (id, name, created_at) VALUES ('b', 'Shop', '2026-01-01T00:00:00.000Z')",
            [],
        )
        .unwrap_or_else(|error| panic!("a business: {error}"));
        let row = |fields: serde_json::Value| {
            let mut row = serde_json::json!({
                "id": "c1", "name": "Ann", "email": "ann@example.com", "phone": "+353871234567",
                "tags": ["vip", "b2b"], "external_id": "crm-1", "external_system": "hubspot",
                "custom_fields": {"segment": "enterprise", "value": 5, "nested": {"a": [1, 2]}}
            });
            if let (Some(row), Some(fields)) = (row.as_object_mut(), fields.as_object()) {
                row.extend(fields.clone());
            }
            format!("[{row}]")
        };
        let written = |sql: &str, stamp: &str, rows: String| {
            db.execute(sql, rusqlite::params!["b", stamp, rows])
                .unwrap_or_else(|error| panic!("the statement runs: {error}"))
        };
        let updated_at = || -> String {
            db.query_row("SELECT updated_at FROM customers WHERE id = 'c1'", [], |r| {
                r.get(0)
            })
            .unwrap_or_else(|error| panic!("the customer: {error}"))
        };
        assert_eq!(written(INSERT_SQL, "t1", row(serde_json::json!({}))), 1);
        // The same customer again, and one that leaves out what it does not change: nothing written.
        assert_eq!(written(UPDATE_SQL, "t2", row(serde_json::json!({}))), 0);
        let sparse = serde_json::json!({"id": "c1", "name": "Ann", "custom_fields": {"value": 5}});
        assert_eq!(written(UPDATE_SQL, "t3", format!("[{sparse}]")), 0);
        assert_eq!(updated_at(), "t1");
        // Any change is written, and stamped.
        for (stamp, change) in [
            ("t4", serde_json::json!({"name": "Ann B"})),
            ("t5", serde_json::json!({"tags": ["vip"]})),
            ("t6", serde_json::json!({"custom_fields": {"value": 6}})),
            ("t7", serde_json::json!({"custom_fields": {"segment": null}})),
            ("t8", serde_json::json!({"notes": "called back"})),
        ] {
            assert_eq!(written(UPDATE_SQL, stamp, row(change.clone())), 1, "{change}");
            assert_eq!(updated_at(), stamp);
        }
    }
}
