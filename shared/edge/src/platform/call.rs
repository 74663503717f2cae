//! A request on its way to its handler. [`serve`] routes it by the function's declarations
//! (`domain::api`), checks the caller as its endpoint declares, and hands the handler what its
//! parameters ask for: a handler's signature is its contract. One that takes a [`Tenant`] is
//! only reached with an authenticated business's key; one that takes [`Json<T>`] is only
//! reached with a body that is JSON, within the endpoint's limit, read as `T`.
//!
//! The order is the wiring's, the same for every endpoint: the admin token (for a function of
//! the admin's), the route (404, 405), the API key (401), then the handler's parameters in the
//! order it names them (path ids, query, body), inside the `Idempotency-Key` guard where the
//! endpoint takes one, so that a retry replays even a refusal of its body.

use crate::platform::audit::Audit;
use crate::platform::auth::Authenticated;
use crate::runtime::Internal;
use crate::runtime::{Bindings, Request, Response};
use crate::{Env, db, platform::auth, platform::http, runtime};
use domain::api::{self, Caller, Function, KeysTaken, Miss, Operation, Params, PathParam, Route};
use domain::audit::Actor;
use domain::error::{ApiError, ErrorCode};
use domain::ids::BusinessId;
use domain::query;
use domain::tenant::Tenant;
use serde::Serialize;
use serde::de::DeserializeOwned;

/// A routed request, its endpoint's declaration, and what has been read of it.
pub struct Call {
    req: Option<Request>,
    env: Env,
    route: &'static Route,
    params: Params,
    authenticated: Option<Authenticated>,
    body: Option<Vec<u8>>,
}

/// Serves `function`'s endpoints: routes the request, checks its caller as the endpoint declares
/// (a business's API key is authenticated here, and its handler is given the `Tenant`; a
/// partner's proof is checked by the handler's `crate::platform::signed::Signed` parameter, before the
/// handler runs), and hands the operation and the call to `dispatch`, which runs the operation's handler with [`Call::run`].
/// A path or method of no endpoint is the API's 404, or 405 with `Allow`.
pub async fn serve<O, D>(
    function: &'static Function<O>,
    req: Request,
    bindings: Bindings,
    dispatch: D,
) -> worker::Result<Response>
where
    O: Operation<Keys: KeyCheck>,
    D: AsyncFnOnce(O, Call) -> Result<Response, ApiError>,
{
    serve_or(
        function,
        req,
        bindings,
        |miss, path| Err(miss.into_error(path)),
        dispatch,
    )
    .await
}

/// [`serve`], with `missed` answering a request that names no endpoint (the embedded inbox
/// answers its pages' misses as pages).
pub async fn serve_or<O, M, D>(
    function: &'static Function<O>,
    req: Request,
    bindings: Bindings,
    missed: M,
    dispatch: D,
) -> worker::Result<Response>
where
    O: Operation<Keys: KeyCheck>,
    M: FnOnce(Miss, &str) -> Result<Response, ApiError>,
    D: AsyncFnOnce(O, Call) -> Result<Response, ApiError>,
{
    http::serve(req, bindings, async move |req, env| {
        let path = req.path();
        // Nothing of the admin API, not even which paths exist, is told without the token.
        let admin_checked = O::ANY_ADMIN && function.owns.is_some_and(|owned| path.starts_with(owned));
        if admin_checked {
            auth::authorize_admin(&req, &env)?;
        }
        let routed = match api::route(function, &runtime::request_method(&req), &path) {
            Ok(routed) => routed,
            Err(miss) => return missed(miss, &path),
        };
        if O::ANY_ADMIN && !admin_checked && routed.route.caller == Caller::Admin {
            auth::authorize_admin(&req, &env)?;
        }
        let authenticated = O::Keys::authenticate(routed.route, &req, &env).await?;
        let call = Call {
            req: Some(req),
            env,
            route: routed.route,
            params: routed.params,
            authenticated,
            body: None,
        };
        dispatch(routed.operation, call).await
    })
    .await
}

