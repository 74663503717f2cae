//! The admin API's paths, matched without a router so that every id is parsed on the way in.

use domain::error::ApiError;
use domain::ids::{ApiKeyId, BusinessId, ChannelAccountId, ConnectorId};
use worker::Method;

#[derive(Debug, PartialEq, Eq)]
pub enum AdminRoute {
    CreateBusiness,
    GetBusiness(BusinessId),
    UpdateBusiness(BusinessId),
    /// The business's audit log, newest first.
    AuditLog(BusinessId),
    IssueKey(BusinessId),
    ListKeys(BusinessId),
    RevokeKey(ApiKeyId),
    CreateChannelAccount(BusinessId),
    ListChannelAccounts(BusinessId),
    UpdateChannelAccount(ChannelAccountId),
    CreateConnector(BusinessId),
    ListConnectors(BusinessId),
    GetConnector(ConnectorId),
    UpdateConnector(ConnectorId),
    TestConnector(ConnectorId),
    ConnectorTeams(ConnectorId),
    ConnectorPipelines(ConnectorId),
    /// A connector's contact found by its CRM external id (`?external_id=`).
    FindContact(ConnectorId),
    /// A connector's contact by its key: a customer id, or `chatwoot:<contact id>`.
    GetContact(ConnectorId, String),
    SyncLog(ConnectorId),
    Replay(ConnectorId),
    /// Run the maintenance sweep now.
    Sweep,
}

pub fn route(method: Method, path: &str) -> Result<AdminRoute, ApiError> {
    let segments: Vec<&str> = path.trim_end_matches('/').split('/').skip(1).collect();
    let business =
        |id: &str| BusinessId::parse(id).ok_or_else(|| ApiError::not_found(format!("no business {id}")));
    let (route, allow) = match segments.as_slice() {
        ["admin", "businesses"] => (
            matches!(method, Method::Post).then_some(AdminRoute::CreateBusiness),
            "POST",
        ),
        ["admin", "businesses", id] => {
            let id = business(id)?;
            let route = match method {
                Method::Get => Some(AdminRoute::GetBusiness(id)),
                Method::Patch => Some(AdminRoute::UpdateBusiness(id)),
                _ => None,
            };
            (route, "GET, PATCH")
        }
        ["admin", "businesses", id, "audit-log"] => {
            let id = business(id)?;
            ((method == Method::Get).then_some(AdminRoute::AuditLog(id)), "GET")
        }
        ["admin", "businesses", id, "api-keys"] => {
            let id = business(id)?;
            let route = match method {
                Method::Post => Some(AdminRoute::IssueKey(id)),
                Method::Get => Some(AdminRoute::ListKeys(id)),
                _ => None,
            };
            (route, "GET, POST")
        }
        ["admin", "businesses", id, "channel-accounts"] => {
            let id = business(id)?;
            let route = match method {
                Method::Post => Some(AdminRoute::CreateChannelAccount(id)),
                Method::Get => Some(AdminRoute::ListChannelAccounts(id)),
                _ => None,
            };
            (route, "GET, POST")
        }
        ["admin", "businesses", id, "connectors"] => {
            let id = business(id)?;
            let route = match method {
                Method::Post => Some(AdminRoute::CreateConnector(id)),
                Method::Get => Some(AdminRoute::ListConnectors(id)),
                _ => None,
            };
            (route, "GET, POST")
        }
        ["admin", "connectors", id, rest @ ..] => {
            let id =
                ConnectorId::parse(id).ok_or_else(|| ApiError::not_found(format!("no connector {id}")))?;
            match (rest, method) {
                ([], Method::Get) => (Some(AdminRoute::GetConnector(id)), ""),
                ([], Method::Patch) => (Some(AdminRoute::UpdateConnector(id)), ""),
                ([], _) => (None, "GET, PATCH"),
                (["test"], Method::Post) => (Some(AdminRoute::TestConnector(id)), ""),
                (["test"], _) => (None, "POST"),
                (["teams"], Method::Get) => (Some(AdminRoute::ConnectorTeams(id)), ""),
                (["teams"], _) => (None, "GET"),
                (["pipelines"], Method::Get) => (Some(AdminRoute::ConnectorPipelines(id)), ""),
                (["pipelines"], _) => (None, "GET"),
                (["contacts"], Method::Get) => (Some(AdminRoute::FindContact(id)), ""),
                (["contacts"], _) => (None, "GET"),
                (["contacts", key], Method::Get) => (Some(AdminRoute::GetContact(id, (*key).to_owned())), ""),
                (["contacts", _], _) => (None, "GET"),
                (["sync-log"], Method::Get) => (Some(AdminRoute::SyncLog(id)), ""),
                (["sync-log"], _) => (None, "GET"),
                (["replay"], Method::Post) => (Some(AdminRoute::Replay(id)), ""),
                (["replay"], _) => (None, "POST"),
                _ => return Err(ApiError::not_found(format!("no admin endpoint at {path}"))),
            }
        }
        ["admin", "channel-accounts", id] => {
            let id = ChannelAccountId::parse(id)
                .ok_or_else(|| ApiError::not_found(format!("no channel account {id}")))?;
            (
                matches!(method, Method::Patch).then_some(AdminRoute::UpdateChannelAccount(id)),
                "PATCH",
            )
        }
        ["admin", "maintenance", "sweep"] => (
            matches!(method, Method::Post).then_some(AdminRoute::Sweep),
            "POST",
        ),
        ["admin", "api-keys", id] => {
            let id = ApiKeyId::parse(id).ok_or_else(|| ApiError::not_found(format!("no API key {id}")))?;
            (
                matches!(method, Method::Delete).then_some(AdminRoute::RevokeKey(id)),
                "DELETE",
            )
        }
        _ => return Err(ApiError::not_found(format!("no admin endpoint at {path}"))),
    };
    route.ok_or_else(|| ApiError::method_not_allowed(allow))
}

