//! Customers read: the one a key names (each of our ways to name a customer: our id, the CRM's,
//! an email, a phone), with the ids connectors keep it by; the first of several keys that names
//! one, or the 404 that says how the request named it; those a person picks by name or email; and
//! a page of the list, newest first, after its cursor and narrowed by its filters.

use super::{COLUMNS, CustomerRow};
use crate::db::Rows;
use crate::db::crm_contacts::{self, CrmId};
use crate::db::{self, Db, HOLE, Read, Sql, Statement, number, text};
use crate::runtime::D1Result;
use domain::customer::Customer;
use domain::customer_list::ListQuery;
use domain::error::ApiError;
use domain::lookup::CustomerKey;
use domain::tenant::Tenant;
use domain::time::Timestamp;

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
        .rows::<CustomerRow>()?;
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
        .rows::<CustomerRow>()?
        .into_iter()
        .map(CustomerRow::into_customer)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::super::find_many;
    use super::super::tests::{ann_by_every_key, email, found, full, known_by_external_id, phone, write_one};
    use super::*;
    use crate::db::crm_links;
    use crate::testing::{Fixture, Must, draft, random};
    use domain::crm::work::LinkKind;
    use domain::customer::CustomerDraft;
    use domain::customer_list::ListCursor;
    use domain::ids::CustomerId;
    use serde_json::json;
    use std::time::Duration;

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
}
