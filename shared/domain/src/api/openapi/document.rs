//! The document itself: every function's declarations, in the order of [`FUNCTIONS`], made into
//! OpenAPI 3.1, with the components every operation shares (the error answers, the rate-limit
//! headers, the security schemes).

use super::schema::{Closed, SchemaFn, Tidy};
use super::{Body, Contract, Media, MediaSchema};
use crate::api::{self, Caller, Function, Operation, Route};
use crate::error::ErrorEnvelope;
use crate::ids::SourceId;
use schemars::generate::SchemaSettings;
use schemars::transform::Transform;
use schemars::{JsonSchema, Schema, SchemaGenerator};
use serde::Serialize;
use serde_json::{Map, Value, json};
use std::collections::BTreeMap;

/// One endpoint as the document and the gateway see it.
pub struct Declared {
    pub function: &'static str,
    pub owns: Option<&'static str>,
    pub operation_id: String,
    pub route: &'static Route,
    pub contract: Contract,
}

/// A function's declarations, whatever its operation type.
pub trait Declares: Sync {
    fn declared(&'static self) -> Vec<Declared>;
}

impl<O: Operation + Sync> Declares for Function<O> {
    fn declared(&'static self) -> Vec<Declared> {
        self.endpoints
            .iter()
            .map(|endpoint| {
                let (name, contract) = endpoint.operation.contract(&endpoint.route);
                Declared {
                    function: self.name,
                    owns: self.owns,
                    operation_id: api::operation_id(name),
                    route: &endpoint.route,
                    contract,
                }
            })
            .collect()
    }
}

/// Every function that serves endpoints, in the order the document lists them.
pub static FUNCTIONS: &[&(dyn Declares + 'static)] = &[
    &api::customers::CUSTOMERS_SYNC,
    &api::customers::CUSTOMERS_BULK_CREATE,
    &api::customers::CUSTOMERS,
    &api::customers::CUSTOMERS_BATCH_LOOKUP,
    &api::messages::MESSAGES_SINCE,
    &api::messages::CONVERSATIONS_BY_CUSTOMER,
    &api::messages::CONVERSATIONS,
    &api::messages::SEND_MESSAGE,
    &api::messages::UPLOAD_ATTACHMENT,
    &api::messages::DOWNLOAD_MEDIA,
    &api::webhooks::WEBHOOKS,
    &api::crm::CRM_API,
    &api::embed::SSO_TOKEN,
    &api::embed::EMBED_INBOX,
    &api::links::KNOWLEDGE,
    &api::bots::BOT,
    &api::receivers::RECEIVER_META,
    &api::receivers::RECEIVER_TWILIO,
    &api::receivers::RECEIVER_EMAIL,
    &api::receivers::RECEIVER_KUSTOMER,
    &api::receivers::RECEIVER_HUBSPOT,
    &api::receivers::RECEIVER_SALESFORCE,
    &api::receivers::RECEIVER_CHATWOOT,
    &api::admin::ADMIN,
    &api::console::CONSOLE,
    &api::gateway::GATEWAY,
];

/// Every endpoint, in the document's order.
pub fn endpoints() -> Vec<Declared> {
    FUNCTIONS
        .iter()
        .flat_map(|function| function.declared())
        .collect()
}

/// The document's opening words.
const INTRODUCTION: &str = "The bridge between a multi-channel chat platform and the CRMs its businesses use (README.md).

Every JSON error has one shape, `{\"error\": {\"code\", \"message\", \"field\"?}}` (components/schemas/Error). A path that no function serves answers 404 not_found (`no endpoint at <path>`); a method a path does not take answers 405 method_not_allowed with an `Allow` header listing the methods it takes (the embedded inbox page and its assets answer it as an HTML page).

JSON bodies are sent as application/json (or an `application/<x>+json` type; a body without a content type is read as JSON too); a body labelled as a form, text or multipart is 415 unsupported_media_type. A name given twice in one object, or a NUL character (\\u0000) in any string, is 422 validation_failed with the path of the value; a lone UTF-16 surrogate escape is read as U+FFFD. The receivers of providers' and CRMs' webhooks read their bodies by their own rules.

Rate limits: each API key has a token bucket, its business's `rate_limit` (by default {\"per_minute\": 600, \"burst\": 100}; the operator sets it with PATCH /admin/businesses/{business_id}). Every answer to a request with an active key carries X-RateLimit-Limit, X-RateLimit-Remaining and X-RateLimit-Reset (components/headers); a request over the limit is answered 429 rate_limited with Retry-After and never reaches its function. A client address that causes more failed authentications (401 and 403) than its budget (120 at once, refilling at 60 a minute) gets 429 with Retry-After on every path but /health and /openapi.json until the budget refills. So 429 is a possible answer of every operation behind the gateway.

Console sessions: the operations the business console uses (the business's own settings, webhooks, CRM analytics and history, CRM links) take a business console's session in place of the API key (components/securitySchemes/ConsoleSession, a cookie set when a console link is opened), with the key's powers; a request of a session that changes something must also send the session's CSRF token as x-csrf-token, else 403 forbidden. Answers to a session carry no rate-limit headers.

Idempotency keys: the POSTs that create or send take an optional Idempotency-Key header (components/parameters/IdempotencyKey, 1 to 255 visible ASCII characters). The same key with the same body (per business, method and path) within 24 hours gets the first answer again, with Idempotent-Replayed: true, and does nothing twice; the same key with another body is 422, and while the first request runs, 409 with Retry-After: 1. 5xx answers are not kept, so a retry runs again.

Written from the endpoints' declarations in shared/domain/src/api/ and the Rust types they name (scripts/configure); fuzzed by scripts/fuzz.";

/// The tags, in the order the document lists them.
const TAGS: [&str; 11] = [
    "customers",
    "messages",
    "webhooks",
    "crm",
    "embed",
    "crm-links",
    "bot",
    "receivers",
    "admin",
    "console",
    "gateway",
];

const RATE_LIMIT_HEADERS: [(&str, &str); 3] = [
    ("X-RateLimit-Limit", "RateLimitLimit"),
    ("X-RateLimit-Remaining", "RateLimitRemaining"),
    ("X-RateLimit-Reset", "RateLimitReset"),
];

#[derive(Serialize)]
struct Document {
    openapi: &'static str,
    info: Value,
    servers: Value,
    tags: Vec<Value>,
    paths: BTreeMap<&'static str, PathItem>,
    components: Components,
}

/// A path's operations, in the order OpenAPI lists methods.
#[derive(Serialize, Default)]
struct PathItem {
    #[serde(skip_serializing_if = "Option::is_none")]
    get: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    put: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    post: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    delete: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    head: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    patch: Option<Value>,
}

#[derive(Serialize)]
struct Components {
    schemas: Map<String, Value>,
    responses: Map<String, Value>,
    parameters: Value,
    headers: Value,
    #[serde(rename = "securitySchemes")]
    security_schemes: Value,
}

/// The generators of request and answer schemas: a type is read by one contract and written by
/// the other (serde's attributes may differ between the two), and only answers are closed.
struct Generators {
    requests: SchemaGenerator,
    answers: SchemaGenerator,
}

impl Generators {
    fn new() -> Self {
        let settings = || {
            SchemaSettings::draft2020_12().with(|settings| {
                settings.definitions_path = "/components/schemas".into();
                settings.meta_schema = None;
            })
        };
        Self {
            requests: settings().for_deserialize().with_transform(Tidy).into_generator(),
            answers: settings()
                .for_serialize()
                .with_transform(Tidy)
                .with_transform(Closed)
                .into_generator(),
        }
    }

    fn request(&mut self, schema: SchemaFn) -> Value {
        schema(&mut self.requests).to_value()
    }

    fn answer(&mut self, schema: SchemaFn) -> Value {
        let mut schema = schema(&mut self.answers);
        Closed.transform(&mut schema);
        schema.to_value()
    }

    /// Both generators' definitions as one `components/schemas`. A type both read and written
    /// must be described alike by both.
    fn definitions(mut self) -> Map<String, Value> {
        let mut all = self.requests.take_definitions(true);
        let answers = self.answers.take_definitions(true);
        for name in all.keys().chain(answers.keys()) {
            // schemars tells two types of one name apart by a number: a name that would change
            // with the order the document is written in.
            assert!(
                !name.ends_with(|c: char| c.is_ascii_digit()),
                "two types are named {}: rename one (schemars(rename = ..))",
                name.trim_end_matches(|c: char| c.is_ascii_digit())
            );
        }
        for (name, schema) in answers {
            if let Some(known) = all.get(&name) {
                assert!(
                    *known == schema,
                    "components/schemas/{name} is read as {known} but written as {schema}: give the two their own types"
                );
            }
            all.insert(name, schema);
        }
        all
    }
}

/// The whole document, as `openapi.json` holds it.
pub fn document() -> String {
    let mut generators = Generators::new();
    let error = generators.answer(super::schema_of::<ErrorEnvelope<'static>>);
    assert_eq!(
        error,
        json!({ "$ref": "#/components/schemas/Error" }),
        "the error shape is components/schemas/Error"
    );
    let mut paths: BTreeMap<&'static str, PathItem> = BTreeMap::new();
    for declared in endpoints() {
        let operation = operation(&mut generators, &declared);
        let item = paths.entry(declared.route.path).or_default();
        let slot = match declared.route.method {
            api::Method::Get => &mut item.get,
            api::Method::Head => &mut item.head,
            api::Method::Post => &mut item.post,
            api::Method::Put => &mut item.put,
            api::Method::Patch => &mut item.patch,
            api::Method::Delete => &mut item.delete,
        };
        assert!(
            slot.is_none(),
            "{} {} is declared twice",
            declared.route.method.as_str(),
            declared.route.path
        );
        *slot = Some(operation);
    }
    let document = Document {
        openapi: "3.1.0",
        info: json!({ "title": "crm-edge", "version": "1.0.0", "description": INTRODUCTION }),
        servers: json!([{ "url": "http://127.0.0.1:8787", "description": "The local stack (scripts/dev)" }]),
        tags: TAGS.iter().map(|tag| json!({ "name": tag })).collect(),
        paths,
        components: Components {
            schemas: generators.definitions(),
            responses: error_responses(),
            parameters: json!({ "IdempotencyKey": idempotency_key() }),
            headers: shared_headers(),
            security_schemes: security_schemes(),
        },
    };
    let mut text = serde_json::to_string_pretty(&document).unwrap_or_default();
    text.push('\n');
    text
}

fn operation(generators: &mut Generators, declared: &Declared) -> Value {
    let Declared {
        function,
        operation_id,
        route,
        contract,
        ..
    } = declared;
    assert!(
        TAGS.contains(&contract.tag),
        "{operation_id}: tag {} is not one of the document's",
        contract.tag
    );
    assert!(!contract.summary.is_empty(), "{operation_id} has no doc comment");
    let mut operation = Map::new();
    operation.insert("operationId".into(), json!(operation_id));
    operation.insert("summary".into(), json!(contract.summary));
    if let Some(description) = &contract.description {
        operation.insert("description".into(), json!(description));
    }
    operation.insert("tags".into(), json!([contract.tag]));
    let security: Vec<Value> = route
        .requirements()
        .into_iter()
        .map(|schemes| {
            Value::Object(
                schemes
                    .into_iter()
                    .map(|name| (name.to_owned(), json!([])))
                    .collect(),
            )
        })
        .collect();
    operation.insert("security".into(), Value::Array(security));
    let parameters = parameters(generators, route, contract);
    if !parameters.is_empty() {
        operation.insert("parameters".into(), Value::Array(parameters));
    }
    if let Some(body) = &contract.body {
        operation.insert("requestBody".into(), request_body(generators, body));
    }
    operation.insert(
        "responses".into(),
        Value::Object(responses(generators, function, route, contract)),
    );
    Value::Object(operation)
}

/// The path's parameters in the order the path names them, then the query's, the headers' and
/// the `Idempotency-Key`.
fn parameters(generators: &mut Generators, route: &Route, contract: &Contract) -> Vec<Value> {
    let mut parameters = Vec::new();
    for segment in route.path.split('/') {
        if let Some(name) = segment.strip_prefix('{').and_then(|rest| rest.strip_suffix('}')) {
            let (description, schema) = path_parameter(name);
            parameters.push(json!({
                "name": name,
                "in": "path",
                "required": true,
                "description": description,
                "schema": generators.request(schema),
            }));
        }
    }
    if let Some(query) = contract.query {
        // The query type's own schema, not a reference: its properties are the parameters.
        parameters.extend(query_parameters(&query(&mut generators.requests).to_value()));
    }
    for header in &contract.headers {
        parameters.push(json!({
            "name": header.name,
            "in": "header",
            "required": header.required,
            "description": header.description,
            "schema": header.schema,
        }));
    }
    if route.idempotent {
        parameters.push(json!({ "$ref": "#/components/parameters/IdempotencyKey" }));
    }
    parameters
}

/// Each property of a query type's schema as a query parameter: its doc comment the
/// parameter's description, its first example the parameter's, and `null` left out (a query
/// parameter is given or not).
fn query_parameters(object: &Value) -> Vec<Value> {
    let required: Vec<&str> = object
        .get("required")
        .and_then(Value::as_array)
        .map(|names| names.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let Some(properties) = object.get("properties").and_then(Value::as_object) else {
        panic!("a query type must be a struct: {object}");
    };
    properties
        .iter()
        .map(|(name, schema)| {
            let mut schema = schema.as_object().cloned().unwrap_or_default();
            let description = schema.remove("description");
            let example = schema
                .remove("examples")
                .and_then(|examples| examples.as_array().and_then(|all| all.first().cloned()));
            let schema = without_null(Value::Object(schema));
            let mut parameter = json!({
                "name": name,
                "in": "query",
                "required": required.contains(&name.as_str()),
                "schema": schema,
            });
            if let Some(description) = description {
                parameter["description"] = description;
            }
            if let Some(example) = example {
                parameter["example"] = example;
            }
            parameter
        })
        .collect()
}

/// An optional value's schema without its `null`.
fn without_null(schema: Value) -> Value {
    let mut schema = schema;
    if let Some(types) = schema.get_mut("type").and_then(Value::as_array_mut) {
        types.retain(|kind| kind != "null");
        if types.len() == 1 {
            let only = types.remove(0);
            schema["type"] = only;
        }
    }
    if let Some(options) = schema.get("anyOf").and_then(Value::as_array) {
        let rest: Vec<&Value> = options
            .iter()
            .filter(|option| option.get("type") != Some(&json!("null")))
            .collect();
        if rest.len() == 1 {
            let mut only = rest[0].clone();
            if let (Some(only), Some(outer)) = (only.as_object_mut(), schema.as_object()) {
                for (key, value) in outer.iter().filter(|(key, _)| *key != "anyOf") {
                    only.insert(key.clone(), value.clone());
                }
            }
            return only;
        }
    }
    schema
}

fn request_body(generators: &mut Generators, body: &Body) -> Value {
    let content: Map<String, Value> = body
        .media
        .iter()
        .map(|media| {
            (
                media.media_type.to_owned(),
                media_object(media, |schema| generators.request(schema)),
            )
        })
        .collect();
    json!({ "required": body.required, "content": content })
}

fn media_object(media: &Media, mut typed: impl FnMut(SchemaFn) -> Value) -> Value {
    let mut object = Map::new();
    match &media.schema {
        Some(MediaSchema::Typed(schema)) => {
            object.insert("schema".into(), typed(*schema));
        }
        Some(MediaSchema::Literal(schema)) => {
            object.insert("schema".into(), schema.clone());
        }
        None => {}
    }
    if let Some(example) = &media.example {
        object.insert("example".into(), example.clone());
    }
    if let Some(encoding) = &media.encoding {
        object.insert("encoding".into(), encoding.clone());
    }
    Value::Object(object)
}

/// The operation's answers: its own, then the errors its route implies and those it declares.
fn responses(
    generators: &mut Generators,
    function: &str,
    route: &Route,
    contract: &Contract,
) -> Map<String, Value> {
    let keyed = route.caller.is_keyed();
    let mut responses = Map::new();
    for answer in &contract.answers {
        let mut object = Map::new();
        object.insert("description".into(), json!(answer.description));
        if !answer.media.is_empty() {
            let content: Map<String, Value> = answer
                .media
                .iter()
                .map(|media| {
                    (
                        media.media_type.to_owned(),
                        media_object(media, |schema| generators.answer(schema)),
                    )
                })
                .collect();
            object.insert("content".into(), Value::Object(content));
        }
        let mut headers = Map::new();
        if route.idempotent {
            headers.insert(
                "Idempotent-Replayed".into(),
                json!({
                    "description": "true when this is the stored answer to an earlier request with the same Idempotency-Key and body",
                    "schema": { "type": "string", "enum": ["true"] },
                }),
            );
        }
        if keyed {
            for (name, component) in RATE_LIMIT_HEADERS {
                headers.insert(
                    name.into(),
                    json!({ "$ref": format!("#/components/headers/{component}") }),
                );
            }
        }
        if !headers.is_empty() {
            object.insert("headers".into(), Value::Object(headers));
        }
        if let Some(links) = &answer.links {
            object.insert("links".into(), links.clone());
        }
        responses.insert(answer.status.to_string(), Value::Object(object));
    }
    for status in error_statuses(function, route, contract) {
        let answer = if contract.page && ![405, 429].contains(&status) {
            page_error(route, status)
        } else {
            json!({ "$ref": format!("#/components/responses/{}", error_component(status, keyed, route, contract)) })
        };
        responses.insert(status.to_string(), answer);
    }
    let mut sorted: Vec<(String, Value)> = responses.into_iter().collect();
    sorted.sort_by(|(a, _), (b, _)| a.cmp(b));
    sorted.into_iter().collect()
}

/// The errors an operation can answer: what its route implies, and what it declares.
fn error_statuses(function: &str, route: &Route, contract: &Contract) -> Vec<u16> {
    let mut statuses = contract.errors.clone();
    let credential = !matches!(route.caller, Caller::Anyone | Caller::ProofInRequest);
    if credential {
        statuses.push(401);
    }
    // A console session's change without its CSRF token.
    if route.console
        && route.caller.is_keyed()
        && !matches!(route.method, api::Method::Get | api::Method::Head)
    {
        statuses.push(403);
    }
    if contract.body.as_ref().is_some_and(|body| body.checked_json) {
        statuses.extend([400, 413, 415, 422]);
    }
    if route.idempotent {
        statuses.push(409);
    }
    if route.path.contains('{') {
        statuses.push(404);
    }
    // A partner's request is checked by the partner's protocol, which says its own statuses.
    let partner = matches!(route.caller, Caller::Signed(_) | Caller::ProofInRequest);
    if contract.query.is_some() && !partner && !contract.page {
        statuses.push(422);
    }
    if function == "gateway" {
        statuses.push(405);
    } else {
        statuses.push(429);
    }
    if contract.page {
        statuses.push(405);
    }
    if contract.internal_errors {
        // What fails on our side: our bug (500), or the database that holds the data not
        // answering for a moment (503, `Retry-After`).
        statuses.extend([500, 503]);
    }
    statuses.sort_unstable();
    statuses.dedup();
    statuses
}

fn error_component(status: u16, keyed: bool, route: &Route, contract: &Contract) -> String {
    let name = match status {
        400 => "BadRequest",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "NotFound",
        405 if contract.page => return "PageMethodNotAllowed".into(),
        405 => return "MethodNotAllowed".into(),
        409 if route.idempotent => "IdempotencyConflict",
        409 => "Conflict",
        413 => "PayloadTooLarge",
        415 => "UnsupportedMediaType",
        422 => "UnprocessableEntity",
        429 if keyed => return "RateLimited".into(),
        429 => return "TooManyRequests".into(),
        500 => "InternalError",
        502 => "CrmFailed",
        503 => "ServiceUnavailable",
        other => panic!("no error answer for {other}"),
    };
    if keyed {
        format!("{name}Keyed")
    } else {
        name.to_owned()
    }
}

/// A page's error: a page too (no body for HEAD).
fn page_error(route: &Route, status: u16) -> Value {
    let description = match status {
        401 => "No token, or an unknown, expired or revoked one",
        403 => "Forbidden",
        404 => "Not found",
        503 => "The database that holds the data did not answer; Retry-After says when to try again",
        _ => "Our fault, logged",
    };
    if route.method == api::Method::Head {
        json!({ "description": description })
    } else {
        json!({ "description": description, "content": { "text/html": { "schema": { "type": "string" } } } })
    }
}

/// The error answers every operation refers to: each status, and each again with a key's
/// rate-limit headers.
fn error_responses() -> Map<String, Value> {
    const PLAIN: [(&str, &str, bool); 13] = [
        (
            "BadRequest",
            "malformed_request: the request cannot be read (not JSON, a missing parameter)",
            false,
        ),
        (
            "Unauthorized",
            "unauthorized: missing, unknown or revoked credentials, or a bad signature",
            false,
        ),
        ("Forbidden", "forbidden", false),
        (
            "NotFound",
            "not_found (another business's resources read as absent)",
            false,
        ),
        ("Conflict", "conflict", false),
        (
            "PayloadTooLarge",
            "payload_too_large: the body is over the endpoint's limit",
            false,
        ),
        (
            "UnsupportedMediaType",
            "unsupported_media_type: the body's content type is not one the operation takes (a JSON body: application/json or `application/<x>+json`, or no content type at all)",
            false,
        ),
        (
            "UnprocessableEntity",
            "validation_failed, with the path of the value at fault in `field` (none when the body as a whole is wrong: not an object, a required field missing, a name repeated at the top), or batch_too_large. A name given twice in one object and a NUL character (\\u0000) in any string or name of a JSON body are refused so too",
            false,
        ),
        (
            "InternalError",
            "internal_error: our fault, logged with the reference the message carries",
            false,
        ),
        (
            "CrmFailed",
            "crm_failed: a CRM the request needed failed; the message says what it said",
            false,
        ),
        (
            "ServiceUnavailable",
            "service_unavailable: a dependency is failing (a CRM, the embedder, or the database that holds the data did not answer); Retry-After says when to retry",
            true,
        ),
        (
            "IdempotencyConflict",
            "conflict: a request with this Idempotency-Key is still running (or another conflict); retry after Retry-After",
            true,
        ),
        (
            "TooManyRequests",
            "rate_limited: the client address caused too many failed authentications (or a limit of the operation itself, in its description); Retry-After says when to try again",
            true,
        ),
    ];
    let error = json!({ "application/json": { "schema": { "$ref": "#/components/schemas/Error" } } });
    let mut responses = Map::new();
    for (name, description, retry_after) in PLAIN {
        let mut headers = Map::new();
        if retry_after {
            headers.insert(
                "Retry-After".into(),
                json!({ "$ref": "#/components/headers/RetryAfter" }),
            );
        }
        let answer = |headers: &Map<String, Value>| {
            let mut answer = json!({ "description": description, "content": error });
            if !headers.is_empty() {
                answer["headers"] = Value::Object(headers.clone());
            }
            answer
        };
        responses.insert(name.into(), answer(&headers));
        if name != "TooManyRequests" {
            let mut keyed = headers.clone();
            for (header, component) in RATE_LIMIT_HEADERS {
                keyed.insert(
                    header.into(),
                    json!({ "$ref": format!("#/components/headers/{component}") }),
                );
            }
            responses.insert(format!("{name}Keyed"), answer(&keyed));
        }
    }
    let mut rate_limited = json!({
        "description": "rate_limited: the API key or console session is over its limit (with the X-RateLimit headers: the request never reached its function), the client address caused too many failed authentications, or a limit of the operation itself (its description); Retry-After says when to try again",
        "headers": { "Retry-After": { "$ref": "#/components/headers/RetryAfter" } },
        "content": error,
    });
    for (header, component) in RATE_LIMIT_HEADERS {
        rate_limited["headers"][header] = json!({ "$ref": format!("#/components/headers/{component}") });
    }
    responses.insert("RateLimited".into(), rate_limited);
    responses.insert(
        "MethodNotAllowed".into(),
        json!({
            "description": "method_not_allowed: the answer to any other method at this path; Allow lists the methods it takes",
            "headers": { "Allow": { "description": "The methods the path takes", "required": true, "schema": { "type": "string" }, "example": "GET" } },
            "content": error,
        }),
    );
    responses.insert(
        "PageMethodNotAllowed".into(),
        json!({
            "description": "Any method but GET and HEAD at this address: a 405 HTML page, with Allow: GET, HEAD",
            "headers": { "Allow": { "description": "The methods the address takes", "required": true, "schema": { "type": "string", "enum": ["GET, HEAD"] } } },
            "content": { "text/html": { "schema": { "type": "string" } } },
        }),
    );
    responses
}

fn idempotency_key() -> Value {
    json!({
        "name": crate::idempotency::HEADER,
        "in": "header",
        "required": false,
        "description": "Makes a retry safe: the same key with the same body (per business, method and path) within 24 h gets the first answer again (status and body, with Idempotent-Replayed: true) and does nothing twice. The same key with another body is 422 (field Idempotency-Key); while the first request runs, 409 with Retry-After: 1. 5xx answers are not kept. 1 to 255 visible ASCII characters, else 400.",
        "schema": { "type": "string", "minLength": 1, "maxLength": 255, "pattern": "^[!-~]+$" },
        "example": "sync-2025-11-04-0001",
    })
}

fn shared_headers() -> Value {
    json!({
        "RetryAfter": {
            "description": "Seconds to wait before trying again",
            "required": true,
            "schema": { "type": "integer", "minimum": 1 },
        },
        "RateLimitLimit": {
            "description": "The API key's bucket size: the requests it may make at once (its business's rate_limit.burst). On every answer to a request with an active key.",
            "schema": { "type": "integer", "minimum": 1 },
        },
        "RateLimitRemaining": {
            "description": "Whole requests left in the key's bucket after this one",
            "schema": { "type": "integer", "minimum": 0 },
        },
        "RateLimitReset": {
            "description": "Seconds until the key's bucket is full again",
            "schema": { "type": "integer", "minimum": 0 },
        },
    })
}

fn security_schemes() -> Value {
    let header = |name: &str, description: &str| json!({ "type": "apiKey", "in": "header", "name": name, "description": description });
    let bearer =
        |description: &str| json!({ "type": "http", "scheme": "bearer", "description": description });
    json!({
        "ApiKey": header("x-api-key", "A business's API key (cek_…)"),
        "ApiKeyBearer": bearer("The business's API key as `Authorization: Bearer <key>` (the CRM links guide's way)"),
        "AdminToken": bearer("The ADMIN_TOKEN secret"),
        "ConsoleSession": { "type": "apiKey", "in": "cookie", "name": crate::console::COOKIE_NAME, "description": "A business console's session, opened from a console link; a request that changes something also sends the session's CSRF token in x-csrf-token (GET /console/session gives it)" },
        "EmbedToken": bearer("An SSO token (sso_…) from /api-sso-generate-token"),
        "EmbedTokenQuery": { "type": "apiKey", "in": "query", "name": "token", "description": "An SSO token in the page's URL" },
        "MetaSignature": header("X-Hub-Signature-256", "`sha256=<hex HMAC-SHA256 of the body>`, keyed with the account's app_secret"),
        "TwilioSignature": header("X-Twilio-Signature", "Twilio's signature of the public URL and parameters with the account's auth_token"),
        "KustomerSignature": header("X-Kustomer-Webhook-Signature", "hex HMAC-SHA256 of the body with the connector's webhook_secret"),
        "HubSpotSignature": header("X-HubSpot-Signature-v3", "base64 HMAC-SHA256 of method, URL, body and X-HubSpot-Request-Timestamp with the connector's client_secret"),
        "ChatwootSignature": header("X-Chatwoot-Signature", "`sha256=<hex HMAC-SHA256 of \"{X-Chatwoot-Timestamp}.{body}\">` with the connector's webhook_secret"),
        "StandardWebhooksSignature": header("webhook-signature", "`v1,<base64 HMAC-SHA256 of \"{webhook-id}.{webhook-timestamp}.{body}\">` with the link's webhook_secret"),
    })
}

/// What a path parameter names, and its type: the [`PathParam`] a handler reads it as, where it
/// is read as one.
fn path_parameter(name: &str) -> (&'static str, SchemaFn) {
    // The typed ones are declared once, beside their `PathParam` (`api::path_params!`); these
    // are read by their handlers' own rules.
    let untyped: [(&str, &str, SchemaFn); 3] = [
        ("link_id", "The CRM link (webhook type)", schema::<SourceId>),
        (
            "contact_key",
            "A customer id, or `chatwoot:<contact id>`",
            schema::<String>,
        ),
        (
            "token",
            "The connector's secrets.webhook_token (at least 32 of A-Z a-z 0-9 - _)",
            schema::<String>,
        ),
    ];
    api::TYPED_PATH_PARAMS
        .iter()
        .copied()
        .chain(untyped)
        .find(|(known, _, _)| *known == name)
        .map(|(_, description, schema)| (description, schema))
        .unwrap_or_else(|| panic!("{{{name}}} has no declared type: add it to path_parameter"))
}

fn schema<T: JsonSchema>(generator: &mut SchemaGenerator) -> Schema {
    generator.subschema_for::<T>()
}
