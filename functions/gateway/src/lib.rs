//! The gateway: the one public entry. It authenticates nothing and stores nothing; it hands each
//! request to the function that owns its path, over a service binding.

mod route_table;
mod routes;

use domain::error::ApiError;
use edge::http;
use worker::{Context, Env, Request, Response, event};

#[event(fetch)]
async fn fetch(req: Request, env: Env, _ctx: Context) -> worker::Result<Response> {
    http::serve(req, env, forward).await
}

async fn forward(req: Request, env: Env) -> Result<Response, ApiError> {
    let path = req.path();
    if path == "/health" {
        return http::json(200, &serde_json::json!({ "status": "ok" }));
    }
    let Some(binding) = routes::function_for(&path) else {
        return Err(ApiError::not_found(format!("no endpoint at {path}")));
    };
    Ok(env.service(binding)?.fetch_request(req).await?)
}
