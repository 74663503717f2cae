//! Every endpoint crm-edge serves, declared once: the function that serves it, its operation,
//! method and path, and who may call it. The functions route by these tables (404, 405 and `Allow`
//! come from them), and `tests/e2e/openapi/endpoints.json`, written from them by a unit test
//! below, is what the contract tests hold `openapi.json` to.
//!
//! A path's `{name}` segments are its parameters: one non-empty segment each. A trailing `/` on a
//! request's path is ignored.

use crate::error::ApiError;
use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Method {
    Get,
    Head,
    Post,
    Put,
    Patch,
    Delete,
}

impl Method {
    /// In the order an `Allow` header lists them.
    const ALL: [Self; 6] = [
        Self::Get,
        Self::Head,
        Self::Post,
        Self::Put,
        Self::Patch,
        Self::Delete,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Get => "GET",
            Self::Head => "HEAD",
            Self::Post => "POST",
            Self::Put => "PUT",
            Self::Patch => "PATCH",
            Self::Delete => "DELETE",
        }
    }

    /// The method of a request, if it is one an endpoint can take.
    pub fn parse(method: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|known| known.as_str() == method)
    }
}

/// Who may call an endpoint, as `openapi.json` states it (its security schemes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Caller {
    /// Anyone: a health check, the document, the inbox's static assets.
    Anyone,
    /// A business's API key in `x-api-key`.
    ApiKey,
    /// A business's API key in `x-api-key` or as a bearer token.
    ApiKeyOrBearer,
    /// A business's API key, or a signed link's `signature` and `expires` in the query.
    ApiKeyOrSignedLink,
    /// The operator's admin token as a bearer token.
    Admin,
    /// An inbox token (SSO) as a bearer token.
    EmbedToken,
    /// An inbox token (SSO) in the query, for the page a browser opens.
    EmbedTokenInQuery,
    /// A partner's signature over the request, in a header (the scheme names which).
    Signed(Signature),
    /// A partner's proof that `openapi.json` cannot state as a scheme: Meta's verify token in the
    /// query of its subscription check, Mailgun's signature among the form's fields.
    ProofInRequest,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signature {
    Meta,
    Twilio,
    Kustomer,
    Chatwoot,
    /// Standard Webhooks (`webhook-id`, `webhook-timestamp`, `webhook-signature`).
    StandardWebhooks,
}

impl Caller {
    /// The security requirements of `openapi.json`: any one of the lists, each a list of scheme
    /// names that must all be met (an empty list: no credentials needed).
    pub fn requirements(self) -> Vec<Vec<&'static str>> {
        match self {
            Self::Anyone | Self::ProofInRequest => vec![],
            Self::ApiKey => vec![vec!["ApiKey"]],
            Self::ApiKeyOrBearer => vec![vec!["ApiKey"], vec!["ApiKeyBearer"]],
            Self::ApiKeyOrSignedLink => vec![vec!["ApiKey"], vec![]],
            Self::Admin => vec![vec!["AdminToken"]],
            Self::EmbedToken => vec![vec!["EmbedToken"]],
            Self::EmbedTokenInQuery => vec![vec!["EmbedTokenQuery"]],
            Self::Signed(signature) => vec![vec![match signature {
                Signature::Meta => "MetaSignature",
                Signature::Twilio => "TwilioSignature",
                Signature::Kustomer => "KustomerSignature",
                Signature::Chatwoot => "ChatwootSignature",
                Signature::StandardWebhooks => "StandardWebhooksSignature",
            }]],
        }
    }
}

