//! `POST /admin/maintenance/sweep`: runs the maintenance sweep the cron runs every minute, now,
//! and answers what it did. Operators use it after an outage; the local stack, whose
//! `wrangler dev` runs no crons, uses it in its tests.

use domain::error::ApiError;
use edge::Env;
use edge::http;
use worker::Response;

pub async fn sweep(env: &Env) -> Result<Response, ApiError> {
    let report = edge::maintenance::sweep(env).await?;
    http::json(200, &report)
}
