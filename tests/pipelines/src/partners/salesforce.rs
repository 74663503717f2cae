//! One Salesforce org as a partner script, at its My Domain (`acme.my.salesforce.com`): the REST
//! API (v66.0) calls our connector makes, the OAuth 2.0 token endpoint it refreshes with, and the
//! Outbound Messages the org sends when a record changes.
//!
//! Conventions, as Salesforce documents them:
//! - `Authorization: Bearer <access token>`; a token that is unknown or revoked answers 401
//!   `[{"message": "Session expired or invalid", "errorCode": "INVALID_SESSION_ID"}]`.
//! - The consent page (`/services/oauth2/authorize`, [`Salesforce::consent`]) needs
//!   `response_type=code` and, the org's app requiring PKCE, an S256 `code_challenge`; its code
//!   is traded once (`grant_type=authorization_code`) with the `code_verifier` whose SHA-256 is
//!   the challenge (400 `invalid_grant` "invalid code verifier" otherwise).
//! - `POST /services/oauth2/token` (form-encoded) takes `grant_type=refresh_token` (a revoked
//!   refresh token answers 400 `{"error": "invalid_grant", "error_description": "expired
//!   access/refresh token"}`) and `grant_type=client_credentials` (the app's key and secret; wrong
//!   ones answer 400 `invalid_client`). Answers carry `access_token`, `instance_url`, `id`
//!   (`https://login.salesforce.com/id/{org}/{user}`), `token_type`, `issued_at` and
//!   `signature`, and no `expires_in`: a token lasts the org's session timeout.
//! - Every error is an array `[{message, errorCode, fields?}]`. Ids are 18 characters: the
//!   object's key prefix (Contact 003, Lead 00Q, Task 00T, Case 500), then the rest, then three
//!   characters that spell the case of the first fifteen.
//! - `POST …/sobjects/{Object}` answers 201 `{id, success, errors}`; Contact and Lead need a
//!   `LastName`, a Lead a `Company` (400 `REQUIRED_FIELD_MISSING`); a reference (`WhoId`,
//!   `WhatId`, `ContactId`) to no record answers 400 `INVALID_CROSS_REFERENCE_KEY`.
//!   `PATCH …/{Object}/{id}` answers 204, a deleted record 404 `ENTITY_IS_DELETED`, an unknown
//!   one 404 `NOT_FOUND`; `PATCH …/{Object}/{ExternalIdField}/{value}` upserts (201 `created:
//!   true`, 200 `created: false`); `DELETE …/{Object}/{id}` answers 204 and leaves the record in
//!   the recycle bin (`queryAll` still finds it, `IsDeleted` true). Merging keeps the master and
//!   deletes the others with `MasterRecordId` set.
//! - sObject Collections (`POST …/composite/sobjects` to make, `PATCH` to update by `id`,
//!   `PATCH …/composite/sobjects/{Object}/{ExternalIdField}` to upsert): up to 200 records of
//!   `{allOrNone, records}`, each with `attributes.type`, answered 200 with a result per record in
//!   order (`{id, success, errors, created?}`, an error's code as `statusCode`).
//! - `GET …/query?q=` and `…/queryAll?q=` answer `{totalSize, done, records}`. Only the shapes
//!   the connector sends are read (`SELECT … FROM Object WHERE Field = 'value' [AND …] [ORDER BY
//!   …] [LIMIT n]`, or `Field IN ('a', 'b')`, the first condition matched without case,
//!   `IsConverted = false` honoured);
//!   anything else answers 400 `MALFORMED_QUERY`: that is this script's limit, not Salesforce's.
//! - Every answer of the REST API carries `Sforce-Limit-Info: api-usage=<used>/<max>`, the org's
//!   calls over the last 24 hours; once `used` reaches `max` every call answers 403
//!   `REQUEST_LIMIT_EXCEEDED` "TotalRequests Limit exceeded.".
//! - `GET …/sobjects` lists the objects the user can see with `queryable`, `createable`,
//!   `updateable`; `GET …/limits` needs View Setup and Configuration (403 without it);
//!   `GET /services/oauth2/userinfo` names the user and org.
//!
//! A test scripts faults with [`Salesforce::fail`] and [`Salesforce::down`], spends the org's
//! allowance with [`Salesforce::set_usage`], revokes with [`Salesforce::revoke`], and builds the
//! org's Outbound Messages with [`outbound_message`].

use super::form_fields;
use super::script::Script;
use base64::Engine;
use edge::runtime::native::{Outbound, Reply, Stack};
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};
use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap};
use std::rc::Rc;

pub const HOST: &str = "acme.my.salesforce.com";
pub const ORG_ID: &str = "00D5g000004Xyz1EAC";
pub const USER_ID: &str = "0055g000001abcdAAA";
pub const DATA: &str = "/services/data/v66.0";
const SESSION_EXPIRED: &str = "Session expired or invalid";

