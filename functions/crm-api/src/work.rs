//! Escalations and notes asked for through the API: checked, recorded as CRM work for the
//! business's enabled connectors, and handed to the sync consumer. The answer is 202 with the
//! work's ids, which the sync log shows as it is done.

use domain::api::crm::{
    EscalatedOut, EscalationChangeIn, EscalationIn, EscalationOut, MAX_REASON_CHARS, NoteIn, WorkItem,
    WorkOut,
};
use domain::crm::kustomer::MAX_NOTE_CHARS;
use domain::crm::work::{Operation, Routing};
use domain::error::ApiError;
use domain::ids::{ConnectorId, ConversationId, CustomerId, EscalationId};
use domain::message::Conversation;
use domain::tenant::Tenant;
use edge::Env;
use edge::crm::escalation::{self, Escalation};
use edge::crm::sync;
use edge::db::Db;
use edge::db::crm_sync_jobs::{self, Job};
use edge::db::escalations::{self, Stored, Trigger};
use edge::db::{self, crm_connectors};
use edge::platform::call::{Accepted, Json, Path};
use edge::runtime;
use serde_json::json;

fn work_out(jobs: &[Job]) -> Vec<WorkItem> {
    jobs.iter()
        .map(|job| WorkItem {
            connector_id: job.connector_id.clone(),
            sync_job_id: job.id.clone(),
            status: job.status.as_str(),
        })
        .collect()
}

async fn conversation(db: &Db, tenant: &Tenant, id: Option<&str>) -> Result<Conversation, ApiError> {
    let id = id
        .map(str::trim)
        .filter(|id| !id.is_empty())
        .ok_or_else(|| ApiError::invalid("conversation_id", "conversation_id is required"))?;
    let parsed =
        ConversationId::parse(id).ok_or_else(|| ApiError::not_found(format!("no conversation {id}")))?;
    db::conversations::by_ids(db, tenant, &[&parsed])
        .await?
        .pop()
        .ok_or_else(|| ApiError::not_found(format!("no conversation {id}")))
}

fn text(field: &str, value: Option<String>, max_chars: usize) -> Result<String, ApiError> {
    let value = value.map(|value| value.trim().to_owned()).unwrap_or_default();
    if value.is_empty() || value.chars().count() > max_chars {
        return Err(ApiError::invalid(
            field,
            format!("{field} is 1 to {max_chars} characters"),
        ));
    }
    Ok(value)
}

/// The enabled connectors (or the one `only` names) that work for `customer`.
async fn connectors(
    db: &Db,
    tenant: &Tenant,
    only: Option<&str>,
    customer: &CustomerId,
) -> Result<Vec<ConnectorId>, ApiError> {
    let mut chosen = crm_connectors::enabled(db, tenant).await?;
    chosen.retain(|connector| only.is_none_or(|id| connector.id.as_str() == id.trim()));
    if chosen.is_empty() {
        return Err(ApiError::invalid(
            "connector_id",
            "this business has no enabled CRM connector to do this in; an administrator connects one first",
        ));
    }
    let serving = crm_connectors::serving(&chosen, customer);
    if serving.is_empty() {
        return Err(ApiError::invalid(
            "connector_id",
            "the conversation's customer is outside the connector's rollout (the share of customers it works \
             for, rollout_percent); widen it, or name another connector",
        ));
    }
    Ok(serving)
}

