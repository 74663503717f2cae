//! Escalations and notes asked for through the API: checked, recorded as CRM work for the
//! business's enabled connectors, and handed to the sync consumer. The answer is 202 with the
//! work's ids, which the sync log shows as it is done.

use domain::crm::kustomer::MAX_NOTE_CHARS;
use domain::crm::work::Operation;
use domain::error::ApiError;
use domain::ids::{ConnectorId, ConversationId, SyncJobId};
use domain::message::Conversation;
use domain::tenant::Tenant;
use edge::Env;
use edge::crm::escalation::{self, Escalation};
use edge::crm::sync;
use edge::db::Db;
use edge::db::crm_sync_jobs::{self, Contact, Job, Requested};
use edge::db::escalations::Trigger;
use edge::db::{self, crm_connectors};
use edge::{DB, http, runtime};
use serde::{Deserialize, Serialize};
use serde_json::json;
use worker::{Request, Response};

const MAX_REASON_CHARS: usize = 500;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct EscalationIn {
    conversation_id: Option<String>,
    reason: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NoteIn {
    conversation_id: Option<String>,
    body: Option<String>,
    /// One connector; absent: every enabled connector of the business.
    connector_id: Option<String>,
}

/// One piece of work as the answer shows it.
#[derive(Serialize)]
struct WorkOut {
    connector_id: ConnectorId,
    sync_job_id: SyncJobId,
    status: &'static str,
}

fn work_out(jobs: &[Job]) -> Vec<WorkOut> {
    jobs.iter()
        .map(|job| WorkOut {
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

async fn connectors(db: &Db, tenant: &Tenant, only: Option<&str>) -> Result<Vec<ConnectorId>, ApiError> {
    let enabled = crm_connectors::enabled(db, tenant).await?;
    let chosen: Vec<ConnectorId> = enabled
        .into_iter()
        .map(|connector| connector.id)
        .filter(|connector| only.is_none_or(|id| connector.as_str() == id.trim()))
        .collect();
    if chosen.is_empty() {
        return Err(ApiError::invalid(
            "connector_id",
            "this business has no enabled CRM connector to do this in; an administrator connects one first",
        ));
    }
    Ok(chosen)
}

fn contacts(tenant: &Tenant, jobs: &[Job]) -> Vec<Contact> {
    jobs.iter()
        .map(|job| Contact {
            business_id: tenant.business_id.clone(),
            connector_id: job.connector_id.clone(),
            key: job.contact.clone(),
        })
        .collect()
}

/// `POST /api-escalations {conversation_id, reason}`: the seed's escalation flow, on demand. It
/// is recorded and the customer told at once; each enabled connector's part is work (none when
/// the business has no connector: the escalation still counts).
pub async fn escalate(mut req: Request, env: &Env, tenant: &Tenant) -> Result<Response, ApiError> {
    let input: EscalationIn = http::read_json(&mut req, http::SMALL_BODY_LIMIT).await?;
    let db = env.d1(DB)?;
    let reason = text("reason", input.reason, MAX_REASON_CHARS)?;
    let conversation = conversation(&db, tenant, input.conversation_id.as_deref()).await?;
    let enabled = crm_connectors::enabled(&db, tenant).await?;
    let connectors: Vec<ConnectorId> = enabled.iter().map(|connector| connector.id.clone()).collect();
    let asked = Escalation {
        conversation_id: &conversation.id,
        customer_id: &conversation.customer_id,
        reason: &reason,
        trigger: Trigger::Api,
        message_id: None,
    };
    let handoff = escalation::handoff_message(env, &enabled);
    let recorded = escalation::request(env, &db, tenant, &connectors, &asked, &handoff)
        .await?
        .ok_or_else(|| {
            ApiError::internal(
                "recording an escalation",
                "an API escalation was refused as a repeat",
            )
        })?;
    sync::hand_over(env, &contacts(tenant, &recorded.work), 0).await;
    http::json(
        202,
        &json!({
            "escalation": { "id": recorded.id, "conversation_id": conversation.id, "reason": reason, "trigger": "api" },
            "work": work_out(&recorded.work),
        }),
    )
}

/// `POST /api-crm-notes {conversation_id, body, connector_id?}`: an internal note on the
/// conversation in the CRM.
pub async fn note(mut req: Request, env: &Env, tenant: &Tenant) -> Result<Response, ApiError> {
    let input: NoteIn = http::read_json(&mut req, http::SMALL_BODY_LIMIT).await?;
    let db = env.d1(DB)?;
    let body = text("body", input.body, MAX_NOTE_CHARS)?;
    let conversation = conversation(&db, tenant, input.conversation_id.as_deref()).await?;
    let connectors = connectors(&db, tenant, input.connector_id.as_deref()).await?;
    let now = runtime::now().micros();
    let note = json!({ "body": body });
    let mut jobs = Vec::new();
    for connector_id in &connectors {
        let work = Requested {
            connector_id,
            customer_id: &conversation.customer_id,
            operation: Operation::Note,
            subject_id: conversation.id.as_str(),
            input: &note,
        };
        jobs.push(
            crm_sync_jobs::insert_requested(
                &db,
                tenant,
                &SyncJobId::generate(runtime::random()?),
                &work,
                now,
            )
            .await?,
        );
    }
    sync::hand_over(env, &contacts(tenant, &jobs), 0).await;
    http::json(202, &json!({ "work": work_out(&jobs) }))
}
