//! `crm_contacts`: one writer per contact. A worker does a contact's CRM work for one connector
//! only while it holds the contact's lease, so two events about a new customer cannot both
//! create them in the CRM, and the contact's work is done in order. The row also keeps the
//! contact's records in the CRM in the CRM's external id form (found by it through an index),
//! and the stage moves made for it; only the lease holder writes them.

use crate::db::Rows;
use crate::db::{self, Sql, crm_links, number, optional_text, text};
use crate::db::{Db, Statement};
use crate::runtime::D1Result;
use domain::crm::work::{ConnectorKind, ContactKey};
use domain::error::ApiError;
use domain::ids::{ConnectorId, CustomerId};
use domain::tenant::Tenant;
use serde::Deserialize;

/// Takes the lease on the contact until `until_us` under `lease`, if nobody holds it or `lease`
/// already does (it is then extended); true when it was taken.
pub async fn claim(
    db: &Db,
    tenant: &Tenant,
    connector: &ConnectorId,
    customer: &ContactKey,
    lease: &str,
    now_us: i64,
    until_us: i64,
) -> Result<bool, ApiError> {
    #[derive(Deserialize)]
    struct Row {
        lease: Option<String>,
    }
    let row = db
        .scoped(
            tenant,
            "INSERT INTO crm_contacts (connector_id, customer_id, business_id, lease, leased_until_us) \
             VALUES (?2, ?3, ?1, ?4, ?6) ON CONFLICT (connector_id, customer_id) DO UPDATE \
             SET lease = excluded.lease, leased_until_us = excluded.leased_until_us \
             WHERE crm_contacts.leased_until_us <= ?5 OR crm_contacts.lease = ?4 RETURNING lease",
        )
        .bind(&[
            text(connector.as_str()),
            text(&customer.to_string()),
            text(lease),
            number(now_us),
            number(until_us),
        ])?
        .first::<Row>(None)
        .await?;
    Ok(row.and_then(|row| row.lease).as_deref() == Some(lease))
}

/// Gives the lease back, if it is still `lease`.
pub async fn release(
    db: &Db,
    tenant: &Tenant,
    connector: &ConnectorId,
    customer: &ContactKey,
    lease: &str,
) -> Result<(), ApiError> {
    let result = db
        .scoped(
            tenant,
            "UPDATE crm_contacts SET lease = NULL, leased_until_us = 0 \
             WHERE business_id = ?1 AND connector_id = ?2 AND customer_id = ?3 AND lease = ?4",
        )
        .bind(&[text(connector.as_str()), text(&customer.to_string()), text(lease)])?
        .run()
        .await?;
    let _ = db::changes(&result);
    Ok(())
}

/// What the connector keeps of a contact: its records in the CRM (the CRM's external id form)
/// and the stage moves made for it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Kept {
    /// Whose records they are (the `customer_id` column holds contact keys: a customer's id, or
    /// a contact of the platform that feeds the connector).
    #[serde(rename = "customer_id")]
    pub contact: ContactKey,
    pub external_id: Option<String>,
    pub stages_done: Option<String>,
}

/// What the connector keeps of the contact (None: it has never had work).
pub async fn kept(
    db: &Db,
    tenant: &Tenant,
    connector: &ConnectorId,
    contact: &ContactKey,
) -> Result<Option<Kept>, ApiError> {
    Ok(db
        .scoped(
            tenant,
            "SELECT customer_id, external_id, stages_done FROM crm_contacts \
             WHERE business_id = ?1 AND connector_id = ?2 AND customer_id = ?3",
        )
        .bind(&[text(connector.as_str()), text(&contact.to_string())])?
        .first::<Kept>(None)
        .await?)
}

/// The contact whose external id is `external_id`, or begins with it followed by `|` (the
/// first record named, Krayin's person, finds its contact); through the index, either way.
pub async fn by_external_id(
    db: &Db,
    tenant: &Tenant,
    connector: &ConnectorId,
    external_id: &str,
) -> Result<Option<Kept>, ApiError> {
    Ok(db
        .scoped(
            tenant,
            "SELECT customer_id, external_id, stages_done FROM crm_contacts \
             WHERE business_id = ?1 AND connector_id = ?2 \
             AND (external_id = ?3 OR (external_id > ?3 || '|' AND external_id < ?3 || '}')) \
             ORDER BY external_id LIMIT 1",
        )
        .bind(&[text(connector.as_str()), text(external_id)])?
        .first::<Kept>(None)
        .await?)
}

