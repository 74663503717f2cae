//! The sync pipeline: our events become work for the business's connectors (planned when the
//! webhook dispatcher first dispatches them, never in the request that caused them), contacts with
//! work are handed to the sync consumer through the `crm-edge-crm-sync` queue, and a worker that
//! holds a contact's lease does its work in order ([`drain`]).
//!
//! Nothing is lost on the way: work is a D1 row before anything is queued, a queue message only
//! says "this contact has work", and the maintenance sweep hands over contacts whose work is
//! overdue and that nobody holds.

use crate::Env;
use crate::crm::{escalation, perform};
use crate::db::Db;
use crate::db::crm_connectors::{self, Connector};
use crate::db::crm_contacts;
use crate::db::crm_sync_jobs::{self, Contact, Job, Settled};
use crate::db::webhook_events::StoredEvent;
use crate::runtime;
use crate::{console_error, console_log};
use domain::crm::rollout::Rollout;
use domain::crm::settle;
use domain::crm::work::{self, ContactKey, EventToFollow, JobStatus};
use domain::error::ApiError;
use domain::ids::{ConnectorId, CustomerId, SyncJobId};
use domain::message::Message;
use domain::platform;
use domain::sealed::Keyring;
use domain::tenant::Tenant;
use domain::webhooks::EventType;
use futures_util::future::join_all;
use serde_json::Value;

/// The queue binding: producer in the webhook dispatcher, the CRM API, the CRM receivers and the
/// sync consumer itself; consumer in crm-sync.
pub const CRM_SYNC: &str = "CRM_SYNC";

impl crate::platform::queue::Work for Contact {
    const QUEUE: &'static str = CRM_SYNC;

    fn business(&self) -> Option<domain::ids::BusinessId> {
        Some(self.business_id.clone())
    }
}
/// A worker holds a contact this long at most...
const LEASE_SECONDS: i64 = 180;
/// ...and starts no new work for it after this long, handing the rest to a fresh queue message:
/// with calls bounded at 10 s and a few calls per piece of work, it is done well within its lease.
const DRAIN_SECONDS: i64 = 60;
/// ...nor once its invocation has made this many D1 queries or subrequests: the contacts of one
/// queue batch share one invocation's limits, and what is left is room for the work already under
/// way in the batch (a piece of work ends in a few dozen queries at most, a batch holds ten
/// contacts) to record how it ended, so that no CRM call goes unrecorded and is made again.
const DRAIN_QUERY_CEILING: u32 = platform::D1_QUERIES / 2;
const DRAIN_SUBREQUEST_CEILING: u32 = platform::SUBREQUESTS / 2;

/// Plans the work `events` mean for the tenant's `enabled` connectors (read by the caller with
/// the events), records it, and hands the contacts with new work to the sync consumer. The
/// events' snapshots name their customer. A received message that asks for a person in a
/// connector's words escalates its conversation here, before any CRM is called. Without an
/// enabled connector there is nothing to plan, and no round trip.
pub async fn plan(
    env: &Env,
    db: &Db,
    tenant: &Tenant,
    enabled: &[crm_connectors::Enabled],
    events: &[StoredEvent],
) -> Result<(), ApiError> {
    if events.is_empty() || enabled.is_empty() {
        return Ok(());
    }
    for event in events
        .iter()
        .filter(|event| event.kind == EventType::MessageReceived.as_str())
    {
        if let Some(message) = message_of(event) {
            escalation::escalate_if_asked(env, db, tenant, enabled, &message).await?;
        }
    }
    let connectors: Vec<(ConnectorId, Rollout)> = enabled
        .iter()
        .map(|connector| (connector.id.clone(), connector.rollout))
        .collect();
    let details: Vec<Option<Value>> = events
        .iter()
        .map(|event| {
            event
                .detail
                .as_deref()
                .and_then(|detail| serde_json::from_str(detail).ok())
        })
        .collect();
    let to_follow: Vec<EventToFollow<'_>> = events
        .iter()
        .zip(&details)
        .filter_map(|(event, detail)| {
            Some(EventToFollow {
                id: &event.id,
                kind: EventType::parse(&event.kind)?,
                subject_id: &event.subject_id,
                customer_id: customer_of(event),
                detail: detail.as_ref(),
            })
        })
        .collect();
    let planned = work::plan(&to_follow, &connectors);
    let now = runtime::now().micros();
    let contacts = crm_sync_jobs::insert_planned(
        db,
        tenant,
        &planned,
        || Ok(SyncJobId::generate(runtime::random()?)),
        now,
    )
    .await?;
    hand_over(env, &contacts, 0).await;
    Ok(())
}

