//! `POST /admin/businesses/{id}/move`: the next step of moving a business to another shard
//! (`edge::shard_move`; docs/operations.md, "Moving a business to another shard").

use domain::api::admin::{MoveIn, MoveOut};
use domain::error::ApiError;
use domain::shard_move::Cursor;
use edge::Env;
use edge::audit::Audit;
use edge::call::{Json, Managed};
use edge::{DB, runtime};

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
    let now = runtime::now().millis();
    edge::shard_move::step(&env, &audit, &db, &tenant.business_id, body.to_shard, cursor, now)
        .await
        .map(Json)
}