/// The API key check of a function whose endpoints take keys, or none at all
/// (`domain::api::Operation::Keys`).
#[allow(
    async_fn_in_trait,
    reason = "workers run one request per isolate thread: no Send bound is wanted"
)]
pub trait KeyCheck {
    /// The business whose key (or console session) the request carries, when its endpoint takes
    /// one.
    async fn authenticate(route: &Route, req: &Request, env: &Env)
    -> Result<Option<Authenticated>, ApiError>;
}

impl KeyCheck for KeysTaken<{ api::KEYS_AND_SESSIONS }> {
    async fn authenticate(
        route: &Route,
        req: &Request,
        env: &Env,
    ) -> Result<Option<Authenticated>, ApiError> {
        match route.caller {
            Caller::ApiKey if route.console => auth::authenticate_or_session(req, env).await.map(Some),
            Caller::ApiKeyOrBearer if route.console => {
                auth::authenticate_bearer_key_or_session(req, env).await.map(Some)
            }
            Caller::ConsoleSession => auth::authenticate_console(req, env).await.map(Some),
            _ => KeysTaken::<{ api::KEYS }>::authenticate(route, req, env).await,
        }
    }
}

impl KeyCheck for KeysTaken<{ api::KEYS }> {
    async fn authenticate(
        route: &Route,
        req: &Request,
        env: &Env,
    ) -> Result<Option<Authenticated>, ApiError> {
        match route.caller {
            Caller::ApiKey => auth::authenticate(req, env).await.map(Some),
            Caller::ApiKeyOrBearer => auth::authenticate_bearer_or_key(req, env).await.map(Some),
            _ => Ok(None),
        }
    }
}

impl KeyCheck for KeysTaken<{ api::NO_KEYS }> {
    async fn authenticate(_: &Route, _: &Request, _: &Env) -> Result<Option<Authenticated>, ApiError> {
        Ok(None)
    }
}

impl Call {
    /// Runs `handler` with the parameters it names, inside the `Idempotency-Key` guard when the
    /// endpoint takes one.
    pub async fn run<Args, H: Handler<Args>>(self, handler: H) -> Result<Response, ApiError> {
        if self.route.idempotent {
            return self.run_once(handler).await;
        }
        handler.handle(self).await
    }

    /// The guard is compiled into the functions that declare an idempotent endpoint only (edge's
    /// `idempotency` feature; `tools/contract` checks that they enable it), since it brings D1
    /// claims and sealing with it.
    #[cfg(feature = "idempotency")]
    async fn run_once<Args, H: Handler<Args>>(mut self, handler: H) -> Result<Response, ApiError> {
        match self.idempotency_claim().await? {
            None => handler.handle(self).await,
            Some((tenant, key, fingerprint)) => {
                let env = self.env.clone();
                // Boxed, so that the guard is compiled once, not once per handler.
                let run: std::pin::Pin<Box<dyn Future<Output = Result<Response, ApiError>>>> =
                    Box::pin(handler.handle(self));
                crate::platform::idempotency::guarded(&env, &tenant, &key, &fingerprint, run).await
            }
        }
    }

    /// The business, key and fingerprint a request with an `Idempotency-Key` claims; None
    /// without one.
    #[cfg(feature = "idempotency")]
    async fn idempotency_claim(
        &mut self,
    ) -> Result<Option<(Tenant, domain::idempotency::IdempotencyKey, String)>, ApiError> {
        let Some(key) = crate::platform::idempotency::key_of(self.request()?)? else {
            return Ok(None);
        };
        let tenant = self.tenant()?;
        self.body().await?;
        let body = self.body.as_deref().unwrap_or_default();
        let caller = self.actor()?.label();
        let fingerprint = crate::platform::idempotency::fingerprint(&caller, self.request()?, body)?;
        Ok(Some((tenant, key, fingerprint)))
    }

    #[cfg(not(feature = "idempotency"))]
    async fn run_once<Args, H: Handler<Args>>(self, _: H) -> Result<Response, ApiError> {
        Err(ApiError::internal(
            "routing a request",
            format!(
                "{} {} is declared idempotent, and its function is built without edge's idempotency feature",
                self.route.method.as_str(),
                self.route.path
            ),
        ))
    }

