//! CRM links (the CRM links guide's dashboard API) and search for the bot, with the business's API
//! key as `x-api-key` or `Authorization: Bearer`, and the receiver of data CRMs push to webhook
//! links. Fetching is the fetcher's: nothing here waits for a CRM.

mod links;
mod push;
mod rag;
mod view;

use domain::error::ApiError;
use domain::links::link::PageId;
use domain::tenant::Tenant;
use edge::Env;
use edge::audit::Audit;
use edge::db::Db;
use edge::db::channel_accounts;
use edge::{auth, http, idempotency};
use worker::{Context, Method, Request, Response, event};

#[event(fetch)]
async fn fetch(req: Request, env: worker::Env, _ctx: Context) -> worker::Result<Response> {
    http::serve(req, env, knowledge).await
}

async fn knowledge(req: Request, env: Env) -> Result<Response, ApiError> {
    let path = req.path();
    let path = path.trim_end_matches('/');
    if let Some(source) = path.strip_prefix("/webhooks/crm-links/") {
        http::require_method(&req, Method::Post, "POST")?;
        let source = source.to_owned();
        return push::receive(req, &env, &source).await;
    }
    let allow = match path {
        "/api/dashboard/crm-links" => "GET, POST, DELETE",
        "/api/dashboard/crm-links/status" => "PUT",
        "/api/dashboard/crm-links/all" | "/api/dashboard/rag/documents/details" => "GET",
        "/api/dashboard/crm-links/refresh" => "POST",
        "/api/dashboard/rag/search" => "GET, POST",
        _ => return Err(ApiError::not_found(format!("no such path: {path}"))),
    };
    let method = req.method();
    if !allow.split(", ").any(|allowed| allowed == method.as_ref()) {
        return Err(ApiError::method_not_allowed(allow));
    }
    let tenant = auth::authenticate_bearer_or_key(&req, &env).await?;
    match (path, method) {
        ("/api/dashboard/crm-links", Method::Get) => links::list(&req, &env, &tenant).await,
        ("/api/dashboard/crm-links", Method::Post) => {
            let audit = Audit::key(&req);
            idempotency::once(req, &env, &tenant, links::MAX_BODY, async |req| {
                links::add(req, &env, &tenant, &audit).await
            })
            .await
        }
        ("/api/dashboard/crm-links", _) => {
            let audit = Audit::key(&req);
            links::delete(req, &env, &tenant, &audit).await
        }
        ("/api/dashboard/crm-links/status", _) => links::set_status(req, &env, &tenant).await,
        ("/api/dashboard/crm-links/all", _) => links::all(&req, &env, &tenant).await,
        ("/api/dashboard/crm-links/refresh", _) => links::refresh(req, &env, &tenant).await,
        ("/api/dashboard/rag/search", _) => rag::search(req, &env, &tenant).await,
        _ => rag::details(&req, &env, &tenant).await,
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