/// The message a message event's snapshot holds.
fn message_of(event: &StoredEvent) -> Option<Message> {
    let mut snapshot: Value = serde_json::from_str(event.snapshot.as_deref()?).ok()?;
    crate::db::messages::from_snapshot(snapshot.get_mut("message")?.take()).ok()
}

/// The customer an event's snapshot names: every snapshot carries its customer.
fn customer_of(event: &StoredEvent) -> Option<CustomerId> {
    let snapshot: Value = serde_json::from_str(event.snapshot.as_deref()?).ok()?;
    CustomerId::parse(snapshot.get("customer")?.get("id")?.as_str()?)
}

/// Puts the contacts of newly recorded work on the sync queue at once (see [`hand_over`]).
pub async fn hand_over_jobs(env: &Env, tenant: &Tenant, jobs: &[Job]) {
    let contacts: Vec<Contact> = jobs
        .iter()
        .map(|job| Contact {
            business_id: tenant.business_id.clone(),
            connector_id: job.connector_id.clone(),
            key: job.contact.clone(),
        })
        .collect();
    hand_over(env, &contacts, 0).await;
}

/// Puts the contacts on the sync queue after `delay_seconds`. A failure delays the work, loses
/// none of it (the sweep finds it), so it is logged, not returned.
pub async fn hand_over(env: &Env, contacts: &[Contact], delay_seconds: u32) {
    if contacts.is_empty() {
        return;
    }
    if let Err(error) = crate::platform::queue::send_all(env, contacts, delay_seconds).await {
        console_error!(
            "{} contacts with CRM work left for the sweep: {error}",
            contacts.len()
        );
    }
}

/// A new lease: what a worker holds its contacts under.
pub fn new_lease() -> Result<String, ApiError> {
    Ok(hex::encode(runtime::random::<16>()?))
}

/// Does the due work of a queue batch's contacts, each in order under its lease (`lease`, the
/// batch's), the contacts side by side; each one's result in the batch's order. First, for each
/// connector with several of the contacts, their next work is handed to its CRM together
/// ([`prepare`]).
pub async fn drain_batch(
    env: &Env,
    db: &Db,
    keys: &Keyring,
    contacts: &[Contact],
) -> Vec<Result<(), ApiError>> {
    let lease = match new_lease() {
        Ok(lease) => lease,
        Err(error) => return contacts.iter().map(|_| Err(error.clone())).collect(),
    };
    let mut groups: Vec<Vec<&Contact>> = Vec::new();
    for contact in contacts {
        let group = groups.iter_mut().find(|group| {
            group[0].business_id == contact.business_id && group[0].connector_id == contact.connector_id
        });
        match group {
            Some(group) => group.push(contact),
            None => groups.push(vec![contact]),
        }
    }
    for group in groups.iter().filter(|group| group.len() > 1) {
        if let Err(error) = prepare(env, db, keys, group, &lease).await {
            // Each contact's own work meets the same failure and is retried as always.
            console_error!(
                "preparing the work of {} contacts (connector {}) together: {}",
                group.len(),
                group[0].connector_id,
                error.detail().unwrap_or(&error.body.message)
            );
        }
    }
    // A contact named twice in the batch (its work handed over twice) is drained once: both would
    // hold the batch's lease.
    join_all(contacts.iter().enumerate().map(|(at, contact)| {
        let repeated = contacts[..at].contains(contact);
        let lease = &lease;
        async move {
            match repeated {
                true => Ok(()),
                false => drain(env, db, keys, contact, lease).await,
            }
        }
    }))
    .await
}