/// What a user may do with an object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    None,
    Read,
    Edit,
}

/// A record as the org keeps it.
#[derive(Debug, Clone)]
pub struct Record {
    pub object: String,
    pub fields: Map<String, Value>,
    pub deleted: bool,
}

/// A code the consent page gave, until it is traded (once).
struct Code {
    client_id: String,
    redirect_uri: String,
    challenge: String,
}

struct State {
    codes: HashMap<String, Code>,
    /// Access tokens that work.
    tokens: Vec<String>,
    /// Refresh tokens that work, and the app that holds each.
    refresh_tokens: HashMap<String, String>,
    /// Apps: key and secret.
    apps: HashMap<String, String>,
    records: BTreeMap<String, Record>,
    /// Creation order.
    order: Vec<String>,
    external_ids: Vec<(String, String)>,
    access: HashMap<String, Access>,
    limits_readable: bool,
    used: u64,
    max: u64,
    next: u64,
    calls: Vec<Outbound>,
    script: Script,
}

/// The org, shared between the test and the stack's partner table.
#[derive(Clone)]
pub struct Salesforce {
    state: Rc<RefCell<State>>,
}

impl Salesforce {
    /// The org at [`HOST`], whose calls `access_token` makes.
    pub fn install(stack: &Stack, access_token: &str) -> Self {
        let salesforce = Self {
            state: Rc::new(RefCell::new(State {
                codes: HashMap::new(),
                tokens: vec![access_token.to_owned()],
                refresh_tokens: HashMap::new(),
                apps: HashMap::new(),
                records: BTreeMap::new(),
                order: Vec::new(),
                external_ids: Vec::new(),
                access: HashMap::new(),
                limits_readable: true,
                used: 0,
                max: 100_000,
                next: 0,
                calls: Vec::new(),
                script: Script::default(),
            })),
        };
        let serving = salesforce.clone();
        stack.partner(HOST, move |call| serving.answer(call));
        salesforce
    }

    pub fn base_url(&self) -> String {
        format!("https://{HOST}")
    }

    /// An app (external client app) with its consumer key and secret; `refresh_token` is a
    /// person's authorisation of it.
    pub fn add_app(&self, client_id: &str, client_secret: &str, refresh_token: Option<&str>) {
        let mut state = self.state.borrow_mut();
        state.apps.insert(client_id.to_owned(), client_secret.to_owned());
        if let Some(refresh) = refresh_token {
            state
                .refresh_tokens
                .insert(refresh.to_owned(), client_id.to_owned());
        }
    }

    /// A person logs in on the consent page at `authorize_url` and allows the app: where the
    /// page sends them back (`redirect_uri?code=…&state=…`). Refused, as Salesforce refuses it,
    /// without `response_type=code`, a known app, a redirect URI, or an S256 PKCE challenge (the
    /// org's app requires PKCE).
    pub fn consent(&self, authorize_url: &str) -> Result<String, String> {
        let url = url::Url::parse(authorize_url).map_err(|error| error.to_string())?;
        if url.host_str() != Some(HOST) || url.path() != "/services/oauth2/authorize" {
            return Err(format!("not this org's consent page: {authorize_url}"));
        }
        let query: HashMap<String, String> = url.query_pairs().into_owned().collect();
        let field = |name: &str| query.get(name).cloned().unwrap_or_default();
        if field("response_type") != "code" {
            return Err("error=unsupported_response_type".to_owned());
        }
        if !self.state.borrow().apps.contains_key(&field("client_id")) {
            return Err("error=invalid_client_id".to_owned());
        }
        if field("redirect_uri").is_empty() {
            return Err("error=redirect_uri_mismatch".to_owned());
        }
        if field("code_challenge").is_empty() || field("code_challenge_method") != "S256" {
            return Err("error=invalid_request&error_description=missing required code challenge".to_owned());
        }
        let mut state = self.state.borrow_mut();
        state.next += 1;
        let code = format!("aPrx{}", state.next);
        state.codes.insert(
            code.clone(),
            Code {
                client_id: field("client_id"),
                redirect_uri: field("redirect_uri"),
                challenge: field("code_challenge"),
            },
        );
        let back = url::form_urlencoded::Serializer::new(String::new())
            .append_pair("code", &code)
            .append_pair("state", &field("state"))
            .finish();
        Ok(format!("{}?{back}", field("redirect_uri")))
    }

    /// Every access and refresh token revoked (the user's OAuth connection removed).
    pub fn revoke(&self) {
        let mut state = self.state.borrow_mut();
        state.tokens.clear();
        state.refresh_tokens.clear();
    }

    /// The access tokens expire (the session timed out); refresh tokens still work.
    pub fn expire_sessions(&self) {
        self.state.borrow_mut().tokens.clear();
    }

