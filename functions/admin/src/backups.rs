//! `POST /admin/businesses/{id}/backup`: a page of a business's export,
//! `POST /admin/businesses/{id}/restore`: a page of its restore where it does not exist, and
//! `POST /admin/businesses/{id}/resume`: the parts a restore paused back on (`edge::ops::backup`;
//! docs/operations.md, "Backups and recovery").

use domain::api::admin::{BackupIn, BackupOut, RestoreIn, RestoreOut, ResumeIn, ResumeOut};
use domain::audit::Action;
use domain::backup::{Cursor, Part};
use domain::error::ApiError;
use domain::ids::BusinessId;
use domain::tenant::Tenant;
use edge::Env;
use edge::db::knowledge_sources::{self, Asked, Due};
use edge::platform::audit::Audit;
use edge::platform::call::{Json, Managed, Path};
use edge::{knowledge, runtime};
use serde_json::json;

pub async fn export(
    env: Env,
    Managed(tenant): Managed,
    Json(body): Json<BackupIn>,
) -> Result<Json<BackupOut>, ApiError> {
    let cursor = body
        .cursor
        .as_deref()
        .map(Cursor::parse)
        .transpose()
        .map_err(|why| ApiError::invalid("cursor", why))?;
    let db = env.db()?;
    edge::ops::backup::export_page(&env, &db, &tenant.business_id, cursor, runtime::now())
        .await
        .map(Json)
}

/// Takes the business from the path, not `Managed`: the business it names does not exist yet.
pub async fn restore(
    env: Env,
    audit: Audit,
    Path(business): Path<BusinessId>,
    Json(page): Json<RestoreIn>,
) -> Result<Json<RestoreOut>, ApiError> {
    let db = env.db()?;
    let restored =
        edge::ops::backup::restore_page(&env, &db, &business, &page, runtime::now().millis()).await?;
    if restored.phase == "restored" {
        // What waits to be resumed, across the restore's pages (each page's answer counts its own).
        let waiting =
            edge::db::businesses::quarantine(&db, &Tenant::for_background(business.clone())).await?;
        let detail = json!({ "taken_at": page.header.taken_at, "quarantine": waiting });
        audit
            .record(&env, &business, Action::BusinessRestored, None, detail)
            .await;
    }
    Ok(Json(restored))
}

/// Takes the business from the path, not `Managed`: a restore that broke off left no business
/// that answers.
pub async fn discard(env: Env, Path(business): Path<BusinessId>) -> Result<Json<RestoreOut>, ApiError> {
    let db = env.db()?;
    let discarded = edge::ops::backup::discard(&db, &business).await?;
    if discarded.phase == "discarded" {
        // No audit entry: the business's audit log is among what went.
        edge::console_log!("the restore of business {business} was discarded");
    }
    Ok(Json(discarded))
}

pub async fn resume(
    env: Env,
    audit: Audit,
    Managed(tenant): Managed,
    Json(body): Json<ResumeIn>,
) -> Result<Json<ResumeOut>, ApiError> {
    let parts = body
        .parts
        .unwrap_or_default()
        .iter()
        .enumerate()
        .map(|(at, name)| {
            Part::parse(name).ok_or_else(|| {
                ApiError::invalid(
                    format!("parts[{at}]"),
                    "a part is channel_accounts, connectors, webhooks or links",
                )
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    let db = env.db()?;
    let (resumed, waiting, sources) = edge::ops::backup::resume(&db, &tenant, &parts).await?;
    // Links resumed are fetched now, which writes their pieces' vectors again (a restore marks
    // them): the schedule the backup held may be hours away.
    let now = runtime::now().to_rfc3339();
    let mut due = Vec::new();
    for source in &sources {
        if knowledge_sources::ask(&db, &tenant, source, &now).await? == Asked::New {
            due.push(Due::asked(&tenant, source));
        }
    }
    knowledge::hand_over(&env, &due).await;
    let resumed: Vec<&'static str> = resumed.into_iter().map(Part::as_str).collect();
    if !resumed.is_empty() {
        audit
            .record(
                &env,
                &tenant.business_id,
                Action::BusinessResumed,
                None,
                json!({ "resumed": resumed }),
            )
            .await;
    }
    Ok(Json(ResumeOut { resumed, waiting }))
}