/// One operation of the API; `openapi.json` names it by [`Operation::id`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Operation {
    Health,
    GetOpenApiDocument,
    SyncCustomers,
    BulkCreateCustomers,
    GetCustomer,
    BatchLookupCustomers,
    GetMessagesSince,
    GetConversationsByCustomer,
    UpdateConversation,
    SendMessage,
    UploadAttachment,
    DownloadMedia,
    CreateWebhook,
    ListWebhooks,
    GetWebhook,
    UpdateWebhook,
    DeleteWebhook,
    RotateWebhookSecret,
    TestWebhook,
    ListWebhookDeliveries,
    ReplayWebhookDeliveries,
    ListWebhookAttempts,
    EscalateConversation,
    AddCrmNote,
    GetCrmHistory,
    GetCrmAnalytics,
    GenerateSsoToken,
    RevokeSsoToken,
    GetEmbeddedInbox,
    HeadEmbeddedInbox,
    GetEmbedAssetCss,
    HeadEmbedAssetCss,
    GetEmbedAssetJs,
    HeadEmbedAssetJs,
    GetEmbedTimeline,
    PostEmbedReply,
    ListCrmLinks,
    AddCrmLink,
    DeleteCrmLink,
    SetCrmLinkStatus,
    ListAllCrmLinks,
    RefreshCrmLink,
    SearchCrmLinks,
    SearchCrmLinksPost,
    GetCrmLinkDetails,
    VerifyMetaWebhook,
    ReceiveMetaWebhook,
    ReceiveTwilioWebhook,
    ReceiveMailgunWebhook,
    ReceiveKustomerWebhook,
    ReceiveChatwootWebhook,
    PushCrmLinkData,
    CreateBusiness,
    GetBusiness,
    UpdateBusiness,
    GetAuditLog,
    IssueApiKey,
    ListApiKeys,
    RevokeApiKey,
    CreateChannelAccount,
    ListChannelAccounts,
    UpdateChannelAccount,
    CreateConnector,
    ListConnectors,
    GetConnector,
    UpdateConnector,
    TestConnector,
    GetConnectorTeams,
    GetConnectorPipelines,
    FindConnectorContact,
    GetConnectorContact,
    GetConnectorSyncLog,
    ReplayConnectorWork,
    RunMaintenanceSweep,
}

impl Operation {
    /// The `operationId` of `openapi.json`: the name in lower camel case (`syncCustomers`).
    pub fn id(self) -> String {
        let name = format!("{self:?}");
        let mut chars = name.chars();
        chars
            .next()
            .map(|first| first.to_ascii_lowercase().to_string() + chars.as_str())
            .unwrap_or_default()
    }
}

impl fmt::Display for Operation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.id())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Endpoint {
    pub operation: Operation,
    pub method: Method,
    pub path: &'static str,
    pub caller: Caller,
}

/// A function (its `functions.toml` name: the gateway forwards its endpoints' paths to it) and
/// the endpoints it serves. A function's bundle holds its own table only.
#[derive(Debug)]
pub struct Function {
    pub name: &'static str,
    pub endpoints: &'static [Endpoint],
}

const fn endpoint(operation: Operation, method: Method, path: &'static str, caller: Caller) -> Endpoint {
    Endpoint {
        operation,
        method,
        path,
        caller,
    }
}

use Caller::{Admin, ApiKey, ApiKeyOrBearer, Signed};
use Method::{Delete, Get, Head, Patch, Post, Put};
use Operation as Op;

/// Every function that serves endpoints, with its endpoints.
pub const FUNCTIONS: &[&Function] = &[
    &GATEWAY,
    &CUSTOMERS,
    &CUSTOMERS_SYNC,
    &CUSTOMERS_BULK_CREATE,
    &CUSTOMERS_BATCH_LOOKUP,
    &MESSAGES_SINCE,
    &CONVERSATIONS_BY_CUSTOMER,
    &CONVERSATIONS,
    &SEND_MESSAGE,
    &UPLOAD_ATTACHMENT,
    &DOWNLOAD_MEDIA,
    &WEBHOOKS,
    &CRM_API,
    &SSO_TOKEN,
    &EMBED_INBOX,
    &KNOWLEDGE,
    &RECEIVER_META,
    &RECEIVER_TWILIO,
    &RECEIVER_EMAIL,
    &RECEIVER_KUSTOMER,
    &RECEIVER_CHATWOOT,
    &ADMIN,
];

#[rustfmt::skip]
pub const GATEWAY: Function = Function { name: "gateway", endpoints: &[
    endpoint(Op::Health,             Get, "/health",       Caller::Anyone),
    endpoint(Op::GetOpenApiDocument, Get, "/openapi.json", Caller::Anyone),
]};

#[rustfmt::skip]
pub const CUSTOMERS: Function = Function { name: "customers", endpoints: &[
    endpoint(Op::GetCustomer, Get, "/api-customers", ApiKey),
]};

