//! `GET /api-crm-analytics?from=&to=`: the seed's success metrics for a time range (default: the
//! last 30 days) from our own records and what the CRMs told us: escalation rate, first-response
//! and resolution times (p50/p90), satisfaction, per-agent performance and the sync success rate.
//! Conversations count by when they started; at most [`MAX_CONVERSATIONS`] of them are read, and
//! the answer says when there were more.

use domain::api::crm::{AgentOut, AnalyticsOut, ConnectorSyncOut, Satisfaction, Share};
use domain::crm::analytics::{durations, rate};
use domain::error::ApiError;
use domain::query::Query;
use domain::tenant::Tenant;
use domain::time::Timestamp;
use edge::Env;
use edge::db::conversations::Timing;
use edge::db::{self, crm_connectors, crm_satisfaction, crm_sync_jobs, escalations};
use edge::platform::call::Json;
use edge::runtime;
use std::collections::BTreeMap;

const DEFAULT_DAYS: i64 = 30;
const MAX_DAYS: i64 = 366;
pub const MAX_CONVERSATIONS: usize = 10_000;

fn range(query: &Query) -> Result<(Timestamp, Timestamp), ApiError> {
    let now = runtime::now();
    let time = |field: &str| -> Result<Option<Timestamp>, ApiError> {
        query
            .get(field)
            .map(|text| {
                Timestamp::parse_rfc3339(text)
                    .ok_or_else(|| ApiError::invalid(field, format!("{field} is an RFC 3339 time")))
            })
            .transpose()
    };
    let to = time("to")?.unwrap_or(now);
    let from = time("from")?.unwrap_or(to.plus_seconds(-DEFAULT_DAYS * 86_400));
    if from >= to {
        return Err(ApiError::invalid("to", "to is after from"));
    }
    if to.seconds() - from.seconds() > MAX_DAYS * 86_400 {
        return Err(ApiError::invalid(
            "from",
            format!("the range is at most {MAX_DAYS} days"),
        ));
    }
    Ok((from, to))
}

fn first_response(timing: &Timing) -> Option<i64> {
    Some(timing.first_response_us? - timing.first_inbound_us?)
}

fn resolution(timing: &Timing) -> Option<i64> {
    let resolved = Timestamp::parse_rfc3339(timing.resolved_at.as_deref()?)?;
    let created = Timestamp::parse_rfc3339(&timing.created_at)?;
    Some(resolved.micros() - created.micros())
}

pub async fn report(tenant: Tenant, env: Env, query: Query) -> Result<Json<AnalyticsOut>, ApiError> {
    let (env, tenant) = (&env, &tenant);
    let (from, to) = range(&query)?;
    let db = env.db()?;
    let timings = db::conversations::timings(&db, tenant, from, to, MAX_CONVERSATIONS + 1).await?;
    let truncated = timings.len() > MAX_CONVERSATIONS;
    let timings = &timings[..timings.len().min(MAX_CONVERSATIONS)];
    let mut by_agent: BTreeMap<&str, Vec<&Timing>> = BTreeMap::new();
    for timing in timings {
        if let Some(assignee) = timing.assignee.as_deref() {
            by_agent.entry(assignee).or_default().push(timing);
        }
    }
    let agents: Vec<AgentOut> = by_agent
        .into_iter()
        .map(|(assignee, handled)| AgentOut {
            assignee: assignee.to_owned(),
            conversations: handled.len(),
            resolved: handled
                .iter()
                .filter(|timing| timing.resolved_at.is_some())
                .count(),
            first_response: durations(
                handled
                    .iter()
                    .filter_map(|timing| first_response(timing))
                    .collect(),
            ),
            resolution: durations(handled.iter().filter_map(|timing| resolution(timing)).collect()),
        })
        .collect();
    // Conversations the customer wrote to again after they were resolved or closed (a
    // resolution that did not hold); their resolution time runs to their last resolution.
    let reopened = timings.iter().filter(|timing| timing.reopen_count > 0).count() as i64;
    let escalated = escalations::rate(&db, tenant, from.micros(), to.micros()).await?;
    let csat = crm_satisfaction::average(&db, tenant, from.micros(), to.micros()).await?;
    let mut sync = Vec::new();
    for connector in crm_connectors::list(&db, &*env.keyring()?, tenant, false).await? {
        let summary = crm_sync_jobs::summary(&db, tenant, &connector.id, from.micros(), to.micros()).await?;
        sync.push(ConnectorSyncOut {
            connector_id: connector.id,
            kind: connector.kind.as_str(),
            success_rate: rate(
                summary.succeeded,
                summary.succeeded + summary.failed + summary.dead,
            ),
            succeeded: summary.succeeded,
            failed: summary.failed,
            dead: summary.dead,
            skipped: summary.skipped,
            pending: summary.pending,
        });
    }
    Ok(Json(AnalyticsOut {
        from,
        to,
        conversations: escalated.conversations,
        truncated,
        escalations: Share {
            count: escalated.escalations,
            rate: rate(escalated.escalations, escalated.conversations),
        },
        first_response: durations(timings.iter().filter_map(first_response).collect()),
        resolution: durations(timings.iter().filter_map(resolution).collect()),
        reopened: Share {
            count: reopened,
            rate: rate(reopened, timings.len() as i64),
        },
        satisfaction: Satisfaction {
            average: csat.average,
            count: csat.count,
        },
        agents,
        sync,
    }))
}
