//! The CRM API a business calls with its API key: hand a conversation to a person in its CRMs
//! (`POST /api-escalations`) and route it again (`PATCH /api-escalations/{id}`), add an internal note there (`POST /api-crm-notes`), load a
//! customer's history from the CRM (`GET /api-crm-history`) and read the support analytics
//! (`GET /api-crm-analytics`). Escalations and notes are CRM work like any other: recorded, then
//! done by the sync consumer, so a CRM that is down delays them and loses none.

mod analytics;
mod history;
mod work;

use domain::api::crm::{CRM_API, CrmApi};
use edge::platform::call;
use edge::runtime::{Bindings, Request, Response};

edge::http_function!(serve);

/// Serves the function's endpoints: each request one invocation.
pub async fn serve(req: Request, bindings: Bindings) -> worker::Result<Response> {
    call::serve(&CRM_API, req, bindings, async |operation, call| match operation {
        CrmApi::EscalateConversation => call.run(work::escalate).await,
        CrmApi::ChangeEscalation => call.run(work::reroute).await,
        CrmApi::AddCrmNote => call.run(work::note).await,
        CrmApi::GetCrmHistory => call.run(history::load).await,
        CrmApi::GetCrmAnalytics => call.run(analytics::report).await,
    })
    .await
}