#[rustfmt::skip]
pub const CUSTOMERS_SYNC: Function = Function { name: "customers-sync", endpoints: &[
    endpoint(Op::SyncCustomers, Post, "/api-customers-sync", ApiKey),
]};

#[rustfmt::skip]
pub const CUSTOMERS_BULK_CREATE: Function = Function { name: "customers-bulk-create", endpoints: &[
    endpoint(Op::BulkCreateCustomers, Post, "/api-customers-bulk-create", ApiKey),
]};

#[rustfmt::skip]
pub const CUSTOMERS_BATCH_LOOKUP: Function = Function { name: "customers-batch-lookup", endpoints: &[
    endpoint(Op::BatchLookupCustomers, Post, "/api-customers-batch-lookup", ApiKey),
]};

#[rustfmt::skip]
pub const MESSAGES_SINCE: Function = Function { name: "messages-since", endpoints: &[
    endpoint(Op::GetMessagesSince, Get, "/api-messages-since", ApiKey),
]};

#[rustfmt::skip]
pub const CONVERSATIONS_BY_CUSTOMER: Function = Function { name: "conversations-by-customer", endpoints: &[
    endpoint(Op::GetConversationsByCustomer, Get, "/api-conversations-by-customer", ApiKey),
]};

#[rustfmt::skip]
pub const CONVERSATIONS: Function = Function { name: "conversations", endpoints: &[
    endpoint(Op::UpdateConversation, Patch, "/api-conversations/{conversation_id}", ApiKey),
]};

#[rustfmt::skip]
pub const SEND_MESSAGE: Function = Function { name: "send-message", endpoints: &[
    endpoint(Op::SendMessage, Post, "/api-send-message", ApiKey),
]};

#[rustfmt::skip]
pub const UPLOAD_ATTACHMENT: Function = Function { name: "upload-attachment", endpoints: &[
    endpoint(Op::UploadAttachment, Post, "/api-upload-attachment", ApiKey),
]};

#[rustfmt::skip]
pub const DOWNLOAD_MEDIA: Function = Function { name: "download-media", endpoints: &[
    endpoint(Op::DownloadMedia, Get, "/api/download-media", Caller::ApiKeyOrSignedLink),
]};

#[rustfmt::skip]
pub const WEBHOOKS: Function = Function { name: "webhooks", endpoints: &[
    endpoint(Op::CreateWebhook,           Post,   "/api-webhooks",                            ApiKey),
    endpoint(Op::ListWebhooks,            Get,    "/api-webhooks",                            ApiKey),
    endpoint(Op::GetWebhook,              Get,    "/api-webhooks/{webhook_id}",               ApiKey),
    endpoint(Op::UpdateWebhook,           Patch,  "/api-webhooks/{webhook_id}",               ApiKey),
    endpoint(Op::DeleteWebhook,           Delete, "/api-webhooks/{webhook_id}",               ApiKey),
    endpoint(Op::RotateWebhookSecret,     Post,   "/api-webhooks/{webhook_id}/rotate-secret", ApiKey),
    endpoint(Op::TestWebhook,             Post,   "/api-webhooks/{webhook_id}/test",          ApiKey),
    endpoint(Op::ListWebhookDeliveries,   Get,    "/api-webhooks/{webhook_id}/deliveries",    ApiKey),
    endpoint(Op::ReplayWebhookDeliveries, Post,   "/api-webhooks/{webhook_id}/replay",        ApiKey),
    endpoint(Op::ListWebhookAttempts,     Get,    "/api-webhook-attempts",                    ApiKey),
]};

#[rustfmt::skip]
pub const CRM_API: Function = Function { name: "crm-api", endpoints: &[
    endpoint(Op::EscalateConversation, Post, "/api-escalations",   ApiKey),
    endpoint(Op::AddCrmNote,           Post, "/api-crm-notes",     ApiKey),
    endpoint(Op::GetCrmHistory,        Get,  "/api-crm-history",   ApiKey),
    endpoint(Op::GetCrmAnalytics,      Get,  "/api-crm-analytics", ApiKey),
]};

#[rustfmt::skip]
pub const SSO_TOKEN: Function = Function { name: "sso-token", endpoints: &[
    endpoint(Op::GenerateSsoToken, Post, "/api-sso-generate-token", ApiKey),
    endpoint(Op::RevokeSsoToken,   Post, "/api-sso-revoke-token",   ApiKey),
]};

