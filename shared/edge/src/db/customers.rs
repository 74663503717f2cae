//! `customers`: the customers of each business. Every statement is scoped by the tenant's
//! business id (`?1`, or `:business` in composed statements).

use crate::db::Read;
use crate::db::crm_contacts::{self, CrmId};
use crate::db::{self, HOLE, Sql, number, text};
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
use serde::Deserialize;
use serde_json::{Map, Value};

const COLUMNS: &str = "id, name, email, phone, whatsapp_number, first_name, last_name, address, notes, \
                       tags, external_id, external_system, custom_fields, created_at, updated_at";

const INSERT_SQL: &str = "INSERT INTO customers (id, business_id, name, email, phone, whatsapp_number, \
    first_name, last_name, address, notes, tags, external_id, external_system, custom_fields, created_at, updated_at) \
    SELECT value ->> 'id', ?1, value ->> 'name', value ->> 'email', \
    value ->> 'phone', value ->> 'whatsapp_number', value ->> 'first_name', \
    value ->> 'last_name', value ->> 'address', value ->> 'notes', \
    COALESCE(value -> 'tags', '[]'), value ->> 'external_id', \
    value ->> 'external_system', json_patch('{}', COALESCE(value -> 'custom_fields', '{}')), \
    ?2, ?2 FROM json_each(?3)";

/// Absent fields keep their stored value; `custom_fields` is merged as a JSON merge patch
/// (RFC 7396: a key set to null is removed). A customer the update would leave as it is is not
/// written at all: its `updated_at` stays, D1 bills no row for it, and its `customer.updated`
/// event is not recorded (`Guard::SubjectUpdatedAt`): a CRM's nightly full sync of unchanged
/// customers costs their reads only.
///
/// The indexed columns (the keys and the WhatsApp number) are not among those set here but in
/// [`KEYS_SQL`], for the rows that change one: SQLite rewrites the index of every column a
/// statement sets, changed or not, which for 1000 rows cost three times the rest of the update.
///
/// The rows are materialised first so that each one finds its customer by primary key; left to
/// itself, SQLite re-reads the JSON for every stored customer of the business.
const UPDATE_SQL: &str = "WITH u AS MATERIALIZED (SELECT value ->> 'id' AS id, \
      value ->> 'name' AS name, value ->> 'first_name' AS first_name, value ->> 'last_name' AS last_name, \
      value ->> 'address' AS address, value ->> 'notes' AS notes, value -> 'tags' AS tags, \
      value ->> 'external_system' AS external_system, value -> 'custom_fields' AS custom_fields \
      FROM json_each(?3)) \
    UPDATE customers SET name = u.name, \
    first_name = COALESCE(u.first_name, customers.first_name), last_name = COALESCE(u.last_name, customers.last_name), \
    address = COALESCE(u.address, customers.address), notes = COALESCE(u.notes, customers.notes), \
    tags = COALESCE(u.tags, customers.tags), \
    external_system = COALESCE(u.external_system, customers.external_system), \
    custom_fields = CASE WHEN u.custom_fields IS NULL THEN customers.custom_fields \
                    ELSE json_patch(customers.custom_fields, u.custom_fields) END, \
    updated_at = ?2 \
    FROM u WHERE customers.id = u.id AND customers.business_id = ?1 \
    AND (customers.name IS NOT u.name \
      OR customers.first_name IS NOT COALESCE(u.first_name, customers.first_name) \
      OR customers.last_name IS NOT COALESCE(u.last_name, customers.last_name) \
      OR customers.address IS NOT COALESCE(u.address, customers.address) \
      OR customers.notes IS NOT COALESCE(u.notes, customers.notes) \
      OR customers.tags IS NOT COALESCE(u.tags, customers.tags) \
      OR customers.external_system IS NOT COALESCE(u.external_system, customers.external_system) \
      OR (u.custom_fields IS NOT NULL \
          AND customers.custom_fields IS NOT json_patch(customers.custom_fields, u.custom_fields)))";

/// The indexed columns of the rows that change one (`upsert::Plan::rekeys`), stamped as
/// [`UPDATE_SQL`] stamps the rest; absent ones keep their stored value.
const KEYS_SQL: &str = "WITH u AS MATERIALIZED (SELECT value ->> 'id' AS id, \
      value ->> 'email' AS email, value ->> 'phone' AS phone, \
      value ->> 'whatsapp_number' AS whatsapp_number, value ->> 'external_id' AS external_id \
      FROM json_each(?3)) \
    UPDATE customers SET email = COALESCE(u.email, customers.email), \
    phone = COALESCE(u.phone, customers.phone), \
    whatsapp_number = COALESCE(u.whatsapp_number, customers.whatsapp_number), \
    external_id = COALESCE(u.external_id, customers.external_id), updated_at = ?2 \
    FROM u WHERE customers.id = u.id AND customers.business_id = ?1 \
    AND (customers.email IS NOT COALESCE(u.email, customers.email) \
      OR customers.phone IS NOT COALESCE(u.phone, customers.phone) \
      OR customers.whatsapp_number IS NOT COALESCE(u.whatsapp_number, customers.whatsapp_number) \
      OR customers.external_id IS NOT COALESCE(u.external_id, customers.external_id))";

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
/// [`with_id_read`] reads it. Our own id is the primary key: `+business_id` keeps SQLite
/// on it (see the module note in `db`).
pub fn with_id_of(id: Sql) -> Sql {
    id.within(&format!(
        "SELECT {COLUMNS} FROM customers WHERE +business_id = :business AND id = ({HOLE})"
    ))
}

