//! How deliveries reach their attempts. A dispatch reads an event's first attempts (one per
//! subscribed enabled endpoint, none made twice) and builds the bodies in one round trip, then
//! records each batch of attempts with the events it settles and settles the rest; an event is
//! marked dispatched only with its last first attempt, so a dispatch that dies is the sweep's to
//! do again. A retry or a replay is its own task: it claims its delivery under a lease, and builds
//! the body a dispatch that died did not keep.

use super::body::{Payloads, payloads};
use crate::db::webhook_deliveries::{Claimed, Lease};
use crate::db::webhook_endpoints::Endpoint;
use crate::db::webhook_events::StoredEvent;
use crate::db::{self, Batch, Db, Statement};
use crate::runtime;
use domain::error::ApiError;
use domain::ids::{DeliveryId, EventId};
use domain::media::MediaLinks;
use domain::sealed::Keyring;
use domain::tenant::Tenant;
use domain::time::Timestamp;
use domain::webhooks;

/// A dispatch under way: its events read, the first attempts they are due (each known by its
/// delivery's id: nothing is written before a first attempt) and their bodies built, in one
/// round trip; left to do are the attempts, each batch of them recorded with the events it
/// settles ([`Dispatch::settling`] of [`Dispatch::completed_by`]), and [`Dispatch::finish`] for
/// the rest.
pub struct Dispatch {
    pub events: Vec<StoredEvent>,
    /// The business's enabled CRM connectors, which follow every event.
    pub connectors: Vec<db::crm_connectors::Enabled>,
    /// The first attempts to make, each with its endpoint and the body it sends.
    pub due: Vec<(Claimed, Option<Endpoint>)>,
    /// The bodies built now, and the events whose body cannot be built.
    pub payloads: Payloads,
    /// The deliveries of events whose body cannot be built, with why: dead without an attempt.
    doomed: Vec<(Claimed, String)>,
    now: Timestamp,
}

/// Reads the events among `event_ids` (with the files their message events list, the business's
/// enabled CRM connectors, its endpoints, and the first attempts the events are due: one per
/// event and subscribed enabled endpoint that neither has a delivery row nor logged an attempt),
/// in one batch that writes nothing; then builds the bodies not fixed yet. A repeated dispatch
/// attempts nothing twice that was recorded. Nothing is marked dispatched yet: should the
/// dispatch end before its attempts are recorded, the sweep dispatches the events again.
pub async fn dispatch(
    db: &Db,
    keys: &Keyring,
    tenant: &Tenant,
    event_ids: &[EventId],
    links: Option<&MediaLinks>,
    now: Timestamp,
) -> Result<Dispatch, ApiError> {
    let mut batch = Batch::default();
    let events = batch.read(db::webhook_events::load_statement(db, tenant, event_ids)?);
    let files = batch.read(db::attachments::of_messages_among(
        db,
        tenant,
        db::webhook_events::message_subjects(event_ids),
    )?);
    let connectors = batch.read(db::crm_connectors::enabled_read(db, tenant));
    let endpoints = batch.read(db::webhook_endpoints::list_read(db, tenant));
    let first = batch.read(db::webhook_deliveries::first_due(db, tenant, event_ids)?);
    let answers = batch.run(db).await?;
    let events = answers.take(events)?;
    let files = answers.take(files)?;
    let connectors = answers.take(connectors)?;
    let endpoints = db::webhook_endpoints::listed(db, keys, tenant, answers.take(endpoints)?).await?;
    let first = answers.take(first)?;
    let payloads = payloads(tenant, &events, &files, links);
    let mut due = Vec::with_capacity(first.len());
    let mut doomed = Vec::new();
    for mut claimed in first {
        // The body kept with the event, else the one built now.
        claimed.payload = events
            .iter()
            .find(|event| event.id == claimed.event_id)
            .and_then(|event| event.payload.clone())
            .or_else(|| {
                payloads
                    .built
                    .iter()
                    .find(|(id, _)| *id == claimed.event_id)
                    .map(|(_, body)| body.clone())
            });
        if claimed.payload.is_some() {
            let endpoint = endpoints.iter().find(|e| e.id == claimed.endpoint_id).cloned();
            due.push((claimed, endpoint));
            continue;
        }
        let reason = payloads
            .unbuildable
            .iter()
            .find(|(id, _)| *id == claimed.event_id)
            .map_or("the event's body could not be built", |(_, reason)| {
                reason.as_str()
            })
            .to_owned();
        doomed.push((claimed, reason));
    }
    Ok(Dispatch {
        events,
        connectors,
        due,
        payloads,
        doomed,
        now,
    })
}