    /// The request, while no parameter has taken it.
    pub fn request(&self) -> Result<&Request, ApiError> {
        self.req
            .as_ref()
            .ok_or_else(|| ApiError::internal("reading a request", "a parameter took it"))
    }

    pub fn env(&self) -> &Env {
        &self.env
    }

    pub fn route(&self) -> &'static Route {
        self.route
    }

    /// The path's parameters as text, for a parameter that reads one by its own rules.
    pub fn params(&self) -> &Params {
        &self.params
    }

    /// The authenticated business, for an endpoint declared for an API key.
    pub fn tenant(&self) -> Result<Tenant, ApiError> {
        Ok(self.authenticated()?.tenant.clone())
    }

    /// Who is acting: the operator (the admin token), or the API key or console session that
    /// authenticated the request.
    fn actor(&self) -> Result<Actor, ApiError> {
        Ok(match self.route.caller {
            Caller::Admin => Actor::Admin,
            _ => self.authenticated()?.actor.clone(),
        })
    }

    fn authenticated(&self) -> Result<&Authenticated, ApiError> {
        self.authenticated.as_ref().ok_or_else(|| {
            ApiError::internal(
                "reading a request",
                format!(
                    "{} {} is declared for {:?}, which names no business",
                    self.route.method.as_str(),
                    self.route.path,
                    self.route.caller
                ),
            )
        })
    }

    /// The body, read once under the endpoint's declared limit (413 beyond it).
    pub async fn body(&mut self) -> Result<&[u8], ApiError> {
        if self.body.is_none() {
            let req = self
                .req
                .as_mut()
                .ok_or_else(|| ApiError::internal("reading a body", "a parameter took the request"))?;
            self.body = Some(http::read_body(req, self.route.body_limit).await?);
        }
        Ok(self.body.as_deref().unwrap_or_default())
    }

    /// A JSON body read by `parse`, refused unless it is labelled as JSON (or not labelled); an
    /// empty one is `when_empty()`.
    async fn json_body<T>(
        &mut self,
        when_empty: impl FnOnce() -> Result<T, ApiError>,
        parse: impl FnOnce(&[u8]) -> Result<T, ApiError>,
    ) -> Result<T, ApiError> {
        if let Some(content_type) = self
            .request()?
            .headers()
            .get("content-type")
            .internal("reading a header")?
            && !http::is_json(&content_type)
        {
            return Err(ApiError::new(
                ErrorCode::UnsupportedMediaType,
                format!(
                    "this endpoint takes a JSON body (content-type: application/json), not {content_type}"
                ),
            ));
        }
        let body = self.body().await?;
        if body.iter().all(u8::is_ascii_whitespace) {
            return when_empty();
        }
        parse(body)
    }
}

/// A value a handler takes as a parameter, made from the call.
#[allow(
    async_fn_in_trait,
    reason = "workers run one request per isolate thread: no Send bound is wanted"
)]
pub trait FromCall: Sized {
    async fn from_call(call: &mut Call) -> Result<Self, ApiError>;
}

/// What a handler returns, made into the response.
pub trait IntoResponse {
    fn into_response(self) -> Result<Response, ApiError>;
}

/// An async function whose parameters are all [`FromCall`] and whose answer is [`IntoResponse`].
#[allow(
    async_fn_in_trait,
    reason = "workers run one request per isolate thread: no Send bound is wanted"
)]
pub trait Handler<Args> {
    async fn handle(self, call: Call) -> Result<Response, ApiError>;
}

macro_rules! handler {
    ($($arg:ident),*) => {
        impl<F, R, $($arg),*> Handler<($($arg,)*)> for F
        where
            F: AsyncFnOnce($($arg),*) -> Result<R, ApiError>,
            R: IntoResponse,
            $($arg: FromCall,)*
        {
            #[allow(non_snake_case, unused_mut, unused_variables)]
            async fn handle(self, mut call: Call) -> Result<Response, ApiError> {
                $(let $arg = $arg::from_call(&mut call).await?;)*
                self($($arg),*).await?.into_response()
            }
        }
    };
}