/// The customer the statement of [`with_id_of`] found, or None.
fn read_customer(answer: &D1Result) -> Result<Option<Customer>, ApiError> {
    db::first_row::<CustomerRow>(answer)?
        .map(CustomerRow::into_customer)
        .transpose()
}

pub async fn find_one(db: &Db, tenant: &Tenant, key: &CustomerKey) -> Result<Option<Customer>, ApiError> {
    let row = by_key(db, tenant, key)?.first::<CustomerRow>(None).await?;
    row.map(CustomerRow::into_customer).transpose()
}

/// Up to `limit` of the tenant's customers whose email is `typed` (any case), or whose name
/// starts with it (any case, ASCII letters folded), by name: what a person picks a customer by.
pub async fn picked_by(
    db: &Db,
    tenant: &Tenant,
    typed: &str,
    limit: usize,
) -> Result<Vec<Customer>, ApiError> {
    let prefix = typed.trim().to_ascii_lowercase();
    if prefix.is_empty() {
        return Ok(Vec::new());
    }
    // The names that start with `prefix` sort from it to the prefix with its last character
    // moved one on, which no such name reaches.
    let mut after: Vec<char> = prefix.chars().collect();
    if let Some(last) = after.last_mut() {
        *last = char::from_u32(u32::from(*last) + 1).unwrap_or(char::MAX);
    }
    let after: String = after.into_iter().collect();
    let rows = db
        .scoped(
            tenant,
            format!(
                "SELECT {COLUMNS} FROM customers WHERE business_id = ?1 AND lower(name) >= ?2 AND lower(name) < ?3 \
                 UNION SELECT {COLUMNS} FROM customers WHERE business_id = ?1 AND email = ?2 \
                 ORDER BY name LIMIT ?4"
            ),
        )
        .bind(&[text(&prefix), text(&after), number(limit as i64)])?
        .all()
        .await?
        .results::<CustomerRow>()?;
    rows.into_iter().map(CustomerRow::into_customer).collect()
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
    let mut batch = db::Batch::default();
    let customer = batch.read(Read::new(by_key(db, tenant, key)?, read_customer));
    let crm_ids = batch.read(Read::new(
        crm_contacts::crm_ids_of(named).scoped(db, tenant)?,
        crm_contacts::read_crm_ids,
    ));
    let answers = batch.run(db).await?;
    let Some(customer) = answers.take(customer)? else {
        return Ok(None);
    };
    Ok(Some((customer, answers.take(crm_ids)?)))
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

/// The reads of the customer each of `keys` names, in order, for a caller's batch (the request
/// names one customer, usually by one key); [`first_of`] picks the answer.
pub fn named_by(
    db: &Db,
    tenant: &Tenant,
    keys: &[CustomerKey],
) -> Result<Vec<Read<Option<Customer>>>, ApiError> {
    keys.iter()
        .map(|key| Ok(Read::new(by_key(db, tenant, key)?, read_customer)))
        .collect()
}

/// The customer the first of the reads of [`named_by`] found, or the 404 that says how the
/// request named the customer (`named_by`).
pub fn first_of(found: Vec<Option<Customer>>, named_by: &str) -> Result<Customer, ApiError> {
    found
        .into_iter()
        .flatten()
        .next()
        .ok_or_else(|| not_named(named_by))
}

/// The read of the tenant's customer whose id the fragment `id` selects ([`with_id_of`]).
pub fn with_id_read(db: &Db, tenant: &Tenant, id: Sql) -> Result<Read<Option<Customer>>, ApiError> {
    Ok(Read::new(with_id_of(id).scoped(db, tenant)?, read_customer))
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
    find_known_statement(db, tenant, drafts)?.run().await
}

/// What [`find_known_statement`] reads: the customers as one JSON text.
#[derive(Deserialize)]
struct KnownRow {
    known: String,
}

fn known_of(row: Option<KnownRow>) -> Result<Vec<KnownCustomer>, ApiError> {
    row.map_or(Ok(Vec::new()), |row| known_from_json(&row.known))
}

/// The read of [`find_known`], for a batch.
pub fn find_known_statement(
    db: &Db,
    tenant: &Tenant,
    drafts: &[&CustomerDraft],
) -> Result<Read<Vec<KnownCustomer>>, ApiError> {
    // The rows come back as one JSON text: a thousand rows handed over one by one cost the
    // function more than D1 takes to find them.
    let sql = format!(
        "SELECT json_group_array(json_array(id, external_id, email, phone, whatsapp_number)) AS known \
         FROM ({})",
        select_by_keys(
            "id, external_id, email, phone, whatsapp_number",
            &known_key_params(2)
        )
    );
    Ok(Read::new(
        db.scoped(tenant, sql).bind(&known_keys(drafts))?,
        read_known,
    ))
}

/// The stored customers the statement of [`find_known_statement`] found.
fn read_known(answer: &D1Result) -> Result<Vec<KnownCustomer>, ApiError> {
    known_of(db::first_row::<KnownRow>(answer)?)
}

/// The kinds of the keys [`known_keys`] gives, in its order, bound from parameter `first` on.
fn known_key_params(first: u8) -> [(KeyKind, u8); 3] {
    [
        (KeyKind::ExternalId, first),
        (KeyKind::Email, first + 1),
        (KeyKind::Phone, first + 2),
    ]
}

/// The keys [`find_known`] looks for: the drafts' external ids, emails and phones, each kind as
/// one JSON list.
pub(crate) fn known_keys(drafts: &[&CustomerDraft]) -> [db::Param; 3] {
    [
        db::json_list(drafts.iter().filter_map(|d| d.external_id.as_deref())),
        db::json_list(drafts.iter().filter_map(|d| d.email.as_ref().map(Email::as_str))),
        db::json_list(drafts.iter().filter_map(|d| d.phone.as_ref().map(Phone::as_str))),
    ]
}

/// The stored customers [`find_known`] found, from D1's JSON text of
/// `[id, external_id, email, phone, whatsapp_number]` rows.
pub(crate) fn known_from_json(known: &str) -> Result<Vec<KnownCustomer>, ApiError> {
    type KeyRow = (
        String,
        Option<String>,
        Option<String>,
        Option<String>,
        Option<String>,
    );
    let rows: Vec<KeyRow> =
        serde_json::from_str(known).map_err(|error| ApiError::internal("reading customer keys", error))?;
    rows.into_iter()
        .map(|(id, external_id, email, phone, whatsapp_number)| {
            Ok(KnownCustomer {
                id: CustomerId::parse(&id).ok_or_else(|| {
                    ApiError::internal("reading customer keys", format!("stored id {id} is not valid"))
                })?,
                external_id,
                email: email.map(Email::stored),
                phone: phone.map(Phone::stored),
                whatsapp_number: whatsapp_number.map(Phone::stored),
            })
        })
        .collect()
}

/// A draft as one JSON row of a write; `None` fields are left out, which the statements read as
/// null (a row of a thousand is a third shorter, for D1 to carry and read).
struct WriteRow<'a> {
    id: &'a CustomerId,
    draft: &'a CustomerDraft,
}

