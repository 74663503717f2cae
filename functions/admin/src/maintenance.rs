//! `POST /admin/maintenance/sweep`: runs the maintenance sweep the cron runs every minute, now,
//! and answers what it did. Operators use it after an outage; the local stack, whose
//! `wrangler dev` runs no crons, uses it in its tests.

use domain::error::ApiError;
use domain::maintenance::SweepReport;
use edge::Env;
use edge::platform::call::Json;

pub async fn sweep(env: Env) -> Result<Json<SweepReport>, ApiError> {
    edge::ops::maintenance::sweep(&env).await.map(Json)
}
