//! "Send test event" (the seed's "Test Webhook" button): one signed `webhook.test` delivery made
//! while the caller waits, answered with what the receiver said, and logged like any attempt.

use crate::endpoints;
use domain::api::webhooks::TestOut;
use domain::error::ApiError;
use domain::ids::{EndpointId, EventId};
use domain::tenant::Tenant;
use domain::webhooks::{self as policy, EventType};
use edge::Env;
use edge::db::webhook_attempts::{AttemptOutcome, AttemptRecord};
use edge::db::webhook_endpoints::{self, Health};
use edge::platform::call::{Json, Path};
use edge::{events::webhook_delivery, runtime};
use serde_json::json;

/// Sent to disabled endpoints too: testing is how a business checks a receiver it has fixed.
/// A test does not count towards the endpoint's health.
pub async fn send(tenant: Tenant, env: Env, Path(id): Path<EndpointId>) -> Result<Json<TestOut>, ApiError> {
    let (env, tenant, id) = (&env, &tenant, &id);
    let endpoint = endpoints::find(env, tenant, id).await?;
    let now = runtime::now();
    let db = env.db()?;
    if let Some(wait) = webhook_endpoints::take_test_slot(
        &db,
        tenant,
        id,
        now,
        policy::TESTS_PER_WINDOW,
        policy::TEST_WINDOW_SECONDS,
    )
    .await?
    {
        return Err(ApiError::rate_limited(
            format!(
                "at most {} test sends per endpoint every {} s; try again in {wait} s",
                policy::TESTS_PER_WINDOW,
                policy::TEST_WINDOW_SECONDS
            ),
            wait,
        ));
    }
    let event_id = EventId::generate(runtime::random()?);
    let kind = EventType::Test;
    let data = json!({
        "webhook_id": endpoint.id,
        "message": "This is a test event. If you can read it, your endpoint receives and verifies our webhooks."
    });
    let body = webhook_delivery::body(tenant, &event_id, kind, now, data)?;
    // A test checks the receiver against the newest secret: the one its owner just deployed.
    let attempted = webhook_delivery::send(
        env,
        &endpoint,
        &endpoint.secret,
        &event_id,
        kind.as_str(),
        &body,
        now,
    )
    .await;
    let delivered = attempted
        .status_code
        .is_some_and(|code| (200..300).contains(&code));
    let record = AttemptRecord {
        endpoint_id: &endpoint.id,
        delivery_id: None,
        event_id: &event_id,
        event_type: kind.as_str(),
        attempt: 1,
        replay: 0,
        url: &endpoint.url,
        status_code: attempted.status_code,
        response_body: attempted.response_body.as_deref(),
        duration_ms: attempted.millis,
        error: attempted.error.as_deref(),
        outcome: if delivered {
            AttemptOutcome::Delivered
        } else {
            AttemptOutcome::Dead
        },
        at: now,
    };
    let confirms = webhook_delivery::confirms_new_secret(&endpoint, &endpoint.secret, record.outcome);
    webhook_delivery::record_attempt(&db, tenant, &record, None, &Health::Unchanged, confirms).await?;
    Ok(Json(TestOut {
        delivered,
        event_id,
        status_code: attempted.status_code,
        duration_ms: attempted.millis,
        response_body: attempted.response_body,
        error: attempted.error,
    }))
}
