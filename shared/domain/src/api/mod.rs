//! Every endpoint crm-edge serves, declared once, beside the types it takes and answers with.
//!
//! A function's endpoints are one [`function!`] declaration in the module of its resource
//! (`api::customers`, `api::webhooks`, …): per endpoint its operation, method, path, who may call
//! it, its body limit and whether it takes an `Idempotency-Key`, and (for the contract) its
//! summary and description, the types of its query, body and answers, and its errors. From it:
//!
//! - the function routes a request ([`route`]): 404, 405 and `Allow` follow from the table, and
//!   the operation is an enum of the function's own, so a handler's `match` is exhaustive;
//! - `edge::platform::call::serve` checks the caller as declared before the handler runs, and reads the
//!   body under the declared limit (`edge::platform::call::Call`);
//! - `openapi.json` and the gateway's route table are written natively from it (`api::openapi`,
//!   compiled only with the `openapi` feature, so the wasm bundles carry none of it):
//!   `scripts/configure` writes them, `--check` fails on drift.
//!
//! A path's `{name}` segments are its parameters: one non-empty segment each. A trailing `/` on a
//! request's path is ignored.

use crate::error::ApiError;
use std::fmt;

/// Declares one function's endpoints: the table it routes by (a `Function` constant), the enum
/// of its operations, and, with the `openapi` feature, each operation's contract.
///
/// ```text
/// function! {
///     /// What the function does.
///     pub const NAME: Function<Operations> = "functions.toml name", tag "openapi tag";
///     /// The operation's summary.
///     ///
///     /// Its description.
///     OperationName = post("/path", Caller).idempotent() => |c| c.json::<BodyIn>().ok::<AnswerOut>(200);
///     /// An operation served on a second path too (the operator's and the business's own).
///     OtherName = get("/admin/businesses/{business_id}/thing", Admin) => |c| c.ok::<Thing>(200),
///     /// The twin's own summary, if it reads otherwise (else the operation's).
///     also OwnName = get("/api-thing", ApiKey).console() => |c| c.ok::<Thing>(200);
/// }
/// ```
///
/// An operation's name in lower camel case is its `operationId`; the first paragraph of its doc
/// comment is its summary, the rest its description. The closure after `=>` builds its
/// [`openapi::Contract`] and is compiled only with the `openapi` feature.
///
/// An `also` twin is the same operation (one enum variant, one handler) on another path and for
/// another caller, with its own `operationId`; its doc comment and contract are the operation's
/// unless it gives its own.
macro_rules! function {
    (
        $(#[doc = $function_doc:literal])*
        pub const $function:ident: Function<$operations:ident> = $name:literal $(, owns $owns:literal)?, tag $tag:literal;
        $(
            $(#[doc = $doc:literal])*
            $operation:ident = $route:expr => $contract:expr
            $(, $(#[doc = $twin_doc:literal])* also $twin:ident = $twin_route:expr $(=> $twin_contract:expr)?)?;
        )+
    ) => {
        $(#[doc = $function_doc])*
        pub const $function: $crate::api::Function<$operations> = $crate::api::Function {
            name: $name,
            owns: function!(@owns $($owns)?),
            endpoints: &[$(
                $crate::api::Endpoint { operation: $operations::$operation, route: $route },
                $($crate::api::Endpoint { operation: $operations::$operation, route: $twin_route },)?
            )+],
        };

        #[doc = concat!("The operations of `", $name, "`.")]
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $operations {
            $($(#[doc = $doc])* $operation),+
        }

        impl $crate::api::Operation for $operations {
            type Keys = $crate::api::KeysTaken<{ $crate::api::keys_taken(&[$($route, $($twin_route,)?)+]) }>;
            const ANY_ADMIN: bool = $crate::api::any_admin(&[$($route, $($twin_route,)?)+]);

            fn name(self) -> &'static str {
                match self {
                    $(Self::$operation => stringify!($operation)),+
                }
            }

            #[cfg(feature = "openapi")]
            fn contract(self, route: &$crate::api::Route) -> (&'static str, $crate::api::openapi::Contract) {
                type Build = fn($crate::api::openapi::Contract) -> $crate::api::openapi::Contract;
                let _ = route; // asked only where an operation has a twin
                match self {
                    $(Self::$operation => {
                        let build: Build = $contract;
                        let docs: &[&str] = &[$($doc),*];
                        $(if *route == $twin_route {
                            let twin: Build = function!(@either build $(, $twin_contract)?);
                            let own: &[&str] = &[$($twin_doc),*];
                            let docs = if own.is_empty() { docs } else { own };
                            return (stringify!($twin), twin($crate::api::openapi::Contract::new($tag, docs)));
                        })?
                        (stringify!($operation), build($crate::api::openapi::Contract::new($tag, docs)))
                    })+
                }
            }
        }
    };
    (@owns) => { None };
    (@owns $owns:literal) => { Some($owns) };
    (@either $default:expr) => { $default };
    (@either $default:expr, $given:expr) => { $given };
}

pub mod admin;
pub mod bots;
pub mod console;
pub mod crm;
pub mod customers;
pub mod embed;
pub mod gateway;
pub mod links;
pub mod messages;
#[cfg(feature = "openapi")]
pub mod openapi;
pub mod receivers;
pub mod webhooks;

/// Largest JSON body a batch endpoint accepts: 1000 customers with generous custom fields.
pub const BATCH_BODY_LIMIT: usize = 4 * 1024 * 1024;
/// Largest JSON body of any other endpoint, unless its declaration says otherwise.
pub const SMALL_BODY_LIMIT: usize = 64 * 1024;

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
    /// A business console's session cookie (`domain::console`), for the console's own endpoints.
    /// An endpoint that takes a key takes a session too where its route says so
    /// ([`Route::console`]).
    ConsoleSession,
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
    HubSpot,
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
            Self::ConsoleSession => vec![vec!["ConsoleSession"]],
            Self::ApiKeyOrSignedLink => vec![vec!["ApiKey"], vec![]],
            Self::Admin => vec![vec!["AdminToken"]],
            Self::EmbedToken => vec![vec!["EmbedToken"]],
            Self::EmbedTokenInQuery => vec![vec!["EmbedTokenQuery"]],
            Self::Signed(signature) => vec![vec![match signature {
                Signature::Meta => "MetaSignature",
                Signature::Twilio => "TwilioSignature",
                Signature::Kustomer => "KustomerSignature",
                Signature::HubSpot => "HubSpotSignature",
                Signature::Chatwoot => "ChatwootSignature",
                Signature::StandardWebhooks => "StandardWebhooksSignature",
            }]],
        }
    }

    /// A business's API key, whose answers carry the key's rate-limit headers.
    pub fn is_keyed(self) -> bool {
        matches!(
            self,
            Self::ApiKey | Self::ApiKeyOrBearer | Self::ApiKeyOrSignedLink
        )
    }
}

/// One function's operations: an enum [`function!`] writes.
pub trait Operation: Copy + PartialEq + fmt::Debug + 'static {
    /// `KeysTaken<_>`: which of a business's credentials some endpoint of the function takes. A
    /// type, not a value, so that a check is not even compiled into a function whose endpoints
    /// take none (the check is asynchronous: a branch a constant rules out would still be a
    /// state of the request's future, and in the bundle).
    type Keys;
    /// Some endpoint of the function takes the admin token: it is checked before routing for any
    /// path below the prefix the function owns (so nothing there, not even which paths exist, is
    /// told without it), and after routing for an admin endpoint elsewhere.
    const ANY_ADMIN: bool;

    /// The operation's name (`SyncCustomers`).
    fn name(self) -> &'static str;

    /// The `operationId` of `openapi.json`: the name in lower camel case (`syncCustomers`).
    fn id(self) -> String {
        operation_id(self.name())
    }

    /// What `openapi.json` says of the operation served by `route`: its name there (a twin's is its
    /// own) and its contract.
    #[cfg(feature = "openapi")]
    fn contract(self, route: &Route) -> (&'static str, openapi::Contract);
}

/// An operation's name in lower camel case: its `operationId` in `openapi.json`.
pub fn operation_id(name: &str) -> String {
    let mut chars = name.chars();
    chars
        .next()
        .map(|first| first.to_ascii_lowercase().to_string() + chars.as_str())
        .unwrap_or_default()
}

/// How a request reaches an endpoint and what the wiring checks before its handler runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Route {
    pub method: Method,
    pub path: &'static str,
    pub caller: Caller,
    /// The most bytes of body the endpoint reads; a longer one is 413.
    pub body_limit: usize,
    /// It takes an `Idempotency-Key`: a retry gets the first answer again.
    pub idempotent: bool,
    /// It takes a business console's session where it takes the business's key: the console
    /// uses it.
    pub console: bool,
}

impl Route {
    const fn new(method: Method, path: &'static str, caller: Caller) -> Self {
        Self {
            method,
            path,
            caller,
            body_limit: SMALL_BODY_LIMIT,
            idempotent: false,
            console: false,
        }
    }

    /// The endpoint takes a console session in place of the key (`domain::console`).
    pub const fn console(mut self) -> Self {
        self.console = true;
        self
    }

    /// The security requirements of `openapi.json`: the caller's, and a console session where the
    /// endpoint takes one.
    pub fn requirements(&self) -> Vec<Vec<&'static str>> {
        let mut requirements = self.caller.requirements();
        if self.console && self.caller.is_keyed() {
            requirements.push(vec!["ConsoleSession"]);
        }
        requirements
    }

    /// The endpoint takes an `Idempotency-Key` (`edge::platform::idempotency`).
    pub const fn idempotent(mut self) -> Self {
        self.idempotent = true;
        self
    }

    /// The endpoint reads up to `bytes` of body.
    pub const fn limit(mut self, bytes: usize) -> Self {
        self.body_limit = bytes;
        self
    }

    /// The path with its `{name}` segments filled in order by `values`, each a path segment
    /// already; None when they are not one for each.
    pub fn path_with(&self, values: &[&str]) -> Option<String> {
        let mut values = values.iter();
        let filled: Option<Vec<&str>> = self
            .path
            .split('/')
            .map(|part| match part.starts_with('{') && part.ends_with('}') {
                true => values.next().copied(),
                false => Some(part),
            })
            .collect();
        filled
            .filter(|_| values.next().is_none())
            .map(|parts| parts.join("/"))
    }

    /// The endpoint takes a batch: up to [`BATCH_BODY_LIMIT`] of body.
    pub const fn batch(self) -> Self {
        self.limit(BATCH_BODY_LIMIT)
    }
}

pub const fn get(path: &'static str, caller: Caller) -> Route {
    Route::new(Method::Get, path, caller)
}

pub const fn head(path: &'static str, caller: Caller) -> Route {
    Route::new(Method::Head, path, caller)
}

pub const fn post(path: &'static str, caller: Caller) -> Route {
    Route::new(Method::Post, path, caller)
}

pub const fn put(path: &'static str, caller: Caller) -> Route {
    Route::new(Method::Put, path, caller)
}

pub const fn patch(path: &'static str, caller: Caller) -> Route {
    Route::new(Method::Patch, path, caller)
}

pub const fn delete(path: &'static str, caller: Caller) -> Route {
    Route::new(Method::Delete, path, caller)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Endpoint<O> {
    pub operation: O,
    pub route: Route,
}

/// A function (its `functions.toml` name) and the endpoints it serves. A function's bundle holds
/// its own table only.
#[derive(Debug)]
pub struct Function<O: 'static> {
    pub name: &'static str,
    pub endpoints: &'static [Endpoint<O>],
    /// A prefix every path below which is the function's to answer, even where no endpoint is
    /// (the admin API tells nothing, not even which paths exist, without the admin token; the
    /// inbox answers its own misses as a page). The gateway hands it all of them.
    pub owns: Option<&'static str>,
}

impl<O: Operation> Function<O> {
    /// The route by which `caller` reaches `operation` (an operation with a twin has one for each
    /// caller): what a client builds its request from.
    pub fn route_for(&self, operation: O, caller: Caller) -> Option<&'static Route> {
        self.endpoints
            .iter()
            .find(|endpoint| endpoint.operation == operation && endpoint.route.caller == caller)
            .map(|endpoint| &endpoint.route)
    }
}