/// `POST /api-escalations {conversation_id, reason}`: the seed's escalation flow, on demand. It
/// is recorded and the customer told at once; each enabled connector's part is work (none when
/// the business has no connector: the escalation still counts).
pub async fn escalate(
    tenant: Tenant,
    env: Env,
    Json(input): Json<EscalationIn>,
) -> Result<Accepted<EscalatedOut>, ApiError> {
    let (env, tenant) = (&env, &tenant);
    let db = env.db()?;
    let reason = text("reason", input.reason, MAX_REASON_CHARS)?;
    let routing = Routing::parse(input.priority.as_ref(), input.team_id.as_deref())?;
    let conversation = conversation(&db, tenant, input.conversation_id.as_deref()).await?;
    let enabled = crm_connectors::enabled(&db, tenant).await?;
    let connectors = crm_connectors::serving(&enabled, &conversation.customer_id);
    let asked = Escalation {
        conversation_id: &conversation.id,
        customer_id: &conversation.customer_id,
        reason: &reason,
        trigger: Trigger::Api,
        message_id: None,
        routing: &routing,
        reply: None,
        at_most: None,
    };
    let handoff = escalation::handoff_message(env, &enabled);
    let recorded = escalation::request(env, &db, tenant, &connectors, &asked, &handoff)
        .await?
        .recorded()
        .ok_or_else(|| {
            ApiError::internal(
                "recording an escalation",
                "an API escalation was refused as a repeat",
            )
        })?;
    sync::hand_over_jobs(env, tenant, &recorded.work).await;
    let escalation = Stored {
        id: recorded.id,
        conversation_id: conversation.id,
        customer_id: conversation.customer_id,
        reason,
        trigger: Trigger::Api,
        routing,
    };
    Ok(Accepted(escalated(escalation, &recorded.work)))
}

/// `PATCH /api-escalations/{id} {priority?, team_id?}`: the escalation routed again, and each
/// enabled connector's ticket changed to match as CRM work.
pub async fn reroute(
    tenant: Tenant,
    env: Env,
    Path(id): Path<EscalationId>,
    Json(input): Json<EscalationChangeIn>,
) -> Result<Accepted<EscalatedOut>, ApiError> {
    let (env, tenant) = (&env, &tenant);
    let change = Routing::parse(input.priority.as_ref(), input.team_id.as_deref())?;
    if change.is_empty() {
        return Err(ApiError::invalid(
            "priority",
            "give priority, team_id or both: what the escalation's ticket changes to",
        ));
    }
    let db = env.db()?;
    let mut escalation = escalations::find(&db, tenant, &id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no escalation {id}")))?;
    let connectors: Vec<ConnectorId> = crm_connectors::enabled(&db, tenant)
        .await?
        .into_iter()
        .map(|connector| connector.id)
        .collect();
    let work = escalation::reroute(&db, tenant, &connectors, &mut escalation, &change).await?;
    sync::hand_over_jobs(env, tenant, &work).await;
    Ok(Accepted(escalated(escalation, &work)))
}

fn escalated(escalation: Stored, work: &[Job]) -> EscalatedOut {
    EscalatedOut {
        escalation: EscalationOut {
            id: escalation.id,
            conversation_id: escalation.conversation_id,
            reason: escalation.reason,
            trigger: escalation.trigger.as_str(),
            priority: escalation.routing.priority.map(|priority| priority.get()),
            team_id: escalation.routing.team,
        },
        work: work_out(work),
    }
}

/// `POST /api-crm-notes {conversation_id, body, connector_id?}`: an internal note on the
/// conversation in the CRM.
pub async fn note(
    tenant: Tenant,
    env: Env,
    Json(input): Json<NoteIn>,
) -> Result<Accepted<WorkOut>, ApiError> {
    let (env, tenant) = (&env, &tenant);
    let db = env.db()?;
    let body = text("body", input.body, MAX_NOTE_CHARS)?;
    let conversation = conversation(&db, tenant, input.conversation_id.as_deref()).await?;
    let connectors = connectors(
        &db,
        tenant,
        input.connector_id.as_deref(),
        &conversation.customer_id,
    )
    .await?;
    let jobs = crm_sync_jobs::insert_requested_for(
        &db,
        tenant,
        &connectors,
        &conversation.customer_id,
        Operation::Note,
        conversation.id.as_str(),
        &json!({ "body": body }),
        runtime::now().micros(),
    )
    .await?;
    sync::hand_over_jobs(env, tenant, &jobs).await;
    Ok(Accepted(WorkOut {
        work: work_out(&jobs),
    }))
}