    /// A custom External ID field of `object`.
    pub fn add_external_id(&self, object: &str, field: &str) {
        self.state
            .borrow_mut()
            .external_ids
            .push((object.to_owned(), field.to_owned()));
    }

    pub fn set_access(&self, object: &str, access: Access) {
        self.state.borrow_mut().access.insert(object.to_owned(), access);
    }

    pub fn set_limits_readable(&self, readable: bool) {
        self.state.borrow_mut().limits_readable = readable;
    }

    /// The org's calls over the last 24 hours, and its allowance.
    pub fn set_usage(&self, used: u64, max: u64) {
        let mut state = self.state.borrow_mut();
        state.used = used;
        state.max = max;
    }

    pub fn usage(&self) -> (u64, u64) {
        let state = self.state.borrow();
        (state.used, state.max)
    }

    /// The next `times` calls for which `matches` holds answer `reply`.
    pub fn fail(&self, times: usize, matches: impl Fn(&Outbound) -> bool + 'static, reply: Reply) {
        self.state.borrow_mut().script.fail(times, matches, reply);
    }

    /// Connections refused (true) or taken again.
    pub fn down(&self, down: bool) {
        self.state.borrow_mut().script.set_down(down);
    }

    pub fn calls(&self) -> Vec<Outbound> {
        self.state.borrow().calls.clone()
    }

    /// Live records of `object`, oldest first.
    pub fn records(&self, object: &str) -> Vec<(String, Map<String, Value>)> {
        let state = self.state.borrow();
        state
            .order
            .iter()
            .filter_map(|id| {
                let record = state.records.get(id)?;
                (record.object == object && !record.deleted).then(|| (id.clone(), record.fields.clone()))
            })
            .collect()
    }

    /// A record as the org keeps it, deleted or not.
    pub fn record(&self, id: &str) -> Option<Record> {
        self.state.borrow().records.get(id).cloned()
    }

    /// A record made in Salesforce by a person (not through the API).
    pub fn seed(&self, object: &str, fields: Value) -> String {
        let mut state = self.state.borrow_mut();
        let fields = fields.as_object().cloned().unwrap_or_default();
        insert(&mut state, object, fields)
    }

    /// `other` merged into `master`: deleted, with `MasterRecordId` set; its Tasks move over.
    pub fn merge(&self, master: &str, other: &str) {
        let mut state = self.state.borrow_mut();
        for record in state.records.values_mut() {
            if record.object == "Task" && record.fields.get("WhoId") == Some(&json!(other)) {
                record.fields.insert("WhoId".to_owned(), json!(master));
            }
        }
        if let Some(record) = state.records.get_mut(other) {
            record.deleted = true;
            record.fields.insert("MasterRecordId".to_owned(), json!(master));
        }
    }

    /// A record deleted by a person: to the recycle bin.
    pub fn delete(&self, id: &str) {
        if let Some(record) = self.state.borrow_mut().records.get_mut(id) {
            record.deleted = true;
        }
    }

    /// A field of a record set by a person (a Case's Status).
    pub fn set_field(&self, id: &str, field: &str, value: Value) {
        if let Some(record) = self.state.borrow_mut().records.get_mut(id) {
            record.fields.insert(field.to_owned(), value);
        }
    }

    fn answer(&self, call: &Outbound) -> Reply {
        let scripted = {
            let mut state = self.state.borrow_mut();
            state.calls.push(call.clone());
            state.script.scripted(call)
        };
        if let Some(reply) = scripted {
            return reply;
        }
        let path = call.path().to_owned();
        if path == "/services/oauth2/token" {
            return self.token(call);
        }
        let bearer = call
            .header("authorization")
            .and_then(|value| value.strip_prefix("Bearer "));
        let known = bearer.is_some_and(|token| self.state.borrow().tokens.iter().any(|t| t == token));
        if !known {
            return errors(401, "INVALID_SESSION_ID", SESSION_EXPIRED);
        }
        let mut state = self.state.borrow_mut();
        if state.used >= state.max {
            let reply = errors(403, "REQUEST_LIMIT_EXCEEDED", "TotalRequests Limit exceeded.");
            return with_usage(reply, &state);
        }
        state.used += 1;
        let reply = if path == "/services/oauth2/userinfo" {
            Reply::json(
                200,
                &json!({
                    "sub": format!("https://login.salesforce.com/id/{ORG_ID}/{USER_ID}"),
                    "user_id": USER_ID,
                    "organization_id": ORG_ID,
                    "preferred_username": "integration@acme.example",
                    "name": "Integration User",
                    "email": "integration@acme.example",
                }),
            )
        } else if let Some(rest) = path.strip_prefix(DATA) {
            data(&mut state, call, rest)
        } else {
            errors(404, "NOT_FOUND", "The requested resource does not exist")
        };
        with_usage(reply, &state)
    }