/// Which credentials of a business a function's endpoints take (`Operation::Keys`): none
/// ([`NO_KEYS`]), keys ([`KEYS`]), or keys and console sessions ([`KEYS_AND_SESSIONS`]).
pub struct KeysTaken<const TAKEN: u8>;

pub const NO_KEYS: u8 = 0;
pub const KEYS: u8 = 1;
pub const KEYS_AND_SESSIONS: u8 = 2;

/// What the wiring checks of `routes`: a console session where one takes it (or is the console's
/// own), else a key where one takes a business's API key in `x-api-key` (alone or with a bearer
/// token), else nothing.
pub const fn keys_taken(routes: &[Route]) -> u8 {
    let mut taken = NO_KEYS;
    let mut at = 0;
    while at < routes.len() {
        let route = routes[at];
        let keyed = matches!(route.caller, Caller::ApiKey | Caller::ApiKeyOrBearer);
        if matches!(route.caller, Caller::ConsoleSession) || (keyed && route.console) {
            return KEYS_AND_SESSIONS;
        }
        if keyed {
            taken = KEYS;
        }
        at += 1;
    }
    taken
}

/// Whether any of `routes` takes the admin token.
pub const fn any_admin(routes: &[Route]) -> bool {
    let mut at = 0;
    while at < routes.len() {
        if matches!(routes[at].caller, Caller::Admin) {
            return true;
        }
        at += 1;
    }
    false
}

