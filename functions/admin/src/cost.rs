//! What a business costs to run this month (`GET /admin/businesses/{id}/cost` and the business's
//! own `GET /api-cost`), and the operator's month across every business (`GET /admin/cost`):
//! `business_usage`'s days priced at Cloudflare's published prices (`domain::cost`).

use domain::cost::{Bill, CostOut, Month};
use domain::error::ApiError;
use edge::Env;
use edge::db;
use edge::db::directory::{self, Moving};
use edge::platform::call::{Json, Managed};
use edge::runtime;

/// Businesses one shard's read names at most.
const BUSINESSES_PER_SHARD: usize = 10_000;

pub async fn business(env: Env, Managed(tenant): Managed) -> Result<Json<CostOut>, ApiError> {
    let now = runtime::now();
    let db = env.db()?;
    let days = db::business_usage::days(&db, &tenant, &Month::of(now).first_day()).await?;
    Ok(Json(CostOut::new(tenant.business_id, days, now)))
}

/// Every shard's businesses, each counted on the shard it is settled on.
pub async fn total(env: Env) -> Result<Json<Bill>, ApiError> {
    let now = runtime::now();
    let db = env.db()?;
    let moves = directory::unsettled(&db).await?;
    let first_day = Month::of(now).first_day();
    let mut businesses = Vec::new();
    for (number, shard) in db.each_shard().into_iter().enumerate() {
        let moving = Moving::on(number as db::Shard, &moves);
        businesses.extend(
            db::business_usage::by_business(&shard, &moving, &first_day, BUSINESSES_PER_SHARD).await?,
        );
    }
    Ok(Json(Bill::new(businesses, now)))
}