    fn token(&self, call: &Outbound) -> Reply {
        let form: HashMap<String, String> = form_fields(call).into_iter().collect();
        let field = |name: &str| form.get(name).map(String::as_str).unwrap_or_default();
        let mut state = self.state.borrow_mut();
        let app_ok = state.apps.get(field("client_id")).map(String::as_str) == Some(field("client_secret"));
        let refused = |error: &str, description: &str| {
            Reply::json(400, &json!({ "error": error, "error_description": description }))
        };
        let granted = match field("grant_type") {
            "authorization_code" => {
                let Some(code) = state.codes.remove(field("code")) else {
                    return refused("invalid_grant", "invalid authorization code");
                };
                let challenged = base64::engine::general_purpose::URL_SAFE_NO_PAD
                    .encode(Sha256::digest(field("code_verifier").as_bytes()));
                if code.client_id != field("client_id") || code.redirect_uri != field("redirect_uri") {
                    return refused("invalid_grant", "redirect_uri mismatch");
                }
                if challenged != code.challenge {
                    return refused("invalid_grant", "invalid code verifier");
                }
                if !app_ok {
                    return refused("invalid_client", "invalid client credentials");
                }
                state.next += 1;
                let refresh = format!("5Aep861{}", state.next);
                state.refresh_tokens.insert(refresh.clone(), code.client_id);
                state.next += 1;
                let token = format!("00D5g000004Xyz!AQ{}", state.next);
                state.tokens.push(token.clone());
                return Reply::json(
                    200,
                    &json!({
                        "access_token": token,
                        "refresh_token": refresh,
                        "instance_url": format!("https://{HOST}"),
                        "id": format!("https://login.salesforce.com/id/{ORG_ID}/{USER_ID}"),
                        "token_type": "Bearer",
                        "issued_at": call.at_ms.to_string(),
                        "signature": "c2lnbmF0dXJl",
                        "scope": "api id refresh_token",
                    }),
                );
            }
            "refresh_token" => {
                let holder = state.refresh_tokens.get(field("refresh_token"));
                if holder.map(String::as_str) != Some(field("client_id")) || !app_ok {
                    return Reply::json(
                        400,
                        &json!({ "error": "invalid_grant", "error_description": "expired access/refresh token" }),
                    );
                }
                true
            }
            "client_credentials" => app_ok,
            _ => {
                return Reply::json(
                    400,
                    &json!({ "error": "unsupported_grant_type", "error_description": "grant type not supported" }),
                );
            }
        };
        if !granted {
            return Reply::json(
                400,
                &json!({ "error": "invalid_client", "error_description": "invalid client credentials" }),
            );
        }
        state.next += 1;
        let token = format!("00D5g000004Xyz!AQ{}", state.next);
        state.tokens.push(token.clone());
        Reply::json(
            200,
            &json!({
                "access_token": token,
                "instance_url": format!("https://{HOST}"),
                "id": format!("https://login.salesforce.com/id/{ORG_ID}/{USER_ID}"),
                "token_type": "Bearer",
                "issued_at": call.at_ms.to_string(),
                "signature": "c2lnbmF0dXJl",
                "scope": "api id refresh_token",
            }),
        )
    }
}

fn with_usage(reply: Reply, state: &State) -> Reply {
    reply.header(
        "Sforce-Limit-Info",
        &format!("api-usage={}/{}", state.used, state.max),
    )
}

fn errors(status: u16, code: &str, message: &str) -> Reply {
    Reply::json(status, &json!([{ "message": message, "errorCode": code }]))
}

fn key_prefix(object: &str) -> Option<&'static str> {
    Some(match object {
        "Contact" => "003",
        "Lead" => "00Q",
        "Task" => "00T",
        "Case" => "500",
        _ => return None,
    })
}

/// The 18-character form of a 15-character id, computed as Salesforce documents it.
pub fn case_safe(id15: &str) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ012345";
    let bytes = id15.as_bytes();
    let mut suffix = String::new();
    for chunk in bytes.chunks(5) {
        let mut bits = 0usize;
        for (at, byte) in chunk.iter().enumerate() {
            if byte.is_ascii_uppercase() {
                bits |= 1 << at;
            }
        }
        suffix.push(char::from(ALPHABET[bits]));
    }
    format!("{id15}{suffix}")
}

fn insert(state: &mut State, object: &str, mut fields: Map<String, Value>) -> String {
    state.next += 1;
    let prefix = key_prefix(object).unwrap_or("001");
    let id = case_safe(&format!("{prefix}5g{:010}", state.next));
    fields.insert("Id".to_owned(), json!(id));
    state.records.insert(
        id.clone(),
        Record {
            object: object.to_owned(),
            fields,
            deleted: false,
        },
    );
    state.order.push(id.clone());
    id
}