handler!();
handler!(A);
handler!(A, B);
handler!(A, B, C);
handler!(A, B, C, D);
handler!(A, B, C, D, E);
handler!(A, B, C, D, E, G);
handler!(A, B, C, D, E, G, H);

impl FromCall for Tenant {
    async fn from_call(call: &mut Call) -> Result<Self, ApiError> {
        call.tenant()
    }
}

impl FromCall for Env {
    async fn from_call(call: &mut Call) -> Result<Self, ApiError> {
        Ok(call.env.clone())
    }
}

/// Who is acting, for the audit log: the admin, or the API key or console session that
/// authenticated the request.
impl FromCall for Audit {
    async fn from_call(call: &mut Call) -> Result<Self, ApiError> {
        Ok(Audit::by(call.actor()?, call.request()?))
    }
}

/// The console session of an endpoint declared for one (`Caller::ConsoleSession`).
impl FromCall for crate::platform::console::Session {
    async fn from_call(call: &mut Call) -> Result<Self, ApiError> {
        let route = call.route;
        call.authenticated
            .as_mut()
            .and_then(|authenticated| authenticated.console.take())
            .ok_or_else(|| {
                ApiError::internal(
                    "reading a request",
                    format!(
                        "{} {} is declared for {:?}, which is no console session",
                        route.method.as_str(),
                        route.path,
                        route.caller
                    ),
                )
            })
    }
}

/// Whom a management endpoint acts for: the operator (the admin token, over every business) or
/// one business (its API key or console session). A business reaches only its own rows: what a
/// path names by id is looked up within it, so another business's id is not found. The operator
/// first finds the business that owns the id (a lookup by id alone, the visibly different door),
/// and is then scoped to it like anyone else.
pub enum Scope {
    Operator,
    Business(Tenant),
}

impl Scope {
    /// The business that owns what a path names: the caller's own, or for the operator the one
    /// `owner` finds; 404 `no <what> <id>` when there is none.
    pub async fn owner(
        &self,
        owner: impl AsyncFnOnce() -> Result<Option<Tenant>, ApiError>,
        missing: impl FnOnce() -> ApiError,
    ) -> Result<Tenant, ApiError> {
        match self {
            Self::Business(tenant) => Ok(tenant.clone()),
            Self::Operator => owner().await?.ok_or_else(missing),
        }
    }
}

impl FromCall for Scope {
    async fn from_call(call: &mut Call) -> Result<Self, ApiError> {
        Ok(match call.route.caller {
            Caller::Admin => Scope::Operator,
            _ => Scope::Business(call.tenant()?),
        })
    }
}

/// The business a management endpoint manages: the caller's own, or for the operator the one
/// the path's `{business_id}` names (404 when there is none).
pub struct Managed(pub Tenant);

impl FromCall for Managed {
    async fn from_call(call: &mut Call) -> Result<Self, ApiError> {
        if call.route.caller != Caller::Admin {
            return call.tenant().map(Managed);
        }
        let id = call.params.id::<BusinessId>()?;
        let business = db::businesses::find(&call.env.db()?, &id)
            .await?
            .ok_or_else(|| ApiError::not_found(format!("no business {id}")))?;
        business.tenant().map(Managed)
    }
}

/// The whole request, for a handler that reads it by its own rules (a partner's signed body, a
/// multipart upload). Taken before anything reads the body.
impl FromCall for Request {
    async fn from_call(call: &mut Call) -> Result<Self, ApiError> {
        if call.body.is_some() {
            return Err(ApiError::internal(
                "reading a request",
                "its body was read before the handler took it: take Body instead",
            ));
        }
        call.req
            .take()
            .ok_or_else(|| ApiError::internal("reading a request", "a parameter took it"))
    }
}

/// The path's parameter of type `T` (`{webhook_id}` for an `EndpointId`): 404 when it cannot be
/// one.
pub struct Path<T>(pub T);

impl<T: PathParam> FromCall for Path<T> {
    async fn from_call(call: &mut Call) -> Result<Self, ApiError> {
        call.params.id::<T>().map(Path)
    }
}

