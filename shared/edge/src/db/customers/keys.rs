//! The customers that hold any of many keys, each found once by one statement whose cost follows
//! the number of keys, not the size of the business: the customers a lookup names, and the keys of
//! every stored customer that shares one with an upsert's drafts, read back as one JSON text.

use super::{COLUMNS, CustomerRow};
use crate::db::Rows;
use crate::db::{self, Db, Read};
use crate::runtime::D1Result;
use domain::customer::{Customer, CustomerDraft};
use domain::email::Email;
use domain::error::ApiError;
use domain::ids::CustomerId;
use domain::lookup::{CustomerKey, KeyKind};
use domain::phone::Phone;
use domain::tenant::Tenant;
use domain::upsert::KnownCustomer;
use serde::Deserialize;

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
        .rows::<CustomerRow>()?
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
pub(super) fn known_key_params(first: u8) -> [(KeyKind, u8); 3] {
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

#[cfg(test)]
mod tests {
    use super::super::tests::{ann_by_every_key, email, known_by_external_id, phone};
    use super::*;
    use crate::testing::{Fixture, Must, draft};

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
}