/// The record `id` names (15 or 18 characters).
fn find<'s>(state: &'s State, object: &str, id: &str) -> Option<(&'s String, &'s Record)> {
    let id = if id.len() == 15 {
        case_safe(id)
    } else {
        id.to_owned()
    };
    state
        .records
        .iter()
        .find(|(known, record)| known.eq_ignore_ascii_case(&id) && record.object == object)
}

fn access(state: &State, object: &str) -> Access {
    state.access.get(object).copied().unwrap_or(Access::Edit)
}

fn data(state: &mut State, call: &Outbound, rest: &str) -> Reply {
    let segments: Vec<&str> = rest.trim_matches('/').split('/').collect();
    match (call.method.as_str(), segments.as_slice()) {
        ("GET", ["limits"]) => {
            if !state.limits_readable {
                return errors(
                    403,
                    "INSUFFICIENT_ACCESS",
                    "The user does not have the View Setup and Configuration permission",
                );
            }
            Reply::json(
                200,
                &json!({ "DailyApiRequests": { "Max": state.max, "Remaining": state.max.saturating_sub(state.used) } }),
            )
        }
        ("GET", ["sobjects"]) => {
            let sobjects: Vec<Value> = ["Contact", "Lead", "Task", "Case"]
                .iter()
                .filter(|object| access(state, object) != Access::None)
                .map(|object| {
                    let edit = access(state, object) == Access::Edit;
                    json!({ "name": object, "queryable": true, "createable": edit, "updateable": edit, "deletable": edit })
                })
                .collect();
            Reply::json(
                200,
                &json!({ "encoding": "UTF-8", "maxBatchSize": 200, "sobjects": sobjects }),
            )
        }
        ("GET", ["query"]) | ("GET", ["queryAll"]) => query(state, call, segments[0] == "queryAll"),
        ("POST", ["sobjects", object]) => create(state, object, &call.json()),
        ("POST", ["composite", "sobjects"]) => collection(state, &call.json(), None),
        ("PATCH", ["composite", "sobjects"]) => collection(state, &call.json(), None),
        ("PATCH", ["composite", "sobjects", object, field]) => {
            collection(state, &call.json(), Some((*object, *field)))
        }
        ("GET", ["sobjects", object, id]) => read(state, call, object, id),
        ("PATCH", ["sobjects", object, id]) => update(state, object, id, &call.json()),
        ("PATCH", ["sobjects", object, field, value]) => {
            let value = percent_decoded(value);
            upsert(state, object, field, &value, &call.json())
        }
        ("DELETE", ["sobjects", object, id]) => {
            if access(state, object) != Access::Edit {
                return errors(
                    403,
                    "INSUFFICIENT_ACCESS_OR_READONLY",
                    "insufficient access rights on object id",
                );
            }
            let found = find(state, object, id).map(|(id, record)| (id.clone(), record.deleted));
            match found {
                Some((id, false)) => {
                    if let Some(record) = state.records.get_mut(&id) {
                        record.deleted = true;
                    }
                    Reply::status(204)
                }
                Some((_, true)) => errors(404, "ENTITY_IS_DELETED", "entity is deleted"),
                None => errors(404, "NOT_FOUND", "The requested resource does not exist"),
            }
        }
        _ => errors(404, "NOT_FOUND", "The requested resource does not exist"),
    }
}

/// Why `fields` cannot be saved on `object` (a required field, a reference to nothing).
fn refusal(state: &State, object: &str, fields: &Map<String, Value>, creating: bool) -> Option<Reply> {
    let text = |name: &str| {
        fields
            .get(name)
            .and_then(Value::as_str)
            .filter(|v| !v.trim().is_empty())
    };
    let required: &[&str] = match object {
        "Contact" => &["LastName"],
        "Lead" => &["LastName", "Company"],
        _ => &[],
    };
    if creating && let Some(missing) = required.iter().find(|name| text(name).is_none()) {
        return Some(Reply::json(
            400,
            &json!([{ "message": format!("Required fields are missing: [{missing}]"), "errorCode": "REQUIRED_FIELD_MISSING", "fields": [missing] }]),
        ));
    }
    for (name, target) in [("WhoId", None), ("WhatId", None), ("ContactId", Some("Contact"))] {
        if let Some(id) = text(name) {
            let exists = state.records.iter().any(|(known, record)| {
                known.eq_ignore_ascii_case(id) && !record.deleted && target.is_none_or(|t| record.object == t)
            });
            if !exists {
                return Some(Reply::json(
                    400,
                    &json!([{ "message": format!("invalid cross reference id"), "errorCode": "INVALID_CROSS_REFERENCE_KEY", "fields": [name] }]),
                ));
            }
        }
    }
    None
}

