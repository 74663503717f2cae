//! CRM links (the CRM links guide's dashboard API) and search for the bot, with the business's API
//! key as `x-api-key` or `Authorization: Bearer`, and the receiver of data CRMs push to webhook
//! links, signed with the link's secret, which its handler checks. Fetching is the fetcher's:
//! nothing here waits for a CRM.

mod edit;
mod holds;
mod links;
mod push;
mod rag;
mod view;

use domain::api::links::{KNOWLEDGE, Knowledge};
use edge::platform::call;
use edge::runtime::{Bindings, Request, Response};

pub(crate) use edge::db::channel_accounts::own_page;

edge::http_function!(serve);

/// Serves the function's endpoints: each request one invocation.
pub async fn serve(req: Request, bindings: Bindings) -> worker::Result<Response> {
    call::serve(
        &KNOWLEDGE,
        req,
        bindings,
        async |operation, call| match operation {
            Knowledge::ListCrmLinks => call.run(links::list).await,
            Knowledge::AddCrmLink => call.run(links::add).await,
            Knowledge::UpdateCrmLink => call.run(edit::update).await,
            Knowledge::PreviewCrmLink => call.run(edit::preview).await,
            Knowledge::DeleteCrmLink => call.run(links::delete).await,
            Knowledge::SetCrmLinkStatus => call.run(links::set_status).await,
            Knowledge::ListAllCrmLinks => call.run(links::all).await,
            Knowledge::RefreshCrmLink => call.run(links::refresh).await,
            Knowledge::SearchCrmLinks => call.run(rag::search).await,
            Knowledge::SearchCrmLinksPost => call.run(rag::search_posted).await,
            Knowledge::GetCrmLinkDetails => call.run(rag::details).await,
            Knowledge::PushCrmLinkData => call.run(push::receive).await,
        },
    )
    .await
}