#[rustfmt::skip]
pub const EMBED_INBOX: Function = Function { name: "embed-inbox", endpoints: &[
    endpoint(Op::GetEmbeddedInbox,  Get,  "/embed/inbox",            Caller::EmbedTokenInQuery),
    endpoint(Op::HeadEmbeddedInbox, Head, "/embed/inbox",            Caller::EmbedTokenInQuery),
    endpoint(Op::GetEmbedAssetCss,  Get,  "/embed/assets/inbox.css", Caller::Anyone),
    endpoint(Op::HeadEmbedAssetCss, Head, "/embed/assets/inbox.css", Caller::Anyone),
    endpoint(Op::GetEmbedAssetJs,   Get,  "/embed/assets/inbox.js",  Caller::Anyone),
    endpoint(Op::HeadEmbedAssetJs,  Head, "/embed/assets/inbox.js",  Caller::Anyone),
    endpoint(Op::GetEmbedTimeline,  Get,  "/embed/api/timeline",     Caller::EmbedToken),
    endpoint(Op::PostEmbedReply,    Post, "/embed/api/reply",        Caller::EmbedToken),
]};

#[rustfmt::skip]
pub const KNOWLEDGE: Function = Function { name: "knowledge", endpoints: &[
    endpoint(Op::ListCrmLinks,       Get,    "/api/dashboard/crm-links",             ApiKeyOrBearer),
    endpoint(Op::AddCrmLink,         Post,   "/api/dashboard/crm-links",             ApiKeyOrBearer),
    endpoint(Op::DeleteCrmLink,      Delete, "/api/dashboard/crm-links",             ApiKeyOrBearer),
    endpoint(Op::SetCrmLinkStatus,   Put,    "/api/dashboard/crm-links/status",      ApiKeyOrBearer),
    endpoint(Op::ListAllCrmLinks,    Get,    "/api/dashboard/crm-links/all",         ApiKeyOrBearer),
    endpoint(Op::RefreshCrmLink,     Post,   "/api/dashboard/crm-links/refresh",     ApiKeyOrBearer),
    endpoint(Op::SearchCrmLinks,     Get,    "/api/dashboard/rag/search",            ApiKeyOrBearer),
    endpoint(Op::SearchCrmLinksPost, Post,   "/api/dashboard/rag/search",            ApiKeyOrBearer),
    endpoint(Op::GetCrmLinkDetails,  Get,    "/api/dashboard/rag/documents/details", ApiKeyOrBearer),
    endpoint(Op::PushCrmLinkData,    Post,   "/webhooks/crm-links/{link_id}",        Signed(Signature::StandardWebhooks)),
]};

#[rustfmt::skip]
pub const RECEIVER_META: Function = Function { name: "receiver-meta", endpoints: &[
    endpoint(Op::VerifyMetaWebhook,  Get,  "/webhooks/meta/{account_id}", Caller::ProofInRequest),
    endpoint(Op::ReceiveMetaWebhook, Post, "/webhooks/meta/{account_id}", Signed(Signature::Meta)),
]};

#[rustfmt::skip]
pub const RECEIVER_TWILIO: Function = Function { name: "receiver-twilio", endpoints: &[
    endpoint(Op::ReceiveTwilioWebhook, Post, "/webhooks/twilio/{account_id}", Signed(Signature::Twilio)),
]};

#[rustfmt::skip]
pub const RECEIVER_EMAIL: Function = Function { name: "receiver-email", endpoints: &[
    endpoint(Op::ReceiveMailgunWebhook, Post, "/webhooks/mailgun/{account_id}", Caller::ProofInRequest),
]};

#[rustfmt::skip]
pub const RECEIVER_KUSTOMER: Function = Function { name: "receiver-kustomer", endpoints: &[
    endpoint(Op::ReceiveKustomerWebhook, Post, "/api/webhooks/kustomer/{connector_id}", Signed(Signature::Kustomer)),
]};

#[rustfmt::skip]
pub const RECEIVER_CHATWOOT: Function = Function { name: "receiver-chatwoot", endpoints: &[
    endpoint(Op::ReceiveChatwootWebhook, Post, "/webhooks/chatwoot/{connector_id}", Signed(Signature::Chatwoot)),
]};