/// `GET …/sobjects/{Object}/{id}[?fields=a,b]`: the record's fields asked for (all without
/// `fields`), with `attributes`; a Case's `IsClosed` is false unless a person closed it.
fn read(state: &State, call: &Outbound, object: &str, id: &str) -> Reply {
    let Some((id, record)) = find(state, object, id) else {
        return errors(404, "NOT_FOUND", "The requested resource does not exist");
    };
    if record.deleted {
        return errors(404, "ENTITY_IS_DELETED", "entity is deleted");
    }
    let asked: Option<Vec<String>> = call
        .query()
        .get("fields")
        .map(|fields| fields.split(',').map(|name| name.trim().to_owned()).collect());
    let mut out = Map::new();
    out.insert(
        "attributes".to_owned(),
        json!({ "type": object, "url": format!("{DATA}/sobjects/{object}/{id}") }),
    );
    out.insert("Id".to_owned(), json!(id));
    let value = |name: &str| match (name, record.fields.get(name)) {
        (_, Some(value)) => value.clone(),
        ("IsClosed", None) => json!(false),
        _ => Value::Null,
    };
    match asked {
        Some(names) => {
            for name in names {
                let kept = value(&name);
                out.insert(name, kept);
            }
        }
        None => out.extend(record.fields.clone()),
    }
    Reply::json(200, &Value::Object(out))
}

fn create(state: &mut State, object: &str, body: &Value) -> Reply {
    if key_prefix(object).is_none() || access(state, object) == Access::None {
        return errors(404, "NOT_FOUND", "The requested resource does not exist");
    }
    if access(state, object) != Access::Edit {
        return errors(
            403,
            "INSUFFICIENT_ACCESS_OR_READONLY",
            "insufficient access rights on object id",
        );
    }
    let Some(fields) = body.as_object().cloned() else {
        return errors(400, "JSON_PARSER_ERROR", "The request body is not a JSON object");
    };
    if let Some(refused) = refusal(state, object, &fields, true) {
        return refused;
    }
    let id = insert(state, object, fields);
    Reply::json(201, &json!({ "id": id, "success": true, "errors": [] }))
}

fn update(state: &mut State, object: &str, id: &str, body: &Value) -> Reply {
    if access(state, object) != Access::Edit {
        return errors(
            403,
            "INSUFFICIENT_ACCESS_OR_READONLY",
            "insufficient access rights on object id",
        );
    }
    let Some(fields) = body.as_object().cloned() else {
        return errors(400, "JSON_PARSER_ERROR", "The request body is not a JSON object");
    };
    let found = find(state, object, id).map(|(id, record)| (id.clone(), record.deleted));
    let id = match found {
        Some((_, true)) => return errors(404, "ENTITY_IS_DELETED", "entity is deleted"),
        None => return errors(404, "NOT_FOUND", "The requested resource does not exist"),
        Some((id, false)) => id,
    };
    if let Some(refused) = refusal(state, object, &fields, false) {
        return refused;
    }
    if let Some(record) = state.records.get_mut(&id) {
        record.fields.extend(fields);
    }
    Reply::status(204)
}

fn upsert(state: &mut State, object: &str, field: &str, value: &str, body: &Value) -> Reply {
    let declared = state.external_ids.iter().any(|(o, f)| o == object && f == field);
    if !declared {
        return errors(
            404,
            "NOT_FOUND",
            &format!("Provided external ID field does not exist or is not accessible: {field}"),
        );
    }
    let Some(mut fields) = body.as_object().cloned() else {
        return errors(400, "JSON_PARSER_ERROR", "The request body is not a JSON object");
    };
    if fields.contains_key(field) || fields.contains_key("Id") {
        return errors(
            400,
            "INVALID_FIELD",
            "The external ID field or Id may not be in the body",
        );
    }
    let matching: Vec<String> = state
        .records
        .iter()
        .filter(|(_, record)| {
            record.object == object
                && !record.deleted
                && record
                    .fields
                    .get(field)
                    .and_then(Value::as_str)
                    .is_some_and(|kept| kept.eq_ignore_ascii_case(value))
        })
        .map(|(id, _)| id.clone())
        .collect();
    match matching.as_slice() {
        [] => {
            fields.insert(field.to_owned(), json!(value));
            let reply = create(state, object, &Value::Object(fields));
            if reply.status != 201 {
                return reply;
            }
            let id = serde_json::from_slice::<Value>(&reply.body).unwrap_or_default()["id"].clone();
            Reply::json(
                201,
                &json!({ "id": id, "success": true, "errors": [], "created": true }),
            )
        }
        [id] => {
            let id = id.clone();
            let reply = update(state, object, &id, &Value::Object(fields));
            if reply.status != 204 {
                return reply;
            }
            Reply::json(
                200,
                &json!({ "id": id, "success": true, "errors": [], "created": false }),
            )
        }
        several => Reply::json(
            300,
            &json!(
                several
                    .iter()
                    .map(|id| format!("{DATA}/sobjects/{object}/{id}"))
                    .collect::<Vec<_>>()
            ),
        ),
    }
}

