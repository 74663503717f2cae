//! The admin API: businesses, their API keys, channel accounts and CRM connectors, their audit
//! log, and running the maintenance sweep now, authorised by the `ADMIN_TOKEN` secret.

mod api_keys;
mod audit_log;
mod businesses;
mod channel_accounts;
mod connectors;
mod maintenance;

use domain::api::admin::{ADMIN, Admin};
use edge::call;
use worker::{Context, Request, Response, event};

#[event(fetch)]
async fn fetch(req: Request, env: worker::Env, _ctx: Context) -> worker::Result<Response> {
    call::serve(&ADMIN, req, env, async |operation, call| match operation {
        Admin::CreateBusiness => call.run(businesses::create).await,
        Admin::GetBusiness => call.run(businesses::get).await,
        Admin::UpdateBusiness => call.run(businesses::update).await,
        Admin::GetAuditLog => call.run(audit_log::list).await,
        Admin::IssueApiKey => call.run(api_keys::issue).await,
        Admin::ListApiKeys => call.run(api_keys::list).await,
        Admin::RevokeApiKey => call.run(api_keys::revoke).await,
        Admin::CreateChannelAccount => call.run(channel_accounts::create).await,
        Admin::ListChannelAccounts => call.run(channel_accounts::list).await,
        Admin::UpdateChannelAccount => call.run(channel_accounts::update).await,
        Admin::CreateConnector => call.run(connectors::create).await,
        Admin::ListConnectors => call.run(connectors::list).await,
        Admin::GetConnector => call.run(connectors::get).await,
        Admin::UpdateConnector => call.run(connectors::update).await,
        Admin::TestConnector => call.run(connectors::test).await,
        Admin::GetConnectorTeams => call.run(connectors::teams).await,
        Admin::GetConnectorPipelines => call.run(connectors::pipelines).await,
        Admin::FindConnectorContact => call.run(connectors::find_contact).await,
        Admin::GetConnectorContact => call.run(connectors::contact).await,
        Admin::GetConnectorSyncLog => call.run(connectors::log).await,
        Admin::ReplayConnectorWork => call.run(connectors::replay).await,
        Admin::RunMaintenanceSweep => call.run(maintenance::sweep).await,
    })
    .await
}