#[rustfmt::skip]
pub const ADMIN: Function = Function { name: "admin", endpoints: &[
    endpoint(Op::CreateBusiness,        Post,   "/admin/businesses",                                       Admin),
    endpoint(Op::GetBusiness,           Get,    "/admin/businesses/{business_id}",                         Admin),
    endpoint(Op::UpdateBusiness,        Patch,  "/admin/businesses/{business_id}",                         Admin),
    endpoint(Op::GetAuditLog,           Get,    "/admin/businesses/{business_id}/audit-log",               Admin),
    endpoint(Op::IssueApiKey,           Post,   "/admin/businesses/{business_id}/api-keys",                Admin),
    endpoint(Op::ListApiKeys,           Get,    "/admin/businesses/{business_id}/api-keys",                Admin),
    endpoint(Op::RevokeApiKey,          Delete, "/admin/api-keys/{key_id}",                                Admin),
    endpoint(Op::CreateChannelAccount,  Post,   "/admin/businesses/{business_id}/channel-accounts",        Admin),
    endpoint(Op::ListChannelAccounts,   Get,    "/admin/businesses/{business_id}/channel-accounts",        Admin),
    endpoint(Op::UpdateChannelAccount,  Patch,  "/admin/channel-accounts/{account_id}",                    Admin),
    endpoint(Op::CreateConnector,       Post,   "/admin/businesses/{business_id}/connectors",              Admin),
    endpoint(Op::ListConnectors,        Get,    "/admin/businesses/{business_id}/connectors",              Admin),
    endpoint(Op::GetConnector,          Get,    "/admin/connectors/{connector_id}",                        Admin),
    endpoint(Op::UpdateConnector,       Patch,  "/admin/connectors/{connector_id}",                        Admin),
    endpoint(Op::TestConnector,         Post,   "/admin/connectors/{connector_id}/test",                   Admin),
    endpoint(Op::GetConnectorTeams,     Get,    "/admin/connectors/{connector_id}/teams",                  Admin),
    endpoint(Op::GetConnectorPipelines, Get,    "/admin/connectors/{connector_id}/pipelines",              Admin),
    endpoint(Op::FindConnectorContact,  Get,    "/admin/connectors/{connector_id}/contacts",               Admin),
    endpoint(Op::GetConnectorContact,   Get,    "/admin/connectors/{connector_id}/contacts/{contact_key}", Admin),
    endpoint(Op::GetConnectorSyncLog,   Get,    "/admin/connectors/{connector_id}/sync-log",               Admin),
    endpoint(Op::ReplayConnectorWork,   Post,   "/admin/connectors/{connector_id}/replay",                 Admin),
    endpoint(Op::RunMaintenanceSweep,   Post,   "/admin/maintenance/sweep",                                Admin),
]};

/// A request matched to its endpoint, with the path's parameters in the order the path names them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Routed {
    pub endpoint: &'static Endpoint,
    params: Vec<(&'static str, String)>,
}

impl Routed {
    pub fn operation(&self) -> Operation {
        self.endpoint.operation
    }

    /// The path's `{name}` segment.
    pub fn param(&self, name: &str) -> Result<&str, ApiError> {
        self.params
            .iter()
            .find(|(known, _)| *known == name)
            .map(|(_, value)| value.as_str())
            .ok_or_else(|| {
                ApiError::internal(
                    "routing a request",
                    format!("{} has no {{{name}}}", self.endpoint.path),
                )
            })
    }

    /// The path's `{name}` segment parsed by `parse`, or 404 `no <what> <segment>`: an id that
    /// cannot exist names nothing.
    pub fn id<T>(
        &self,
        name: &str,
        what: &str,
        parse: impl FnOnce(&str) -> Option<T>,
    ) -> Result<T, ApiError> {
        let segment = self.param(name)?;
        parse(segment).ok_or_else(|| ApiError::not_found(format!("no {what} {segment}")))
    }

    /// The error a handler returns for an operation of its table it has no arm for: our bug.
    pub fn not_served(&self, function: &Function) -> ApiError {
        ApiError::internal(
            "routing a request",
            format!(
                "{} {} has no handler in {}",
                self.endpoint.method.as_str(),
                self.endpoint.path,
                function.name
            ),
        )
    }
}