/// sObject Collections: each record of `{allOrNone, records}` saved as it would be alone (made,
/// or updated by its `id`, or upserted by `upsert`'s External ID field), and answered 200 with a
/// result for each, in order. At most 200 records; `allOrNone: true` is not read by this script.
fn collection(state: &mut State, body: &Value, upsert_by: Option<(&str, &str)>) -> Reply {
    let Some(records) = body.get("records").and_then(Value::as_array) else {
        return errors(400, "JSON_PARSER_ERROR", "records is required");
    };
    if records.len() > 200 {
        return errors(400, "EXCEEDED_ID_LIMIT", "record limit exceeded. Limit is 200");
    }
    if body.get("allOrNone") == Some(&json!(true)) {
        return errors(
            400,
            "INVALID_API_INPUT",
            "this script reads only allOrNone: false",
        );
    }
    let mut results = Vec::with_capacity(records.len());
    for record in records {
        let mut fields = record.as_object().cloned().unwrap_or_default();
        let object = fields
            .remove("attributes")
            .and_then(|attributes| attributes.get("type").and_then(Value::as_str).map(str::to_owned))
            .unwrap_or_default();
        let id = fields.remove("id").and_then(|id| id.as_str().map(str::to_owned));
        let reply = match (upsert_by, &id) {
            (Some((of, _)), _) if of != object => {
                errors(400, "INVALID_TYPE", "the record's type is not the request's")
            }
            (Some((_, field)), _) => {
                let value = fields
                    .remove(field)
                    .and_then(|value| value.as_str().map(str::to_owned));
                match value {
                    Some(value) => upsert(state, &object, field, &value, &Value::Object(fields)),
                    None => errors(400, "REQUIRED_FIELD_MISSING", &format!("{field} is required")),
                }
            }
            (None, Some(id)) => update(state, &object, id, &Value::Object(fields)),
            (None, None) => create(state, &object, &Value::Object(fields)),
        };
        results.push(collection_item(&reply, id.as_deref()));
    }
    Reply::json(200, &Value::Array(results))
}

/// One record's result in a collection's answer, from what the same call alone answered: its id
/// (and for an upsert whether it was made), or its errors, `statusCode` where alone they say
/// `errorCode`.
fn collection_item(reply: &Reply, id: Option<&str>) -> Value {
    let body: Value = serde_json::from_slice(&reply.body).unwrap_or(Value::Null);
    if (200..300).contains(&reply.status) {
        let id = body.get("id").and_then(Value::as_str).or(id);
        let mut item = json!({ "id": id, "success": true, "errors": [] });
        if let Some(created) = body.get("created") {
            item["created"] = created.clone();
        }
        return item;
    }
    let errors: Vec<Value> = match reply.status {
        300 => vec![
            json!({ "statusCode": "DUPLICATE_EXTERNAL_ID", "message": "more than one record found for external id field", "fields": [] }),
        ],
        _ => body
            .as_array()
            .into_iter()
            .flatten()
            .map(|error| {
                json!({ "statusCode": error["errorCode"], "message": error["message"], "fields": error.get("fields").cloned().unwrap_or(json!([])) })
            })
            .collect(),
    };
    json!({ "id": null, "success": false, "errors": errors })
}

