//! `POST /admin/businesses/{id}/move`: the next step of moving a business to another shard, and
//! `POST /admin/businesses/{id}/move/abort`, of aborting it (`edge::ops::shard_move`;
//! docs/operations.md, "Moving a business to another shard").

use domain::api::admin::{MoveAbortIn, MoveIn, MoveOut};
use domain::error::ApiError;
use domain::shard_move::Cursor;
use edge::Env;
use edge::platform::audit::Audit;
use edge::platform::call::{Json, Managed};
use edge::runtime;

pub async fn step(
    env: Env,
    audit: Audit,
    Managed(tenant): Managed,
    Json(body): Json<MoveIn>,
) -> Result<Json<MoveOut>, ApiError> {
    let cursor = cursor(body.cursor.as_deref())?;
    let db = env.db()?;
    let now = runtime::now().millis();
    edge::ops::shard_move::step(&env, &audit, &db, &tenant.business_id, body.to_shard, cursor, now)
        .await
        .map(Json)
}

pub async fn abort(
    env: Env,
    audit: Audit,
    Managed(tenant): Managed,
    Json(body): Json<MoveAbortIn>,
) -> Result<Json<MoveOut>, ApiError> {
    let cursor = cursor(body.cursor.as_deref())?;
    let db = env.db()?;
    edge::ops::shard_move::abort_step(&env, &audit, &db, &tenant.business_id, cursor)
        .await
        .map(Json)
}

fn cursor(text: Option<&str>) -> Result<Option<Cursor>, ApiError> {
    text.map(Cursor::parse)
        .transpose()
        .map_err(|why| ApiError::invalid("cursor", why))
}
