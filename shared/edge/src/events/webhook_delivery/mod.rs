//! Delivering webhook events: the body each event carries, one signed attempt at an endpoint,
//! and what the attempt means for the delivery and the endpoint.
//!
//! A body is built once per event, when it is first dispatched, from the snapshot its change
//! recorded, then kept: retries and replays send the same bytes.
//! It is written as `JSON.stringify` writes it, so that a receiver that re-serialises the
//! parsed body (the seed's Express example) signs exactly what we signed.
//!
//! `body` builds an event's body (and its files' signed download links); `attempt` makes one
//! signed attempt and records what it means for the delivery and the endpoint's health;
//! `dispatch` brings deliveries to their attempts: an event's first attempts in one dispatch, and
//! a retry's or replay's delivery claimed by its own task.

mod attempt;
mod body;
mod dispatch;

pub use attempt::{
    Attempted, USER_AGENT, attempt, attempt_unrecorded, confirms_new_secret, record_attempt,
    record_statements, send,
};
pub use body::{LINK_LIFETIME_SECONDS, Payloads, body, payloads, signed_link};
pub use dispatch::{Dispatch, claim, dispatch, with_body};

#[cfg(test)]
mod tests {
    //! What the tests of the parts share: a business with endpoints and one event, a delivery's
    //! attempt claimed, a dispatch's first round trip.

    use super::*;
    use crate::db::webhook_endpoints::Endpoint;
    use crate::runtime;
    use crate::testing::{Due, Fixture};
    use domain::ids::{DeliveryId, EventId};
    use domain::media::MediaLinks;
    use domain::tenant::Tenant;
    use domain::webhooks::EventType;
    use serde_json::json;

    pub(super) const HOOKS: &str = "hooks.acme.example";
    pub(super) const URL: &str = "https://hooks.acme.example/in";
    pub(super) const OTHER: &str = "https://other.acme.example/in";

    /// Attempt `number` of `delivery` leased now; the test fails when it is not ours to make.
    pub(super) async fn claim_attempt(
        fixture: &Fixture,
        tenant: &Tenant,
        delivery: &DeliveryId,
        number: u32,
    ) -> Due {
        claim(
            &fixture.db,
            &fixture.keys(),
            tenant,
            delivery,
            number,
            runtime::now(),
        )
        .await
        .unwrap_or_else(|error| panic!("{error:?}"))
        .unwrap_or_else(|| panic!("attempt {number} is ours"))
    }

    /// A business whose first endpoint takes `customer.created` and whose second only
    /// `message.received`, and one customer created: one event.
    pub(super) async fn customer_created(fixture: &Fixture) -> (Tenant, Endpoint) {
        let tenant = fixture.business("Acme").await;
        let endpoint = fixture
            .webhook_endpoint(&tenant, URL, &[EventType::CustomerCreated])
            .await;
        fixture
            .webhook_endpoint(&tenant, OTHER, &[EventType::MessageReceived])
            .await;
        fixture
            .customers(
                &tenant,
                json!([{ "name": "Zoë </script>", "email": "zoe@example.com" }]),
            )
            .await;
        (tenant, endpoint)
    }

    /// A dispatch's first round trip alone (the events and the first attempts they are due read,
    /// the bodies built), as a worker that dies before anything after it leaves it.
    pub(super) async fn first_round_trip(
        fixture: &Fixture,
        tenant: &Tenant,
        ids: &[EventId],
        links: Option<&MediaLinks>,
    ) -> Dispatch {
        dispatch(&fixture.db, &fixture.keys(), tenant, ids, links, runtime::now())
            .await
            .unwrap_or_else(|error| panic!("{error:?}"))
    }
}
