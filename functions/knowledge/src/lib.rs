//! CRM links (the CRM links guide's dashboard API) and search for the bot, with the business's API
//! key as `x-api-key` or `Authorization: Bearer`, and the receiver of data CRMs push to webhook
//! links. Fetching is the fetcher's: nothing here waits for a CRM.

mod links;
mod push;
mod rag;
mod view;

use domain::api_legacy::{self as api, Function, Operation, Routed};
use domain::error::ApiError;
use domain::links::link::PageId;
use domain::tenant::Tenant;
use edge::Env;
use edge::audit::Audit;
use edge::db::Db;
use edge::db::channel_accounts;
use edge::{http, idempotency};
use worker::{Context, Request, Response, event};

const FUNCTION: &Function = &api::KNOWLEDGE;

#[event(fetch)]
async fn fetch(req: Request, env: worker::Env, _ctx: Context) -> worker::Result<Response> {
    // A CRM's push is signed with its link's secret, which its handler checks; the dashboard takes
    // the business's key.
    let pushed = api::route(FUNCTION, req.method().as_ref(), &req.path())
        .is_ok_and(|routed| routed.operation() == Operation::PushCrmLinkData);
    if pushed {
        http::serve_open(FUNCTION, req, env, pushed_data).await
    } else {
        http::serve_tenant(FUNCTION, req, env, dashboard).await
    }
}

async fn pushed_data(req: Request, env: Env, routed: Routed) -> Result<Response, ApiError> {
    let source = routed.param("link_id")?.to_owned();
    push::receive(req, &env, &source).await
}

async fn dashboard(req: Request, env: Env, routed: Routed, tenant: Tenant) -> Result<Response, ApiError> {
    match routed.operation() {
        Operation::ListCrmLinks => links::list(&req, &env, &tenant).await,
        Operation::AddCrmLink => {
            let audit = Audit::key(&req);
            idempotency::once(req, &env, &tenant, links::MAX_BODY, async |req| {
                links::add(req, &env, &tenant, &audit).await
            })
            .await
        }
        Operation::DeleteCrmLink => {
            let audit = Audit::key(&req);
            links::delete(req, &env, &tenant, &audit).await
        }
        Operation::SetCrmLinkStatus => links::set_status(req, &env, &tenant).await,
        Operation::ListAllCrmLinks => links::all(&req, &env, &tenant).await,
        Operation::RefreshCrmLink => links::refresh(req, &env, &tenant).await,
        Operation::SearchCrmLinks | Operation::SearchCrmLinksPost => rag::search(req, &env, &tenant).await,
        Operation::GetCrmLinkDetails => rag::details(&req, &env, &tenant).await,
        _ => Err(routed.not_served(FUNCTION)),
    }
}

/// 404 unless `page` is one of the business's Facebook pages: another business's page reads as
/// one that does not exist.
pub(crate) async fn own_page(db: &Db, tenant: &Tenant, page: &PageId) -> Result<Option<String>, ApiError> {
    let pages = channel_accounts::facebook_pages(db, tenant).await?;
    pages
        .into_iter()
        .find(|(id, _)| id == page.as_str())
        .map(|(_, name)| name)
        .ok_or_else(|| {
            ApiError::not_found(format!(
                "page {} is not one of this business's Facebook pages (add it as a facebook channel account)",
                page.as_str()
            ))
        })
}
