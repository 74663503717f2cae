//! The admin API: businesses, their API keys, channel accounts and CRM connectors, their audit
//! log, and running the maintenance sweep now, authorised by the `ADMIN_TOKEN` secret.

mod api_keys;
mod audit_log;
mod businesses;
mod channel_accounts;
mod connectors;
mod maintenance;

use domain::api_legacy::{self as api, Function, Operation, Routed};
use domain::error::ApiError;
use domain::ids::{ApiKeyId, BusinessId, ChannelAccountId, ConnectorId};
use edge::Env;
use edge::audit::Audit;
use edge::http;
use worker::{Context, Request, Response, event};

const FUNCTION: &Function = &api::ADMIN;

#[event(fetch)]
async fn fetch(req: Request, env: worker::Env, _ctx: Context) -> worker::Result<Response> {
    http::serve_admin(FUNCTION, req, env, admin).await
}

async fn admin(req: Request, env: Env, routed: Routed) -> Result<Response, ApiError> {
    let audit = Audit::admin(&req);
    let business = || routed.id("business_id", "business", BusinessId::parse);
    let connector = || routed.id("connector_id", "connector", ConnectorId::parse);
    match routed.operation() {
        Operation::CreateBusiness => businesses::create(req, &env, &audit).await,
        Operation::GetBusiness => businesses::get(&env, &business()?).await,
        Operation::UpdateBusiness => businesses::update(req, &env, &business()?, &audit).await,
        Operation::GetAuditLog => audit_log::list(&req, &env, &business()?).await,
        Operation::IssueApiKey => api_keys::issue(req, &env, &business()?, &audit).await,
        Operation::ListApiKeys => api_keys::list(&env, &business()?).await,
        Operation::RevokeApiKey => {
            let key = routed.id("key_id", "API key", ApiKeyId::parse)?;
            api_keys::revoke(&env, &key, &audit).await
        }
        Operation::CreateChannelAccount => channel_accounts::create(req, &env, &business()?, &audit).await,
        Operation::ListChannelAccounts => channel_accounts::list(&env, &business()?).await,
        Operation::UpdateChannelAccount => {
            let account = routed.id("account_id", "channel account", ChannelAccountId::parse)?;
            channel_accounts::update(req, &env, &account, &audit).await
        }
        Operation::CreateConnector => connectors::create(req, &env, &business()?, &audit).await,
        Operation::ListConnectors => connectors::list(&env, &business()?).await,
        Operation::GetConnector => connectors::get(&env, &connector()?).await,
        Operation::UpdateConnector => connectors::update(req, &env, &connector()?, &audit).await,
        Operation::TestConnector => connectors::test(&env, &connector()?).await,
        Operation::GetConnectorTeams => connectors::teams(&env, &connector()?).await,
        Operation::GetConnectorPipelines => connectors::pipelines(&env, &connector()?).await,
        Operation::FindConnectorContact => connectors::find_contact(&req, &env, &connector()?).await,
        Operation::GetConnectorContact => {
            connectors::contact(&env, &connector()?, routed.param("contact_key")?).await
        }
        Operation::GetConnectorSyncLog => connectors::log(&req, &env, &connector()?).await,
        Operation::ReplayConnectorWork => connectors::replay(req, &env, &connector()?).await,
        Operation::RunMaintenanceSweep => maintenance::sweep(&env).await,
        _ => Err(routed.not_served(FUNCTION)),
    }
}