/// A path parameter's type: the `{name}` it is read from, and what it names (for the 404).
pub trait PathParam: Sized {
    const NAME: &'static str;
    const WHAT: &'static str;
    fn parse(segment: &str) -> Option<Self>;
}

/// The one list of the path's typed parameters: each id type's `{name}`, what it names (the
/// 404's words) and its description in `openapi.json` ([`TYPED_PATH_PARAMS`]).
macro_rules! path_params {
    ($($id:ty => $name:literal, $what:literal, $described:literal;)+) => {
        $(impl PathParam for $id {
            const NAME: &'static str = $name;
            const WHAT: &'static str = $what;
            fn parse(segment: &str) -> Option<Self> {
                <$id>::parse(segment)
            }
        })+

        /// Each typed path parameter: its name, its description and its schema.
        #[cfg(feature = "openapi")]
        pub(crate) const TYPED_PATH_PARAMS: &[(&str, &str, openapi::schema::SchemaFn)] = &[
            $(($name, $described, openapi::schema::schema_of::<$id>),)+
        ];
    };
}

path_params! {
    crate::ids::BusinessId => "business_id", "business", "The business";
    crate::ids::ApiKeyId => "key_id", "API key", "The key's id";
    crate::ids::ChannelAccountId => "account_id", "channel account",
        "The channel account (its webhook_path, for a provider's webhook)";
    crate::ids::ConnectorId => "connector_id", "connector",
        "The connector (its webhook_path, for a CRM's webhook)";
    crate::ids::ConversationId => "conversation_id", "conversation", "The conversation";
    crate::ids::EndpointId => "webhook_id", "webhook", "The webhook endpoint";
    crate::ids::ConsoleSessionId => "session_id", "console session", "The console link or session";
    crate::ids::EscalationId => "escalation_id", "escalation", "The escalation";
    crate::ids::CustomerId => "customer_id", "customer", "The customer";
}

