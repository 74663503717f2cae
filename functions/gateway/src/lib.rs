//! The gateway: the one public entry. It authenticates nothing and stores nothing; it hands each
//! request to the function that owns its path (under `/functions/v1` too, the guides' base URL),
//! over a service binding, within the rate limits (`limits`), and serves `/health`, the API's
//! contract, `/openapi.json`, and the scripts and styles of the console's pages (the console and
//! the API reference).

mod limits;
mod route_table;
mod routes;
mod usage;

use domain::api::gateway::{GATEWAY, Gateway, HealthOut};
use domain::api::{self, Miss};
use domain::error::ApiError;
use domain::request_url::{GUIDES_PREFIX, without_guides_prefix};
use edge::Env;
use edge::platform::http;
use edge::runtime::Internal;
use edge::runtime::{Bindings, Context, Request, Response};

edge::http_function!(serve, with_context);

/// Serves every request: each one invocation, whose background work (a rate limit's next lease)
/// goes on after its answer.
pub async fn serve(req: Request, bindings: Bindings, ctx: Context) -> worker::Result<Response> {
    http::serve(req, bindings, async |req, env| forward(req, env, &ctx).await).await
}

async fn forward(req: Request, env: Env, ctx: &Context) -> Result<Response, ApiError> {
    let (req, path) = at_origin_path(req)?;
    match api::route(&GATEWAY, &edge::runtime::request_method(&req), &path) {
        Ok(routed) => {
            return match routed.operation {
                Gateway::Health => http::json(200, &HealthOut { status: "ok" }),
                Gateway::GetOpenApiDocument => static_file(req, &env, "application/json").await,
                Gateway::GetConsoleAssetJs | Gateway::GetReferenceAssetJs | Gateway::GetSwaggerUiJs => {
                    static_file(req, &env, "text/javascript; charset=utf-8").await
                }
                Gateway::GetConsoleAssetCss | Gateway::GetReferenceAssetCss | Gateway::GetSwaggerUiCss => {
                    static_file(req, &env, "text/css; charset=utf-8").await
                }
            };
        }
        Err(Miss::NotAllowed(allow)) => return Err(ApiError::method_not_allowed(allow)),
        Err(Miss::NotFound) => {}
    }
    let Some(owning) = routes::owning(&path) else {
        return Err(ApiError::not_found(format!("no endpoint at {path}")));
    };
    let budgets = limits::failure_budgets(&req);
    limits::refuse_blocked(&budgets)?;
    let holder = limits::holder_of(&req);
    let decision = limits::take_for_holder(&env, ctx, holder.as_ref()).await;
    // A key is counted once its limiter knows it: not an unknown key's requests (their 401s
    // are the address's failure budget's).
    let used = decision.and_then(|_| {
        let method = edge::runtime::request_method(&req);
        usage::Use::of(holder.as_ref(), &method, &owning, http::client_ip(&req))
    });
    if let Some(decision) = decision.filter(|decision| !decision.allowed) {
        if let Some(used) = used {
            used.count(&env, ctx, 429, true);
        }
        return limits::over_limit(&decision);
    }
    let response = env
        .service(owning.owner)
        .internal("the function's service binding")?
        .fetch_request(req)
        .await;
    if let Some(used) = used {
        let status = response.as_ref().map_or(500, Response::status_code);
        used.count(&env, ctx, status, false);
    }
    let response = response.internal("calling the function")?;
    if matches!(response.status_code(), 401 | 403) {
        limits::failed_authentication(&env, &budgets).await;
    }
    match decision {
        Some(decision) => {
            // A function's response may have immutable headers: copy them onto a new one.
            let headers = response.headers().clone();
            limits::set_headers(&headers, &decision)?;
            Ok(response.with_headers(headers))
        }
        None => Ok(response),
    }
}

/// The request with its path: the guides' BASE_URL ends in `/functions/v1`, and a request under
/// it is the same request at the origin's path. Only such a request has its URL read again.
fn at_origin_path(req: Request) -> Result<(Request, String), ApiError> {
    let path = req.path();
    if !path.starts_with(GUIDES_PREFIX) {
        return Ok((req, path));
    }
    match without_guides_prefix(&edge::runtime::request_url(&req)) {
        Some(url) => {
            let req = edge::runtime::at_url(req, &url).internal("moving the request")?;
            let path = req.path();
            Ok((req, path))
        }
        None => Ok((req, path)),
    }
}

/// One of the gateway's static files (`[assets]`, copied there by scripts/build): the API's
/// contract, `openapi.json` as committed (a sixth of the bundle's size were it built in), the
/// console page's script and style (more than a tenth of the console's), and the API reference's
/// (Swagger UI's script and style are 470 KB gzip, more than any bundle may weigh).
async fn static_file(req: Request, env: &Env, content_type: &str) -> Result<Response, ApiError> {
    let path = req.path();
    let file = env
        .assets("ASSETS")
        .internal("the ASSETS binding")?
        .fetch_request(req)
        .await
        .internal("the static assets")?;
    if file.status_code() != 200 {
        return Err(ApiError::internal(
            "serving a static file",
            format!("the gateway's assets answered {} for {path}", file.status_code()),
        ));
    }
    let headers = edge::runtime::Headers::new();
    headers
        .set("content-type", content_type)
        .internal("setting a header")?;
    headers
        .set("x-content-type-options", "nosniff")
        .internal("setting a header")?;
    headers
        .set("cache-control", "public, max-age=300")
        .internal("setting a header")?;
    Ok(file.with_headers(headers))
}
