//! The admin API, authorised by the `ADMIN_TOKEN` secret: businesses, their API keys, channel
//! accounts and CRM connectors, their console links, their audit log, and running the maintenance
//! sweep now. A business manages its own keys, accounts, connectors and console links the same
//! way with one of its keys (or a console session): each of those endpoints has a twin without
//! the business in its path (`/api-keys`, `/api-connectors/{id}`, …), served by the same handler,
//! which is handed whom it acts for (`edge::call::{Managed, Scope}`).

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
use edge::call;
use edge::runtime::{Bindings, Request, Response};

edge::http_function!(serve);

/// Serves the function's endpoints: each request one invocation.
pub async fn serve(req: Request, bindings: Bindings) -> worker::Result<Response> {
    call::serve(&ADMIN, req, bindings, async |operation, call| match operation {
        Admin::CreateBusiness => call.run(businesses::create).await,
        Admin::GetBusiness | Admin::GetOwnBusiness => call.run(businesses::get).await,
        Admin::UpdateBusiness | Admin::UpdateOwnBusiness => call.run(businesses::update).await,
        Admin::GetAuditLog | Admin::GetOwnAuditLog => call.run(audit_log::list).await,
        Admin::IssueApiKey | Admin::IssueOwnApiKey => call.run(api_keys::issue).await,
        Admin::ListApiKeys | Admin::ListOwnApiKeys => call.run(api_keys::list).await,
        Admin::RevokeApiKey | Admin::RevokeOwnApiKey => call.run(api_keys::revoke).await,
        Admin::GetApiUsage | Admin::GetOwnApiUsage => call.run(api_keys::usage).await,
        Admin::GetBusinessCost | Admin::GetOwnCost => call.run(cost::business).await,
        Admin::GetCost => call.run(cost::total).await,
        Admin::GetAlerts | Admin::GetOwnAlerts => call.run(alerts::list).await,
        Admin::GetAlertSettings | Admin::GetOwnAlertSettings => call.run(alerts::settings).await,
        Admin::UpdateAlertSettings | Admin::UpdateOwnAlertSettings => call.run(alerts::update).await,
        Admin::CreateChannelAccount | Admin::CreateOwnChannelAccount => {
            call.run(channel_accounts::create).await
        }
        Admin::ListChannelAccounts | Admin::ListOwnChannelAccounts => call.run(channel_accounts::list).await,
        Admin::UpdateChannelAccount | Admin::UpdateOwnChannelAccount => {
            call.run(channel_accounts::update).await
        }
        Admin::DeleteChannelAccount | Admin::DeleteOwnChannelAccount => {
            call.run(channel_accounts::delete).await
        }
        Admin::ReleaseChannelAccount => call.run(channel_accounts::release).await,
        Admin::EraseCustomer | Admin::EraseOwnCustomer => call.run(customers::erase).await,
        Admin::CreateConnector | Admin::CreateOwnConnector => call.run(connectors::create).await,
        Admin::StartOwnConnectorAuthorization => call.run(connectors::authorize).await,
        Admin::CompleteOwnConnectorAuthorization => call.run(connectors::authorized).await,
        Admin::ListConnectors | Admin::ListOwnConnectors => call.run(connectors::list).await,
        Admin::GetConnector | Admin::GetOwnConnector => call.run(connectors::get).await,
        Admin::UpdateConnector | Admin::UpdateOwnConnector => call.run(connectors::update).await,
        Admin::DeleteConnector | Admin::DeleteOwnConnector => call.run(connectors::delete).await,
        Admin::TestConnector | Admin::TestOwnConnector => call.run(connectors::test).await,
        Admin::GetConnectorTeams | Admin::GetOwnConnectorTeams => call.run(connectors::teams).await,
        Admin::GetConnectorPipelines | Admin::GetOwnConnectorPipelines => {
            call.run(connectors::pipelines).await
        }
        Admin::FindConnectorCrmCustomer | Admin::FindOwnConnectorCrmCustomer => {
            call.run(crm_records::customer).await
        }
        Admin::OpenConnectorCrmConversation | Admin::OpenOwnConnectorCrmConversation => {
            call.run(crm_records::conversation).await
        }
        Admin::FindConnectorContact | Admin::FindOwnConnectorContact => {
            call.run(connectors::find_contact).await
        }
        Admin::GetConnectorContact | Admin::GetOwnConnectorContact => call.run(connectors::contact).await,
        Admin::GetConnectorSyncLog | Admin::GetOwnConnectorSyncLog => call.run(connectors::log).await,
        Admin::ReplayConnectorWork | Admin::ReplayOwnConnectorWork => call.run(connectors::replay).await,
        Admin::IssueConsoleLink | Admin::IssueOwnConsoleLink => call.run(console_links::issue).await,
        Admin::ListConsoleSessions | Admin::ListOwnConsoleSessions => call.run(console_links::list).await,
        Admin::RevokeConsoleSession | Admin::RevokeOwnConsoleSession => call.run(console_links::revoke).await,
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