/// A request matched to its endpoint, with the path's parameters in the order the path names them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Routed<O> {
    pub operation: O,
    pub route: &'static Route,
    pub params: Params,
}

/// The `{name}` segments of a request's path.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Params {
    path: &'static str,
    values: Vec<(&'static str, String)>,
}

impl Params {
    /// The path's `{name}` segment.
    pub fn get(&self, name: &str) -> Result<&str, ApiError> {
        self.values
            .iter()
            .find(|(known, _)| *known == name)
            .map(|(_, value)| value.as_str())
            .ok_or_else(|| {
                ApiError::internal("routing a request", format!("{} has no {{{name}}}", self.path))
            })
    }

    /// The path's parameter of type `T`, or 404 `no <what> <segment>`: an id that cannot exist
    /// names nothing.
    pub fn id<T: PathParam>(&self) -> Result<T, ApiError> {
        let segment = self.get(T::NAME)?;
        T::parse(segment).ok_or_else(|| ApiError::not_found(format!("no {} {segment}", T::WHAT)))
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
pub fn route<O: Operation>(
    function: &'static Function<O>,
    method: &str,
    path: &str,
) -> Result<Routed<O>, Miss> {
    let path = path.trim_end_matches('/');
    let mut allowed = Vec::new();
    for endpoint in function.endpoints {
        let Some(values) = matches(endpoint.route.path, path) else {
            continue;
        };
        if endpoint.route.method.as_str() == method {
            return Ok(Routed {
                operation: endpoint.operation,
                route: &endpoint.route,
                params: Params {
                    path: endpoint.route.path,
                    values,
                },
            });
        }
        allowed.push(endpoint.route.method);
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
pub fn route_or_error<O: Operation>(
    function: &'static Function<O>,
    method: &str,
    path: &str,
) -> Result<Routed<O>, ApiError> {
    route(function, method, path).map_err(|miss| miss.into_error(path))
}

/// The function the gateway hands `path` to, by its route table: an exact path (with or without
/// a trailing `/`), else the first prefix it lies below. `exact` and `prefixes` pair a path or
/// prefix with what names the function (the gateway's service binding).
pub fn owner<'a>(
    exact: &[(&'a str, &'a str)],
    prefixes: &[(&'a str, &'a str)],
    path: &str,
) -> Option<&'a str> {
    owning(exact, prefixes, path).map(|owning| owning.owner)
}

/// What of the route table serves a path ([`owning`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Owning<'a> {
    /// What names the function.
    pub owner: &'a str,
    /// The exact path, or the prefix the path is below.
    pub route: &'a str,
    /// Whether `route` is a prefix.
    pub below: bool,
}

/// [`owner`], with the route that matched.
pub fn owning<'a>(
    exact: &[(&'a str, &'a str)],
    prefixes: &[(&'a str, &'a str)],
    path: &str,
) -> Option<Owning<'a>> {
    let path = path.strip_suffix('/').filter(|p| !p.is_empty()).unwrap_or(path);
    if let Some((route, owner)) = exact.iter().find(|(route, _)| *route == path) {
        return Some(Owning {
            owner,
            route,
            below: false,
        });
    }
    prefixes
        .iter()
        .find(|(prefix, _)| path.len() > prefix.len() && path.starts_with(prefix))
        .map(|(route, owner)| Owning {
            owner,
            route,
            below: true,
        })
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
    use crate::ids::{ApiKeyId, BusinessId};

    #[test]
    fn a_path_and_method_name_one_endpoint_and_its_parameters() {
        let routed = route(
            &admin::ADMIN,
            "GET",
            "/admin/connectors/abc/contacts/chatwoot:42/",
        )
        .unwrap_or_else(|miss| panic!("{miss:?}"));
        assert_eq!(routed.operation, admin::Admin::GetConnectorContact);
        assert_eq!(routed.params.get("connector_id").ok(), Some("abc"));
        assert_eq!(routed.params.get("contact_key").ok(), Some("chatwoot:42"));
        assert!(routed.params.get("business_id").is_err());
        let routed = route(&links::KNOWLEDGE, "POST", "/api/dashboard/rag/search")
            .unwrap_or_else(|miss| panic!("{miss:?}"));
        assert_eq!(routed.operation, links::Knowledge::SearchCrmLinksPost);
    }

    #[test]
    fn another_method_is_405_with_every_method_of_the_path() {
        assert_eq!(
            route(&links::KNOWLEDGE, "PUT", "/api/dashboard/crm-links"),
            Err(Miss::NotAllowed("GET, POST, PATCH, DELETE".to_owned()))
        );
        assert_eq!(
            route(&admin::ADMIN, "PUT", "/admin/businesses/b1"),
            Err(Miss::NotAllowed("GET, PATCH".to_owned()))
        );
        assert_eq!(
            route(&webhooks::WEBHOOKS, "HEAD", "/api-webhooks/w1/test"),
            Err(Miss::NotAllowed("POST".to_owned()))
        );
        assert_eq!(
            route(&admin::ADMIN, "GET", "/admin/maintenance/sweep"),
            Err(Miss::NotAllowed("POST".to_owned()))
        );
        assert_eq!(
            route(&webhooks::WEBHOOKS, "PUT", "/api-webhooks/w1"),
            Err(Miss::NotAllowed("GET, PATCH, DELETE".to_owned()))
        );
    }

    #[test]
    fn a_path_of_no_endpoint_of_the_function_is_404() {
        for path in [
            "/admin/businesses/b1/unknown",
            "/admin/connectors//test",
            "/api-webhooks",
            "/admin/maintenance",
            "/admin/users",
        ] {
            assert_eq!(route(&admin::ADMIN, "GET", path), Err(Miss::NotFound), "{path}");
        }
        assert_eq!(
            route(&webhooks::WEBHOOKS, "GET", "/api-webhooks/w1/test/more"),
            Err(Miss::NotFound)
        );
        for path in ["/webhooks/meta/", "/webhooks/meta"] {
            assert_eq!(
                route(&receivers::RECEIVER_META, "GET", path),
                Err(Miss::NotFound),
                "{path}"
            );
        }
        assert_eq!(
            route_or_error(&admin::ADMIN, "GET", "/admin/nothing")
                .err()
                .map(|error| error.body.message),
            Some("no endpoint at /admin/nothing".to_owned())
        );
    }

    #[test]
    fn an_id_that_cannot_exist_names_nothing() {
        let routed = route(&admin::ADMIN, "GET", "/admin/businesses/not-an-id")
            .unwrap_or_else(|miss| panic!("{miss:?}"));
        assert_eq!(
            routed
                .params
                .id::<BusinessId>()
                .err()
                .map(|error| error.body.message),
            Some("no business not-an-id".to_owned())
        );
        let routed = route(&admin::ADMIN, "DELETE", "/admin/api-keys/..%2F..")
            .unwrap_or_else(|miss| panic!("{miss:?}"));
        assert_eq!(
            routed.params.id::<ApiKeyId>().err().map(|e| e.status()),
            Some(404)
        );
    }

    #[test]
    fn a_client_finds_an_operations_route_by_its_caller_and_fills_its_path_in_order() {
        let operator = admin::ADMIN
            .route_for(admin::Admin::GetConnectorContact, Caller::Admin)
            .unwrap_or_else(|| panic!("the operator's route"));
        assert_eq!(
            operator.path_with(&["c1", "chatwoot:42"]).as_deref(),
            Some("/admin/connectors/c1/contacts/chatwoot:42")
        );
        assert_eq!(operator.path_with(&["c1"]), None, "one value too few");
        assert_eq!(operator.path_with(&["c1", "k", "x"]), None, "one value too many");
        let own = admin::ADMIN
            .route_for(admin::Admin::GetConnectorContact, Caller::ApiKey)
            .unwrap_or_else(|| panic!("the twin's route"));
        assert_eq!(own.path, "/api-connectors/{connector_id}/contacts/{contact_key}");
        assert_eq!(
            admin::ADMIN.route_for(admin::Admin::GetCost, Caller::ApiKey),
            None
        );
    }

    #[test]
    fn an_operation_id_is_its_name_in_lower_camel_case() {
        assert_eq!(customers::CustomersSync::SyncCustomers.id(), "syncCustomers");
        assert_eq!(gateway::Gateway::GetOpenApiDocument.id(), "getOpenApiDocument");
    }
}