/// How often `id` is among `ids`.
fn count(ids: &[&EventId], id: &EventId) -> usize {
    ids.iter().filter(|other| **other == id).count()
}

impl Dispatch {
    /// The events that recording `recording` (events, one per first attempt) settles, `recorded`
    /// being recorded before: those whose every first attempt is then recorded. An event is
    /// settled with its last first attempt, not before: should the dispatch end between its
    /// attempts, it is still the sweep's to dispatch again.
    pub fn completed_by<'a>(&self, recorded: &[&EventId], recording: &[&'a EventId]) -> Vec<&'a EventId> {
        let mut completed: Vec<&EventId> = Vec::new();
        for &id in recording {
            if !completed.contains(&id)
                && count(recorded, id) + count(recording, id) == self.first_attempts_of(id)
            {
                completed.push(id);
            }
        }
        completed
    }

    /// How many first attempts the event `id` is due in this dispatch.
    fn first_attempts_of(&self, id: &EventId) -> usize {
        self.due
            .iter()
            .filter(|(claimed, _)| claimed.event_id == *id)
            .count()
    }

    /// The statement that fixes the bodies built for `event_ids` and marks them dispatched,
    /// unless every one of them is both already; for the batch that records a first attempt.
    pub fn settling(
        &self,
        db: &Db,
        tenant: &Tenant,
        event_ids: &[&EventId],
    ) -> Result<Option<Statement>, ApiError> {
        let unsettled: Vec<(&EventId, Option<&str>)> = self
            .events
            .iter()
            .filter(|event| event_ids.contains(&&event.id))
            .filter(|event| event.payload.is_none() || event.dispatched_us.is_none())
            .map(|event| (&event.id, self.built(&event.id)))
            .collect();
        if unsettled.is_empty() {
            return Ok(None);
        }
        db::webhook_events::dispatched(db, tenant, &unsettled, self.now).map(Some)
    }

    fn built(&self, event_id: &EventId) -> Option<&str> {
        self.payloads
            .built
            .iter()
            .find(|(id, _)| id == event_id)
            .map(|(_, body)| body.as_str())
    }

    /// Settles, in one batch, what the batches of first attempts did not: the events that had
    /// none to make (no subscribed endpoint, an unbuildable body, every one made already) or some
    /// `handed_on` to tasks of their own (given their rows here, pending, for those tasks to
    /// claim), and the deliveries of events whose body cannot be built (dead, saying why, so
    /// each endpoint's dead-letter list shows them). Events with a first attempt `unrecorded`
    /// (not made, or its batch failed) are left for the sweep to dispatch again. Nothing to
    /// settle, no round trip.
    pub async fn finish(
        &self,
        db: &Db,
        tenant: &Tenant,
        recorded: &[&EventId],
        unrecorded: &[&EventId],
        handed_on: &[&Claimed],
    ) -> Result<(), ApiError> {
        let rest: Vec<&EventId> = self
            .events
            .iter()
            .map(|event| &event.id)
            .filter(|id| !unrecorded.contains(id))
            .filter(|id| {
                let due = self.first_attempts_of(id);
                due == 0 || count(recorded, id) < due
            })
            .collect();
        let mut statements: Vec<Statement> = self.settling(db, tenant, &rest)?.into_iter().collect();
        for (claimed, reason) in &self.doomed {
            statements.push(db::webhook_deliveries::abandon(
                db, tenant, claimed, reason, self.now,
            )?);
        }
        if !handed_on.is_empty() {
            statements.push(db::webhook_deliveries::hand_on(db, tenant, handed_on, self.now)?);
        }
        if !statements.is_empty() {
            db.batch(statements).await?;
        }
        Ok(())
    }
}

