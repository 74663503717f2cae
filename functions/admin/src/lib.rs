//! The admin API: businesses, their API keys, channel accounts and CRM connectors, their audit
//! log, and running the maintenance sweep now, authorised by the `ADMIN_TOKEN` secret.

mod api_keys;
mod audit_log;
mod businesses;
mod channel_accounts;
mod connectors;
mod maintenance;
mod routes;

use domain::error::ApiError;
use edge::Env;
use edge::audit::Audit;
use edge::{auth, http};
use routes::AdminRoute;
use worker::{Context, Request, Response, event};

#[event(fetch)]
async fn fetch(req: Request, env: worker::Env, _ctx: Context) -> worker::Result<Response> {
    http::serve(req, env, admin).await
}

async fn admin(req: Request, env: Env) -> Result<Response, ApiError> {
    auth::authorize_admin(&req, &env)?;
    let audit = Audit::admin(&req);
    match routes::route(req.method(), &req.path())? {
        AdminRoute::CreateBusiness => businesses::create(req, &env, &audit).await,
        AdminRoute::GetBusiness(id) => businesses::get(&env, &id).await,
        AdminRoute::UpdateBusiness(id) => businesses::update(req, &env, &id, &audit).await,
        AdminRoute::AuditLog(id) => audit_log::list(&req, &env, &id).await,
        AdminRoute::IssueKey(id) => api_keys::issue(req, &env, &id, &audit).await,
        AdminRoute::ListKeys(id) => api_keys::list(&env, &id).await,
        AdminRoute::RevokeKey(id) => api_keys::revoke(&env, &id, &audit).await,
        AdminRoute::CreateChannelAccount(id) => channel_accounts::create(req, &env, &id, &audit).await,
        AdminRoute::ListChannelAccounts(id) => channel_accounts::list(&env, &id).await,
        AdminRoute::UpdateChannelAccount(id) => channel_accounts::update(req, &env, &id, &audit).await,
        AdminRoute::CreateConnector(id) => connectors::create(req, &env, &id, &audit).await,
        AdminRoute::ListConnectors(id) => connectors::list(&env, &id).await,
        AdminRoute::GetConnector(id) => connectors::get(&env, &id).await,
        AdminRoute::UpdateConnector(id) => connectors::update(req, &env, &id, &audit).await,
        AdminRoute::TestConnector(id) => connectors::test(&env, &id).await,
        AdminRoute::ConnectorTeams(id) => connectors::teams(&env, &id).await,
        AdminRoute::ConnectorPipelines(id) => connectors::pipelines(&env, &id).await,
        AdminRoute::FindContact(id) => connectors::find_contact(&req, &env, &id).await,
        AdminRoute::GetContact(id, key) => connectors::contact(&env, &id, &key).await,
        AdminRoute::SyncLog(id) => connectors::log(&req, &env, &id).await,
        AdminRoute::Replay(id) => connectors::replay(req, &env, &id).await,
        AdminRoute::Sweep => maintenance::sweep(&env).await,
    }
}
