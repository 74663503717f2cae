//! The admin API, authorised by the `ADMIN_TOKEN` secret: businesses, their API keys, channel
//! accounts and CRM connectors, their console links, their audit log, and running the maintenance
//! sweep now. A business manages its own keys, accounts, connectors and console links the same
//! way with one of its keys (or a console session): each of those endpoints has a twin without
//! the business in its path (`/api-keys`, `/api-connectors/{id}`, …), served by the same handler,
//! which is handed whom it acts for (`edge::platform::call::{Managed, Scope}`).

mod alerts;
mod api_keys;
mod audit_log;
mod backups;
mod businesses;
mod channel_accounts;
mod connectors;
mod console_links;
mod cost;
mod crm_records;
mod customers;
mod maintenance;
mod moves;

use domain::api::admin::{ADMIN, Admin};
use edge::platform::call;
use edge::runtime::{Bindings, Request, Response};

edge::http_function!(serve);

/// Serves the function's endpoints: each request one invocation.
pub async fn serve(req: Request, bindings: Bindings) -> worker::Result<Response> {
    call::serve(&ADMIN, req, bindings, async |operation, call| match operation {
        Admin::CreateBusiness => call.run(businesses::create).await,
        Admin::GetBusiness => call.run(businesses::get).await,
        Admin::UpdateBusiness => call.run(businesses::update).await,
        Admin::GetAuditLog => call.run(audit_log::list).await,
        Admin::IssueApiKey => call.run(api_keys::issue).await,
        Admin::ListApiKeys => call.run(api_keys::list).await,
        Admin::RevokeApiKey => call.run(api_keys::revoke).await,
        Admin::GetApiUsage => call.run(api_keys::usage).await,
        Admin::GetBusinessCost => call.run(cost::business).await,
        Admin::GetCost => call.run(cost::total).await,
        Admin::GetAlerts => call.run(alerts::list).await,
        Admin::GetAlertSettings => call.run(alerts::settings).await,
        Admin::UpdateAlertSettings => call.run(alerts::update).await,
        Admin::CreateChannelAccount => call.run(channel_accounts::create).await,
        Admin::ListChannelAccounts => call.run(channel_accounts::list).await,
        Admin::UpdateChannelAccount => call.run(channel_accounts::update).await,
        Admin::DeleteChannelAccount => call.run(channel_accounts::delete).await,
        Admin::ReleaseChannelAccount => call.run(channel_accounts::release).await,
        Admin::EraseCustomer => call.run(customers::erase).await,
        Admin::CreateConnector => call.run(connectors::create).await,
        Admin::StartOwnConnectorAuthorization => call.run(connectors::authorize).await,
        Admin::CompleteOwnConnectorAuthorization => call.run(connectors::authorized).await,
        Admin::ListConnectors => call.run(connectors::list).await,
        Admin::GetConnector => call.run(connectors::get).await,
        Admin::UpdateConnector => call.run(connectors::update).await,
        Admin::DeleteConnector => call.run(connectors::delete).await,
        Admin::TestConnector => call.run(connectors::test).await,
        Admin::GetConnectorTeams => call.run(connectors::teams).await,
        Admin::GetConnectorPipelines => call.run(connectors::pipelines).await,
        Admin::FindConnectorCrmCustomer => call.run(crm_records::customer).await,
        Admin::OpenConnectorCrmConversation => call.run(crm_records::conversation).await,
        Admin::FindConnectorContact => call.run(connectors::find_contact).await,
        Admin::GetConnectorContact => call.run(connectors::contact).await,
        Admin::GetConnectorSyncLog => call.run(connectors::log).await,
        Admin::ReplayConnectorWork => call.run(connectors::replay).await,
        Admin::IssueConsoleLink => call.run(console_links::issue).await,
        Admin::ListConsoleSessions => call.run(console_links::list).await,
        Admin::RevokeConsoleSession => call.run(console_links::revoke).await,
        Admin::RunMaintenanceSweep => call.run(maintenance::sweep).await,
        Admin::MoveBusiness => call.run(moves::step).await,
        Admin::AbortMove => call.run(moves::abort).await,
        Admin::ExportBusiness => call.run(backups::export).await,
        Admin::RestoreBusiness => call.run(backups::restore).await,
        Admin::DiscardRestore => call.run(backups::discard).await,
        Admin::ResumeBusiness => call.run(backups::resume).await,
    })
    .await
}