impl<'a> WriteRow<'a> {
    fn new(id: &'a CustomerId, draft: &'a CustomerDraft) -> Self {
        Self { id, draft }
    }

    /// Writes the row at the end of `out`, by hand: a thousand rows written by serde escaped
    /// every field's name of every row, and each row was a string of its own before its array.
    fn write_json(&self, out: &mut String) -> Result<(), ApiError> {
        let draft = self.draft;
        out.push_str(r#"{"id":"#);
        db::push_json_text(out, self.id.as_str());
        out.push_str(r#","name":"#);
        db::push_json_text(out, &draft.name);
        let texts = [
            ("email", draft.email.as_ref().map(Email::as_str)),
            ("phone", draft.phone.as_ref().map(Phone::as_str)),
            (
                "whatsapp_number",
                draft.whatsapp_number.as_ref().map(Phone::as_str),
            ),
            ("first_name", draft.first_name.as_deref()),
            ("last_name", draft.last_name.as_deref()),
            ("address", draft.address.as_deref()),
            ("notes", draft.notes.as_deref()),
        ];
        for (name, text) in texts {
            Self::push_field(out, name, text);
        }
        if let Some(tags) = &draft.tags {
            out.push_str(r#","tags":["#);
            for (at, tag) in tags.iter().enumerate() {
                if at > 0 {
                    out.push(',');
                }
                db::push_json_text(out, tag);
            }
            out.push(']');
        }
        Self::push_field(out, "external_id", draft.external_id.as_deref());
        Self::push_field(out, "external_system", draft.external_system.as_deref());
        if let Some(fields) = &draft.custom_fields {
            out.push_str(r#","custom_fields":"#);
            out.push_str(&serde_json::to_string(fields)?);
        }
        out.push('}');
        Ok(())
    }

    /// `,"name":"text"`, when there is a text.
    fn push_field(out: &mut String, name: &str, text: Option<&str>) {
        if let Some(text) = text {
            out.push_str(",\"");
            out.push_str(name);
            out.push_str("\":");
            db::push_json_text(out, text);
        }
    }
}

/// The statements that write every planned customer, in one transaction when run in one batch:
/// for each step in order, one INSERT of its new customers, one UPDATE of the indexed columns of
/// the matched ones that change one, and one UPDATE of the rest of every matched one (more only
/// when a step's rows exceed the chunk size).
pub fn write(
    db: &Db,
    tenant: &Tenant,
    now: Timestamp,
    writes: &[PlannedWrite<'_>],
) -> Result<Vec<Statement>, ApiError> {
    let stamp = text(&now.to_rfc3339());
    let mut statements = Vec::new();
    for step in writes.chunk_by(|a, b| a.step == b.step) {
        let statements_of: [(&str, WritesRow); 3] = [
            (INSERT_SQL, |w| w.is_new),
            (KEYS_SQL, |w| !w.is_new && w.rekeys),
            (UPDATE_SQL, |w| !w.is_new),
        ];
        for (sql, writes_row) in statements_of {
            let rows = step
                .iter()
                .filter(|w| writes_row(w))
                .map(|w| WriteRow::new(w.id, w.draft));
            for chunk in db::json_arrays_written(rows, |row, out| row.write_json(out))? {
                statements.push(db.scoped(tenant, sql).bind(&[stamp.clone(), text(&chunk)])?);
            }
        }
    }
    Ok(statements)
}

/// The statement that creates every customer of `writes`, unless a customer of the business
/// holds any key of `drafts` (then it writes nothing): a first write made in the same batch as
/// [`find_known_statement`], before what that finds is known, for a plan made as if it found
/// nothing. `None` unless the plan is creates alone that fit one statement: a second statement's
/// guard would find the customers the first one created.
pub fn create_unless_known(
    db: &Db,
    tenant: &Tenant,
    now: Timestamp,
    writes: &[PlannedWrite<'_>],
    drafts: &[&CustomerDraft],
) -> Result<Option<Statement>, ApiError> {
    if writes.is_empty() || writes.iter().any(|w| !w.is_new) {
        return Ok(None);
    }
    let rows = writes.iter().map(|w| WriteRow::new(w.id, w.draft));
    let Ok([rows]) = <[String; 1]>::try_from(db::json_arrays_written(rows, |row, out| row.write_json(out))?)
    else {
        return Ok(None);
    };
    let sql = format!(
        "{INSERT_SQL} WHERE NOT EXISTS ({})",
        select_by_keys("1", &known_key_params(4))
    );
    let [external_ids, emails, phones] = known_keys(drafts);
    Ok(Some(db.scoped(tenant, sql).bind(&[
        text(&now.to_rfc3339()),
        text(&rows),
        external_ids,
        emails,
        phones,
    ])?))
}

/// One customer to write, in the step its plan gave it.
pub struct PlannedWrite<'a> {
    pub step: usize,
    pub id: &'a CustomerId,
    pub draft: &'a CustomerDraft,
    pub is_new: bool,
    /// Whether it changes an indexed column of a stored customer (`upsert::Plan::rekeys`).
    pub rekeys: bool,
}

/// Which planned writes a statement of [`write`] carries.
type WritesRow = fn(&PlannedWrite<'_>) -> bool;

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

/// The statement that clears every field of the customer that says who they are (an erasure's
/// first: no key finds them while their rows are being deleted).
pub fn anonymise(db: &Db, tenant: &Tenant, id: &CustomerId, now: &str) -> Result<Statement, ApiError> {
    Ok(db
        .scoped(
            tenant,
            "UPDATE customers SET name = '', email = NULL, phone = NULL, whatsapp_number = NULL, first_name = NULL, \
             last_name = NULL, address = NULL, notes = NULL, tags = '[]', external_id = NULL, external_system = NULL, \
             custom_fields = '{}', updated_at = ?3 WHERE business_id = ?1 AND id = ?2",
        )
        .bind(&[text(id.as_str()), text(now)])?)
}

/// The statement that deletes the customer's row: an erasure's last, after every row that
/// names them.
pub fn erase(db: &Db, tenant: &Tenant, id: &CustomerId) -> Result<Statement, ApiError> {
    Ok(db
        .scoped(tenant, "DELETE FROM customers WHERE business_id = ?1 AND id = ?2")
        .bind(&[text(id.as_str())])?)
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
    fn a_write_row_holds_every_given_field_escaped_and_leaves_out_the_absent_ones() {
        use serde_json::json;
        let id = CustomerId::generate([1; 16]);
        let cases = [
            (
                json!({"name": "Ann \"the\" O'Neil \\ é 😀", "email": "ANN@Example.com",
                    "phone": "+353 87 123 4567", "whatsapp_number": "+353871234567",
                    "first_name": "Ann", "last_name": "O'Neil", "address": "1 Main St\r\nDublin",
                    "notes": "tab\there", "tags": ["vip", "a\"b", "vip"], "external_id": 42,
                    "external_system": "hubspot",
                    "custom_fields": {"segment": "enterprise", "value": 5, "deep": {"a": [1.5, null, "\n"]}}}),
                json!({"id": id.as_str(), "name": "Ann \"the\" O'Neil \\ é 😀", "email": "ann@example.com",
                    "phone": "+353871234567", "whatsapp_number": "+353871234567",
                    "first_name": "Ann", "last_name": "O'Neil", "address": "1 Main St\r\nDublin",
                    "notes": "tab\there", "tags": ["vip", "a\"b"], "external_id": "42",
                    "external_system": "hubspot",
                    "custom_fields": {"segment": "enterprise", "value": 5, "deep": {"a": [1.5, null, "\n"]}}}),
                "every field, with text to escape",
            ),
            (
                json!({"name": "Bo", "email": "bo@example.com", "tags": [], "custom_fields": {}}),
                json!({"id": id.as_str(), "name": "Bo", "email": "bo@example.com", "tags": [], "custom_fields": {}}),
                "a name, an email, and empty tags and custom fields",
            ),
        ];
        for (item, expected, description) in cases {
            let draft = domain::customer::parse(item, None).unwrap_or_else(|error| panic!("{error:?}"));
            let mut written = String::new();
            WriteRow::new(&id, &draft)
                .write_json(&mut written)
                .unwrap_or_else(|error| panic!("{error:?}"));
            let read: Value =
                serde_json::from_str(&written).unwrap_or_else(|error| panic!("{written}: {error}"));
            assert_eq!(read, expected, "{description}: {written}");
        }
    }

    #[test]
    fn rows_are_chunked_below_the_size_limit_and_each_chunk_is_a_json_array() {
        let id = CustomerId::generate([1; 16]);
        let draft = draft(&"n".repeat(100_000));
        let rows = (0..12).map(|_| WriteRow::new(&id, &draft));
        let chunks = db::json_arrays_written(rows, |row, out| row.write_json(out)).unwrap_or_default();
        assert_eq!(chunks.len(), 3);
        let mut rows = 0;
        for chunk in &chunks {
            assert!(chunk.len() <= db::WRITE_CHUNK_BYTES);
            let parsed: Vec<Value> = serde_json::from_str(chunk).unwrap_or_default();
            rows += parsed.len();
        }
        assert_eq!(rows, 12);
        assert!(
            db::json_arrays_written(std::iter::empty::<WriteRow>(), |row, out| row.write_json(out))
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
        // The indexed columns are KEYS_SQL's: the same ones write nothing, a new one is written
        // and stamped, and the update of the rest leaves them to it.
        assert_eq!(written(KEYS_SQL, "t9", row(serde_json::json!({}))), 0);
        assert_eq!(updated_at(), "t8");
        let moved = serde_json::json!({"email": "ann@elsewhere.example"});
        assert_eq!(written(UPDATE_SQL, "t10", row(moved.clone())), 0);
        for (stamp, change) in [
            ("t11", moved),
            ("t12", serde_json::json!({"phone": "+353879999999"})),
            ("t13", serde_json::json!({"whatsapp_number": "+353879999999"})),
            ("t14", serde_json::json!({"external_id": "crm-2"})),
        ] {
            assert_eq!(written(KEYS_SQL, stamp, row(change.clone())), 1, "{change}");
            assert_eq!(updated_at(), stamp);
        }
        let keys: (String, String, String, String) = db
            .query_row(
                "SELECT email, phone, whatsapp_number, external_id FROM customers WHERE id = 'c1'",
                [],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
            )
            .unwrap_or_else(|error| panic!("the customer: {error}"));
        assert_eq!(
            keys,
            (
                "ann@example.com".to_owned(),
                "+353871234567".to_owned(),
                "+353879999999".to_owned(),
                "crm-2".to_owned()
            ),
            "each row names every key but the one it changes, which stays as the row says"
        );
    }

    use crate::db::Violation;
    use crate::db::{crm_links, customer_identities};
    use crate::testing::{Fixture, Must, draft, random, violation};
    use domain::crm::work::LinkKind;
    use domain::customer_list::ListCursor;
    use domain::email::Email;
    use domain::phone::Phone;
    use serde_json::json;
    use std::time::Duration;

    /// Writes one customer as the upsert does: new, or over the stored one.
    async fn write_one(
        fixture: &Fixture,
        tenant: &Tenant,
        id: &CustomerId,
        draft: &CustomerDraft,
        is_new: bool,
    ) -> Result<(), ApiError> {
        // Every key written, as for a customer whose keys change.
        let planned = PlannedWrite {
            step: 0,
            id,
            draft,
            is_new,
            rekeys: true,
        };
        let statements = write(&fixture.db, tenant, fixture.now(), &[planned])?;
        fixture.db.batch(statements).await?;
        Ok(())
    }

    fn email(text: &str) -> Email {
        Email::parse(text).must()
    }

    fn phone(text: &str) -> Phone {
        Phone::parse(text, None).must()
    }

    /// A customer named by every key.
    fn full(name: &str, email_text: &str, phone_text: &str, external: &str) -> CustomerDraft {
        let mut custom = Map::new();
        custom.insert("segment".to_owned(), json!("enterprise"));
        CustomerDraft {
            email: Some(email(email_text)),
            phone: Some(phone(phone_text)),
            whatsapp_number: Some(phone(phone_text)),
            first_name: Some(name.to_owned()),
            last_name: Some("Byrne".to_owned()),
            address: Some("1 Main St".to_owned()),
            notes: Some("called".to_owned()),
            tags: Some(vec!["vip".to_owned()]),
            external_id: Some(external.to_owned()),
            external_system: Some("hubspot".to_owned()),
            custom_fields: Some(custom),
            ..draft(name)
        }
    }

    /// Ann, written new with every key: ann@example.com, +353871234567 and crm-1.
    async fn ann_by_every_key(fixture: &Fixture, tenant: &Tenant) -> CustomerId {
        let id = CustomerId::generate(random());
        let written = full("Ann", "ann@example.com", "+353871234567", "crm-1");
        write_one(fixture, tenant, &id, &written, true).await.must();
        id
    }

    /// A new customer named `name` with no key but `external_id`.
    async fn known_by_external_id(
        fixture: &Fixture,
        tenant: &Tenant,
        name: &str,
        external_id: &str,
    ) -> CustomerId {
        let customer = CustomerDraft {
            external_id: Some(external_id.to_owned()),
            ..draft(name)
        };
        fixture.customer_with(tenant, customer).await
    }

    async fn found(fixture: &Fixture, tenant: &Tenant, key: &CustomerKey) -> Option<CustomerId> {
        find_one(&fixture.db, tenant, key)
            .await
            .must()
            .map(|customer| customer.id)
    }

    #[test]
    fn a_customer_reads_back_as_written_by_each_of_its_keys() {
        let fixture = Fixture::new();
        fixture.run(async {
            let acme = fixture.business_on("Acme", 0).await;
            let id = ann_by_every_key(&fixture, &acme).await;
            let keys = [
                CustomerKey::Id(id.clone()),
                CustomerKey::Email(email("ANN@example.com")),
                CustomerKey::Phone(phone("+353871234567")),
                CustomerKey::ExternalId("crm-1".to_owned()),
            ];
            let stamp = fixture.now().to_rfc3339();
            for key in &keys {
                let customer = find_one(&fixture.db, &acme, key)
                    .await
                    .must()
                    .unwrap_or_else(|| panic!("{key:?}"));
                assert_eq!(customer.id, id, "{key:?}");
                assert_eq!(customer.name, "Ann");
                assert_eq!(customer.email.as_deref(), Some("ann@example.com"));
                assert_eq!(customer.phone.as_deref(), Some("+353871234567"));
                assert_eq!(customer.whatsapp_number.as_deref(), Some("+353871234567"));
                assert_eq!(customer.tags, ["vip"]);
                assert_eq!(customer.custom_fields.get("segment"), Some(&json!("enterprise")));
                assert_eq!(
                    (customer.created_at.as_str(), customer.updated_at.as_str()),
                    (stamp.as_str(), stamp.as_str())
                );
            }
            let rows = fixture.rows("customers", "id");
            assert_eq!(rows.len(), 1);
            assert_eq!(rows[0]["business_id"], json!(acme.business_id.as_str()));
            assert_eq!(rows[0]["tags"], json!("[\"vip\"]"));
            assert_eq!(rows[0]["last_name"], json!("Byrne"));
            assert_eq!(rows[0]["external_system"], json!("hubspot"));
        });
    }

    #[test]
    fn another_business_customer_is_not_found_by_any_key_and_may_share_its_keys() {
        let fixture = Fixture::new();
        fixture.run(async {
            let acme = fixture.business_on("Acme", 0).await;
            let globex = fixture.business_on("Globex", 0).await;
            let ann = ann_by_every_key(&fixture, &acme).await;
            let keys = [
                CustomerKey::Id(ann.clone()),
                CustomerKey::Email(email("ann@example.com")),
                CustomerKey::Phone(phone("+353871234567")),
                CustomerKey::ExternalId("crm-1".to_owned()),
            ];
            for key in &keys {
                assert_eq!(found(&fixture, &globex, key).await, None, "{key:?}");
            }
            assert!(find_many(&fixture.db, &globex, &keys).await.must().is_empty());
            let named = first_named(&fixture.db, &globex, &keys, "these keys").await;
            assert_eq!(named.err().map(|error| error.status()), Some(404));

            let theirs = CustomerId::generate(random());
            write_one(
                &fixture,
                &globex,
                &theirs,
                &full("Ann G", "ann@example.com", "+353871234567", "crm-1"),
                true,
            )
            .await
            .must();
            for key in &keys[1..] {
                assert_eq!(
                    found(&fixture, &globex, key).await,
                    Some(theirs.clone()),
                    "{key:?}"
                );
                assert_eq!(found(&fixture, &acme, key).await, Some(ann.clone()), "{key:?}");
            }
            // An update through another business's door changes nothing.
            write_one(&fixture, &globex, &ann, &draft("Taken"), false)
                .await
                .must();
            let mine = find_one(&fixture.db, &acme, &keys[0])
                .await
                .must()
                .map(|customer| customer.name);
            assert_eq!(mine.as_deref(), Some("Ann"));
        });
    }

    #[test]
    fn a_second_customer_with_a_key_of_the_business_is_a_unique_violation() {
        let fixture = Fixture::new();
        fixture.run(async {
            let acme = fixture.business_on("Acme", 0).await;
            ann_by_every_key(&fixture, &acme).await;
            let cases = [
                (
                    "the same email",
                    CustomerDraft {
                        email: Some(email("ann@example.com")),
                        ..draft("B")
                    },
                    "customers.email",
                ),
                (
                    "the same phone",
                    CustomerDraft {
                        phone: Some(phone("+353871234567")),
                        ..draft("C")
                    },
                    "customers.phone",
                ),
                (
                    "the same external id",
                    CustomerDraft {
                        external_id: Some("crm-1".to_owned()),
                        ..draft("D")
                    },
                    "customers.external_id",
                ),
            ];
            for (description, second, column) in cases {
                let refused =
                    write_one(&fixture, &acme, &CustomerId::generate(random()), &second, true).await;
                let found = violation(refused);
                assert_eq!(
                    found,
                    Violation::Unique {
                        columns: vec!["customers.business_id".to_owned(), column.to_owned()]
                    },
                    "{description}"
                );
                assert!(found.is_unique_on("customers"));
            }
            // Customers without a key are many.
            for name in ["E", "F"] {
                write_one(
                    &fixture,
                    &acme,
                    &CustomerId::generate(random()),
                    &draft(name),
                    true,
                )
                .await
                .must();
            }
            assert_eq!(fixture.rows("customers", "id").len(), 3);
        });
    }

    #[test]
    fn an_update_keeps_what_it_leaves_out_and_merges_custom_fields() {
        let fixture = Fixture::new();
        fixture.run(async {
            let acme = fixture.business_on("Acme", 0).await;
            let id = ann_by_every_key(&fixture, &acme).await;
            let created = fixture.now().to_rfc3339();
            fixture.stack.advance(Duration::from_secs(1));
            let mut patch = Map::new();
            patch.insert("segment".to_owned(), json!(null));
            patch.insert("value".to_owned(), json!(5));
            let change = CustomerDraft {
                notes: Some("moved".to_owned()),
                custom_fields: Some(patch),
                ..draft("Ann Byrne")
            };
            write_one(&fixture, &acme, &id, &change, false).await.must();
            let customer = find_one(&fixture.db, &acme, &CustomerKey::Id(id.clone()))
                .await
                .must()
                .unwrap_or_else(|| panic!("found"));
            assert_eq!(customer.name, "Ann Byrne");
            assert_eq!(customer.notes.as_deref(), Some("moved"));
            assert_eq!(
                customer.email.as_deref(),
                Some("ann@example.com"),
                "left out, kept"
            );
            assert_eq!(customer.external_id.as_deref(), Some("crm-1"));
            assert_eq!(customer.tags, ["vip"]);
            assert_eq!(
                Value::Object(customer.custom_fields),
                json!({"value": 5}),
                "null removes a key"
            );
            assert_eq!(customer.created_at, created);
            let changed = fixture.now().to_rfc3339();
            assert_eq!(customer.updated_at, changed);

            fixture.stack.advance(Duration::from_secs(1));
            write_one(&fixture, &acme, &id, &change, false).await.must();
            let again = find_one(&fixture.db, &acme, &CustomerKey::Id(id.clone()))
                .await
                .must()
                .unwrap_or_else(|| panic!("found"));
            assert_eq!(again.updated_at, changed, "the same change again writes nothing");
        });
    }

    #[test]
    fn the_list_is_newest_first_paged_by_its_cursor_and_filtered() {
        let fixture = Fixture::new();
        fixture.run(async {
            let acme = fixture.business_on("Acme", 0).await;
            let globex = fixture.business_on("Globex", 0).await;
            let mut ids = Vec::new();
            for (name, tags, system) in [
                ("A", Some(vec!["vip".to_owned()]), Some("hubspot")),
                ("B", None, Some("salesforce")),
                ("C", Some(vec!["vip".to_owned(), "b2b".to_owned()]), None),
            ] {
                let customer = CustomerDraft {
                    tags,
                    external_system: system.map(str::to_owned),
                    ..draft(name)
                };
                ids.push(fixture.customer_with(&acme, customer).await);
                fixture.stack.advance(Duration::from_secs(1));
            }
            // Two created in the same millisecond are ordered by id.
            let (d, e) = (
                fixture.customer_with(&acme, draft("D")).await,
                fixture.customer_with(&acme, draft("E")).await,
            );
            let (high, low) = if d > e { (d, e) } else { (e, d) };
            fixture.customer_with(&globex, draft("Theirs")).await;
            let query = |after: Option<&Customer>| ListQuery {
                after: after.map(|customer| ListCursor {
                    created_at: customer.created_at.clone(),
                    id: customer.id.clone(),
                }),
                limit: 2,
                tag: None,
                external_system: None,
                updated_since: None,
            };
            let names = |page: &[Customer]| {
                page.iter()
                    .map(|customer| customer.id.clone())
                    .collect::<Vec<_>>()
            };
            let first = list(&fixture.db, &acme, &query(None), 2).await.must();
            assert_eq!(names(&first), [high.clone(), low.clone()]);
            let second = list(&fixture.db, &acme, &query(first.last()), 2).await.must();
            assert_eq!(names(&second), [ids[2].clone(), ids[1].clone()]);
            let third = list(&fixture.db, &acme, &query(second.last()), 2).await.must();
            assert_eq!(
                names(&third),
                [ids[0].clone()],
                "and no other business's customer"
            );
            let fourth = list(&fixture.db, &acme, &query(third.last()), 2).await.must();
            assert!(fourth.is_empty());

            let cases = [
                (
                    "by tag",
                    ListQuery {
                        tag: Some("vip".to_owned()),
                        ..query(None)
                    },
                    vec![ids[2].clone(), ids[0].clone()],
                ),
                (
                    "by system",
                    ListQuery {
                        external_system: Some("salesforce".to_owned()),
                        ..query(None)
                    },
                    vec![ids[1].clone()],
                ),
                (
                    "changed since",
                    ListQuery {
                        updated_since: Some(
                            Timestamp::parse_rfc3339(&first[0].created_at)
                                .must_some()
                                .plus_seconds(-1),
                        ),
                        limit: 10,
                        ..query(None)
                    },
                    vec![high.clone(), low.clone()],
                ),
            ];
            for (description, query, expected) in cases {
                assert_eq!(
                    names(&list(&fixture.db, &acme, &query, 10).await.must()),
                    expected,
                    "{description}"
                );
            }
        });
    }

    trait MustSome<T> {
        fn must_some(self) -> T;
    }

    impl<T> MustSome<T> for Option<T> {
        #[track_caller]
        fn must_some(self) -> T {
            self.unwrap_or_else(|| panic!("none"))
        }
    }

    /// A known customer's id and keys, as text.
    type Keys = (CustomerId, Option<String>, Option<String>, Option<String>);

    #[test]
    fn customers_are_found_once_by_any_of_their_keys() {
        let fixture = Fixture::new();
        fixture.run(async {
            let acme = fixture.business_on("Acme", 0).await;
            let ann = ann_by_every_key(&fixture, &acme).await;
            let bob = known_by_external_id(&fixture, &acme, "Bob", "crm-2").await;
            fixture.customer_with(&acme, draft("Cat")).await;
            let keys = [
                CustomerKey::Email(email("ann@example.com")),
                CustomerKey::Id(ann.clone()),
                CustomerKey::Phone(phone("+353871234567")),
                CustomerKey::ExternalId("crm-2".to_owned()),
                CustomerKey::ExternalId("nobody".to_owned()),
            ];
            let mut many: Vec<CustomerId> = find_many(&fixture.db, &acme, &keys)
                .await
                .must()
                .into_iter()
                .map(|c| c.id)
                .collect();
            many.sort();
            let mut expected = vec![ann.clone(), bob.clone()];
            expected.sort();
            assert_eq!(many, expected, "Ann once, though three keys name her");

            let drafts = [
                CustomerDraft {
                    email: Some(email("ann@example.com")),
                    ..draft("x")
                },
                CustomerDraft {
                    external_id: Some("crm-2".to_owned()),
                    ..draft("y")
                },
                CustomerDraft {
                    phone: Some(phone("+14155550100")),
                    ..draft("z")
                },
            ];
            let known = find_known(&fixture.db, &acme, &drafts.iter().collect::<Vec<_>>())
                .await
                .must();
            let mut known: Vec<Keys> = known
                .into_iter()
                .map(|k| {
                    (
                        k.id,
                        k.external_id,
                        k.email.map(|e| e.as_str().to_owned()),
                        k.phone.map(|p| p.as_str().to_owned()),
                    )
                })
                .collect();
            known.sort();
            let mut expected = vec![
                (
                    ann.clone(),
                    Some("crm-1".to_owned()),
                    Some("ann@example.com".to_owned()),
                    Some("+353871234567".to_owned()),
                ),
                (bob.clone(), Some("crm-2".to_owned()), None, None),
            ];
            expected.sort();
            assert_eq!(
                known, expected,
                "every key of each customer a draft shares one with"
            );
        });
    }

    #[test]
    fn the_first_key_that_names_a_customer_answers_and_none_is_a_404() {
        let fixture = Fixture::new();
        fixture.run(async {
            let acme = fixture.business_on("Acme", 0).await;
            let ann = known_by_external_id(&fixture, &acme, "Ann", "crm-1").await;
            let bob = known_by_external_id(&fixture, &acme, "Bob", "crm-2").await;
            let keys = [
                CustomerKey::ExternalId("nobody".to_owned()),
                CustomerKey::Id(bob.clone()),
                CustomerKey::Id(ann.clone()),
            ];
            let named = first_named(&fixture.db, &acme, &keys, "id").await.must();
            assert_eq!(named.id, bob);
            let found = db::read_together(&fixture.db, named_by(&fixture.db, &acme, &keys).must())
                .await
                .must();
            assert_eq!(first_of(found, "id").must().id, bob, "in a caller's batch");
            let missing = first_named(&fixture.db, &acme, &keys[..1], "external_id").await;
            let error = missing.err().unwrap_or_else(|| panic!("not found"));
            assert_eq!(
                (error.status(), error.body.message.as_str()),
                (404, "no customer with external_id")
            );

            let connector = fixture.connector(&acme).await;
            crm_links::link(
                &fixture.db,
                &acme,
                &connector,
                LinkKind::Customer,
                ann.as_str(),
                "k-1",
                0,
            )
            .await
            .must();
            let (customer, crm_ids) = first_named_with_crm_ids(
                &fixture.db,
                &acme,
                &[CustomerKey::ExternalId("crm-1".to_owned())],
                "external_id",
            )
            .await
            .must();
            assert_eq!(customer.id, ann);
            let named: Vec<String> = crm_ids.into_iter().map(|id| id.external_id).collect();
            assert_eq!(named, ["kustomer:customer:k-1"]);
            let (_, none) =
                first_named_with_crm_ids(&fixture.db, &acme, &[CustomerKey::Id(bob.clone())], "id")
                    .await
                    .must();
            assert!(none.is_empty());
        });
    }

    #[test]
    fn a_sender_becomes_a_customer_unless_their_address_phone_or_email_is_known() {
        let fixture = Fixture::new();
        fixture.run(async {
            let acme = fixture.business_on("Acme", 0).await;
            for known in [
                CustomerDraft {
                    phone: Some(phone("+353870000001")),
                    ..draft("Phone")
                },
                CustomerDraft {
                    whatsapp_number: Some(phone("+353870000002")),
                    ..draft("Whatsapp")
                },
                CustomerDraft {
                    email: Some(email("known@example.com")),
                    ..draft("Email")
                },
            ] {
                fixture.customer_with(&acme, known).await;
            }
            let linked = fixture.customer(&acme, "Linked").await;
            let statement =
                customer_identities::link(&fixture.db, &acme, "sms", "+353870000009", None, None, &linked)
                    .must();
            fixture.db.batch(vec![statement]).await.must();
            let now = fixture.now().to_rfc3339();
            let cases = [
                (
                    "a stranger",
                    "sms",
                    "+353870000005",
                    None,
                    Some("+353870000005"),
                    true,
                ),
                (
                    "a known phone",
                    "sms",
                    "+353870000001",
                    None,
                    Some("+353870000001"),
                    false,
                ),
                (
                    "a known WhatsApp number",
                    "whatsapp",
                    "+353870000002",
                    None,
                    Some("+353870000002"),
                    false,
                ),
                (
                    "a known email",
                    "email",
                    "known@example.com",
                    Some("known@example.com"),
                    None,
                    false,
                ),
                (
                    "an address linked already",
                    "sms",
                    "+353870000009",
                    None,
                    Some("+353870000009"),
                    false,
                ),
                ("a page-scoped id", "facebook", "psid-1", None, None, true),
            ];
            for (description, channel, address, email, phone, created) in cases {
                let id = CustomerId::generate(random());
                let sender = NewSender {
                    id: &id,
                    name: address,
                    email,
                    phone,
                    whatsapp_number: None,
                };
                let statement = create_sender(&fixture.db, &acme, &sender, channel, address, &now).must();
                assert_eq!(fixture.changes(statement).await == 1, created, "{description}");
                assert_eq!(
                    found(&fixture, &acme, &CustomerKey::Id(id)).await.is_some(),
                    created,
                    "{description}"
                );
            }
        });
    }
}
