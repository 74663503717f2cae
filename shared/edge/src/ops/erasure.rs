//! Erasing one customer, as a person may ask by law (`domain::erasure`).
//!
//! It begins in one batch: the tombstone written, every field that says who the customer is
//! cleared, their addresses, SSO tokens, CRM links and other CRM work deleted, and for each
//! connected CRM a piece of work that deletes the contact there (`Operation::Erase`, done by
//! crm-sync as any CRM work is). From then on no key finds the customer. Then their rows are
//! deleted in steps, each one batch about a bounded number of records, the children before their
//! parents (foreign keys hold at every step): their CRM-link pieces with their vectors, their
//! messages with their files (R2), events and links, then their conversations with what hangs on
//! them, and last the customer's own row, with the event `customer.erased`. The request that asks
//! takes as many steps as half of its invocation's D1 queries allow; the maintenance sweep goes on
//! with what is left, on every run, within the same bound.

use crate::Env;
use crate::crm::sync;
use crate::db::crm_links::CrmContact;
use crate::db::crm_sync_jobs::{self, Contact, Requested};
use crate::db::customer_erasures::{self, CrmPart, Erasure};
use crate::db::directory::Moving;
use crate::db::webhook_events::{self, Guard, NewEvent};
use crate::db::{self, Db, Sql, Statement};
use crate::knowledge::backend;
use crate::messaging::media_store::ATTACHMENTS;
use crate::runtime::Internal;
use crate::{console_error, events::outbox, runtime};
use domain::audit::Actor;
use domain::crm::krayin::KrayinRefs;
use domain::crm::work::{ConnectorKind, ContactKey, JobStatus, LinkKind, Operation};
use domain::customer::Customer;
use domain::erasure::{
    self as rules, CONVERSATIONS_PER_STEP, CrmErasure, Deleted, ErasureOut, Known, MESSAGES_PER_STEP,
    PIECES_PER_STEP, QUERY_CEILING, Status,
};
use domain::error::ApiError;
use domain::ids::{CustomerId, EventId, SyncJobId};
use domain::lookup::CustomerKey;
use domain::platform;
use domain::tenant::Tenant;
use domain::time::Timestamp;
use domain::webhooks::EventType;

/// Erases the customer, or goes on with their erasure and says where it stands: begun now when
/// none was asked for (404 when there is no such customer), then stepped on within the
/// invocation's share of its limits. Whether this call began it, with the erasure.
///
/// A customer made from a channel address has an id derived from it (`crate::messaging::ingest`): a message
/// from an erased customer's address makes a new customer with the erased one's id. Erasing that
/// one begins a new erasure in place of the finished one.
pub async fn erase(
    env: &Env,
    db: &Db,
    tenant: &Tenant,
    customer: &CustomerId,
    actor: &Actor,
) -> Result<(bool, ErasureOut), ApiError> {
    let kept = customer_erasures::find(db, tenant, customer).await?;
    let (begun, mut erasure) = match kept {
        Some(erasure) if erasure.status == Status::Erasing => (false, erasure),
        kept => match db::customers::find_one(db, tenant, &CustomerKey::Id(customer.clone())).await? {
            Some(found) => (true, begin(env, db, tenant, found, actor).await?),
            None => (
                false,
                kept.ok_or_else(|| ApiError::not_found(format!("no customer {customer}")))?,
            ),
        },
    };
    if erasure.status == Status::Erasing {
        advance(env, db, tenant, &mut erasure).await?;
    }
    Ok((begun, view(db, tenant, erasure).await?))
}

/// Goes on with the erasures under way on the shard (the sweep's part), oldest first, while the
/// invocation has its share of queries left: how many it finished.
pub async fn sweep(env: &Env, shard: &Db, moving: &Moving) -> Result<usize, ApiError> {
    let mut finished = 0;
    for (business, customer) in customer_erasures::erasing(shard, moving, 10).await? {
        if spent(env) {
            break;
        }
        let tenant = Tenant::for_background(business);
        let Some(mut erasure) = customer_erasures::find(shard, &tenant, &customer).await? else {
            continue;
        };
        advance(env, shard, &tenant, &mut erasure).await?;
        if erasure.status == Status::Erased {
            finished += 1;
        }
    }
    Ok(finished)
}

/// Whether the invocation has spent its share on erasing: what is left of its limits stays for
/// the request or the sweep it runs in.
fn spent(env: &Env) -> bool {
    let used = env.usage();
    used.d1_queries >= QUERY_CEILING || used.subrequests >= platform::SUBREQUESTS / 2
}