/// The path's parameters as text, for a handler that reads one by its own rules.
impl FromCall for Params {
    async fn from_call(call: &mut Call) -> Result<Self, ApiError> {
        Ok(call.params.clone())
    }
}

/// The query string, decoded (`domain::query`).
impl FromCall for query::Query {
    async fn from_call(call: &mut Call) -> Result<Self, ApiError> {
        Ok(http::query(call.request()?))
    }
}

/// A JSON body read as `T` (`domain::json::from_request`'s rules); as an answer, `T` with 200.
pub struct Json<T>(pub T);

impl<T: DeserializeOwned> FromCall for Json<T> {
    async fn from_call(call: &mut Call) -> Result<Self, ApiError> {
        call.json_body(empty, domain::json::from_request).await.map(Json)
    }
}

/// Like [`Json`], for a body whose every field is optional: an empty body is `T::default()`.
pub struct OptionalJson<T>(pub T);

impl<T: DeserializeOwned + Default> FromCall for OptionalJson<T> {
    async fn from_call(call: &mut Call) -> Result<Self, ApiError> {
        call.json_body(|| Ok(T::default()), domain::json::from_request)
            .await
            .map(OptionalJson)
    }
}

/// Like [`Json`], for a batch whose items check their own text
/// (`domain::json::from_batch_request`).
pub struct Batch<T>(pub T);

impl<T: DeserializeOwned> FromCall for Batch<T> {
    async fn from_call(call: &mut Call) -> Result<Self, ApiError> {
        call.json_body(empty, domain::json::from_batch_request)
            .await
            .map(Batch)
    }
}

fn empty<T>() -> Result<T, ApiError> {
    Err(ApiError::malformed(
        "the request body is empty; expected a JSON object",
    ))
}

/// The body's bytes, read under the endpoint's limit.
pub struct Body(pub Vec<u8>);

impl FromCall for Body {
    async fn from_call(call: &mut Call) -> Result<Self, ApiError> {
        call.body().await.map(|body| Body(body.to_vec()))
    }
}

/// The request's `content-type`, if it names one.
pub struct ContentType(pub Option<String>);

impl FromCall for ContentType {
    async fn from_call(call: &mut Call) -> Result<Self, ApiError> {
        Ok(ContentType(
            call.request()?
                .headers()
                .get("content-type")
                .internal("reading a header")?,
        ))
    }
}

/// The public origin of the API (`http::origin`), for links back into it.
pub struct Origin(pub String);

impl FromCall for Origin {
    async fn from_call(call: &mut Call) -> Result<Self, ApiError> {
        http::origin(call.request()?, &call.env).map(Origin)
    }
}

impl IntoResponse for Response {
    fn into_response(self) -> Result<Response, ApiError> {
        Ok(self)
    }
}

impl<T: Serialize> IntoResponse for Json<T> {
    fn into_response(self) -> Result<Response, ApiError> {
        http::json(200, &self.0)
    }
}

/// `T` as JSON with 201: something was made.
pub struct Created<T>(pub T);

impl<T: Serialize> IntoResponse for Created<T> {
    fn into_response(self) -> Result<Response, ApiError> {
        http::json(201, &self.0)
    }
}

/// `T` as JSON with 202: the work was taken on and goes on after the answer.
pub struct Accepted<T>(pub T);

impl<T: Serialize> IntoResponse for Accepted<T> {
    fn into_response(self) -> Result<Response, ApiError> {
        http::json(202, &self.0)
    }
}

/// 204, no body.
pub struct NoContent;

impl IntoResponse for NoContent {
    fn into_response(self) -> Result<Response, ApiError> {
        Ok(Response::empty().internal("making an answer")?.with_status(204))
    }
}

#[cfg(test)]
mod tests {
    //! Served through real declarations (the admin API's table, which takes the admin token, keys
    //! and console sessions), with handlers of the test's own that show what they were given.
    use super::*;
    use crate::runtime::Method;
    use crate::testing::Fixture;
    use domain::api::admin::{ADMIN, Admin};
    use serde_json::{Value, json};