/// Why a request matched no endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Miss {
    /// No endpoint of the function has this path.
    NotFound,
    /// The path is an endpoint's, not with this method: the methods it takes, as `Allow` lists
    /// them.
    NotAllowed(String),
}

impl Miss {
    /// The API's answer to a miss: 404 `no endpoint at <path>`, or 405 with `Allow`.
    pub fn into_error(self, path: &str) -> ApiError {
        match self {
            Self::NotFound => ApiError::not_found(format!("no endpoint at {path}")),
            Self::NotAllowed(allow) => ApiError::method_not_allowed(allow),
        }
    }
}

/// The endpoint of `function` that `method` and `path` name.
pub fn route(function: &Function, method: &str, path: &str) -> Result<Routed, Miss> {
    let path = path.trim_end_matches('/');
    let mut allowed = Vec::new();
    for endpoint in function.endpoints {
        let Some(params) = matches(endpoint.path, path) else {
            continue;
        };
        if endpoint.method.as_str() == method {
            return Ok(Routed { endpoint, params });
        }
        allowed.push(endpoint.method);
    }
    if allowed.is_empty() {
        return Err(Miss::NotFound);
    }
    let allow: Vec<&str> = Method::ALL
        .into_iter()
        .filter(|known| allowed.contains(known))
        .map(Method::as_str)
        .collect();
    Err(Miss::NotAllowed(allow.join(", ")))
}

/// [`route`], a miss answered as the API answers it.
pub fn route_or_error(function: &Function, method: &str, path: &str) -> Result<Routed, ApiError> {
    route(function, method, path).map_err(|miss| miss.into_error(path))
}