/// Takes the lease on a delivery for attempt `attempt` (see `webhook_deliveries::claim`), with
/// the endpoint it goes to; None when it is not this worker's to attempt.
pub async fn claim(
    db: &Db,
    keys: &Keyring,
    tenant: &Tenant,
    delivery_id: &DeliveryId,
    attempt: u32,
    now: Timestamp,
) -> Result<Option<(Claimed, Option<Endpoint>)>, ApiError> {
    let lease = Lease {
        token: hex::encode(runtime::random::<16>()?),
        until: now.plus_seconds(webhooks::LEASE_SECONDS),
    };
    let Some(claimed) = db::webhook_deliveries::claim(db, tenant, delivery_id, attempt, now, &lease).await?
    else {
        return Ok(None);
    };
    let endpoint = db::webhook_endpoints::find(db, keys, tenant, &claimed.endpoint_id).await?;
    Ok(Some((claimed, endpoint)))
}

/// A claimed delivery with its event's body: as claimed when the body is fixed; otherwise (its
/// dispatch ended between claiming the delivery and storing the body) the body is built now and
/// kept, unless another worker kept one first, whose bytes are then sent. None when the body
/// cannot be built: the delivery is then dead, saying why.
pub async fn with_body(
    db: &Db,
    tenant: &Tenant,
    claimed: Claimed,
    links: Option<&MediaLinks>,
    now: Timestamp,
) -> Result<Option<Claimed>, ApiError> {
    if claimed.payload.is_some() {
        return Ok(Some(claimed));
    }
    let ids = std::slice::from_ref(&claimed.event_id);
    let mut batch = Batch::default();
    let events = batch.read(db::webhook_events::load_statement(db, tenant, ids)?);
    let files = batch.read(db::attachments::of_messages_among(
        db,
        tenant,
        db::webhook_events::message_subjects(ids),
    )?);
    let answers = batch.run(db).await?;
    let events = answers.take(events)?;
    let files = answers.take(files)?;
    if let Some(stored) = events.iter().find_map(|event| event.payload.clone()) {
        return Ok(Some(Claimed {
            payload: Some(stored),
            ..claimed
        }));
    }
    let payloads = payloads(tenant, &events, &files, links);
    if let Some((_, body)) = payloads.built.first() {
        let statement = db::webhook_events::keep_payload(db, tenant, &claimed.event_id, body)?;
        let kept = statement.run().await?;
        return Ok(Some(Claimed {
            payload: kept.or_else(|| Some(body.clone())),
            ..claimed
        }));
    }
    let reason = payloads
        .unbuildable
        .first()
        .map_or("the event is gone", |(_, reason)| reason.as_str());
    db.batch(vec![db::webhook_deliveries::abandon(
        db, tenant, &claimed, reason, now,
    )?])
    .await?;
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::super::attempt_unrecorded;
    use super::super::tests::{HOOKS, OTHER, URL, claim_attempt, customer_created, first_round_trip};
    use super::*;
    use crate::db::webhook_attempts::AttemptOutcome;
    use crate::runtime::native::Reply;
    use crate::testing::{Fixture, media_links};
    use domain::webhooks::EventType;
    use serde_json::{Value, json};
    use std::time::Duration;

    #[test]
    fn an_event_goes_to_the_enabled_endpoints_subscribed_to_it_and_only_once() {
        let fixture = Fixture::new();
        fixture.stack.partner(HOOKS, |_| Reply::text(200, "ok"));
        fixture.run(async {
            let (tenant, endpoint) = customer_created(&fixture).await;
            let disabled = fixture
                .webhook_endpoint(
                    &tenant,
                    "https://off.acme.example/in",
                    &[EventType::CustomerCreated],
                )
                .await;
            fixture.execute(
                "UPDATE webhook_endpoints SET enabled = 0 WHERE id = ?1",
                &[disabled.id.as_str()],
            );
            let ids = fixture.event_ids();
            assert_eq!(ids.len(), 1);
            let due = fixture.dispatch(&tenant, &ids).await;
            let to: Vec<&domain::ids::EndpointId> =
                due.iter().map(|(claimed, _)| &claimed.endpoint_id).collect();
            assert_eq!(to, vec![&endpoint.id]);
            assert_eq!(fixture.attempt(&tenant, &due[0]).await, AttemptOutcome::Delivered);
            assert!(
                fixture.dispatch(&tenant, &ids).await.is_empty(),
                "a repeated dispatch attempts nothing twice"
            );
            assert_eq!(fixture.stack.calls_to(HOOKS).len(), 1);
            let events = fixture.rows("webhook_events", "id");
            assert!(events[0]["dispatched_us"].is_i64(), "{events:?}");
        });
    }

    /// The claimed delivery with its body, which must be one that can be built.
    async fn built(
        fixture: &Fixture,
        tenant: &Tenant,
        claimed: Claimed,
        links: Option<&MediaLinks>,
    ) -> Claimed {
        with_body(&fixture.db, tenant, claimed, links, runtime::now())
            .await
            .unwrap_or_else(|error| panic!("{error:?}"))
            .unwrap_or_else(|| panic!("a body"))
    }

    #[test]
    fn a_dispatch_that_ends_before_its_second_round_trip_loses_nothing_and_sends_nothing_twice() {
        let fixture = Fixture::new();
        fixture.stack.partner(HOOKS, |_| Reply::text(200, "ok"));
        fixture.run(async {
            let (tenant, _) = customer_created(&fixture).await;
            let ids = fixture.event_ids();
            let links = media_links();
            let secret = Some(&links);
            // The first round trip writes nothing; the worker dies before the POST.
            let lost = first_round_trip(&fixture, &tenant, &ids, secret).await;
            assert_eq!(lost.due.len(), 1);
            let events = fixture.rows("webhook_events", "id");
            assert_eq!(
                (events[0]["payload"].clone(), events[0]["dispatched_us"].clone()),
                (Value::Null, Value::Null),
                "neither kept nor marked yet"
            );
            assert!(fixture.rows("webhook_deliveries", "id").is_empty());

            // The sweep dispatches the event again: the same first attempt is due, made and
            // recorded with the event it settles.
            let again = first_round_trip(&fixture, &tenant, &ids, secret).await;
            assert_eq!(again.due.len(), 1, "nothing was recorded: it is still due");
            assert_eq!(
                again.due[0].0.delivery_id, lost.due[0].0.delivery_id,
                "the same delivery"
            );
            let (claimed, endpoint) = &again.due[0];
            let (outcome, mut statements) = attempt_unrecorded(
                &fixture.env,
                &fixture.db,
                &tenant,
                claimed,
                endpoint.as_ref(),
                runtime::now(),
            )
            .await
            .unwrap_or_else(|error| panic!("{error:?}"));
            assert_eq!(outcome, AttemptOutcome::Delivered);
            let recording = [&claimed.event_id];
            let completed = again.completed_by(&[], &recording);
            assert_eq!(completed, recording, "its only first attempt settles the event");
            statements.extend(
                again
                    .settling(&fixture.db, &tenant, &completed)
                    .unwrap_or_else(|e| panic!("{e:?}")),
            );
            fixture
                .db
                .batch(statements)
                .await
                .unwrap_or_else(|error| panic!("{error:?}"));
            let events = fixture.rows("webhook_events", "id");
            let kept = events[0]["payload"].as_str().unwrap_or_default().to_owned();
            assert!(kept.contains("\"event\":\"customer.created\""), "{kept}");
            assert!(events[0]["dispatched_us"].is_i64());
            assert!(
                fixture.rows("webhook_deliveries", "id").is_empty(),
                "delivered at its first attempt: the attempt is its record"
            );

            // Dispatched once more (a repeated queue message): nothing is due.
            let third = first_round_trip(&fixture, &tenant, &ids, secret).await;
            assert!(
                third.due.is_empty(),
                "its attempt is logged: nothing to send twice"
            );
            let calls = fixture.stack.calls_to(HOOKS);
            assert_eq!(calls.len(), 1, "sent once");
            assert_eq!(calls[0].text(), kept, "the body kept is the body sent");
        });
    }

    #[test]
    fn a_delivery_claimed_before_its_body_was_kept_builds_it_or_is_dead_saying_why() {
        let fixture = Fixture::new();
        fixture.stack.partner(HOOKS, |_| Reply::text(200, "ok"));
        fixture.run(async {
            let (tenant, _) = customer_created(&fixture).await;
            // A delivery with a row, pending, whose event's body nobody kept yet (an event to
            // two endpoints whose other first attempt is not recorded, say).
            let pending = |ids: Vec<EventId>| {
                let (fixture, tenant) = (&fixture, &tenant);
                async move {
                    let lost = first_round_trip(fixture, tenant, &ids, None).await;
                    let handed: Vec<&Claimed> = lost.due.iter().map(|(claimed, _)| claimed).collect();
                    let statement =
                        db::webhook_deliveries::hand_on(&fixture.db, tenant, &handed, runtime::now())
                            .unwrap_or_else(|error| panic!("{error:?}"));
                    fixture
                        .db
                        .batch(vec![statement])
                        .await
                        .unwrap_or_else(|error| panic!("{error:?}"));
                    lost.due[0].0.delivery_id.clone()
                }
            };
            let delivery = pending(fixture.event_ids()).await;
            let (claimed, endpoint) = claim_attempt(&fixture, &tenant, &delivery, 1).await;
            let endpoint_id = claimed.endpoint_id.clone();
            assert_eq!(claimed.payload, None, "the dispatch kept no body");
            let built = built(&fixture, &tenant, claimed.clone(), None).await;
            let kept = fixture.rows("webhook_events", "id")[0]["payload"].clone();
            assert_eq!(built.payload.as_deref(), kept.as_str(), "kept as built");
            assert_eq!(
                fixture.attempt(&tenant, &(built, endpoint)).await,
                AttemptOutcome::Delivered
            );

            // An event whose snapshot became unreadable: its delivery is dead, saying why.
            let added = |name: &'static str| {
                let (fixture, tenant) = (&fixture, &tenant);
                async move {
                    let before = fixture.event_ids();
                    let email = format!("{}@example.com", name.to_lowercase());
                    fixture
                        .customers(tenant, json!([{ "name": name, "email": email }]))
                        .await;
                    let event = fixture.event_ids().into_iter().find(|id| !before.contains(id));
                    event.unwrap_or_else(|| panic!("{name}'s event"))
                }
            };
            let corrupt = |event: &EventId| {
                fixture.execute(
                    "UPDATE webhook_events SET snapshot = 'not json' WHERE id = ?1",
                    &[event.as_str()],
                );
            };
            let dead = |id: &DeliveryId| {
                let row = fixture
                    .rows("webhook_deliveries", "id")
                    .into_iter()
                    .find(|row| row["id"] == id.as_str())
                    .unwrap_or_else(|| panic!("delivery {id}"));
                assert_eq!(row["status"], "dead", "{row:?}");
                let error = row["last_error"].as_str().unwrap_or_default();
                assert!(error.contains("could not be built"), "{error}");
                row["attempts"].as_i64()
            };
            let grace = added("Grace").await;
            let id = pending(vec![grace.clone()]).await;
            corrupt(&grace);
            let (claimed, _) = claim_attempt(&fixture, &tenant, &id, 1).await;
            let none = with_body(&fixture.db, &tenant, claimed, None, runtime::now())
                .await
                .unwrap_or_else(|error| panic!("{error:?}"));
            assert!(none.is_none());
            dead(&id);

            // One unreadable when it is dispatched: nothing to send, and its delivery is dead.
            let ada = added("Ada").await;
            corrupt(&ada);
            let doomed = first_round_trip(&fixture, &tenant, std::slice::from_ref(&ada), None).await;
            assert!(doomed.due.is_empty(), "nothing to send");
            doomed
                .finish(&fixture.db, &tenant, &[], &[], &[])
                .await
                .unwrap_or_else(|error| panic!("{error:?}"));
            assert_eq!(dead(&DeliveryId::of(&endpoint_id, &ada)), Some(0));
            let events = fixture.rows("webhook_events", "id");
            let settled = events
                .iter()
                .find(|row| row["id"] == ada.as_str())
                .map(|row| row["dispatched_us"].is_i64());
            assert_eq!(settled, Some(true), "settled");
            assert_eq!(fixture.stack.calls_to(HOOKS).len(), 1, "nothing sent for either");
        });
    }

    #[test]
    fn an_event_to_two_endpoints_is_settled_with_its_last_first_attempt_and_never_while_one_is_unrecorded() {
        let fixture = Fixture::new();
        fixture.run(async {
            let tenant = fixture.business("Acme").await;
            for url in [URL, OTHER] {
                fixture
                    .webhook_endpoint(&tenant, url, &[EventType::CustomerCreated])
                    .await;
            }
            fixture
                .customers(
                    &tenant,
                    json!([{ "name": "Two Ways", "email": "two@example.com" }]),
                )
                .await;
            let ids = fixture.event_ids();
            let event = &ids[0];
            let dispatched = || fixture.rows("webhook_events", "id")[0]["dispatched_us"].is_i64();
            let first = first_round_trip(&fixture, &tenant, &ids, None).await;
            assert_eq!(first.due.len(), 2, "one first attempt per endpoint");
            assert!(
                first.completed_by(&[], &[event]).is_empty(),
                "one of two recorded: not yet"
            );
            assert_eq!(
                first.completed_by(&[event], &[event]),
                vec![event],
                "the second completes it"
            );

            // One of its first attempts was not recorded: the event is left for the sweep.
            first
                .finish(&fixture.db, &tenant, &[event], &[event], &[])
                .await
                .unwrap_or_else(|error| panic!("{error:?}"));
            assert!(!dispatched());
            assert!(fixture.rows("webhook_deliveries", "id").is_empty());

            // One recorded, the other handed on: settled, the handed-on one with a pending row.
            let again = first_round_trip(&fixture, &tenant, &ids, None).await;
            let handed = &again.due[1].0;
            again
                .finish(&fixture.db, &tenant, &[event], &[], &[handed])
                .await
                .unwrap_or_else(|error| panic!("{error:?}"));
            assert!(dispatched());
            let rows = fixture.rows("webhook_deliveries", "id");
            assert_eq!(rows.len(), 1);
            assert_eq!(
                (
                    rows[0]["id"].as_str(),
                    rows[0]["status"].as_str(),
                    rows[0]["attempts"].as_i64()
                ),
                (Some(handed.delivery_id.as_str()), Some("pending"), Some(0))
            );
            let third = first_round_trip(&fixture, &tenant, &ids, None).await;
            let left: Vec<&DeliveryId> = third
                .due
                .iter()
                .map(|(claimed, _)| &claimed.delivery_id)
                .collect();
            assert_eq!(
                left,
                vec![&again.due[0].0.delivery_id],
                "only what has neither row nor attempt"
            );
        });
    }

    #[test]
    fn a_delivery_is_attempted_once_however_often_its_task_comes() {
        let fixture = Fixture::new();
        fixture.stack.partner(HOOKS, |_| Reply::text(500, "down"));
        fixture.run(async {
            let (tenant, _) = customer_created(&fixture).await;
            let due = fixture.dispatch(&tenant, &fixture.event_ids()).await;
            let delivery = due[0].0.delivery_id.clone();
            fixture.attempt(&tenant, &due[0]).await;
            fixture.stack.advance(Duration::from_secs(2));
            let keys = fixture.keys();
            let first = claim(&fixture.db, &keys, &tenant, &delivery, 2, runtime::now()).await;
            let second = claim(&fixture.db, &keys, &tenant, &delivery, 2, runtime::now()).await;
            assert!(matches!(first, Ok(Some(_))));
            assert!(matches!(second, Ok(None)), "leased to the first");
            let stale = claim(&fixture.db, &keys, &tenant, &delivery, 1, runtime::now()).await;
            assert!(matches!(stale, Ok(None)), "an attempt already made");
        });
    }

    #[test]
    fn an_event_whose_body_cannot_be_built_is_dead_for_its_endpoints_and_holds_up_nothing() {
        let fixture = Fixture::new();
        fixture.run(async {
            let (tenant, endpoint) = customer_created(&fixture).await;
            fixture
                .customers(
                    &tenant,
                    json!([{ "name": "Grace", "email": "grace@example.com" }]),
                )
                .await;
            let ids = fixture.event_ids();
            assert_eq!(ids.len(), 2);
            fixture.execute(
                "UPDATE webhook_events SET snapshot = 'not json' WHERE id = ?1",
                &[ids[0].as_str()],
            );
            let due = fixture.dispatch(&tenant, &ids).await;
            assert_eq!(due.len(), 1, "the other event goes on");
            assert_eq!(due[0].0.event_id, ids[1]);
            let deliveries = fixture.rows("webhook_deliveries", "event_id");
            let dead: Vec<_> = deliveries.iter().filter(|row| row["status"] == "dead").collect();
            assert_eq!(dead.len(), 1, "{deliveries:?}");
            assert_eq!(dead[0]["event_id"], ids[0].as_str());
            assert_eq!(dead[0]["endpoint_id"], endpoint.id.as_str());
            let error = dead[0]["last_error"].as_str().unwrap_or_default();
            assert!(error.contains("could not be built"), "{error}");
        });
    }
}