    async fn echo(Json(body): Json<Value>) -> Result<Created<Value>, ApiError> {
        Ok(Created(body))
    }

    async fn managed_then_body(
        Managed(tenant): Managed,
        Json(body): Json<Value>,
    ) -> Result<Json<Value>, ApiError> {
        Ok(Json(json!({ "business_id": tenant.business_id, "body": body })))
    }

    async fn whom(scope: Scope, audit: Audit) -> Result<Json<Value>, ApiError> {
        let scope = match scope {
            Scope::Operator => "operator".to_owned(),
            Scope::Business(tenant) => tenant.business_id.to_string(),
        };
        Ok(Json(json!({ "scope": scope, "actor": audit.actor().label() })))
    }

    async fn optional(OptionalJson(body): OptionalJson<Value>) -> Result<Accepted<Value>, ApiError> {
        Ok(Accepted(body))
    }

    async fn nothing(_: Tenant) -> Result<NoContent, ApiError> {
        Ok(NoContent)
    }

    /// The admin API's table, each operation answered by one of the handlers above.
    async fn admin(fixture: &Fixture, req: Request) -> (u16, Option<String>, Value) {
        let mut response = serve(
            &ADMIN,
            req,
            fixture.stack.clone(),
            async |operation, call| match operation {
                Admin::CreateBusiness => call.run(echo).await,
                Admin::UpdateBusiness => call.run(managed_then_body).await,
                Admin::ListApiKeys => call.run(whom).await,
                Admin::IssueApiKey => call.run(optional).await,
                _ => call.run(nothing).await,
            },
        )
        .await
        .unwrap_or_else(|error| panic!("{error}"));
        let allow = response.headers().get("allow").unwrap_or_default();
        let text = response.text().await.unwrap_or_default();
        let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
        (response.status_code(), allow, body)
    }

    fn request(method: Method, path: &str) -> Request {
        Request::new(&format!("https://api.example{path}"), method).unwrap_or_else(|error| panic!("{error}"))
    }

    fn as_admin(fixture: &Fixture, req: Request) -> Request {
        let token = fixture.stack.secret("ADMIN_TOKEN").unwrap_or_default();
        req.with_header("authorization", &format!("Bearer {token}"))
    }

    fn code(body: &Value) -> &str {
        body["error"]["code"].as_str().unwrap_or_default()
    }

    #[test]
    fn nothing_below_the_admin_prefix_is_told_without_the_admin_token_not_even_which_paths_exist() {
        let fixture = Fixture::new();
        let cases = [
            (Method::Get, "/admin/nope", "a path of no endpoint"),
            (
                Method::Delete,
                "/admin/businesses",
                "a method the path does not take",
            ),
            (Method::Post, "/admin/businesses", "an endpoint"),
        ];
        for (method, path, description) in cases {
            let (status, allow, body) = fixture.run(admin(&fixture, request(method, path)));
            assert_eq!((status, code(&body)), (401, "unauthorized"), "{description}");
            assert_eq!(allow, None, "{description}");
        }
    }

    #[test]
    fn with_the_token_a_path_of_no_endpoint_is_404_and_another_method_405_with_allow() {
        let fixture = Fixture::new();
        let (status, _, body) = fixture.run(admin(
            &fixture,
            as_admin(&fixture, request(Method::Get, "/admin/nope")),
        ));
        assert_eq!(
            (status, body["error"]["message"].as_str()),
            (404, Some("no endpoint at /admin/nope"))
        );
        let (status, allow, body) = fixture.run(admin(
            &fixture,
            as_admin(&fixture, request(Method::Put, "/admin/businesses/")),
        ));
        assert_eq!((status, code(&body)), (405, "method_not_allowed"));
        assert_eq!(allow.as_deref(), Some("POST"), "a trailing / is the same path");
        let path = "/admin/businesses/8c5e2a8e-2f7a-4b8e-9c1d-0a1b2c3d4e5f";
        let (status, allow, _) =
            fixture.run(admin(&fixture, as_admin(&fixture, request(Method::Post, path))));
        assert_eq!((status, allow.as_deref()), (405, Some("GET, PATCH")));
    }

