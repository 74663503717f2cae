//! Changing a link in place, and reading what its data holds: a key rotated, a slower schedule
//! after a CRM's 429s, or whose data it is said, without deleting the link and embedding its data
//! again; and the fields of a link's first page, for a form to choose `holds` from.

use crate::holds;
use crate::links::{due, shown, targeted_by_id};
use domain::api::links::{PreviewOut, UpdatedOut};
use domain::audit::Action;
use domain::error::ApiError;
use domain::links::change::LinkChange;
use domain::links::fetch::Failure;
use domain::links::identifiers::Identified;
use domain::links::link::{DEFAULT_FETCH_INTERVAL_MINUTES, LinkChannel, NewLink, PageId, redact_url};
use domain::tenant::Tenant;
use edge::db::knowledge_links;
use edge::db::knowledge_sources::{self, Asked};
use edge::platform::audit::Audit;
use edge::platform::call::{Json, Origin};
use edge::{Env, knowledge, platform::http, runtime};
use serde_json::{Value, json};

/// `PATCH /api/dashboard/crm-links`
pub async fn update(
    tenant: Tenant,
    env: Env,
    audit: Audit,
    Origin(origin): Origin,
    Json(input): Json<Value>,
) -> Result<Json<UpdatedOut>, ApiError> {
    let (env, tenant) = (&env, &tenant);
    let change = LinkChange::parse(&input, http::allows_loopback(env))?;
    let db = env.db()?;
    let keys = env.keyring()?;
    let (source, present) = targeted_by_id(env, &db, tenant, &change.page_id, &change.id).await?;
    let changed = change.apply(&source.link)?;
    if changed.fields.contains(&"url")
        && let Some(other) =
            knowledge_sources::find_by_url(&db, &keys, tenant, &change.page_id, changed.link.url.as_str())
                .await?
        && other.id != source.id
    {
        return Err(ApiError::conflict(format!(
            "page {} already has a link to {}: change that one, or delete it first",
            change.page_id.as_str(),
            redact_url(changed.link.url.as_str())
        )));
    }
    let now = runtime::now().to_rfc3339();
    if !changed.fields.is_empty() {
        knowledge_sources::update_settings(&db, &keys, tenant, &source, &changed.link, &now).await?;
    }
    let mut fields = changed.fields.clone();
    if let Some(wanted) = &change.channels
        && channels_changed(&present, wanted)
    {
        let leaving: Vec<LinkChannel> = present
            .iter()
            .copied()
            .filter(|on| !wanted.contains(on))
            .collect();
        let joining: Vec<LinkChannel> = wanted
            .iter()
            .copied()
            .filter(|on| !present.contains(on))
            .collect();
        knowledge_links::delete(&db, tenant, &source.id, &leaving).await?;
        knowledge_links::insert(
            &db,
            tenant,
            &source.id,
            &change.page_id,
            &joining,
            source.link.is_active,
            &now,
        )
        .await?;
        fields.push("channels");
    }
    let fetching = changed.needs_fetch()
        && changed.link.link_type.is_indexed()
        && changed.link.is_active
        && knowledge_sources::ask(&db, tenant, &source.id, &now).await? == Asked::New;
    if fetching {
        knowledge::hand_over(env, &[due(tenant, &source.id)]).await;
    }
    if !fields.is_empty() {
        let detail = json!({
            "page_id": change.page_id.as_str(),
            "url": redact_url(changed.link.url.as_str()),
            "changed": fields,
        });
        audit
            .record(
                env,
                &tenant.business_id,
                Action::CrmLinkUpdated,
                Some(source.id.as_str()),
                detail,
            )
            .await;
    }
    let shown = shown(env, &db, tenant, Some(&change.page_id), &origin).await?;
    Ok(Json(UpdatedOut {
        message: if fields.is_empty() {
            "CRM link unchanged"
        } else {
            "CRM link updated successfully"
        },
        crm_links: shown.views(|entry| entry.source_id == source.id),
        changed: fields,
        fetching,
    }))
}

fn channels_changed(present: &[LinkChannel], wanted: &[LinkChannel]) -> bool {
    present.len() != wanted.len() || present.iter().any(|on| !wanted.contains(on))
}

/// `POST /api/dashboard/crm-links/preview`: the first page of a link's data, as fields.
pub async fn preview(
    tenant: Tenant,
    env: Env,
    Json(input): Json<Value>,
) -> Result<Json<PreviewOut>, ApiError> {
    let (env, tenant) = (&env, &tenant);
    let allow_loopback = http::allows_loopback(env);
    let fields = input
        .as_object()
        .ok_or_else(|| ApiError::invalid("body", "the body must be a JSON object"))?;
    let identified = if let Some(id) = fields.get("id").filter(|id| !id.is_null()) {
        let page = PageId::parse(fields.get("page_id").unwrap_or(&Value::Null))?;
        if let Some(extra) = fields
            .keys()
            .find(|name| !matches!(name.as_str(), "page_id" | "id"))
        {
            return Err(ApiError::invalid(
                extra.as_str(),
                format!("{extra} is not read with an id: the link's own settings are"),
            ));
        }
        let id = id
            .as_str()
            .and_then(domain::ids::SourceId::parse)
            .ok_or_else(|| ApiError::invalid("id", "id must be a link's id, as its view shows it"))?;
        let db = env.db()?;
        let (source, _) = targeted_by_id(env, &db, tenant, &page, &id).await?;
        knowledge::fetch::identified(env, &source.link, source.pushed_key.as_deref(), allow_loopback).await
    } else {
        // A link not added yet: read as an addition reads it, with what an addition needs.
        let mut body = input.clone();
        if let Some(body) = body.as_object_mut() {
            body.entry("name").or_insert_with(|| json!("preview"));
            body.entry("is_active").or_insert(json!(true));
            body.entry("channels").or_insert_with(|| json!(["messenger"]));
        }
        let new = NewLink::parse(&body, allow_loopback)?;
        let db = env.db()?;
        crate::own_page(&db, tenant, &new.page_id).await?;
        if !new.link.link_type.is_fetchable() {
            return Err(ApiError::invalid(
                "type",
                "only an api or file link is read before it is added; a webhook link's data is what its CRM pushes",
            ));
        }
        knowledge::fetch::identified(env, &new.link, None, allow_loopback).await
    };
    let identified = unreadable(identified)?.unwrap_or_default();
    Ok(Json(PreviewOut {
        records: identified.records,
        proposed: holds::proposed(&identified).view(),
        fields: identified.fields,
    }))
}

/// A read that failed, as the API answers it: 502, the CRM's answer said.
fn unreadable(read: Result<Option<Identified>, Failure>) -> Result<Option<Identified>, ApiError> {
    read.map_err(|failure| {
        let said = failure
            .verdict(runtime::now(), DEFAULT_FETCH_INTERVAL_MINUTES, 1)
            .error;
        ApiError::crm_failed(format!("the link's data could not be read: {said}"))
    })
}