/// Writes what the connector keeps of the contact, under the lease its writer holds.
pub async fn keep(
    db: &Db,
    tenant: &Tenant,
    connector: &ConnectorId,
    contact: &ContactKey,
    external_id: Option<&str>,
    stages_done: Option<&str>,
) -> Result<(), ApiError> {
    db.scoped(
        tenant,
        "UPDATE crm_contacts SET external_id = ?4, stages_done = ?5 \
         WHERE business_id = ?1 AND connector_id = ?2 AND customer_id = ?3",
    )
    .bind(&[
        text(connector.as_str()),
        text(&contact.to_string()),
        optional_text(external_id),
        optional_text(stages_done),
    ])?
    .run()
    .await?;
    Ok(())
}

pub use domain::customer::CrmId;

/// The CRM ids of each of `customers`, each customer's oldest connector first, in one round trip.
pub async fn crm_ids(db: &Db, tenant: &Tenant, customers: &[&CustomerId]) -> Result<Vec<CrmId>, ApiError> {
    if customers.is_empty() {
        return Ok(Vec::new());
    }
    let listed = Sql::new("SELECT value FROM json_each(:customers)")
        .bind("customers", db::json_list(customers.iter().map(|id| id.as_str())));
    read_crm_ids(&crm_ids_of(listed).scoped(db, tenant)?.all().await?)
}

/// The statement reading the CRM ids of the customers the fragment `customers` selects (one
/// column of our customer ids), each customer's oldest connector first: the external ids the
/// contacts of this table keep (Krayin's), and the customer links of `crm_links` (Kustomer's).
pub fn crm_ids_of(customers: Sql) -> Sql {
    let contacts = Sql::compose(
        "SELECT k.customer_id, k.connector_id, k.external_id, 0 AS linked FROM crm_contacts k \
         WHERE k.business_id = :business AND k.external_id IS NOT NULL AND k.customer_id IN ({sql})",
        vec![customers.clone()],
    );
    Sql::compose(
        "SELECT x.customer_id, x.connector_id, c.kind, x.external_id, x.linked FROM ({sql} UNION ALL {sql}) x \
         JOIN crm_connectors c ON c.id = x.connector_id AND c.business_id = :business \
         ORDER BY c.created_at, c.id",
        vec![contacts, crm_links::customer_ids_sql(customers)],
    )
}

/// The CRM ids a statement of [`crm_ids_of`] read.
pub fn read_crm_ids(answer: &D1Result) -> Result<Vec<CrmId>, ApiError> {
    db::rows::<CrmIdRow>(answer)?
        .into_iter()
        .map(CrmIdRow::into_crm_id)
        .collect()
}

#[derive(Deserialize)]
struct CrmIdRow {
    customer_id: String,
    connector_id: String,
    kind: String,
    external_id: String,
    /// A record link of `crm_links`, whose id is the CRM's bare id.
    linked: i64,
}

impl CrmIdRow {
    fn into_crm_id(self) -> Result<CrmId, ApiError> {
        let row = self;
        let corrupt = |what: &str| db::corrupt("CRM contact", &row.customer_id, what);
        let kind = ConnectorKind::parse(&row.kind).ok_or_else(|| corrupt("its connector's kind"))?;
        Ok(CrmId {
            customer_id: CustomerId::parse(&row.customer_id).ok_or_else(|| corrupt("its customer id"))?,
            connector_id: ConnectorId::parse(&row.connector_id).ok_or_else(|| corrupt("its connector id"))?,
            external_id: if row.linked == 1 {
                format!("{kind}:customer:{}", row.external_id)
            } else {
                row.external_id.clone()
            },
            kind,
        })
    }
}

/// The statement that forgets a deleted connector's contacts (their CRM records and leases), for
/// its deletion's batch.
/// (`+business_id` keeps SQLite on the connector's key, not walking every row of the business.)
pub fn forget_connector(db: &Db, tenant: &Tenant, id: &ConnectorId) -> Result<Statement, ApiError> {
    Ok(db
        .scoped(
            tenant,
            "DELETE FROM crm_contacts WHERE +business_id = ?1 AND connector_id = ?2",
        )
        .bind(&[text(id.as_str())])?)
}

/// What each connector keeps of the customer's contact (Krayin: the records it is linked to),
/// with the connector's kind: an erasure's, before it forgets them.
pub async fn kept_of_customer(
    db: &Db,
    tenant: &Tenant,
    customer: &CustomerId,
) -> Result<Vec<KeptRefs>, ApiError> {
    Ok(db
        .scoped(
            tenant,
            "SELECT k.connector_id, c.kind, k.external_id FROM crm_contacts k JOIN crm_connectors c \
             ON c.id = k.connector_id AND c.business_id = ?1 \
             WHERE k.business_id = ?1 AND k.customer_id = ?2 AND k.external_id IS NOT NULL",
        )
        .bind(&[text(customer.as_str())])?
        .all()
        .await?
        .rows::<KeptRefs>()?)
}