/// Begins the erasure: the tombstone, the customer unfindable, their CRM work replaced by the
/// deletion of their contacts.
async fn begin(
    env: &Env,
    db: &Db,
    tenant: &Tenant,
    found: Customer,
    actor: &Actor,
) -> Result<Erasure, ApiError> {
    let customer = &found.id;
    let addresses = db::customer_identities::addresses_of(db, tenant, customer).await?;
    let known = Known {
        email: found.email.as_deref(),
        phone: found.phone.as_deref(),
        whatsapp_number: found.whatsapp_number.as_deref(),
        external_id: found.external_id.as_deref(),
        addresses: &addresses,
    };
    let contacts = crm_contacts_of(db, tenant, customer).await?;
    let now = runtime::now();
    let mut erasure = Erasure {
        customer_id: customer.clone(),
        status: Status::Erasing,
        requested_us: now.micros(),
        requested_by: actor.label(),
        erased_us: None,
        subjects: rules::subject_tokens(&known, tenant.default_country),
        crm: Vec::with_capacity(contacts.len()),
        deleted: Deleted::default(),
    };
    let mut requests = Vec::with_capacity(contacts.len());
    for contact in &contacts {
        let job_id = SyncJobId::generate(runtime::random()?);
        let work = Requested {
            connector_id: &contact.connector_id,
            customer_id: customer,
            operation: Operation::Erase,
            subject_id: &contact.crm_id,
            input: &serde_json::Value::Null,
        };
        requests.push(crm_sync_jobs::request(db, tenant, &job_id, &work, now.micros())?);
        erasure.crm.push(CrmPart {
            connector_id: contact.connector_id.clone(),
            kind: contact.kind.clone(),
            job_id,
        });
    }
    let mut statements = vec![
        customer_erasures::forget_erased(db, tenant, customer)?,
        customer_erasures::begin(db, tenant, &erasure)?,
        db::customers::anonymise(db, tenant, customer, &now.to_rfc3339())?,
    ];
    statements.extend(forget_customer(db, tenant, customer)?);
    statements.extend(requests);
    if let Err(error) = db.batch(statements).await {
        // Two requests began at once: the other's tombstone stands.
        return match error {
            error if error.is_unique_on("customer_erasures") => customer_erasures::find(db, tenant, customer)
                .await?
                .ok_or_else(|| ApiError::internal("erasing a customer", "its erasure vanished")),
            _ => Err(error.into()),
        };
    }
    let contacts: Vec<Contact> = erasure
        .crm
        .iter()
        .map(|part| Contact {
            business_id: tenant.business_id.clone(),
            connector_id: part.connector_id.clone(),
            key: ContactKey::Customer(customer.clone()),
        })
        .collect();
    sync::hand_over(env, &contacts, 0).await;
    Ok(erasure)
}

/// The statements that forget what finds the customer or acts for them: their addresses, SSO
/// tokens, CRM links, what connectors keep of their contact, and their CRM work but their
/// erasure's. Run when the erasure begins, and again at its end for what came while it ran.
fn forget_customer(db: &Db, tenant: &Tenant, customer: &CustomerId) -> Result<[Statement; 5], ApiError> {
    Ok([
        db::customer_identities::erase_of_customer(db, tenant, customer)?,
        db::sso_tokens::erase_of_customer(db, tenant, customer)?,
        db::crm_links::erase_local(db, tenant, LinkKind::Customer, db::listed([customer.as_str()]))?,
        db::crm_contacts::forget_refs_of_customer(db, tenant, customer)?,
        crm_sync_jobs::erase_of_customer(db, tenant, customer)?,
    ])
}

/// The customer's contact in each connected CRM: the one its link names (Kustomer, HubSpot), or
/// for Krayin the person its kept references name.
async fn crm_contacts_of(
    db: &Db,
    tenant: &Tenant,
    customer: &CustomerId,
) -> Result<Vec<CrmContact>, ApiError> {
    let mut contacts = db::crm_links::contacts_of_customer(db, tenant, customer).await?;
    for kept in db::crm_contacts::kept_of_customer(db, tenant, customer).await? {
        let linked = contacts
            .iter()
            .any(|contact| contact.connector_id == kept.connector_id);
        let person = KrayinRefs::parse(&kept.external_id)
            .ok()
            .and_then(|refs| refs.person);
        let krayin = ConnectorKind::parse(&kept.kind) == Some(ConnectorKind::Krayin);
        if let (false, true, Some(person)) = (linked, krayin, person) {
            contacts.push(CrmContact {
                connector_id: kept.connector_id,
                kind: kept.kind,
                crm_id: person.to_string(),
            });
        }
    }
    Ok(contacts)
}