/// Takes the leases of one connector's contacts and hands the next work of those due now to its
/// CRM together ([`crate::crm::prepare`]); the leases stay taken for their drains.
async fn prepare(
    env: &Env,
    db: &Db,
    keys: &Keyring,
    contacts: &[&Contact],
    lease: &str,
) -> Result<(), ApiError> {
    let Some(first) = contacts.first() else {
        return Ok(());
    };
    let tenant = Tenant::for_background(first.business_id.clone());
    let Some(connector) = crm_connectors::find(db, keys, &tenant, &first.connector_id).await? else {
        return Ok(());
    };
    // A CRM that does each contact's work alone costs no lease or read here.
    if !connector.enabled || !crate::crm::prepares(connector.kind) {
        return Ok(());
    }
    let now = runtime::now().micros();
    let until = now + LEASE_SECONDS * 1_000_000;
    let mut due = Vec::with_capacity(contacts.len());
    for contact in contacts {
        let ContactKey::Customer(customer) = &contact.key else {
            continue;
        };
        if !crm_contacts::claim(db, &tenant, &connector.id, &contact.key, lease, now, until).await? {
            continue;
        }
        let job = crm_sync_jobs::next_of_contact(db, &tenant, contact).await?;
        if let Some(job) = job.filter(|job| job.next_attempt_us <= now)
            && let Ok(work) = crate::crm::work(&job)
        {
            due.push((customer.clone(), work));
        }
    }
    if due.len() < 2 {
        return Ok(());
    }
    crate::crm::prepare(env, db, &connector, &due).await
}

/// Does the contact's due work, in order, while holding its lease (taking it under `lease`). A
/// contact another worker holds is left to it: that worker looks for work once more after letting
/// go, so work recorded while it held the lease is not missed.
pub async fn drain(
    env: &Env,
    db: &Db,
    keys: &Keyring,
    contact: &Contact,
    lease: &str,
) -> Result<(), ApiError> {
    let tenant = Tenant::for_background(contact.business_id.clone());
    let Some(mut connector) = crm_connectors::find(db, keys, &tenant, &contact.connector_id).await? else {
        console_log!(
            "connector {} is gone; its work is dropped from the queue",
            contact.connector_id
        );
        return Ok(());
    };
    if !connector.enabled {
        // Its work stays pending; enabling the connector lets the sweep hand it over again.
        return Ok(());
    }
    let started = runtime::now();
    let mut succeeded = false;
    'held: loop {
        let now = runtime::now().micros();
        if !crm_contacts::claim(
            db,
            &tenant,
            &connector.id,
            &contact.key,
            lease,
            now,
            now + LEASE_SECONDS * 1_000_000,
        )
        .await?
        {
            break 'held;
        }
        loop {
            let now = runtime::now();
            let used = env.usage();
            if now.seconds() - started.seconds() >= DRAIN_SECONDS
                || used.d1_queries >= DRAIN_QUERY_CEILING
                || used.subrequests >= DRAIN_SUBREQUEST_CEILING
            {
                crm_contacts::release(db, &tenant, &connector.id, &contact.key, lease).await?;
                hand_over(env, std::slice::from_ref(contact), 0).await;
                break 'held;
            }
            let Some(job) = crm_sync_jobs::next_of_contact(db, &tenant, contact).await? else {
                crm_contacts::release(db, &tenant, &connector.id, &contact.key, lease).await?;
                // Work recorded while the lease was held, whose queue message found it held.
                if crm_sync_jobs::next_of_contact(db, &tenant, contact)
                    .await?
                    .is_some()
                {
                    continue 'held;
                }
                break 'held;
            };
            if job.next_attempt_us > now.micros() {
                crm_contacts::release(db, &tenant, &connector.id, &contact.key, lease).await?;
                let wait = ((job.next_attempt_us - now.micros()) / 1_000_000 + 1).clamp(1, 43_200) as u32;
                hand_over(env, std::slice::from_ref(contact), wait).await;
                break 'held;
            }
            match run(env, db, &mut connector, &tenant, &job).await? {
                Step::Next { succeeded: true } => succeeded = true,
                Step::Next { succeeded: false } => {}
                Step::Wait(seconds) => {
                    crm_contacts::release(db, &tenant, &connector.id, &contact.key, lease).await?;
                    hand_over(env, std::slice::from_ref(contact), seconds).await;
                    break 'held;
                }
            }
        }
    }
    if succeeded {
        crm_connectors::record_health(db, &tenant, &connector.id, None, runtime::now().micros()).await?;
    }
    Ok(())
}