/// A connector's kept references of one contact.
#[derive(Debug, Clone, Deserialize)]
pub struct KeptRefs {
    pub connector_id: ConnectorId,
    pub kind: String,
    pub external_id: String,
}

/// The statement that clears what every connector keeps of the customer's contact (an
/// erasure's).
pub fn forget_refs_of_customer(
    db: &Db,
    tenant: &Tenant,
    customer: &CustomerId,
) -> Result<Statement, ApiError> {
    Ok(db
        .scoped(
            tenant,
            "UPDATE crm_contacts SET external_id = NULL, stages_done = NULL WHERE business_id = ?1 AND customer_id = ?2",
        )
        .bind(&[text(customer.as_str())])?)
}

/// The statement that deletes the customer's contact rows of every connector whose erasure work
/// is settled (a contact with work waiting keeps its row for the lease its worker takes).
pub fn erase_settled(db: &Db, tenant: &Tenant, customer: &CustomerId) -> Result<Statement, ApiError> {
    Ok(db
        .scoped(
            tenant,
            "DELETE FROM crm_contacts WHERE business_id = ?1 AND customer_id = ?2 AND NOT EXISTS \
             (SELECT 1 FROM crm_sync_jobs j WHERE j.business_id = ?1 AND j.connector_id = crm_contacts.connector_id \
             AND j.customer_id = ?2 AND j.status = 'pending')",
        )
        .bind(&[text(customer.as_str())])?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{Fixture, Must, random};
    use serde_json::json;
    use std::time::Duration;

    const SECOND_US: i64 = 1_000_000;

    #[test]
    fn a_lease_held_by_another_worker_is_not_taken_until_it_runs_out() {
        let fixture = Fixture::new();
        fixture.run(async {
            let acme = fixture.business_on("Acme", 0).await;
            let connector = fixture.connector(&acme).await;
            let ann = ContactKey::Customer(CustomerId::generate(random()));
            let take = |worker: &'static str| {
                let now = fixture.now().micros();
                claim(
                    &fixture.db,
                    &acme,
                    &connector,
                    &ann,
                    worker,
                    now,
                    now + 30 * SECOND_US,
                )
            };
            assert!(take("first").await.must(), "a contact nobody held");
            assert!(!take("second").await.must(), "held by the first worker");
            fixture.stack.advance(Duration::from_secs(29));
            assert!(!take("second").await.must(), "a second before the lease runs out");
            fixture.stack.advance(Duration::from_secs(1));
            assert!(take("second").await.must(), "the moment it runs out");

            release(&fixture.db, &acme, &connector, &ann, "first")
                .await
                .must();
            let rows = fixture.rows("crm_contacts", "customer_id");
            assert_eq!(rows.len(), 1);
            assert_eq!(
                rows[0]["lease"],
                json!("second"),
                "a lease given up late is not the holder's"
            );
            assert_eq!(rows[0]["business_id"], json!(acme.business_id.as_str()));

            release(&fixture.db, &acme, &connector, &ann, "second")
                .await
                .must();
            let rows = fixture.rows("crm_contacts", "customer_id");
            assert_eq!(
                (rows[0]["lease"].clone(), rows[0]["leased_until_us"].clone()),
                (json!(null), json!(0))
            );
            assert!(take("first").await.must(), "given back, it is free at once");
        });
    }

    #[test]
    fn leases_on_other_contacts_and_connectors_are_their_own() {
        let fixture = Fixture::new();
        fixture.run(async {
            let acme = fixture.business_on("Acme", 0).await;
            let (first, second) = (fixture.connector(&acme).await, fixture.connector(&acme).await);
            let (ann, bob) = (
                ContactKey::Customer(CustomerId::generate(random())),
                ContactKey::Customer(CustomerId::generate(random())),
            );
            let now = fixture.now().micros();
            let until = now + 30 * SECOND_US;
            for (connector, contact) in [(&first, &ann), (&first, &bob), (&second, &ann)] {
                assert!(
                    claim(&fixture.db, &acme, connector, contact, "worker", now, until)
                        .await
                        .must(),
                    "{connector} {contact}"
                );
            }
            assert_eq!(fixture.rows("crm_contacts", "customer_id").len(), 3);
        });
    }

    #[test]
    fn what_a_connector_keeps_of_a_contact_is_found_by_its_first_record() {
        let fixture = Fixture::new();
        fixture.run(async {
            let acme = fixture.business_on("Acme", 0).await;
            let globex = fixture.business_on("Globex", 0).await;
            let connector = fixture.connector(&acme).await;
            let other = fixture.connector(&acme).await;
            let ann = ContactKey::Customer(CustomerId::generate(random()));
            assert_eq!(
                kept(&fixture.db, &acme, &connector, &ann).await.must(),
                None,
                "no work yet"
            );
            let now = fixture.now().micros();
            claim(&fixture.db, &acme, &connector, &ann, "w", now, now + SECOND_US)
                .await
                .must();
            let external = "krayin:person:1|krayin:lead:2|krayin:organization:3";
            keep(
                &fixture.db,
                &acme,
                &connector,
                &ann,
                Some(external),
                Some("[\"won\"]"),
            )
            .await
            .must();
            let expected = Kept {
                contact: ann.clone(),
                external_id: Some(external.to_owned()),
                stages_done: Some("[\"won\"]".to_owned()),
            };
            assert_eq!(
                kept(&fixture.db, &acme, &connector, &ann).await.must(),
                Some(expected.clone())
            );
            let cases = [
                ("the whole external id", &acme, &connector, external, true),
                ("its first record", &acme, &connector, "krayin:person:1", true),
                (
                    "a first record with a longer number",
                    &acme,
                    &connector,
                    "krayin:person:11",
                    false,
                ),
                ("a shorter number", &acme, &connector, "krayin:person:", false),
                ("a later record", &acme, &connector, "krayin:lead:2", false),
                (
                    "a prefix that ends inside a record",
                    &acme,
                    &connector,
                    "krayin:person",
                    false,
                ),
                ("another connector", &acme, &other, "krayin:person:1", false),
                ("another business", &globex, &connector, "krayin:person:1", false),
            ];
            for (description, tenant, connector, asked, found) in cases {
                let answer = by_external_id(&fixture.db, tenant, connector, asked).await.must();
                assert_eq!(answer.as_ref(), found.then_some(&expected), "{description}");
            }
            assert_eq!(
                kept(&fixture.db, &globex, &connector, &ann).await.must(),
                None,
                "another business"
            );
            keep(&fixture.db, &globex, &connector, &ann, None, None)
                .await
                .must();
            assert_eq!(
                kept(&fixture.db, &acme, &connector, &ann).await.must(),
                Some(expected),
                "another business does not change it"
            );
        });
    }

    #[test]
    fn crm_ids_name_each_customer_in_every_connector_oldest_connector_first() {
        let fixture = Fixture::new();
        fixture.run(async {
            let acme = fixture.business_on("Acme", 0).await;
            let globex = fixture.business_on("Globex", 0).await;
            let older = fixture.connector(&acme).await;
            fixture.stack.advance(Duration::from_secs(1));
            let newer = fixture.connector(&acme).await;
            let theirs = fixture.connector(&globex).await;
            let (ann, bob, cat) = (
                CustomerId::generate(random()),
                CustomerId::generate(random()),
                CustomerId::generate(random()),
            );
            let now = fixture.now().micros();
            for (tenant, connector, customer, external) in [
                (&acme, &older, &ann, "krayin:person:7"),
                (&globex, &theirs, &ann, "krayin:person:8"),
            ] {
                let contact = ContactKey::Customer(customer.clone());
                claim(&fixture.db, tenant, connector, &contact, "w", now, now + 1)
                    .await
                    .must();
                keep(&fixture.db, tenant, connector, &contact, Some(external), None)
                    .await
                    .must();
            }
            // A contact the connector keeps no record for names nothing.
            let quiet = ContactKey::Customer(cat.clone());
            claim(&fixture.db, &acme, &older, &quiet, "w", now, now + 1)
                .await
                .must();
            for customer in [&ann, &bob] {
                crm_links::link(
                    &fixture.db,
                    &acme,
                    &newer,
                    LinkKind::Customer,
                    customer.as_str(),
                    &format!("k-{customer}"),
                    now,
                )
                .await
                .must();
            }
            let found = crm_ids(&fixture.db, &acme, &[&ann, &bob, &cat]).await.must();
            let of = |customer: &CustomerId| -> Vec<(ConnectorId, String)> {
                found
                    .iter()
                    .filter(|id| &id.customer_id == customer)
                    .map(|id| (id.connector_id.clone(), id.external_id.clone()))
                    .collect()
            };
            assert_eq!(
                of(&ann),
                [
                    (older.clone(), "krayin:person:7".to_owned()),
                    (newer.clone(), format!("kustomer:customer:k-{ann}")),
                ],
                "the oldest connector first; the other business's contact is not named"
            );
            assert_eq!(of(&bob), [(newer.clone(), format!("kustomer:customer:k-{bob}"))]);
            assert_eq!(found.len(), 3, "{found:?}");
            assert!(crm_ids(&fixture.db, &acme, &[]).await.must().is_empty());
        });
    }

    use domain::crm::work::LinkKind;
}
