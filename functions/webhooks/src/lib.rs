//! The webhook subscription API: a business registers endpoints, rotates their secrets, sends a
//! test event, reads its deliveries and the attempt log, and replays dead deliveries.

mod endpoints;
mod log;
mod test_event;

use domain::api::webhooks::{WEBHOOKS, Webhooks};
use edge::platform::call;
use edge::runtime::{Bindings, Request, Response};

edge::http_function!(serve);

/// Serves the function's endpoints: each request one invocation.
pub async fn serve(req: Request, bindings: Bindings) -> worker::Result<Response> {
    call::serve(
        &WEBHOOKS,
        req,
        bindings,
        async |operation, call| match operation {
            Webhooks::CreateWebhook => call.run(endpoints::create).await,
            Webhooks::ListWebhooks => call.run(endpoints::list).await,
            Webhooks::GetWebhook => call.run(endpoints::get).await,
            Webhooks::UpdateWebhook => call.run(endpoints::update).await,
            Webhooks::DeleteWebhook => call.run(endpoints::delete).await,
            Webhooks::RotateWebhookSecret => call.run(endpoints::rotate_secret).await,
            Webhooks::TestWebhook => call.run(test_event::send).await,
            Webhooks::ListWebhookDeliveries => call.run(log::deliveries).await,
            Webhooks::ReplayWebhookDeliveries => call.run(log::replay).await,
            Webhooks::ListWebhookAttempts => call.run(log::attempts).await,
        },
    )
    .await
}