fn percent_decoded(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut at = 0;
    while at < bytes.len() {
        if bytes[at] == b'%'
            && let Some(byte) = text
                .get(at + 1..at + 3)
                .and_then(|hex| u8::from_str_radix(hex, 16).ok())
        {
            out.push(byte);
            at += 3;
            continue;
        }
        out.push(bytes[at]);
        at += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// A SOQL string literal's text.
fn literal(text: &str) -> Option<(String, &str)> {
    let rest = text.strip_prefix('\'')?;
    let mut value = String::new();
    let mut chars = rest.char_indices();
    while let Some((at, c)) = chars.next() {
        match c {
            '\\' => {
                let (_, escaped) = chars.next()?;
                value.push(match escaped {
                    'n' => '\n',
                    'r' => '\r',
                    't' => '\t',
                    other => other,
                });
            }
            '\'' => return Some((value, &rest[at + 1..])),
            c => value.push(c),
        }
    }
    None
}

/// A query's first condition, `Field = 'value'` or `Field IN ('value', …)`: the field, the values
/// and what follows.
fn comparison(condition: &str) -> Option<(&str, Vec<String>, &str)> {
    if let Some((field, value)) = condition.split_once(" = ")
        && !field.contains(' ')
    {
        let (value, after) = literal(value)?;
        return Some((field, vec![value], after));
    }
    let (field, mut rest) = condition.split_once(" IN (")?;
    let mut values = Vec::new();
    loop {
        let (value, after) = literal(rest)?;
        values.push(value);
        match after.strip_prefix(", ") {
            Some(next) => rest = next,
            None => return Some((field, values, after.strip_prefix(')')?)),
        }
    }
}

fn query(state: &State, call: &Outbound, all: bool) -> Reply {
    let malformed = |what: &str| {
        errors(
            400,
            "MALFORMED_QUERY",
            &format!("ERROR at Row:1:Column:1\n{what}"),
        )
    };
    let Some(soql) = call.query().get("q").map(str::to_owned) else {
        return malformed("no query");
    };
    let Some((select, rest)) = soql
        .strip_prefix("SELECT ")
        .and_then(|rest| rest.split_once(" FROM "))
    else {
        return malformed("unexpected token");
    };
    let Some((object, condition)) = rest.split_once(" WHERE ") else {
        return malformed("this script reads only queries with a WHERE");
    };
    let Some((field, values, after)) = comparison(condition) else {
        return malformed("expected Field = 'value' or Field IN ('value', …)");
    };
    let unconverted = after.contains("IsConverted = false");
    let limit = after
        .split_once("LIMIT ")
        .and_then(|(_, n)| n.trim().parse::<usize>().ok())
        .unwrap_or(2_000);
    let fields: Vec<&str> = select.split(',').map(str::trim).collect();
    let records: Vec<Value> = state
        .order
        .iter()
        .filter_map(|id| state.records.get(id).map(|record| (id, record)))
        .filter(|(_, record)| record.object == object && (all || !record.deleted))
        .filter(|(id, record)| {
            let kept = if field == "Id" {
                Some(id.as_str())
            } else {
                record.fields.get(field).and_then(Value::as_str)
            };
            kept.is_some_and(|kept| {
                values.iter().any(|value| {
                    kept.eq_ignore_ascii_case(value) || (field == "Id" && kept.starts_with(value.as_str()))
                })
            })
        })
        .filter(|(_, record)| !unconverted || record.fields.get("IsConverted") != Some(&json!(true)))
        .take(limit)
        .map(|(id, record)| {
            let mut out = Map::new();
            out.insert(
                "attributes".to_owned(),
                json!({ "type": object, "url": format!("{DATA}/sobjects/{object}/{id}") }),
            );
            for name in &fields {
                let value = match *name {
                    "Id" => json!(id),
                    "IsDeleted" => json!(record.deleted),
                    other => record.fields.get(other).cloned().unwrap_or(Value::Null),
                };
                out.insert((*name).to_owned(), value);
            }
            Value::Object(out)
        })
        .collect();
    Reply::json(
        200,
        &json!({ "totalSize": records.len(), "done": true, "records": records }),
    )
}

/// One notification of an Outbound Message: its id, the object, and the fields sent (None: nil).
pub struct Notified<'a> {
    pub id: &'a str,
    pub object: &'a str,
    pub fields: Vec<(&'a str, Option<&'a str>)>,
}

/// The SOAP message the org posts to an Outbound Message's endpoint, as Salesforce documents it.
pub fn outbound_message(organization: &str, notifications: &[Notified<'_>]) -> String {
    let escape = |text: &str| {
        text.replace('&', "&amp;")
            .replace('<', "&lt;")
            .replace('>', "&gt;")
    };
    let mut body = String::new();
    for notified in notifications {
        body.push_str(&format!(
            "<Notification><Id>{}</Id><sObject xsi:type=\"sf:{}\" xmlns:sf=\"urn:sobject.enterprise.soap.sforce.com\">",
            notified.id, notified.object
        ));
        for (name, value) in &notified.fields {
            match value {
                Some(value) => body.push_str(&format!("<sf:{name}>{}</sf:{name}>", escape(value))),
                None => body.push_str(&format!("<sf:{name} xsi:nil=\"true\"/>")),
            }
        }
        body.push_str("</sObject></Notification>");
    }
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\
         <soapenv:Envelope xmlns:soapenv=\"http://schemas.xmlsoap.org/soap/envelope/\" \
         xmlns:xsd=\"http://www.w3.org/2001/XMLSchema\" xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\">\
         <soapenv:Body><notifications xmlns=\"http://soap.sforce.com/2005/09/outbound\">\
         <OrganizationId>{organization}</OrganizationId><ActionId>04k5g000000KyDSAA0</ActionId>\
         <SessionId xsi:nil=\"true\"/>\
         <EnterpriseUrl>https://{HOST}/services/Soap/c/66.0/00D5g000004Xyz</EnterpriseUrl>\
         <PartnerUrl>https://{HOST}/services/Soap/u/66.0/00D5g000004Xyz</PartnerUrl>\
         {body}</notifications></soapenv:Body></soapenv:Envelope>"
    )
}