#[cfg(test)]
mod tests {
    use super::*;

    const BUSINESS: &str = "8c5e2a8e-2f7a-4b8e-9c1d-0a1b2c3d4e5f";

    #[test]
    fn each_admin_path_and_method_has_one_route() {
        let business = BusinessId::parse(BUSINESS);
        let key = ApiKeyId::parse(BUSINESS);
        let cases = [
            (
                Method::Post,
                "/admin/businesses".to_owned(),
                Some(AdminRoute::CreateBusiness),
            ),
            (
                Method::Get,
                format!("/admin/businesses/{BUSINESS}"),
                business.clone().map(AdminRoute::GetBusiness),
            ),
            (
                Method::Patch,
                format!("/admin/businesses/{BUSINESS}"),
                business.clone().map(AdminRoute::UpdateBusiness),
            ),
            (
                Method::Get,
                format!("/admin/businesses/{BUSINESS}/audit-log"),
                business.clone().map(AdminRoute::AuditLog),
            ),
            (
                Method::Post,
                format!("/admin/businesses/{BUSINESS}/api-keys"),
                business.clone().map(AdminRoute::IssueKey),
            ),
            (
                Method::Get,
                format!("/admin/businesses/{BUSINESS}/api-keys/"),
                business.map(AdminRoute::ListKeys),
            ),
            (
                Method::Delete,
                format!("/admin/api-keys/{BUSINESS}"),
                key.map(AdminRoute::RevokeKey),
            ),
            (
                Method::Post,
                "/admin/maintenance/sweep".to_owned(),
                Some(AdminRoute::Sweep),
            ),
            (
                Method::Post,
                format!("/admin/businesses/{BUSINESS}/connectors"),
                BusinessId::parse(BUSINESS).map(AdminRoute::CreateConnector),
            ),
            (
                Method::Post,
                format!("/admin/connectors/{BUSINESS}/replay"),
                ConnectorId::parse(BUSINESS).map(AdminRoute::Replay),
            ),
            (
                Method::Get,
                format!("/admin/connectors/{BUSINESS}/sync-log"),
                ConnectorId::parse(BUSINESS).map(AdminRoute::SyncLog),
            ),
        ];
        for (method, path, expected) in cases {
            assert_eq!(route(method, &path).ok(), expected, "{path}");
        }
    }

    #[test]
    fn wrong_methods_unknown_paths_and_malformed_ids_are_refused() {
        let cases = [
            (Method::Delete, "/admin/businesses".to_owned(), 405),
            (Method::Put, format!("/admin/businesses/{BUSINESS}/api-keys"), 405),
            (
                Method::Get,
                "/admin/businesses/not-a-uuid/api-keys".to_owned(),
                404,
            ),
            (Method::Delete, "/admin/api-keys/..%2F..".to_owned(), 404),
            (Method::Get, "/admin/users".to_owned(), 404),
            (Method::Get, "/admin/maintenance/sweep".to_owned(), 405),
            (Method::Post, "/admin/maintenance".to_owned(), 404),
            (Method::Delete, format!("/admin/connectors/{BUSINESS}"), 405),
            (Method::Get, format!("/admin/connectors/{BUSINESS}/test"), 405),
            (Method::Get, format!("/admin/connectors/{BUSINESS}/nothing"), 404),
            (
                Method::Get,
                "/admin/connectors/not-an-id/sync-log".to_owned(),
                404,
            ),
        ];
        for (method, path, status) in cases {
            assert_eq!(
                route(method, &path).err().map(|e| e.status()),
                Some(status),
                "{path}"
            );
        }
    }
}
