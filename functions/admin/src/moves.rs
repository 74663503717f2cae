//! `POST /admin/businesses/{id}/move`: the next step of moving a business to another shard
//! (`edge::shard_move`; docs/operations.md, "Moving a business to another shard").

use domain::api::admin::{MoveIn, MoveOut};
use domain::audit::Action;
use domain::error::ApiError;
use domain::shard_move::Cursor;
use edge::Env;
use edge::audit::Audit;
use edge::call::{Json, Managed};
use edge::{DB, runtime};
use serde_json::json;

pub async fn step(
    env: Env,
    audit: Audit,
    Managed(tenant): Managed,
    Json(body): Json<MoveIn>,
) -> Result<Json<MoveOut>, ApiError> {
    let cursor = body
        .cursor
        .as_deref()
        .map(Cursor::parse)
        .transpose()
        .map_err(|why| ApiError::invalid("cursor", why))?;
    let db = env.d1(DB)?;
    let from = edge::db::directory::entry(&db, &tenant.business_id).await?.shard;
    let answer = edge::shard_move::step(
        &db,
        &tenant.business_id,
        body.to_shard,
        cursor,
        runtime::now().millis(),
    )
    .await?;
    if from != answer.shard {
        let detail = json!({ "from_shard": from, "to_shard": answer.shard });
        audit
            .record(
                &env,
                &tenant.business_id,
                Action::BusinessMoved,
                Some(tenant.business_id.as_str()),
                detail,
            )
            .await;
    }
    Ok(Json(answer))
}