/// What the drain does after one piece of work.
enum Step {
    Next {
        succeeded: bool,
    },
    /// Stop; the contact's work goes on after this many seconds.
    Wait(u32),
}

/// Does one piece of work and records how it ended (`domain::crm::settle` decides what that
/// means); the connector keeps the secrets the work left (a token refreshed) for the next.
async fn run(
    env: &Env,
    db: &Db,
    connector: &mut Connector,
    tenant: &Tenant,
    job: &Job,
) -> Result<Step, ApiError> {
    let started = runtime::now();
    let (outcome, secrets) = perform(env, db, connector, job).await?;
    connector.secrets = secrets;
    let now = runtime::now();
    let jitter = f64::from(u32::from_le_bytes(runtime::random::<4>()?)) / (f64::from(u32::MAX) + 1.0);
    let decision = settle::decide(outcome, job.attempts + 1, job.retry_from_us, now.micros(), jitter);
    // What the CRM call did is recorded first: a failure after this loses a pause or a health
    // note, never the fact that the call was made.
    match decision.status {
        None => crm_sync_jobs::defer(db, tenant, job, decision.next_attempt_us).await?,
        Some(status) => {
            let settled = Settled {
                status,
                crm_id: decision.crm_id.as_deref(),
                http_status: decision.http_status,
                error: decision.error.as_deref(),
                duration_ms: now.millis() - started.millis(),
                next_attempt_us: decision.next_attempt_us,
            };
            crm_sync_jobs::settle(db, tenant, job, &settled, now.micros()).await?;
        }
    }
    if let Some(until) = decision.pause_until_us {
        crm_connectors::pause(db, tenant, &connector.id, until).await?;
    }
    if let Some(error) = &decision.health_error {
        crm_connectors::record_health(db, tenant, &connector.id, Some(error), now.micros()).await?;
    }
    Ok(match decision.resume_after_seconds {
        Some(seconds) => Step::Wait(seconds),
        None => Step::Next {
            succeeded: decision.status == Some(JobStatus::Succeeded),
        },
    })
}