/// The parameters of `template` in `path`, if the path is the template's.
fn matches(template: &'static str, path: &str) -> Option<Vec<(&'static str, String)>> {
    let mut wanted = template.split('/');
    let mut given = path.split('/');
    let mut params = Vec::new();
    loop {
        match (wanted.next(), given.next()) {
            (None, None) => return Some(params),
            (Some(part), Some(segment)) => {
                if let Some(name) = part.strip_prefix('{').and_then(|rest| rest.strip_suffix('}')) {
                    if segment.is_empty() {
                        return None;
                    }
                    params.push((name, segment.to_owned()));
                } else if part != segment {
                    return None;
                }
            }
            _ => return None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn a_path_and_method_name_one_endpoint_and_its_parameters() {
        let routed = route(&ADMIN, "GET", "/admin/connectors/abc/contacts/chatwoot:42/")
            .unwrap_or_else(|miss| panic!("{miss:?}"));
        assert_eq!(routed.operation(), Operation::GetConnectorContact);
        assert_eq!(routed.param("connector_id").ok(), Some("abc"));
        assert_eq!(routed.param("contact_key").ok(), Some("chatwoot:42"));
        assert!(routed.param("business_id").is_err());
        let routed =
            route(&KNOWLEDGE, "POST", "/api/dashboard/rag/search").unwrap_or_else(|miss| panic!("{miss:?}"));
        assert_eq!(routed.operation(), Operation::SearchCrmLinksPost);
    }

    #[test]
    fn another_method_is_405_with_every_method_of_the_path() {
        assert_eq!(
            route(&KNOWLEDGE, "PATCH", "/api/dashboard/crm-links"),
            Err(Miss::NotAllowed("GET, POST, DELETE".to_owned()))
        );
        assert_eq!(
            route(&ADMIN, "PUT", "/admin/businesses/b1"),
            Err(Miss::NotAllowed("GET, PATCH".to_owned()))
        );
        assert_eq!(
            route(&WEBHOOKS, "HEAD", "/api-webhooks/w1/test"),
            Err(Miss::NotAllowed("POST".to_owned()))
        );
        assert_eq!(
            route(&ADMIN, "GET", "/admin/maintenance/sweep"),
            Err(Miss::NotAllowed("POST".to_owned()))
        );
        assert_eq!(
            route(&WEBHOOKS, "PUT", "/api-webhooks/w1"),
            Err(Miss::NotAllowed("GET, PATCH, DELETE".to_owned()))
        );
    }

    #[test]
    fn a_path_of_no_endpoint_of_the_function_is_404() {
        for (function, path) in [
            (&ADMIN, "/admin/businesses/b1/unknown"),
            (&ADMIN, "/admin/connectors//test"),
            (&ADMIN, "/api-webhooks"),
            (&ADMIN, "/admin/maintenance"),
            (&ADMIN, "/admin/users"),
            (&WEBHOOKS, "/api-webhooks/w1/test/more"),
            (&RECEIVER_META, "/webhooks/meta/"),
            (&RECEIVER_META, "/webhooks/meta"),
        ] {
            assert_eq!(
                route(function, "GET", path),
                Err(Miss::NotFound),
                "{} {path}",
                function.name
            );
        }
        assert_eq!(
            route_or_error(&ADMIN, "GET", "/admin/nothing")
                .err()
                .map(|error| error.body.message),
            Some("no endpoint at /admin/nothing".to_owned())
        );
    }

    #[test]
    fn an_id_that_cannot_exist_names_nothing() {
        let routed =
            route(&ADMIN, "GET", "/admin/businesses/not-an-id").unwrap_or_else(|miss| panic!("{miss:?}"));
        let error = routed
            .id("business_id", "business", crate::ids::BusinessId::parse)
            .err();
        assert_eq!(
            error.map(|error| error.body.message),
            Some("no business not-an-id".to_owned())
        );
        let routed =
            route(&ADMIN, "DELETE", "/admin/api-keys/..%2F..").unwrap_or_else(|miss| panic!("{miss:?}"));
        assert_eq!(
            routed
                .id("key_id", "API key", crate::ids::ApiKeyId::parse)
                .err()
                .map(|e| e.status()),
            Some(404)
        );
    }

    #[test]
    fn operations_paths_and_methods_are_each_declared_once() {
        let mut operations = HashSet::new();
        let mut routes = HashSet::new();
        let mut names = HashSet::new();
        for function in FUNCTIONS {
            assert!(names.insert(function.name), "{} twice", function.name);
        }
        for endpoint in FUNCTIONS.iter().flat_map(|function| function.endpoints) {
            assert!(
                operations.insert(endpoint.operation),
                "{} twice",
                endpoint.operation
            );
            assert!(
                routes.insert((endpoint.method, endpoint.path)),
                "{:?} {} twice",
                endpoint.method,
                endpoint.path
            );
            assert!(
                endpoint.path.starts_with('/') && !endpoint.path.ends_with('/'),
                "{}",
                endpoint.path
            );
        }
        assert_eq!(Operation::SyncCustomers.id(), "syncCustomers");
        assert_eq!(Operation::GetOpenApiDocument.id(), "getOpenApiDocument");
    }

    /// The table as the contract tests read it: one entry per endpoint.
    fn table_json() -> String {
        let entries: Vec<serde_json::Value> = FUNCTIONS
            .iter()
            .flat_map(|function| {
                function
                    .endpoints
                    .iter()
                    .map(move |endpoint| (function.name, endpoint))
            })
            .map(|(function, endpoint)| {
                serde_json::json!({
                    "operation": endpoint.operation.id(),
                    "function": function,
                    "method": endpoint.method.as_str(),
                    "path": endpoint.path,
                    "security": endpoint.caller.requirements(),
                })
            })
            .collect();
        let mut text = serde_json::to_string_pretty(&entries).unwrap_or_default();
        text.push('\n');
        text
    }

    /// `tests/e2e/openapi/endpoints.json` is this table; `CRM_EDGE_WRITE_ENDPOINTS=1 cargo test -p
    /// domain endpoints_json` writes it after a change.
    #[test]
    fn endpoints_json_is_the_table() {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../tests/e2e/openapi/endpoints.json"
        );
        let table = table_json();
        if std::env::var_os("CRM_EDGE_WRITE_ENDPOINTS").is_some() {
            std::fs::write(path, &table).unwrap_or_else(|error| panic!("writing {path}: {error}"));
        }
        let written = std::fs::read_to_string(path).unwrap_or_default();
        assert!(
            written == table,
            "{path} is not the endpoint table: run CRM_EDGE_WRITE_ENDPOINTS=1 cargo test -p domain endpoints_json"
        );
    }
}
