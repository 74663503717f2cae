//! The webhook subscription API: a business registers endpoints, rotates their secrets, sends a
//! test event, reads its deliveries and the attempt log, and replays dead deliveries.

mod endpoints;
mod log;
mod test_event;

use domain::api_legacy::{self as api, Function, Operation, Routed};
use domain::error::ApiError;
use domain::ids::EndpointId;
use domain::tenant::Tenant;
use edge::Env;
use edge::audit::Audit;
use edge::{http, idempotency};
use worker::{Context, Request, Response, event};

const FUNCTION: &Function = &api::WEBHOOKS;

#[event(fetch)]
async fn fetch(req: Request, env: worker::Env, _ctx: Context) -> worker::Result<Response> {
    http::serve_tenant(FUNCTION, req, env, webhooks).await
}

async fn webhooks(req: Request, env: Env, routed: Routed, tenant: Tenant) -> Result<Response, ApiError> {
    let audit = Audit::key(&req);
    let webhook = || routed.id("webhook_id", "webhook", EndpointId::parse);
    match routed.operation() {
        Operation::CreateWebhook => {
            idempotency::once(req, &env, &tenant, http::SMALL_BODY_LIMIT, async |req| {
                endpoints::create(req, &env, &tenant, &audit).await
            })
            .await
        }
        Operation::ListWebhooks => endpoints::list(&env, &tenant).await,
        Operation::GetWebhook => endpoints::get(&env, &tenant, &webhook()?).await,
        Operation::UpdateWebhook => endpoints::update(req, &env, &tenant, &webhook()?, &audit).await,
        Operation::DeleteWebhook => endpoints::delete(&env, &tenant, &webhook()?, &audit).await,
        Operation::RotateWebhookSecret => {
            endpoints::rotate_secret(req, &env, &tenant, &webhook()?, &audit).await
        }
        Operation::TestWebhook => test_event::send(&env, &tenant, &webhook()?).await,
        Operation::ListWebhookDeliveries => log::deliveries(&req, &env, &tenant, &webhook()?).await,
        Operation::ReplayWebhookDeliveries => log::replay(req, &env, &tenant, &webhook()?).await,
        Operation::ListWebhookAttempts => log::attempts(&req, &env, &tenant).await,
        _ => Err(routed.not_served(FUNCTION)),
    }
}
