//! What happened to deliveries: each endpoint's deliveries (the dead ones are the dead-letter
//! list), the attempt log per endpoint, event or delivery, and replaying dead deliveries.

use crate::endpoints::{self, Webhook};
use domain::api::webhooks::{AttemptOut, AttemptsOut, DeliveriesOut, DeliveryOut, ReplayIn, ReplayOut};
use domain::error::ApiError;
use domain::ids::{DeliveryId, EndpointId, EventId};
use domain::query::Query;
use domain::tenant::Tenant;
use domain::time::Timestamp;
use edge::Env;
use edge::db::webhook_attempts::{self, AttemptFilter};
use edge::db::webhook_deliveries::{self, ReplaySelection};
use edge::events::outbox::{self, WebhookTask};
use edge::platform::call::{Accepted, Json, Path};
use edge::runtime;

/// A parameter given with a value (an empty one counts as not given).
fn param<'a>(query: &'a Query, name: &str) -> Option<&'a str> {
    query.get(name).filter(|value| !value.is_empty())
}

/// An id parameter, checked: one that cannot be an id is refused, naming the parameter.
fn id_param<T>(query: &Query, name: &str, parse: impl Fn(&str) -> Option<T>) -> Result<Option<T>, ApiError> {
    param(query, name)
        .map(|value| {
            parse(value).ok_or_else(|| ApiError::invalid(name, format!("{name} is not an id of this API")))
        })
        .transpose()
}

fn at(micros: i64) -> String {
    Timestamp::from_micros(micros).to_rfc3339()
}

pub async fn deliveries(
    tenant: Tenant,
    env: Env,
    Path(id): Path<EndpointId>,
    query: Query,
) -> Result<Json<DeliveriesOut>, ApiError> {
    let (env, tenant) = (&env, &tenant);
    let status = param(&query, "status");
    if let Some(status) = status
        && !["pending", "delivered", "dead"].contains(&status)
    {
        return Err(ApiError::invalid(
            "status",
            "status is pending, delivered or dead",
        ));
    }
    let limit = query.limit()?;
    let endpoint = endpoints::find(env, tenant, &id).await?;
    let rows = webhook_deliveries::list(&env.db()?, tenant, &endpoint.id, status, limit).await?;
    Ok(Json(DeliveriesOut {
        deliveries: rows
            .into_iter()
            .map(|row| DeliveryOut {
                next_attempt_at: row.next_attempt_us.filter(|_| row.status == "pending").map(at),
                event_at: at(row.event_us),
                id: row.id,
                event_id: row.event_id,
                event_type: row.event_type,
                status: row.status,
                attempts: row.attempts,
                replays: row.replays,
                last_status: row.last_status,
                last_error: row.last_error,
            })
            .collect(),
    }))
}

/// Replays one delivery (whatever its state, unless it is still pending), or every dead
/// delivery whose event happened in `[from, to)`. Each starts a new round of attempts now.
pub async fn replay(
    tenant: Tenant,
    env: Env,
    Webhook(endpoint): Webhook,
    Json(input): Json<ReplayIn>,
) -> Result<Accepted<ReplayOut>, ApiError> {
    let (env, tenant) = (&env, &tenant);
    let time = |field: &str, value: &Option<String>| -> Result<Timestamp, ApiError> {
        value
            .as_deref()
            .and_then(Timestamp::parse_rfc3339)
            .ok_or_else(|| ApiError::invalid(field, format!("{field} must be an RFC 3339 time")))
    };
    let one = input
        .delivery_id
        .as_deref()
        .map(|value| {
            DeliveryId::parse(value).ok_or_else(|| {
                ApiError::not_found(format!(
                    "no delivery {value} of this webhook that can be replayed (unknown, or still pending)"
                ))
            })
        })
        .transpose()?;
    let selection = match (&one, &input.from, &input.to) {
        (Some(delivery_id), None, None) => ReplaySelection::One(delivery_id),
        (None, Some(_), Some(_)) => {
            let (from, to) = (time("from", &input.from)?, time("to", &input.to)?);
            if from >= to {
                return Err(ApiError::invalid("to", "to must be later than from"));
            }
            ReplaySelection::DeadBetween(from, to)
        }
        _ => {
            return Err(ApiError::invalid(
                "delivery_id",
                "give either delivery_id, or from and to (RFC 3339) to replay the dead deliveries between them",
            ));
        }
    };
    if !endpoint.enabled {
        return Err(ApiError::conflict(
            "the endpoint is disabled; enable it (PATCH enabled: true) before replaying",
        ));
    }
    let replayed =
        webhook_deliveries::replay(&env.db()?, tenant, &endpoint.id, selection, runtime::now()).await?;
    if let Some(delivery_id) = input.delivery_id.as_deref()
        && replayed.is_empty()
    {
        return Err(ApiError::not_found(format!(
            "no delivery {delivery_id} of this webhook that can be replayed (unknown, still pending, or an event whose body could not be built)"
        )));
    }
    let tasks = replayed
        .iter()
        .map(|delivery_id| WebhookTask::Deliver {
            business_id: tenant.business_id.clone(),
            delivery_id: delivery_id.clone(),
            attempt: 1,
        })
        .collect();
    if let Err(error) = outbox::enqueue(env, tasks, 0).await {
        // The deliveries are pending and due: the sweep sends them if the queue does not.
        edge::console_error!("replayed deliveries left for the sweep: {error}");
    }
    Ok(Accepted(ReplayOut {
        replayed: replayed.len(),
        delivery_ids: replayed,
    }))
}

/// The attempt log, newest first, by endpoint (`webhook_id`), event or delivery.
pub async fn attempts(tenant: Tenant, env: Env, query: Query) -> Result<Json<AttemptsOut>, ApiError> {
    let (endpoint_id, event_id, delivery_id) = (
        id_param(&query, "webhook_id", EndpointId::parse)?,
        id_param(&query, "event_id", EventId::parse)?,
        id_param(&query, "delivery_id", DeliveryId::parse)?,
    );
    let filter = AttemptFilter {
        endpoint_id: endpoint_id.as_ref(),
        event_id: event_id.as_ref(),
        delivery_id: delivery_id.as_ref(),
    };
    if filter.endpoint_id.is_none() && filter.event_id.is_none() && filter.delivery_id.is_none() {
        return Err(ApiError::invalid(
            "webhook_id",
            "give webhook_id, event_id or delivery_id to choose which attempts to list",
        ));
    }
    let limit = query.limit()?;
    let rows = webhook_attempts::list(&env.db()?, &tenant, &filter, limit).await?;
    Ok(Json(AttemptsOut {
        attempts: rows
            .into_iter()
            .map(|row| AttemptOut {
                attempted_at: at(row.attempted_us),
                id: row.id,
                webhook_id: row.endpoint_id,
                delivery_id: row.delivery_id,
                event_id: row.event_id,
                event_type: row.event_type,
                attempt: row.attempt,
                replay: row.replay,
                url: row.url,
                status_code: row.status_code,
                response_body: row.response_body,
                duration_ms: row.duration_ms,
                error: row.error,
                outcome: row.outcome,
            })
            .collect(),
    }))
}