    #[test]
    fn a_keyed_endpoint_is_routed_before_the_key_is_asked_for() {
        let fixture = Fixture::new();
        let cases = [
            (Method::Get, "/api-nope", 404, None, "no endpoint: 404, not 401"),
            (
                Method::Put,
                "/api-keys",
                405,
                Some("GET, POST"),
                "another method: 405, not 401",
            ),
            (Method::Get, "/api-keys", 401, None, "the endpoint: its key"),
        ];
        for (method, path, expected, allow, description) in cases {
            let (status, allowed, _) = fixture.run(admin(&fixture, request(method, path)));
            assert_eq!((status, allowed.as_deref()), (expected, allow), "{description}");
        }
    }

    #[test]
    fn a_handler_is_told_whom_it_acts_for_the_operator_or_the_keys_business() {
        let fixture = Fixture::new();
        let (tenant, key) = fixture.run(async {
            let tenant = fixture.business("Acme").await;
            let (key, _) = fixture.api_key(&tenant).await;
            (tenant, key)
        });
        let keyed = request(Method::Get, "/api-keys").with_header("x-api-key", &key);
        let (status, _, body) = fixture.run(admin(&fixture, keyed));
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["scope"], tenant.business_id.as_str());
        assert_eq!(body["actor"], format!("key:{}", &key[..12]));
        let path = format!("/admin/businesses/{}/api-keys", tenant.business_id);
        let (status, _, body) = fixture.run(admin(&fixture, as_admin(&fixture, request(Method::Get, &path))));
        assert_eq!(status, 200, "{body}");
        assert_eq!(body, json!({ "scope": "operator", "actor": "admin" }));
    }

    #[test]
    fn a_json_body_is_refused_unless_it_is_labelled_json_present_and_within_the_limit() {
        let fixture = Fixture::new();
        let post = |content_type: Option<&str>, body: Vec<u8>| {
            let req = as_admin(&fixture, request(Method::Post, "/admin/businesses")).with_body(body);
            match content_type {
                Some(content_type) => req.with_header("content-type", content_type),
                None => req,
            }
        };
        let over = format!(r#"{{"name":"{}"}}"#, "a".repeat(SMALL_LIMIT));
        let cases = [
            (
                post(Some("application/json"), br#"{"name":"Acme"}"#.to_vec()),
                201,
                "",
                "JSON",
            ),
            (
                post(None, br#"{"name":"Acme"}"#.to_vec()),
                201,
                "",
                "JSON, unlabelled",
            ),
            (
                post(
                    Some("application/json; charset=utf-8"),
                    br#"{"name":"Acme"}"#.to_vec(),
                ),
                201,
                "",
                "JSON with a charset",
            ),
            (
                post(Some("text/plain"), br#"{"name":"Acme"}"#.to_vec()),
                415,
                "unsupported_media_type",
                "labelled as something else",
            ),
            (
                post(
                    Some("application/x-www-form-urlencoded"),
                    over.clone().into_bytes(),
                ),
                415,
                "unsupported_media_type",
                "the label is read before the body",
            ),
            (
                post(Some("application/json"), Vec::new()),
                400,
                "malformed_request",
                "empty",
            ),
            (
                post(Some("application/json"), b" \n\t ".to_vec()),
                400,
                "malformed_request",
                "blank",
            ),
            (
                post(Some("application/json"), b"{\"name\":".to_vec()),
                400,
                "malformed_request",
                "not JSON",
            ),
            (
                post(Some("application/json"), over.into_bytes()),
                413,
                "payload_too_large",
                "one byte over the endpoint's limit",
            ),
        ];
        for (req, status, error, description) in cases {
            let (answered, _, body) = fixture.run(admin(&fixture, req));
            assert_eq!(answered, status, "{description}: {body}");
            if status == 201 {
                assert_eq!(body, json!({ "name": "Acme" }), "{description}");
            } else {
                assert_eq!(code(&body), error, "{description}: {body}");
            }
        }
        let (_, _, body) = fixture.run(admin(&fixture, post(Some("application/json"), Vec::new())));
        assert_eq!(
            body["error"]["message"],
            "the request body is empty; expected a JSON object"
        );
    }

    /// Bytes of body the JSON above adds around its name, so that `SMALL_LIMIT` of name is one
    /// byte over the endpoint's limit.
    const SMALL_LIMIT: usize = http::SMALL_BODY_LIMIT - r#"{"name":""}"#.len() + 1;

    #[test]
    fn a_body_of_exactly_the_limit_is_read() {
        let fixture = Fixture::new();
        let body = format!(r#"{{"name":"{}"}}"#, "a".repeat(SMALL_LIMIT - 1));
        assert_eq!(body.len(), http::SMALL_BODY_LIMIT);
        let req = as_admin(&fixture, request(Method::Post, "/admin/businesses")).with_body(body.into_bytes());
        let (status, _, _) = fixture.run(admin(&fixture, req));
        assert_eq!(status, 201);
    }

    #[test]
    fn an_optional_body_may_be_empty_and_still_must_be_json() {
        let fixture = Fixture::new();
        let key = fixture.run(async {
            let tenant = fixture.business("Acme").await;
            fixture.api_key(&tenant).await.0
        });
        let post = |body: &[u8], content_type: &str| {
            request(Method::Post, "/api-keys")
                .with_header("x-api-key", &key)
                .with_header("content-type", content_type)
                .with_body(body.to_vec())
        };
        let cases = [
            (
                post(b"", "application/json"),
                202,
                Value::Null,
                "empty: the default",
            ),
            (
                post(br#"{"name":"ci"}"#, "application/json"),
                202,
                json!({ "name": "ci" }),
                "given",
            ),
            (
                post(b"", "text/plain"),
                415,
                Value::Null,
                "empty, but labelled as something else",
            ),
        ];
        for (req, status, expected, description) in cases {
            let (answered, _, body) = fixture.run(admin(&fixture, req));
            assert_eq!(answered, status, "{description}: {body}");
            if status == 202 {
                assert_eq!(body, expected, "{description}");
            }
        }
    }

    #[test]
    fn a_handlers_parameters_are_read_in_the_order_it_names_them() {
        let fixture = Fixture::new();
        let tenant = fixture.run(fixture.business("Acme"));
        let patch = |id: &str, body: &[u8]| {
            as_admin(
                &fixture,
                request(Method::Patch, &format!("/admin/businesses/{id}")),
            )
            .with_header("content-type", "application/json")
            .with_body(body.to_vec())
        };
        let unknown = "8c5e2a8e-2f7a-4b8e-9c1d-0a1b2c3d4e5f";
        let cases = [
            (
                patch("not-an-id", b""),
                404,
                "no business not-an-id",
                "an id that cannot be one, before the body",
            ),
            (
                patch(unknown, b""),
                404,
                "no business 8c5e2a8e-2f7a-4b8e-9c1d-0a1b2c3d4e5f",
                "an unknown business, before the body",
            ),
            (
                patch(tenant.business_id.as_str(), b""),
                400,
                "the request body is empty; expected a JSON object",
                "the business, then its body",
            ),
        ];
        for (req, status, message, description) in cases {
            let (answered, _, body) = fixture.run(admin(&fixture, req));
            assert_eq!(
                (answered, body["error"]["message"].as_str()),
                (status, Some(message)),
                "{description}"
            );
        }
        let (status, _, body) = fixture.run(admin(
            &fixture,
            patch(tenant.business_id.as_str(), br#"{"name":"Acme Ltd"}"#),
        ));
        assert_eq!(status, 200);
        assert_eq!(
            body,
            json!({ "business_id": tenant.business_id, "body": { "name": "Acme Ltd" } })
        );
    }

    #[test]
    fn no_content_is_a_204_with_no_body() {
        let fixture = Fixture::new();
        let key = fixture.run(async {
            let tenant = fixture.business("Acme").await;
            fixture.api_key(&tenant).await.0
        });
        let req = request(Method::Get, "/api-business").with_header("x-api-key", &key);
        let (status, _, body) = fixture.run(admin(&fixture, req));
        assert_eq!((status, body), (204, Value::String(String::new())));
    }
}
