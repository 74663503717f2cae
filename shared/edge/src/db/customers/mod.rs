//! `customers`: the customers of each business. Every statement is scoped by the tenant's
//! business id (`?1`, or `:business` in composed statements).
//!
//! This file holds the row (its columns, a customer read from it or from a snapshot taken by a
//! statement, the condition that a customer exists); `reads` finds one customer by its keys, those
//! a person picks by name, and a page of the list; `keys` finds the customers that hold any of
//! many keys, for a lookup or an upsert's plan; `writes` writes customers: the upsert's planned
//! writes, a sender who becomes one, and an erasure's two statements.

mod keys;
mod reads;
mod writes;

pub use keys::{find_known, find_known_statement, find_many};
pub use reads::{
    find_one, first_named, first_named_with_crm_ids, first_of, list, named_by, picked_by, with_id_of,
    with_id_read,
};
pub use writes::{NewSender, PlannedWrite, anonymise, create_sender, create_unless_known, erase, write};

use crate::db::{self, Sql, text};
use domain::customer::Customer;
use domain::error::ApiError;
use domain::ids::CustomerId;
use serde::Deserialize;
use serde_json::{Map, Value};

pub(super) const COLUMNS: &str = "id, name, email, phone, whatsapp_number, first_name, last_name, address, notes, \
                       tags, external_id, external_system, custom_fields, created_at, updated_at";

#[derive(Deserialize)]
pub(super) struct CustomerRow {
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

// Reached from other modules' tests only: the statements' checks and the upsert's CPU profile.
#[cfg(test)]
pub(crate) use keys::{known_from_json, known_keys, select_by_keys};

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{Fixture, Must, draft, random};
    use domain::customer::CustomerDraft;
    use domain::email::Email;
    use domain::lookup::CustomerKey;
    use domain::phone::Phone;
    use domain::tenant::Tenant;
    use serde_json::json;

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

    /// Writes one customer as the upsert does: new, or over the stored one.
    pub(super) async fn write_one(
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

    pub(super) fn email(text: &str) -> Email {
        Email::parse(text).must()
    }

    pub(super) fn phone(text: &str) -> Phone {
        Phone::parse(text, None).must()
    }

    /// A customer named by every key.
    pub(super) fn full(name: &str, email_text: &str, phone_text: &str, external: &str) -> CustomerDraft {
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
    pub(super) async fn ann_by_every_key(fixture: &Fixture, tenant: &Tenant) -> CustomerId {
        let id = CustomerId::generate(random());
        let written = full("Ann", "ann@example.com", "+353871234567", "crm-1");
        write_one(fixture, tenant, &id, &written, true).await.must();
        id
    }

    /// A new customer named `name` with no key but `external_id`.
    pub(super) async fn known_by_external_id(
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

    pub(super) async fn found(fixture: &Fixture, tenant: &Tenant, key: &CustomerKey) -> Option<CustomerId> {
        find_one(&fixture.db, tenant, key)
            .await
            .must()
            .map(|customer| customer.id)
    }
}
