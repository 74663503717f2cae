//! Customers written. The upsert's planned writes: per step, the new customers inserted, the
//! indexed columns of matched ones that change one, and the rest of every matched one, a customer
//! left as it is not written at all; a first write guarded by the keys it would take. A sender a
//! channel knows only by its address becomes a customer unless one is known. An erasure clears a
//! customer's fields first and deletes the row last.

use super::keys::{known_key_params, known_keys, select_by_keys};
use crate::db::{self, Db, Statement, text};
use domain::customer::CustomerDraft;
use domain::email::Email;
use domain::error::ApiError;
use domain::ids::CustomerId;
use domain::phone::Phone;
use domain::tenant::Tenant;
use domain::time::Timestamp;

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
/// [`find_known_statement`](super::find_known_statement), before what that finds is known, for a
/// plan made as if it found nothing. `None` unless the plan is creates alone that fit one
/// statement: a second statement's guard would find the customers the first one created.
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
    use super::super::find_one;
    use super::super::tests::{ann_by_every_key, email, found, phone, write_one};
    use super::*;
    use crate::db::{Violation, customer_identities};
    use crate::testing::{Fixture, Must, draft, random, violation};
    use domain::lookup::CustomerKey;
    use serde_json::{Map, Value, json};
    use std::time::Duration;

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