/// Failures to reach D1 leave the work as it was; the queue hands the contact over again.
pub fn log_own_failure(contact: &Contact, error: &ApiError) {
    console_error!(
        "CRM work of contact {} (connector {}) stopped on our side, it is retried: {}",
        contact.key,
        contact.connector_id,
        error.detail().unwrap_or(&error.body.message)
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crm::test_support::{
        Script, UNLIMITED, contact_of, conversation, customer, jobs, kustomer_connector, kustomer_error,
        linked, reloaded, work,
    };

    use crate::testing::Fixture;
    use domain::crm::work::{LinkKind, Operation};
    use serde_json::json;
    use std::time::Duration;

    /// A connector, a customer with a conversation already synced (so that each note is one
    /// call), and a note for each of `bodies`, in order.
    async fn notes(fixture: &Fixture, bodies: &[&str]) -> (Connector, Contact) {
        let tenant = fixture.business("Acme").await;
        let connector = kustomer_connector(fixture, &tenant, json!({}), UNLIMITED).await;
        let ada = customer(fixture, &tenant, "Ada", None).await;
        let talk = conversation(fixture, &tenant, &ada).await;
        linked(
            fixture,
            &connector,
            LinkKind::Conversation,
            talk.as_str(),
            "5f00000000000000000000f1",
        )
        .await;
        for body in bodies {
            work(
                fixture,
                &connector,
                &ada,
                Operation::Note,
                talk.as_str(),
                json!({ "body": body }),
            )
            .await;
        }
        let contact = contact_of(&connector, &ada);
        (connector, contact)
    }

    async fn drained(fixture: &Fixture, contact: &Contact) {
        let keys = fixture.env.keyring().unwrap_or_else(|error| panic!("{error:?}"));
        let lease = new_lease().unwrap_or_else(|error| panic!("{error:?}"));
        drain(&fixture.env, &fixture.db, &keys, contact, &lease)
            .await
            .unwrap_or_else(|error| panic!("{error:?}"));
    }

    fn statuses(fixture: &Fixture, connector: &Connector) -> Vec<(String, i64)> {
        jobs(fixture, connector)
            .iter()
            .map(|job| {
                (
                    job["status"].as_str().unwrap_or_default().to_owned(),
                    job["attempts"].as_i64().unwrap_or_default(),
                )
            })
            .collect()
    }

    fn noted(script: &Script) -> Vec<String> {
        script
            .calls()
            .iter()
            .filter(|call| call.path().ends_with("/notes"))
            .map(|call| call.json()["body"].as_str().unwrap_or_default().to_owned())
            .collect()
    }

    fn done(n: usize) -> Vec<(String, i64)> {
        vec![("succeeded".to_owned(), 1); n]
    }

    #[test]
    fn a_contacts_work_is_done_in_order_by_the_worker_that_holds_its_lease_which_it_then_lets_go() {
        let fixture = Fixture::new();
        fixture.run(async {
            let (connector, contact) = notes(&fixture, &["first", "second", "third"]).await;
            let script = Script::install(&fixture.stack);
            drained(&fixture, &contact).await;
            assert_eq!(noted(&script), ["first", "second", "third"]);
            assert_eq!(statuses(&fixture, &connector), done(3));
            let leases = fixture.rows("crm_contacts", "customer_id");
            assert_eq!(leases.len(), 1, "{leases:?}");
            assert_eq!(leases[0]["lease"], serde_json::Value::Null, "let go: {leases:?}");
            assert!(
                reloaded(&fixture, &connector).await.last_success_us.is_some(),
                "its health noted"
            );
        });
    }

    #[test]
    fn a_contact_named_twice_in_a_batch_is_drained_once_though_the_batch_holds_one_lease() {
        let fixture = Fixture::new();
        fixture.run(async {
            let (connector, contact) = notes(&fixture, &["first", "second"]).await;
            let script = Script::install(&fixture.stack);
            // Kustomer takes a second a note, so that the two would overlap.
            let slow = crate::crm::test_support::record(201, "note", "5f00000000000000000000a1")
                .after(Duration::from_secs(1));
            script.then(vec![slow; 4]);
            let keys = fixture.env.keyring().unwrap_or_else(|error| panic!("{error:?}"));
            let results = drain_batch(
                &fixture.env,
                &fixture.db,
                &keys,
                &[contact.clone(), contact.clone()],
            )
            .await;
            assert!(results.iter().all(Result::is_ok), "{results:?}");
            assert_eq!(noted(&script), ["first", "second"], "each note once");
            assert_eq!(statuses(&fixture, &connector), done(2));
        });
    }

    /// Two customers of one Kustomer connector, each with a conversation already synced and a
    /// note to add.
    async fn two_contacts(fixture: &Fixture) -> Vec<Contact> {
        let tenant = fixture.business("Acme").await;
        let connector = kustomer_connector(fixture, &tenant, json!({}), UNLIMITED).await;
        let mut contacts = Vec::new();
        for (name, kustomer_id) in [
            ("Ada", "5f00000000000000000000f1"),
            ("Bo", "5f00000000000000000000f2"),
        ] {
            let who = customer(fixture, &tenant, name, None).await;
            let talk = conversation(fixture, &tenant, &who).await;
            linked(
                fixture,
                &connector,
                LinkKind::Conversation,
                talk.as_str(),
                kustomer_id,
            )
            .await;
            work(
                fixture,
                &connector,
                &who,
                Operation::Note,
                talk.as_str(),
                json!({ "body": name }),
            )
            .await;
            contacts.push(contact_of(&connector, &who));
        }
        contacts
    }

    #[test]
    fn a_batch_of_a_crm_that_does_each_contacts_work_alone_costs_no_more_queries_than_its_drains() {
        let one_by_one = Fixture::new();
        let alone = one_by_one.run(async {
            let contacts = two_contacts(&one_by_one).await;
            let _script = Script::install(&one_by_one.stack);
            let before = one_by_one.env.usage().d1_queries;
            for contact in &contacts {
                drained(&one_by_one, contact).await;
            }
            one_by_one.env.usage().d1_queries - before
        });
        let batch = Fixture::new();
        let together = batch.run(async {
            let contacts = two_contacts(&batch).await;
            let script = Script::install(&batch.stack);
            let keys = batch.env.keyring().unwrap_or_else(|error| panic!("{error:?}"));
            let before = batch.env.usage().d1_queries;
            let results = drain_batch(&batch.env, &batch.db, &keys, &contacts).await;
            assert!(results.iter().all(Result::is_ok), "{results:?}");
            assert_eq!(noted(&script), ["Ada", "Bo"]);
            batch.env.usage().d1_queries - before
        });
        // The batch step reads the connector once to learn its CRM, and nothing more.
        assert_eq!(
            together,
            alone + 1,
            "{together} queries batched, {alone} one by one"
        );
    }

    #[test]
    fn a_contact_another_worker_holds_is_left_to_it_until_its_lease_runs_out() {
        let fixture = Fixture::new();
        fixture.run(async {
            let (connector, contact) = notes(&fixture, &["first"]).await;
            let script = Script::install(&fixture.stack);
            let now = runtime::now().micros();
            let held = crm_contacts::claim(
                &fixture.db,
                &connector.tenant,
                &connector.id,
                &contact.key,
                "another worker",
                now,
                now + LEASE_SECONDS * 1_000_000,
            )
            .await
            .unwrap_or_else(|error| panic!("{error:?}"));
            assert!(held);
            drained(&fixture, &contact).await;
            assert!(script.calls().is_empty(), "nothing done under another's lease");
            assert_eq!(statuses(&fixture, &connector), [("pending".to_owned(), 0)]);
            fixture.stack.advance(Duration::from_secs(LEASE_SECONDS as u64));
            drained(&fixture, &contact).await;
            assert_eq!(noted(&script), ["first"], "a lease that ran out is taken over");
        });
    }

    #[test]
    fn a_failure_that_is_retried_stops_the_contacts_work_in_order_and_hands_it_over_for_after_the_wait() {
        let fixture = Fixture::new();
        fixture.run(async {
            let (connector, contact) = notes(&fixture, &["first", "second"]).await;
            let script = Script::install(&fixture.stack);
            script.then([kustomer_error(503, "maintenance")]);
            let started = runtime::now().micros();
            drained(&fixture, &contact).await;
            assert_eq!(script.calls().len(), 1, "the second waits behind the first");
            assert_eq!(
                statuses(&fixture, &connector),
                [("pending".to_owned(), 1), ("pending".to_owned(), 0)]
            );
            let first = &jobs(&fixture, &connector)[0];
            let next = first["next_attempt_us"].as_i64().unwrap_or_default();
            assert!(
                (started + 1_000_000..=started + 2_000_000).contains(&next),
                "retried after half to all of 2 s: {first:?}"
            );
            assert_eq!(first["last_status"], 503);
            let queued = fixture.stack.queued(CRM_SYNC);
            assert_eq!(queued.len(), 1, "handed over once");
            assert!(
                queued[0].due_ms * 1000 >= next,
                "not before the retry is due: {} < {next}",
                queued[0].due_ms * 1000
            );
            let health = reloaded(&fixture, &connector).await;
            assert!(
                health
                    .last_error
                    .as_deref()
                    .is_some_and(|error| error.starts_with("503")),
                "{:?}",
                health.last_error
            );
            assert_eq!(health.paused_until_us, None, "a 5xx pauses nobody else");

            fixture.stack.advance(Duration::from_secs(2));
            drained(&fixture, &contact).await;
            assert_eq!(noted(&script), ["first", "first", "second"]);
            assert_eq!(
                statuses(&fixture, &connector),
                [("succeeded".to_owned(), 2), ("succeeded".to_owned(), 1)]
            );
        });
    }

    #[test]
    fn a_429_pauses_the_whole_connector_for_as_long_as_kustomer_asks() {
        let fixture = Fixture::new();
        fixture.run(async {
            let (connector, contact) = notes(&fixture, &["first"]).await;
            let script = Script::install(&fixture.stack);
            script.then([kustomer_error(429, "slow down").header("retry-after", "30")]);
            let started = runtime::now().micros();
            drained(&fixture, &contact).await;
            let paused = reloaded(&fixture, &connector).await.paused_until_us;
            assert_eq!(paused, Some(started + 30_000_000));
            let first = &jobs(&fixture, &connector)[0];
            assert_eq!(first["next_attempt_us"], started + 30_000_000);
            assert_eq!(
                fixture.stack.queued(CRM_SYNC)[0].due_ms,
                started / 1000 + 30_000,
                "handed over for when the pause ends"
            );
        });
    }

    #[test]
    fn a_drain_gives_way_after_a_minute_and_hands_the_rest_to_a_fresh_message() {
        let fixture = Fixture::new();
        fixture.run(async {
            let bodies = ["1", "2", "3", "4", "5", "6", "7", "8"];
            let (connector, contact) = notes(&fixture, &bodies).await;
            let script = Script::install(&fixture.stack);
            // Each note takes Kustomer 9 s (within the call's 10 s): after the seventh, a minute
            // has passed.
            let slow = crate::crm::test_support::record(201, "note", "5f00000000000000000000a1")
                .after(Duration::from_secs(9));
            script.then(vec![slow; bodies.len()]);
            drained(&fixture, &contact).await;
            assert_eq!(noted(&script), bodies[..7], "no new work after a minute");
            let statuses = statuses(&fixture, &connector);
            assert_eq!(statuses[..7], done(7)[..]);
            assert_eq!(statuses[7..], [("pending".to_owned(), 0)]);
            let queued = fixture.stack.queued(CRM_SYNC);
            assert_eq!(queued.len(), 1);
            assert_eq!(
                queued[0].due_ms,
                fixture.stack.now_ms(),
                "the rest goes on at once"
            );
            let leases = fixture.rows("crm_contacts", "customer_id");
            assert_eq!(
                leases[0]["lease"],
                serde_json::Value::Null,
                "let go for the next worker"
            );
        });
    }

    #[test]
    fn work_due_later_is_handed_over_for_when_it_is_due_and_nothing_is_called() {
        let fixture = Fixture::new();
        fixture.run(async {
            let (connector, contact) = notes(&fixture, &["later"]).await;
            let script = Script::install(&fixture.stack);
            let tenant = connector.tenant.clone();
            let job = crm_sync_jobs::next_of_contact(&fixture.db, &tenant, &contact)
                .await
                .unwrap_or_else(|error| panic!("{error:?}"))
                .unwrap_or_else(|| panic!("the note's work"));
            let due = runtime::now().micros() + 90_000_000;
            crm_sync_jobs::defer(&fixture.db, &tenant, &job, due)
                .await
                .unwrap_or_else(|error| panic!("{error:?}"));
            drained(&fixture, &contact).await;
            assert!(script.calls().is_empty());
            let queued = fixture.stack.queued(CRM_SYNC);
            assert_eq!(queued.len(), 1);
            assert_eq!(
                queued[0].due_ms,
                fixture.stack.now_ms() + 91_000,
                "a second after it is due"
            );
        });
    }

    #[test]
    fn a_disabled_connectors_work_stays_pending_and_nothing_is_called() {
        let fixture = Fixture::new();
        fixture.run(async {
            let (connector, contact) = notes(&fixture, &["kept"]).await;
            let script = Script::install(&fixture.stack);
            let disabled = fixture
                .db
                .scoped(
                    &connector.tenant,
                    "UPDATE crm_connectors SET enabled = 0 WHERE business_id = ?1 AND id = ?2",
                )
                .bind(&[crate::db::text(connector.id.as_str())])
                .unwrap_or_else(|error| panic!("{error:?}"));
            disabled.run().await.unwrap_or_else(|error| panic!("{error:?}"));
            drained(&fixture, &contact).await;
            assert!(script.calls().is_empty());
            assert_eq!(statuses(&fixture, &connector), [("pending".to_owned(), 0)]);
            assert!(
                fixture.stack.queued(CRM_SYNC).is_empty(),
                "the sweep hands it over once enabled"
            );
        });
    }
}