/// Steps the erasure on until it is done or the invocation's share is spent.
async fn advance(env: &Env, db: &Db, tenant: &Tenant, erasure: &mut Erasure) -> Result<(), ApiError> {
    while erasure.status == Status::Erasing && !spent(env) {
        match step(env, db, tenant, erasure).await? {
            Some(deleted) => add(&mut erasure.deleted, &deleted),
            None => {
                finish(env, db, tenant, erasure).await?;
                erasure.status = Status::Erased;
                erasure.erased_us = Some(runtime::now().micros());
            }
        }
    }
    Ok(())
}

fn add(total: &mut Deleted, step: &Deleted) {
    total.messages += step.messages;
    total.conversations += step.conversations;
    total.attachments += step.attachments;
    total.knowledge_pieces += step.knowledge_pieces;
}

/// Deletes the next bounded set of the customer's rows: what it deleted, or None when only the
/// customer's own row is left.
async fn step(env: &Env, db: &Db, tenant: &Tenant, erasure: &Erasure) -> Result<Option<Deleted>, ApiError> {
    let customer = &erasure.customer_id;
    let pieces =
        db::knowledge_chunks::ids_of_subjects(db, tenant, &erasure.subjects, PIECES_PER_STEP).await?;
    if !pieces.is_empty() {
        backend::store_from_env(env)?
            .delete_by_ids(env, &pieces)
            .await
            .map_err(|error| {
                ApiError::unavailable(format!("deleting the customer's vectors: {error}"), 30)
            })?;
        let deleted = Deleted {
            knowledge_pieces: pieces.len() as u64,
            ..Deleted::default()
        };
        let statements = vec![
            db::knowledge_chunks::erase(db, tenant, &pieces)?,
            customer_erasures::count(db, tenant, customer, &deleted)?,
        ];
        db.batch(statements).await?;
        return Ok(Some(deleted));
    }
    let messages = db::messages::ids_of_customer(db, tenant, customer, MESSAGES_PER_STEP).await?;
    if !messages.is_empty() {
        let ids = || db::listed(messages.iter().map(|id| id.as_str()));
        let files = db::attachments::stored_of_messages(db, tenant, ids()).await?;
        if !files.is_empty() {
            env.bucket_write(ATTACHMENTS)
                .internal("R2")?
                .delete_multiple(files.iter().map(|file| file.storage_key.clone()).collect())
                .await
                .internal("R2")?;
        }
        let deleted = Deleted {
            messages: messages.len() as u64,
            attachments: files.len() as u64,
            ..Deleted::default()
        };
        let mut statements = Vec::from(forget_events(db, tenant, ids())?);
        statements.extend([
            db::bot_turns::erase_of_messages(db, tenant, ids())?,
            db::crm_links::erase_local(db, tenant, LinkKind::Message, ids())?,
            db::attachments::erase_of_messages(db, tenant, ids())?,
            db::messages::erase(db, tenant, ids())?,
            customer_erasures::count(db, tenant, customer, &deleted)?,
        ]);
        db.batch(statements).await?;
        return Ok(Some(deleted));
    }
    let conversations =
        db::conversations::ids_of_customer(db, tenant, customer, CONVERSATIONS_PER_STEP).await?;
    if !conversations.is_empty() {
        let ids = || db::listed(conversations.iter().map(|id| id.as_str()));
        let deleted = Deleted {
            conversations: conversations.len() as u64,
            ..Deleted::default()
        };
        let mut statements = Vec::from(forget_events(db, tenant, ids())?);
        statements.extend([
            db::bot_answers::erase_of_conversations(db, tenant, ids())?,
            db::bot_conversations::erase_of_conversations(db, tenant, ids())?,
            db::crm_satisfaction::erase_of_conversations(db, tenant, ids())?,
            db::crm_links::erase_local(db, tenant, LinkKind::Conversation, ids())?,
            db::conversations::erase(db, tenant, ids())?,
            customer_erasures::count(db, tenant, customer, &deleted)?,
        ]);
        db.batch(statements).await?;
        return Ok(Some(deleted));
    }
    Ok(None)
}

/// The statements that delete the webhook events about the records `subjects` selects, their
/// deliveries and the attempts at them, children first.
fn forget_events(db: &Db, tenant: &Tenant, subjects: Sql) -> Result<[Statement; 3], ApiError> {
    Ok([
        db::webhook_attempts::erase_of_events(db, tenant, webhook_events::of_subjects(subjects.clone()))?,
        db::webhook_deliveries::erase_of_events(db, tenant, webhook_events::of_subjects(subjects.clone()))?,
        webhook_events::erase_of_subjects(db, tenant, subjects)?,
    ])
}

