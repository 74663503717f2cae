//! The webhook subscription API: a business registers endpoints, rotates their secrets, sends a
//! test event, reads its deliveries and the attempt log, and replays dead deliveries.

mod endpoints;
mod log;
mod routes;
mod test_event;

use domain::error::ApiError;
use edge::Env;
use edge::audit::Audit;
use edge::{auth, http, idempotency};
use routes::Route;
use worker::{Context, Request, Response, event};

#[event(fetch)]
async fn fetch(req: Request, env: worker::Env, _ctx: Context) -> worker::Result<Response> {
    http::serve(req, env, webhooks).await
}

async fn webhooks(req: Request, env: Env) -> Result<Response, ApiError> {
    let tenant = auth::authenticate(&req, &env).await?;
    let audit = Audit::key(&req);
    match routes::route(req.method(), &req.path())? {
        Route::Create => {
            idempotency::once(req, &env, &tenant, http::SMALL_BODY_LIMIT, async |req| {
                endpoints::create(req, &env, &tenant, &audit).await
            })
            .await
        }
        Route::List => endpoints::list(&env, &tenant).await,
        Route::Get(id) => endpoints::get(&env, &tenant, &id).await,
        Route::Update(id) => endpoints::update(req, &env, &tenant, &id, &audit).await,
        Route::Delete(id) => endpoints::delete(&env, &tenant, &id, &audit).await,
        Route::RotateSecret(id) => endpoints::rotate_secret(req, &env, &tenant, &id, &audit).await,
        Route::Test(id) => test_event::send(&env, &tenant, &id).await,
        Route::Deliveries(id) => log::deliveries(&req, &env, &tenant, &id).await,
        Route::Replay(id) => log::replay(req, &env, &tenant, &id).await,
        Route::Attempts => log::attempts(&req, &env, &tenant).await,
    }
}