/// The last step: what names the customer and came while the erasure ran, the customer's row, the
/// event `customer.erased`, and the tombstone marked erased. The event is recorded only while the
/// tombstone is still under way, so when the request and the sweep finish the same erasure at
/// once, the second batch deletes nothing the first kept and announces nothing again.
async fn finish(env: &Env, db: &Db, tenant: &Tenant, erasure: &Erasure) -> Result<(), ApiError> {
    let customer = &erasure.customer_id;
    let now = runtime::now();
    let event = EventId::generate(runtime::random()?);
    let mut statements = Vec::from(forget_events(db, tenant, db::listed([customer.as_str()]))?);
    statements.extend(forget_customer(db, tenant, customer)?);
    statements.extend([
        db::bot_answers::erase_of_customer(db, tenant, customer)?,
        db::escalations::erase_of_customer(db, tenant, customer)?,
        db::crm_contacts::erase_settled(db, tenant, customer)?,
        db::customers::erase(db, tenant, customer)?,
    ]);
    let mut batch = db::Batch::default();
    batch.push(statements);
    let recorded = batch.read(webhook_events::record(
        db,
        tenant,
        None,
        now,
        &[NewEvent::new(event, EventType::CustomerErased, customer)],
        Guard::When(customer_erasures::under_way(customer)),
    )?);
    batch.push([customer_erasures::finish(db, tenant, customer, now.micros())?]);
    let answers = batch.run(db).await?;
    outbox::publish(env, tenant, answers.take(recorded)?).await;
    Ok(())
}

/// The erasure as the API answers it, with where each CRM's part stands.
async fn view(db: &Db, tenant: &Tenant, erasure: Erasure) -> Result<ErasureOut, ApiError> {
    let ids: Vec<&SyncJobId> = erasure.crm.iter().map(|part| &part.job_id).collect();
    let states = if ids.is_empty() {
        Vec::new()
    } else {
        crm_sync_jobs::states(db, tenant, &ids).await?
    };
    let mut crm = Vec::with_capacity(erasure.crm.len());
    for part in erasure.crm {
        let Some(kind) = ConnectorKind::parse(&part.kind) else {
            console_error!(
                "erasure of {}: connector kind {:?} is unknown",
                erasure.customer_id,
                part.kind
            );
            continue;
        };
        // Work whose connector was deleted since is gone with it.
        let state = states.iter().find(|state| state.id == part.job_id);
        crm.push(CrmErasure {
            connector_id: part.connector_id,
            crm: kind,
            action: rules::crm_action(kind),
            status: state.map_or(JobStatus::Skipped, |state| state.status),
            error: state.and_then(|state| state.error.clone()),
            job_id: part.job_id,
        });
    }
    Ok(ErasureOut {
        customer_id: erasure.customer_id,
        status: erasure.status,
        requested_at: Timestamp::from_micros(erasure.requested_us),
        requested_by: erasure.requested_by,
        erased_at: erasure.erased_us.map(Timestamp::from_micros),
        deleted: erasure.deleted,
        crm,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{Fixture, HOOKS_URL, Must};
    use domain::webhooks::EventType;

    #[test]
    fn an_erasure_finished_twice_at_once_announces_itself_once_and_keeps_that_notice() {
        let fixture = Fixture::new();
        fixture.run(async {
            let tenant = fixture.business("Acme").await;
            fixture
                .webhook_endpoint(&tenant, HOOKS_URL, &[EventType::CustomerErased])
                .await;
            let ada = fixture.ada(&tenant).await;
            let (begun, erased) = erase(&fixture.env, &fixture.db, &tenant, &ada.id, &Actor::Admin)
                .await
                .must();
            assert!(begun);
            assert_eq!(erased.status, Status::Erased);
            let announced = fixture.dispatched();
            assert_eq!(announced.len(), 1, "one customer.erased: {announced:?}");

            // The sweep read the tombstone while the request was finishing it, and finishes it
            // too, a batch later.
            let tombstone = customer_erasures::find(&fixture.db, &tenant, &ada.id)
                .await
                .must()
                .unwrap_or_else(|| panic!("the tombstone is kept"));
            finish(&fixture.env, &fixture.db, &tenant, &tombstone)
                .await
                .must();

            assert_eq!(fixture.dispatched(), announced, "nothing is announced again");
            let kept: Vec<String> = fixture.event_ids().iter().map(ToString::to_string).collect();
            assert_eq!(kept, announced, "the first notice is kept, undelivered as yet");
        });
    }
}
