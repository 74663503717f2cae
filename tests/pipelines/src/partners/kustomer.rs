//! Kustomer's REST API (v1) as a partner script: the paths our connector calls, with Kustomer's
//! conventions: `Authorization: Bearer <API key>`; one record as `{data: {type, id, attributes,
//! relationships, links}}`, a list as `{data, links: {self, first, prev, next}, meta}` driven by
//! `?page=&pageSize=`; errors as `{errors: [{status, code, title, detail, source}]}`; ids shaped
//! like MongoDB ObjectIds; 404 for a customer no email or external id finds; 409 for a second
//! customer with the same email or external id, or a stale `rev`; custom attributes whose name's
//! suffix (Str, Txt, Num, At, Bool, Url) fixes the value's type; bodies over 100 kB refused with
//! 413.
//!
//! Limits, as Kustomer documents them: one request budget per organization (shared by all its
//! keys) per fixed window, reported on every authenticated answer as `x-ratelimit-limit`,
//! `x-ratelimit-remaining` and `x-ratelimit-reset` (whole seconds until the window ends) and
//! answered with 429 and `Retry-After` (seconds) when spent; off unless [`Kustomer::rate_limit`]
//! sets it, and then no such headers are sent. Separately, 120 creates per customer per minute for
//! each of conversations, messages and notes; bodies carrying `importedAt` are exempt. Windows run
//! on the stack's clock.
//!
//! Records belong to the organization of the key that made them: one organization never reads
//! another's. Each key holds permissions (the setup guide's names: `customers:write`, ...), which
//! are Kustomer roles underneath ([`roles_of`]); each 403 also names the role a real key would
//! need. `GET /v1/auth/tokens/current` answers the key itself, with its roles and, when
//! [`Kustomer::key_expires`] gave it one, its expiry (`expireAt`); an expired key is refused
//! like an unknown one (401), as Kustomer's keys work "until it expires or is deleted".
//!
//! A test scripts faults with [`Kustomer::fail`] (a reply for the next matching calls),
//! [`Kustomer::hang`] (calls that are never answered), [`Kustomer::down`] (connections refused),
//! reads what was written from the records kept here, and builds Kustomer's outbound webhooks,
//! signed as Kustomer signs them ([`Kustomer::webhook`]).

use super::script::{Script, status_seen};
use super::{hmac_sha256, json_reply};
use domain::time::Timestamp;
use edge::runtime::native::{Outbound, Reply, Stack};
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};
use std::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::Rc;
use std::time::Duration;

/// Every permission a key can hold; [`Kustomer::install`]'s key holds them all.
pub const PERMISSIONS: [&str; 9] = [
    "customers:read",
    "customers:write",
    "conversations:read",
    "conversations:write",
    "messages:read",
    "messages:write",
    "notes:read",
    "notes:write",
    "teams:read",
];
pub const NOTE_MAX_LENGTH: usize = 10_240;
pub const CUSTOM_TEXT_MAX_LENGTH: usize = 1024;
pub const BODY_MAX_BYTES: usize = 100 * 1024;
pub const DEFAULT_PAGE_SIZE: usize = 25;
/// The most records a list answers with.
pub const MAX_PAGE_SIZE: usize = 100;
/// Kustomer allows larger pages for teams than for other lists.
pub const TEAMS_MAX_PAGE_SIZE: usize = 500;
pub const CUSTOMER_CREATES_PER_MINUTE: u32 = 120;
pub const CHANNELS: [&str; 10] = [
    "email",
    "sms",
    "chat",
    "facebook",
    "instagram",
    "whatsapp",
    "twitter-dm",
    "twitter-tweet",
    "voice",
    "form",
];
/// The header a webhook's event name is in, and the one its signature is in.
pub const EVENT_HEADER: &str = "X-Kustomer-Webhook-Event";
pub const SIGNATURE_HEADER: &str = "X-Kustomer-Webhook-Signature";

const CONVERSATION_STATUSES: [&str; 3] = ["open", "done", "snoozed"];
const DIRECTIONS: [&str; 2] = ["in", "out"];
const CUSTOMER_ATTRIBUTES: [&str; 21] = [
    "name",
    "externalId",
    "emails",
    "phones",
    "whatsapps",
    "socials",
    "urls",
    "locations",
    "tags",
    "custom",
    "company",
    "locale",
    "timeZone",
    "gender",
    "birthdayAt",
    "avatarUrl",
    "username",
    "signedUpAt",
    "lastActivityAt",
    "importedAt",
    "rev",
];
const CONVERSATION_CREATE_ATTRIBUTES: [&str; 14] = [
    "customer",
    "name",
    "externalId",
    "status",
    "priority",
    "direction",
    "assignedTeams",
    "assignedUsers",
    "tags",
    "custom",
    "replyChannel",
    "defaultLang",
    "queue",
    "importedAt",
];
const CONVERSATION_UPDATE_ATTRIBUTES: [&str; 15] = [
    "name",
    "externalId",
    "status",
    "priority",
    "direction",
    "assignedTeams",
    "assignedUsers",
    "tags",
    "custom",
    "satisfaction",
    "replyChannel",
    "defaultLang",
    "queue",
    "snooze",
    "rev",
];
const MESSAGE_ATTRIBUTES: [&str; 15] = [
    "channel",
    "app",
    "direction",
    "preview",
    "subject",
    "meta",
    "status",
    "externalId",
    "sentAt",
    "size",
    "attachments",
    "auto",
    "lang",
    "location",
    "importedAt",
];
const NOTE_ATTRIBUTES: [&str; 3] = ["body", "userMentions", "importedAt"];

/// One Kustomer organization (or several, each reached with its own keys) at one host.
#[derive(Clone)]
pub struct Kustomer {
    state: Rc<RefCell<State>>,
}

/// A call Kustomer received, and the status it was answered with (None: never answered, or the
/// connection was refused).
#[derive(Debug, Clone)]
pub struct Received {
    pub call: Outbound,
    pub status: Option<u16>,
}

/// Which limit a 429 came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// The organization's request budget.
    Org,
    /// A customer's creates of one type.
    Customer,
}

/// A 429 a limit gave (not a scripted one).
#[derive(Debug, Clone)]
pub struct Throttle {
    pub at_ms: i64,
    pub scope: Scope,
    pub method: String,
    pub path: String,
    pub retry_after: u64,
}

/// So many requests per window.
#[derive(Debug, Clone, Copy)]
pub struct Limit {
    pub per_window: u32,
    pub window: Duration,
}

impl Limit {
    pub fn per_minute(per_minute: u32) -> Self {
        Self {
            per_window: per_minute,
            window: Duration::from_secs(60),
        }
    }
}

/// A webhook delivery as Kustomer makes it: `body` is the raw JSON the signature covers.
#[derive(Debug, Clone)]
pub struct Webhook {
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Webhook {
    /// The headers as a request takes them.
    pub fn header_pairs(&self) -> Vec<(&str, &str)> {
        self.headers
            .iter()
            .map(|(name, value)| (name.as_str(), value.as_str()))
            .collect()
    }
}

struct Key {
    org: String,
    user_id: String,
    name: String,
    permissions: Vec<String>,
    created_at: String,
    expires_at: Option<Timestamp>,
}

/// The Kustomer roles that make one of the guide's permissions (a key holds the permission when
/// it holds all of them): the role each call below needs, gathered per permission.
pub fn roles_of(permission: &str) -> &'static [&'static str] {
    match permission {
        "customers:read" => &["org.permission.customer.read"],
        "customers:write" => &["org.permission.customer.create", "org.permission.customer.update"],
        "conversations:read" => &["org.permission.conversation.read"],
        "conversations:write" => &[
            "org.permission.conversation.create",
            "org.permission.conversation.update",
        ],
        "messages:read" => &["org.permission.message.read"],
        "messages:write" => &["org.permission.message.create"],
        "notes:read" => &["org.permission.note.read"],
        "notes:write" => &["org.permission.note.create"],
        "teams:read" => &["org.permission.team.read"],
        _ => &[],
    }
}

#[derive(Clone, Copy)]
struct Window {
    start_ms: i64,
    count: u32,
}

struct State {
    host: String,
    /// The organization of the key the partner was installed with.
    org: String,
    next_id: u64,
    keys: BTreeMap<String, Key>,
    users: Vec<Value>,
    customers: Vec<Value>,
    conversations: Vec<Value>,
    /// (conversation id, message)
    messages: Vec<(String, Value)>,
    notes: Vec<(String, Value)>,
    teams: Vec<Value>,
    /// Faults, hangs, down and latency, as a test scripted them.
    script: Script,
    rate_limit: Option<Limit>,
    customer_create_limit: Limit,
    org_windows: BTreeMap<String, Window>,
    customer_windows: BTreeMap<String, Window>,
    received: Vec<Received>,
    throttles: Vec<Throttle>,
}

/// Why Kustomer refused a request, in its error form.
struct Refused {
    status: u16,
    detail: String,
    source: Option<Value>,
    retry_after: Option<u64>,
    throttle: Option<Scope>,
}

impl Refused {
    fn new(status: u16, detail: impl Into<String>) -> Self {
        Self {
            status,
            detail: detail.into(),
            source: None,
            retry_after: None,
            throttle: None,
        }
    }

    fn at(mut self, pointer: &str) -> Self {
        self.source = Some(json!({ "pointer": pointer }));
        self
    }
}

fn bad_field(pointer: &str, detail: impl Into<String>) -> Refused {
    Refused::new(400, detail).at(pointer)
}

/// The calls a path answers.
#[derive(Debug, Clone)]
enum Route {
    CurrentUser,
    CurrentToken,
    CustomerByEmail(String),
    CustomerByExternalId(String),
    CustomerConversations(String),
    GetCustomer(String),
    PutCustomer(String),
    DeleteCustomer(String),
    PostCustomer,
    PostConversation,
    GetConversation(String),
    PatchConversation(String),
    PostMessage(String),
    GetMessages(String),
    PostNote(String),
    GetNotes(String),
    Teams,
}

impl Route {
    /// The permission the call needs, and the Kustomer role that grants it.
    fn permission(&self) -> Option<(&'static str, &'static str)> {
        Some(match self {
            Route::CurrentUser | Route::CurrentToken => return None,
            Route::CustomerByEmail(_) | Route::CustomerByExternalId(_) | Route::GetCustomer(_) => {
                ("customers:read", "org.permission.customer.read")
            }
            Route::PutCustomer(_) => ("customers:write", "org.permission.customer.update"),
            Route::DeleteCustomer(_) => ("customers:write", "org.permission.customer.delete"),
            Route::PostCustomer => ("customers:write", "org.permission.customer.create"),
            Route::CustomerConversations(_) | Route::GetConversation(_) => {
                ("conversations:read", "org.permission.conversation.read")
            }
            Route::PostConversation => ("conversations:write", "org.permission.conversation.create"),
            Route::PatchConversation(_) => ("conversations:write", "org.permission.conversation.update"),
            Route::PostMessage(_) => ("messages:write", "org.permission.message.create"),
            Route::GetMessages(_) => ("messages:read", "org.permission.message.read"),
            Route::PostNote(_) => ("notes:write", "org.permission.note.create"),
            Route::GetNotes(_) => ("notes:read", "org.permission.note.read"),
            Route::Teams => ("teams:read", "org.permission.team.read"),
        })
    }
}

/// The route of `method` on `path`; Err(true) when the path is known but not the method.
fn route(method: &str, path: &str) -> Result<Route, bool> {
    let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let owned = |segment: &str| segment.to_owned();
    let candidates: Vec<(&str, Route)> = match segments.as_slice() {
        ["v1", "users", "current"] => vec![("GET", Route::CurrentUser)],
        ["v1", "auth", "tokens", "current"] => vec![("GET", Route::CurrentToken)],
        ["v1", "customers", lookup] if lookup.starts_with("email=") => {
            vec![("GET", Route::CustomerByEmail(owned(&lookup["email=".len()..])))]
        }
        ["v1", "customers", lookup] if lookup.starts_with("externalId=") => vec![(
            "GET",
            Route::CustomerByExternalId(owned(&lookup["externalId=".len()..])),
        )],
        ["v1", "customers", id, "conversations"] if !id.contains('=') => {
            vec![("GET", Route::CustomerConversations(owned(id)))]
        }
        ["v1", "customers", id] if !id.contains('=') => vec![
            ("GET", Route::GetCustomer(owned(id))),
            ("PUT", Route::PutCustomer(owned(id))),
            ("DELETE", Route::DeleteCustomer(owned(id))),
        ],
        ["v1", "customers"] => vec![("POST", Route::PostCustomer)],
        ["v1", "conversations"] => vec![("POST", Route::PostConversation)],
        ["v1", "conversations", id] => vec![
            ("GET", Route::GetConversation(owned(id))),
            ("PATCH", Route::PatchConversation(owned(id))),
        ],
        ["v1", "conversations", id, "messages"] => vec![
            ("POST", Route::PostMessage(owned(id))),
            ("GET", Route::GetMessages(owned(id))),
        ],
        ["v1", "conversations", id, "notes"] => vec![
            ("POST", Route::PostNote(owned(id))),
            ("GET", Route::GetNotes(owned(id))),
        ],
        ["v1", "teams"] => vec![("GET", Route::Teams)],
        _ => Vec::new(),
    };
    let known = !candidates.is_empty();
    candidates
        .into_iter()
        .find(|(allowed, _)| *allowed == method)
        .map(|(_, route)| route)
        .ok_or(known)
}

/// Calls with `method` to `path` (a fault's matcher).
pub fn call_to(method: &'static str, path: &'static str) -> impl Fn(&Outbound) -> bool {
    move |call| call.method == method && call.path() == path
}

/// Every call (a fault's matcher).
pub fn any_call(_call: &Outbound) -> bool {
    true
}

/// A 429 as Kustomer answers it, asking for `retry_after` seconds.
pub fn too_many_requests(retry_after: u64) -> Reply {
    error(429, "Injected failure 429", None).header("retry-after", &retry_after.to_string())
}

/// An organization's id, stable for its name: 24 hex digits, like Kustomer's.
fn org_id(name: &str) -> String {
    hex::encode(&Sha256::digest(name.as_bytes())[..12])
}

fn reference(kind: &str, id: &str) -> Value {
    json!({ "data": { "type": kind, "id": id } })
}

fn org_of(record: &Value) -> &str {
    record["relationships"]["org"]["data"]["id"]
        .as_str()
        .unwrap_or_default()
}

fn customer_of(record: &Value) -> &str {
    record["relationships"]["customer"]["data"]["id"]
        .as_str()
        .unwrap_or_default()
}

impl Kustomer {
    /// An organization at `https://{subdomain}.api.kustomerapp.com`, with teams Support and
    /// Billing, answering calls made with `api_key` (which holds every permission, its machine
    /// user "ChatBot Integration").
    pub fn install(stack: &Stack, subdomain: &str, api_key: &str) -> Self {
        let org = org_id(subdomain);
        let kustomer = Self {
            state: Rc::new(RefCell::new(State {
                host: format!("{subdomain}.api.kustomerapp.com"),
                org: org.clone(),
                next_id: 0,
                keys: BTreeMap::new(),
                users: Vec::new(),
                customers: Vec::new(),
                conversations: Vec::new(),
                messages: Vec::new(),
                notes: Vec::new(),
                teams: Vec::new(),
                script: Script::default(),
                rate_limit: None,
                customer_create_limit: Limit::per_minute(CUSTOMER_CREATES_PER_MINUTE),
                org_windows: BTreeMap::new(),
                customer_windows: BTreeMap::new(),
                received: Vec::new(),
                throttles: Vec::new(),
            })),
        };
        kustomer.add_key_of_user(
            api_key,
            &org,
            &PERMISSIONS,
            ("ChatBot Integration", "bot@acme.example"),
        );
        let serving = kustomer.clone();
        stack.partner(&kustomer.host(), move |call| serving.answer(call));
        kustomer
    }

    pub fn host(&self) -> String {
        self.state.borrow().host.clone()
    }

    /// The organization's name in its host (`{subdomain}.api.kustomerapp.com`), as a connector's
    /// settings name it.
    pub fn subdomain(&self) -> String {
        self.host().split('.').next().unwrap_or_default().to_owned()
    }

    /// The organization of the key the partner was installed with.
    pub fn org(&self) -> String {
        self.state.borrow().org.clone()
    }

    /// Another organization's id at this host (its records apart), for [`Kustomer::add_key`].
    pub fn other_org(&self, name: &str) -> String {
        org_id(&format!("{}/{name}", self.host()))
    }

    /// A key of `org` (a new organization gets teams Support and Billing) holding `permissions`;
    /// a key added again is replaced.
    pub fn add_key(&self, api_key: &str, org: &str, permissions: &[&str]) {
        let email = format!("{api_key}@machine.kustomer.test");
        self.add_key_of_user(api_key, org, permissions, (api_key, &email));
    }

    fn add_key_of_user(&self, api_key: &str, org: &str, permissions: &[&str], (name, email): (&str, &str)) {
        for permission in permissions {
            assert!(
                PERMISSIONS.contains(permission),
                "kustomer: unknown permission {permission}"
            );
        }
        let known_org = self.state.borrow().keys.values().any(|key| key.org == org);
        if !known_org {
            for team in ["Support", "Billing"] {
                self.add_team(team, org);
            }
        }
        let user_id = self.user(org, name, email, "machine");
        let created_at = self.now();
        self.state.borrow_mut().keys.insert(
            api_key.to_owned(),
            Key {
                org: org.to_owned(),
                user_id,
                name: name.to_owned(),
                permissions: permissions.iter().map(|&p| p.to_owned()).collect(),
                created_at,
                expires_at: None,
            },
        );
    }

    /// Gives `api_key` an expiry, as Kustomer's Settings › Security › API Keys does when it is
    /// created (its Expires menu); from then on the key is refused with 401.
    pub fn key_expires(&self, api_key: &str, at: Timestamp) {
        if let Some(key) = self.state.borrow_mut().keys.get_mut(api_key) {
            key.expires_at = Some(at);
        }
    }

    /// An agent of the installed key's organization, assignable to conversations; its id.
    pub fn add_user(&self, name: &str, email: &str) -> String {
        let org = self.org();
        self.user(&org, name, email, "user")
    }

    fn user(&self, org: &str, name: &str, email: &str, user_type: &str) -> String {
        let existing = self
            .state
            .borrow()
            .users
            .iter()
            .find(|user| org_of(user) == org && user["attributes"]["email"] == email)
            .map(|user| user["id"].as_str().unwrap_or_default().to_owned());
        if let Some(id) = existing {
            return id;
        }
        let id = self.object_id();
        let at = self.now();
        self.state.borrow_mut().users.push(json!({
            "type": "user",
            "id": id,
            "attributes": {
                "name": name, "displayName": name, "email": email, "userType": user_type,
                "createdAt": at, "updatedAt": at
            },
            "relationships": { "org": reference("org", org) },
            "links": { "self": format!("/v1/users/{id}") }
        }));
        id
    }

    /// A team of `org`; its id.
    pub fn add_team(&self, name: &str, org: &str) -> String {
        let id = self.object_id();
        let at = self.now();
        self.state.borrow_mut().teams.push(json!({
            "type": "team",
            "id": id,
            "attributes": { "name": name, "displayName": name, "createdAt": at, "updatedAt": at },
            "relationships": { "org": reference("org", org) },
            "links": { "self": format!("/v1/teams/{id}") }
        }));
        id
    }

    /// The next `times` calls for which `matches` holds are answered `reply` (before the key is
    /// even looked at). Faults are tried in the order scripted; a call takes at most one.
    pub fn fail(&self, times: usize, matches: impl Fn(&Outbound) -> bool + 'static, reply: Reply) {
        self.state.borrow_mut().script.fail(times, matches, reply);
    }

    /// The next `times` calls are never answered: the caller's own timeout must end them.
    pub fn hang(&self, times: usize) {
        self.state.borrow_mut().script.hang(times);
    }

    /// Connections are refused until [`Kustomer::up`]; what Kustomer holds is kept.
    pub fn down(&self) {
        self.state.borrow_mut().script.set_down(true);
    }

    pub fn up(&self) {
        self.state.borrow_mut().script.set_down(false);
    }

    /// Every answer from now on comes after `each`: calls made at once are then under way at
    /// once, and the code that makes them interleaves at each call as it does against a real
    /// Kustomer.
    pub fn latency(&self, each: Duration) {
        self.state.borrow_mut().script.set_latency(each);
    }

    /// Sets (or with None removes) the organizations' request budget; current windows start
    /// afresh.
    pub fn rate_limit(&self, limit: Option<Limit>) {
        let mut state = self.state.borrow_mut();
        state.rate_limit = limit;
        state.org_windows.clear();
    }

    /// Sets the creates allowed per customer and type (120 a minute unless set).
    pub fn customer_create_limit(&self, limit: Limit) {
        let mut state = self.state.borrow_mut();
        state.customer_create_limit = limit;
        state.customer_windows.clear();
    }

    pub fn customers(&self) -> Vec<Value> {
        self.state.borrow().customers.clone()
    }

    pub fn conversations(&self) -> Vec<Value> {
        self.state.borrow().conversations.clone()
    }

    /// The messages on a conversation's timeline, in the order they were written.
    pub fn messages(&self, conversation_id: &str) -> Vec<Value> {
        let state = self.state.borrow();
        state
            .messages
            .iter()
            .filter(|(conversation, _)| conversation == conversation_id)
            .map(|(_, message)| message.clone())
            .collect()
    }

    pub fn notes(&self, conversation_id: &str) -> Vec<Value> {
        let state = self.state.borrow();
        state
            .notes
            .iter()
            .filter(|(conversation, _)| conversation == conversation_id)
            .map(|(_, note)| note.clone())
            .collect()
    }

    /// Every organization's teams.
    pub fn teams(&self) -> Vec<Value> {
        self.state.borrow().teams.clone()
    }

    pub fn users(&self) -> Vec<Value> {
        self.state.borrow().users.clone()
    }

    /// Every call made, answered or not.
    pub fn calls(&self) -> Vec<Outbound> {
        self.state
            .borrow()
            .received
            .iter()
            .map(|received| received.call.clone())
            .collect()
    }

    /// Every call made, with the status it was answered with.
    pub fn received(&self) -> Vec<Received> {
        self.state.borrow().received.clone()
    }

    /// The 429s the limits gave (not scripted ones).
    pub fn throttles(&self) -> Vec<Throttle> {
        self.state.borrow().throttles.clone()
    }

    /// A customer Kustomer already has (made in Kustomer, not by us), in the installed key's
    /// organization, checked as `POST /v1/customers` checks it.
    pub fn seed_customer(&self, attributes: Value) -> Value {
        let org = self.org();
        self.create_customer(&org, &attributes, None)
            .unwrap_or_else(|refused| panic!("seeding a customer: {}", refused.detail))
    }

    /// A conversation of `customer_id` made in Kustomer, as `POST /v1/conversations` makes it
    /// (no create limit).
    pub fn seed_conversation(&self, customer_id: &str, attributes: Value) -> Value {
        let org = self
            .state
            .borrow()
            .customers
            .iter()
            .find(|customer| customer["id"] == customer_id)
            .map(|customer| org_of(customer).to_owned())
            .unwrap_or_else(|| panic!("kustomer: no customer {customer_id}"));
        let mut body = attributes;
        body["customer"] = json!(customer_id);
        self.create_conversation(&org, &body, None, false)
            .unwrap_or_else(|refused| panic!("seeding a conversation: {}", refused.detail))
    }

    /// Deletes a customer in Kustomer (an agent did); the record deleted.
    pub fn remove_customer(&self, id: &str) -> Option<Value> {
        let mut state = self.state.borrow_mut();
        let at = state.customers.iter().position(|customer| customer["id"] == id)?;
        Some(state.customers.remove(at))
    }

    /// Deletes a conversation in Kustomer; the record deleted.
    pub fn remove_conversation(&self, id: &str) -> Option<Value> {
        let mut state = self.state.borrow_mut();
        let at = state
            .conversations
            .iter()
            .position(|conversation| conversation["id"] == id)?;
        Some(state.conversations.remove(at))
    }

    /// A new id shaped like Kustomer's (24 hex digits), never given before by this partner.
    pub fn object_id(&self) -> String {
        let mut state = self.state.borrow_mut();
        state.next_id += 1;
        let org = &state.org;
        format!("{}{:016x}", &org[..8], 0x5f3c_1a2b_0000_0000_u64 + state.next_id)
    }

    /// An outbound webhook delivery as Kustomer makes it. `event` is `{name, data, changes?,
    /// org?, partition?, id?, createdAt?}`; `data` may be a stored record. Signed with
    /// `token`: the lowercase hex HMAC-SHA256 of the raw body.
    pub fn webhook(&self, token: &str, event: &Value) -> Webhook {
        let name = event["name"].as_str().unwrap_or_default();
        assert!(
            name.starts_with("kustomer."),
            "a webhook event's name looks like kustomer.<resource>.<create|update>, got {name}"
        );
        let data = &event["data"];
        let (Some(kind), Some(id)) = (data["type"].as_str(), data["id"].as_str()) else {
            panic!("a webhook's data is a record with type and id: {data}");
        };
        let relationships = if data["relationships"].is_object() {
            data["relationships"].clone()
        } else {
            json!({})
        };
        let mut envelope = Map::new();
        envelope.insert(
            "id".into(),
            event
                .get("id")
                .cloned()
                .unwrap_or_else(|| json!(self.object_id())),
        );
        envelope.insert("name".into(), json!(name));
        let org = event["org"]
            .as_str()
            .or_else(|| relationships["org"]["data"]["id"].as_str())
            .map_or_else(|| self.org(), str::to_owned);
        envelope.insert("org".into(), json!(org));
        let customer = if kind == "customer" {
            Some(id)
        } else {
            relationships["customer"]["data"]["id"].as_str()
        };
        if let Some(partition) = event["partition"].as_str().or(customer) {
            envelope.insert("partition".into(), json!(partition));
        }
        let attributes = if data["attributes"].is_object() {
            data["attributes"].clone()
        } else {
            json!({})
        };
        envelope.insert(
            "data".into(),
            json!({ "type": kind, "id": id, "attributes": attributes, "relationships": relationships }),
        );
        if let Some(changes) = event.get("changes") {
            envelope.insert("changes".into(), changes.clone());
        }
        envelope.insert(
            "createdAt".into(),
            event
                .get("createdAt")
                .cloned()
                .unwrap_or_else(|| json!(self.now())),
        );
        let body = Value::Object(envelope).to_string().into_bytes();
        let signature = hex::encode(hmac_sha256(token.as_bytes(), &body));
        Webhook {
            headers: vec![
                ("content-type".to_owned(), "application/json".to_owned()),
                (EVENT_HEADER.to_owned(), name.to_owned()),
                (SIGNATURE_HEADER.to_owned(), signature),
            ],
            body,
        }
    }

    fn now(&self) -> String {
        Timestamp::from_millis(edge::runtime::native::now_ms()).to_rfc3339()
    }

    /// The calling key as Kustomer describes a token: its name, roles, last characters and times,
    /// and `expireAt` when it has an expiry.
    fn token_of(&self, call: &Outbound, org: &str, user_id: &str) -> Value {
        let bearer = call
            .header("authorization")
            .and_then(|value| value.split_whitespace().nth(1))
            .unwrap_or_default()
            .to_owned();
        let state = self.state.borrow();
        let Some(key) = state.keys.get(&bearer) else {
            return Value::Null;
        };
        let mut roles: Vec<&str> = key
            .permissions
            .iter()
            .flat_map(|permission| roles_of(permission).iter().copied())
            .collect();
        roles.dedup();
        let id = hex::encode(&Sha256::digest(bearer.as_bytes())[..12]);
        let last_chars: String = bearer
            .chars()
            .rev()
            .take(4)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect();
        let mut attributes = json!({
            "name": key.name,
            "roles": roles,
            "lastTokenChars": last_chars,
            "lastAccessedAt": Timestamp::from_millis(call.at_ms).to_rfc3339(),
            "createdAt": key.created_at,
            "updatedAt": key.created_at,
        });
        if let Some(at) = key.expires_at {
            attributes["expireAt"] = json!(at.to_rfc3339());
        }
        json!({
            "type": "authToken",
            "id": id,
            "attributes": attributes,
            "relationships": { "org": reference("org", org), "user": reference("user", user_id) },
            "links": { "self": format!("/v1/auth/tokens/{id}") }
        })
    }

    fn answer(&self, call: &Outbound) -> Reply {
        let reply = self.reply(call);
        let reply = self.state.borrow().script.delayed(reply);
        self.state.borrow_mut().received.push(Received {
            call: call.clone(),
            status: status_seen(&reply),
        });
        reply
    }

    fn reply(&self, call: &Outbound) -> Reply {
        if let Some(scripted) = self.state.borrow_mut().script.scripted(call) {
            return scripted;
        }
        if call.body.len() > BODY_MAX_BYTES {
            return error(
                413,
                &format!(
                    "Request body is {} bytes; the limit is {BODY_MAX_BYTES}",
                    call.body.len()
                ),
                None,
            );
        }
        let bearer = call
            .header("authorization")
            .and_then(|value| {
                value
                    .strip_prefix("Bearer ")
                    .or_else(|| value.strip_prefix("bearer "))
            })
            .map(str::trim)
            .filter(|key| !key.is_empty() && !key.contains(char::is_whitespace));
        let Some(bearer) = bearer else {
            return error(401, "Missing Authorization: Bearer <API key>", None);
        };
        let now = Timestamp::from_millis(call.at_ms);
        let key = self
            .state
            .borrow()
            .keys
            .get(bearer)
            .filter(|key| key.expires_at.is_none_or(|at| at > now))
            .map(|key| (key.org.clone(), key.user_id.clone(), key.permissions.clone()));
        let Some((org, user_id, permissions)) = key else {
            return error(401, "Invalid or expired API key", None);
        };

        let mut limit_headers = Vec::new();
        let rate_limit = self.state.borrow().rate_limit;
        if let Some(limit) = rate_limit {
            let spent = {
                let mut state = self.state.borrow_mut();
                spend(&mut state.org_windows, &org, limit, call.at_ms)
            };
            limit_headers = vec![
                ("x-ratelimit-limit", limit.per_window.to_string()),
                ("x-ratelimit-remaining", spent.remaining.to_string()),
                ("x-ratelimit-reset", spent.reset_seconds.to_string()),
            ];
            if spent.exceeded {
                self.throttled(call, Scope::Org, spent.reset_seconds);
                let reply = error(
                    429,
                    &format!(
                        "Rate limit of {} requests per minute reached for org {org}",
                        limit.per_window
                    ),
                    None,
                )
                .header("retry-after", &spent.reset_seconds.to_string());
                return with_headers(reply, &limit_headers);
            }
        }

        let reply = match route(&call.method, call.path()) {
            Err(known) => {
                let status = if known { 405 } else { 404 };
                let detail = if known {
                    format!("Method {} not allowed on {}", call.method, call.path())
                } else {
                    format!("No route {} {}", call.method, call.path())
                };
                error(status, &detail, None)
            }
            Ok(route) => match route.permission() {
                Some((permission, role)) if !permissions.iter().any(|held| held == permission) => error(
                    403,
                    &format!("API key lacks permission {permission} (Kustomer role {role})"),
                    None,
                ),
                _ => {
                    let writes = matches!(call.method.as_str(), "POST" | "PUT" | "PATCH");
                    let body = if call.body.is_empty() {
                        Ok(Value::Null)
                    } else {
                        serde_json::from_slice::<Value>(&call.body)
                    };
                    match body {
                        Err(_) if writes => error(400, "Request body is not valid JSON", None),
                        body => {
                            let body = body.unwrap_or_default();
                            match self.handle(&route, call, &org, &user_id, &body) {
                                Ok((status, answer)) => json_reply(status, &answer),
                                Err(refused) => self.refusal(call, refused),
                            }
                        }
                    }
                }
            },
        };
        with_headers(reply, &limit_headers)
    }

    fn throttled(&self, call: &Outbound, scope: Scope, retry_after: u64) {
        self.state.borrow_mut().throttles.push(Throttle {
            at_ms: call.at_ms,
            scope,
            method: call.method.clone(),
            path: call.path().to_owned(),
            retry_after,
        });
    }

    fn refusal(&self, call: &Outbound, refused: Refused) -> Reply {
        if let Some(scope) = refused.throttle {
            self.throttled(call, scope, refused.retry_after.unwrap_or(1));
        }
        let reply = error(refused.status, &refused.detail, None);
        let reply = match refused.source {
            Some(source) => {
                let mut document: Value = serde_json::from_slice(&reply.body).unwrap_or_default();
                document["errors"][0]["source"] = source;
                json_reply(refused.status, &document)
            }
            None => reply,
        };
        match refused.retry_after {
            Some(seconds) => reply.header("retry-after", &seconds.to_string()),
            None => reply,
        }
    }

    fn handle(
        &self,
        route: &Route,
        call: &Outbound,
        org: &str,
        user_id: &str,
        body: &Value,
    ) -> Result<(u16, Value), Refused> {
        let one = |record: Value| Ok((200, json!({ "data": record })));
        match route {
            Route::CurrentToken => one(self.token_of(call, org, user_id)),
            Route::CurrentUser => {
                let user = self
                    .state
                    .borrow()
                    .users
                    .iter()
                    .find(|user| user["id"] == user_id)
                    .cloned()
                    .unwrap_or_default();
                one(user)
            }
            Route::CustomerByEmail(segment) => {
                let email = decode(segment)?;
                let found = self.customer_with_email(org, &email, None);
                one(found.ok_or_else(|| Refused::new(404, format!("No customer with email {email}")))?)
            }
            Route::CustomerByExternalId(segment) => {
                let external = decode(segment)?;
                let found = self.customer_with_external_id(org, &external, None);
                one(found
                    .ok_or_else(|| Refused::new(404, format!("No customer with externalId {external}")))?)
            }
            Route::CustomerConversations(id) => {
                let customer = self.customer(org, id)?;
                let own: Vec<Value> = self
                    .conversations()
                    .into_iter()
                    .filter(|conversation| customer_of(conversation) == customer["id"])
                    .collect();
                Ok((200, page(&own, call, MAX_PAGE_SIZE)?))
            }
            Route::GetCustomer(id) => one(self.customer(org, id)?),
            Route::PutCustomer(id) => {
                let customer = self.customer(org, id)?;
                one(self.replace_customer(&customer, body, user_id)?)
            }
            Route::DeleteCustomer(id) => {
                let customer = self.customer(org, id)?;
                self.delete_customer(&customer);
                Ok((204, Value::Null))
            }
            Route::PostCustomer => Ok((
                201,
                json!({ "data": self.create_customer(org, body, Some(user_id))? }),
            )),
            Route::PostConversation => Ok((
                201,
                json!({ "data": self.create_conversation(org, body, Some(user_id), true)? }),
            )),
            Route::GetConversation(id) => one(self.conversation(org, id)?),
            Route::PatchConversation(id) => {
                let conversation = self.conversation(org, id)?;
                one(self.update_conversation(&conversation, body, user_id)?)
            }
            Route::PostMessage(id) => {
                let conversation = self.conversation(org, id)?;
                Ok((
                    201,
                    json!({ "data": self.create_message(&conversation, body, user_id)? }),
                ))
            }
            Route::GetMessages(id) => {
                let conversation = self.conversation(org, id)?;
                let messages = self.messages(conversation["id"].as_str().unwrap_or_default());
                Ok((200, page(&messages, call, MAX_PAGE_SIZE)?))
            }
            Route::PostNote(id) => {
                let conversation = self.conversation(org, id)?;
                Ok((
                    201,
                    json!({ "data": self.create_note(&conversation, body, user_id)? }),
                ))
            }
            Route::GetNotes(id) => {
                let conversation = self.conversation(org, id)?;
                let notes = self.notes(conversation["id"].as_str().unwrap_or_default());
                Ok((200, page(&notes, call, MAX_PAGE_SIZE)?))
            }
            Route::Teams => {
                let own: Vec<Value> = self
                    .teams()
                    .into_iter()
                    .filter(|team| org_of(team) == org)
                    .collect();
                Ok((200, page(&own, call, TEAMS_MAX_PAGE_SIZE)?))
            }
        }
    }

    // Customers.

    fn customer(&self, org: &str, id: &str) -> Result<Value, Refused> {
        self.state
            .borrow()
            .customers
            .iter()
            .find(|customer| customer["id"] == id && org_of(customer) == org)
            .cloned()
            .ok_or_else(|| Refused::new(404, format!("No customer with id {id}")))
    }

    /// Deletes the customer with their conversations, and the messages and notes of those.
    fn delete_customer(&self, customer: &Value) {
        let mut state = self.state.borrow_mut();
        let theirs: Vec<Value> = state
            .conversations
            .iter()
            .filter(|conversation| customer_of(conversation) == customer["id"])
            .map(|conversation| conversation["id"].clone())
            .collect();
        state
            .conversations
            .retain(|conversation| !theirs.contains(&conversation["id"]));
        state
            .messages
            .retain(|(conversation, _)| !theirs.iter().any(|id| id == conversation.as_str()));
        state
            .notes
            .retain(|(conversation, _)| !theirs.iter().any(|id| id == conversation.as_str()));
        state.customers.retain(|held| held["id"] != customer["id"]);
    }

    fn customer_with_email(&self, org: &str, email: &str, except: Option<&str>) -> Option<Value> {
        let wanted = email.to_lowercase();
        self.state
            .borrow()
            .customers
            .iter()
            .filter(|customer| {
                org_of(customer) == org && Some(customer["id"].as_str().unwrap_or_default()) != except
            })
            .find(|customer| {
                customer["attributes"]["emails"].as_array().is_some_and(|emails| {
                    emails.iter().any(|entry| {
                        entry["email"].as_str().map(str::to_lowercase).as_deref() == Some(&wanted)
                    })
                })
            })
            .cloned()
    }

    fn customer_with_external_id(&self, org: &str, external: &str, except: Option<&str>) -> Option<Value> {
        self.state
            .borrow()
            .customers
            .iter()
            .filter(|customer| {
                org_of(customer) == org && Some(customer["id"].as_str().unwrap_or_default()) != except
            })
            .find(|customer| customer["attributes"]["externalId"] == external)
            .cloned()
    }

    /// Kustomer keeps one customer per email and per external id in an organization.
    fn check_unique(&self, org: &str, body: &Value, except: Option<&str>) -> Result<(), Refused> {
        if let Some(external) = body["externalId"].as_str()
            && self.customer_with_external_id(org, external, except).is_some()
        {
            return Err(Refused::new(
                409,
                format!("A customer with externalId {external} already exists"),
            )
            .at("/externalId"));
        }
        for (index, entry) in body["emails"].as_array().into_iter().flatten().enumerate() {
            let email = entry["email"].as_str().unwrap_or_default();
            if self.customer_with_email(org, email, except).is_some() {
                return Err(
                    Refused::new(409, format!("A customer with email {email} already exists"))
                        .at(&format!("/emails/{index}/email")),
                );
            }
        }
        Ok(())
    }

    fn create_customer(&self, org: &str, body: &Value, creator: Option<&str>) -> Result<Value, Refused> {
        check_customer_attributes(body)?;
        self.check_unique(org, body, None)?;
        let id = self.object_id();
        let at = self.now();
        let mut attributes = Map::new();
        for (key, empty) in [
            ("name", Value::Null),
            ("externalId", Value::Null),
            ("emails", json!([])),
            ("phones", json!([])),
            ("whatsapps", json!([])),
            ("tags", json!([])),
            ("custom", json!({})),
        ] {
            attributes.insert(key.to_owned(), empty);
        }
        merge(&mut attributes, body, &["rev"]);
        for key in ["createdAt", "updatedAt", "modifiedAt"] {
            attributes.insert(key.to_owned(), json!(at));
        }
        attributes.insert("rev".to_owned(), json!(1));
        let mut customer = json!({
            "type": "customer",
            "id": id,
            "attributes": attributes,
            "relationships": authorship(org, creator),
            "links": { "self": format!("/v1/customers/{id}") }
        });
        customer["attributes"]["displayName"] = display_name(&customer["attributes"]);
        self.state.borrow_mut().customers.push(customer.clone());
        Ok(customer)
    }

    fn replace_customer(&self, customer: &Value, body: &Value, modifier: &str) -> Result<Value, Refused> {
        check_customer_attributes(body)?;
        check_revision(customer, body)?;
        let id = customer["id"].as_str().unwrap_or_default();
        self.check_unique(org_of(customer), body, Some(id))?;
        let at = self.now();
        let mut state = self.state.borrow_mut();
        let stored = state
            .customers
            .iter_mut()
            .find(|stored| stored["id"] == id)
            .ok_or_else(|| Refused::new(404, format!("No customer with id {id}")))?;
        if let Some(attributes) = stored["attributes"].as_object_mut() {
            merge(attributes, body, &["rev"]);
        }
        stored["attributes"]["displayName"] = display_name(&stored["attributes"]);
        touch(stored, &at, Some(modifier));
        Ok(stored.clone())
    }

    // Conversations, messages, notes.

    fn conversation(&self, org: &str, id: &str) -> Result<Value, Refused> {
        self.state
            .borrow()
            .conversations
            .iter()
            .find(|conversation| conversation["id"] == id && org_of(conversation) == org)
            .cloned()
            .ok_or_else(|| Refused::new(404, format!("No conversation with id {id}")))
    }

    fn check_assignments(&self, org: &str, body: &Value) -> Result<(), Refused> {
        let state = self.state.borrow();
        let in_org = |records: &[Value], id: &str| records.iter().any(|r| r["id"] == id && org_of(r) == org);
        id_list(
            body,
            "assignedTeams",
            |id| in_org(&state.teams, id),
            "Team not found",
        )?;
        id_list(
            body,
            "assignedUsers",
            |id| in_org(&state.users, id),
            "User not found",
        )
    }

    fn check_conversation_fields(&self, org: &str, body: &Value, creating: bool) -> Result<(), Refused> {
        optional_string(body, "name")?;
        optional_string(body, "externalId")?;
        one_of(body, "status", &CONVERSATION_STATUSES)?;
        one_of(body, "direction", &DIRECTIONS)?;
        if let Some(priority) = body.get("priority")
            && !priority.as_i64().is_some_and(|p| (1..=5).contains(&p))
        {
            return Err(bad_field("/priority", "priority must be an integer from 1 to 5"));
        }
        string_list(body, "tags")?;
        if let Some(custom) = body.get("custom") {
            check_custom(custom, "/custom")?;
        }
        self.check_assignments(org, body)?;
        if creating
            && let Some(external) = body["externalId"].as_str()
            && self
                .state
                .borrow()
                .conversations
                .iter()
                .any(|c| org_of(c) == org && c["attributes"]["externalId"] == external)
        {
            return Err(Refused::new(
                409,
                format!("A conversation with externalId {external} already exists"),
            )
            .at("/externalId"));
        }
        Ok(())
    }

    fn create_conversation(
        &self,
        org: &str,
        body: &Value,
        creator: Option<&str>,
        limited: bool,
    ) -> Result<Value, Refused> {
        let fields = require_object(body, "")?;
        for key in fields.keys() {
            if !CONVERSATION_CREATE_ATTRIBUTES.contains(&key.as_str()) {
                return Err(bad_field(
                    &format!("/{key}"),
                    format!("Unknown conversation attribute {key}"),
                ));
            }
        }
        let Some(customer_id) = body["customer"].as_str() else {
            return Err(bad_field("/customer", "customer is required (a customer id)"));
        };
        if self.customer(org, customer_id).is_err() {
            return Err(bad_field(
                "/customer",
                format!("Customer not found: {customer_id}"),
            ));
        }
        self.check_conversation_fields(org, body, true)?;
        if limited {
            self.spend_customer_create("conversation", customer_id, body)?;
        }
        let id = self.object_id();
        let at = self.now();
        let mut attributes = Map::new();
        for (key, value) in [
            ("name", Value::Null),
            ("externalId", Value::Null),
            ("status", json!("open")),
            ("priority", json!(3)),
            ("direction", json!("in")),
            ("assignedTeams", json!([])),
            ("assignedUsers", json!([])),
            ("tags", json!([])),
            ("custom", json!({})),
            ("satisfaction", json!(0)),
        ] {
            attributes.insert(key.to_owned(), value);
        }
        merge(&mut attributes, body, &["customer"]);
        for (key, value) in [
            ("channels", json!([])),
            ("messageCount", json!(0)),
            ("outboundMessageCount", json!(0)),
            ("noteCount", json!(0)),
            ("createdAt", json!(at)),
            ("updatedAt", json!(at)),
            ("modifiedAt", json!(at)),
            ("rev", json!(1)),
        ] {
            attributes.insert(key.to_owned(), value);
        }
        let mut relationships = authorship(org, creator);
        relationships["customer"] = reference("customer", customer_id);
        let conversation = json!({
            "type": "conversation",
            "id": id,
            "attributes": attributes,
            "relationships": relationships,
            "links": { "self": format!("/v1/conversations/{id}") }
        });
        self.state.borrow_mut().conversations.push(conversation.clone());
        Ok(conversation)
    }

    fn update_conversation(
        &self,
        conversation: &Value,
        body: &Value,
        modifier: &str,
    ) -> Result<Value, Refused> {
        let fields = require_object(body, "")?;
        for key in fields.keys() {
            if !CONVERSATION_UPDATE_ATTRIBUTES.contains(&key.as_str()) {
                return Err(bad_field(
                    &format!("/{key}"),
                    format!("Attribute {key} cannot be updated"),
                ));
            }
        }
        self.check_conversation_fields(org_of(conversation), body, false)?;
        if let Some(satisfaction) = body.get("satisfaction")
            && !(satisfaction.is_null() || satisfaction.is_number())
        {
            return Err(bad_field("/satisfaction", "satisfaction must be a number"));
        }
        check_revision(conversation, body)?;
        let id = conversation["id"].as_str().unwrap_or_default();
        let at = self.now();
        let mut state = self.state.borrow_mut();
        let stored = state
            .conversations
            .iter_mut()
            .find(|stored| stored["id"] == id)
            .ok_or_else(|| Refused::new(404, format!("No conversation with id {id}")))?;
        if let Some(attributes) = stored["attributes"].as_object_mut() {
            merge(attributes, body, &["rev", "custom"]);
            if let (Some(custom), Some(given)) = (
                attributes.get_mut("custom").and_then(Value::as_object_mut),
                body["custom"].as_object(),
            ) {
                for (key, value) in given {
                    custom.insert(key.clone(), value.clone());
                }
            }
        }
        touch(stored, &at, Some(modifier));
        Ok(stored.clone())
    }

    fn create_message(&self, conversation: &Value, body: &Value, creator: &str) -> Result<Value, Refused> {
        let fields = require_object(body, "")?;
        for key in fields.keys() {
            if !MESSAGE_ATTRIBUTES.contains(&key.as_str()) {
                return Err(bad_field(
                    &format!("/{key}"),
                    format!("Unknown message attribute {key}"),
                ));
            }
        }
        if body.get("channel").is_none() {
            return Err(bad_field("/channel", "channel is required"));
        }
        one_of(body, "channel", &CHANNELS)?;
        if body["app"].as_str().is_none_or(str::is_empty) {
            return Err(bad_field("/app", "app is required (a string)"));
        }
        if body.get("direction").is_none() {
            return Err(bad_field("/direction", "direction is required"));
        }
        one_of(body, "direction", &DIRECTIONS)?;
        for field in ["preview", "status", "externalId", "subject"] {
            optional_string(body, field)?;
        }
        for field in ["sentAt", "importedAt"] {
            date_time(body, field)?;
        }
        if let Some(meta) = body.get("meta") {
            require_object(meta, "/meta")?;
        }
        if let Some(size) = body.get("size")
            && size.as_u64().is_none()
        {
            return Err(bad_field("/size", "size must be a non-negative integer"));
        }
        let customer_id = customer_of(conversation).to_owned();
        self.spend_customer_create("message", &customer_id, body)?;
        let id = self.object_id();
        let at = self.now();
        let conversation_id = conversation["id"].as_str().unwrap_or_default().to_owned();
        let outbound = body["direction"] == "out";
        let mut attributes = Map::new();
        attributes.insert("status".into(), json!(if outbound { "sent" } else { "received" }));
        attributes.insert("preview".into(), Value::Null);
        attributes.insert("meta".into(), json!({}));
        attributes.insert("sentAt".into(), json!(at));
        merge(&mut attributes, body, &[]);
        for key in ["createdAt", "updatedAt", "modifiedAt"] {
            attributes.insert(key.to_owned(), json!(at));
        }
        let sent_at = attributes.get("sentAt").cloned().unwrap_or_default();
        let mut relationships = authorship(org_of(conversation), Some(creator));
        relationships["conversation"] = reference("conversation", &conversation_id);
        relationships["customer"] = reference("customer", &customer_id);
        let message = json!({
            "type": "message",
            "id": id,
            "attributes": attributes,
            "relationships": relationships,
            "links": { "self": format!("/v1/messages/{id}") }
        });
        let mut state = self.state.borrow_mut();
        state.messages.push((conversation_id.clone(), message.clone()));
        if let Some(stored) = state
            .conversations
            .iter_mut()
            .find(|stored| stored["id"] == conversation_id.as_str())
        {
            let attributes = &mut stored["attributes"];
            attributes["messageCount"] = json!(attributes["messageCount"].as_u64().unwrap_or(0) + 1);
            if outbound {
                attributes["outboundMessageCount"] =
                    json!(attributes["outboundMessageCount"].as_u64().unwrap_or(0) + 1);
            }
            if let Some(channels) = attributes["channels"].as_array_mut()
                && !channels.contains(&body["channel"])
            {
                channels.push(body["channel"].clone());
            }
            attributes["lastMessageAt"] = sent_at;
            touch(stored, &at, Some(creator));
        }
        Ok(message)
    }

    fn create_note(&self, conversation: &Value, body: &Value, creator: &str) -> Result<Value, Refused> {
        let fields = require_object(body, "")?;
        for key in fields.keys() {
            if !NOTE_ATTRIBUTES.contains(&key.as_str()) {
                return Err(bad_field(
                    &format!("/{key}"),
                    format!("Unknown note attribute {key}"),
                ));
            }
        }
        let text = body["body"].as_str().unwrap_or_default();
        if text.is_empty() {
            return Err(bad_field("/body", "body is required (a string)"));
        }
        let length = text.chars().count();
        if length > NOTE_MAX_LENGTH {
            return Err(bad_field(
                "/body",
                format!("body must be at most {NOTE_MAX_LENGTH} characters (got {length})"),
            ));
        }
        let org = org_of(conversation).to_owned();
        {
            let state = self.state.borrow();
            id_list(
                body,
                "userMentions",
                |id| state.users.iter().any(|u| u["id"] == id && org_of(u) == org),
                "User not found",
            )?;
        }
        date_time(body, "importedAt")?;
        let customer_id = customer_of(conversation).to_owned();
        self.spend_customer_create("note", &customer_id, body)?;
        let id = self.object_id();
        let at = self.now();
        let conversation_id = conversation["id"].as_str().unwrap_or_default().to_owned();
        let mut attributes = Map::new();
        attributes.insert("userMentions".into(), json!([]));
        merge(&mut attributes, body, &[]);
        for key in ["createdAt", "updatedAt", "modifiedAt"] {
            attributes.insert(key.to_owned(), json!(at));
        }
        let mut relationships = authorship(&org, Some(creator));
        relationships["conversation"] = reference("conversation", &conversation_id);
        relationships["customer"] = reference("customer", &customer_id);
        let note = json!({
            "type": "note",
            "id": id,
            "attributes": attributes,
            "relationships": relationships,
            "links": { "self": format!("/v1/notes/{id}") }
        });
        let mut state = self.state.borrow_mut();
        state.notes.push((conversation_id.clone(), note.clone()));
        if let Some(stored) = state
            .conversations
            .iter_mut()
            .find(|stored| stored["id"] == conversation_id.as_str())
        {
            stored["attributes"]["noteCount"] =
                json!(stored["attributes"]["noteCount"].as_u64().unwrap_or(0) + 1);
            touch(stored, &at, Some(creator));
        }
        Ok(note)
    }

    /// One create of `kind` for the customer, within the per-customer limit; imports are exempt.
    fn spend_customer_create(&self, kind: &str, customer_id: &str, body: &Value) -> Result<(), Refused> {
        if body.get("importedAt").is_some() {
            return Ok(());
        }
        let now = edge::runtime::native::now_ms();
        let mut state = self.state.borrow_mut();
        let limit = state.customer_create_limit;
        let spent = spend(
            &mut state.customer_windows,
            &format!("{kind}:{customer_id}"),
            limit,
            now,
        );
        if spent.exceeded {
            let mut refused = Refused::new(
                429,
                format!(
                    "Rate limit of {} {kind}s per minute reached for customer {customer_id}",
                    limit.per_window
                ),
            );
            refused.retry_after = Some(spent.reset_seconds);
            refused.throttle = Some(Scope::Customer);
            return Err(refused);
        }
        Ok(())
    }
}

struct Spent {
    exceeded: bool,
    remaining: u32,
    reset_seconds: u64,
}

/// One request from the fixed window of `name`.
fn spend(windows: &mut BTreeMap<String, Window>, name: &str, limit: Limit, at_ms: i64) -> Spent {
    let window_ms = i64::try_from(limit.window.as_millis()).unwrap_or(i64::MAX / 2);
    let window = windows.entry(name.to_owned()).or_insert(Window {
        start_ms: at_ms,
        count: 0,
    });
    if at_ms >= window.start_ms + window_ms {
        *window = Window {
            start_ms: at_ms,
            count: 0,
        };
    }
    let left_ms = window.start_ms + window_ms - at_ms;
    let reset_seconds = u64::try_from((left_ms + 999) / 1000).unwrap_or(1).max(1);
    let exceeded = window.count >= limit.per_window;
    if !exceeded {
        window.count += 1;
    }
    Spent {
        exceeded,
        remaining: limit.per_window - window.count,
        reset_seconds,
    }
}

fn with_headers(mut reply: Reply, headers: &[(&str, String)]) -> Reply {
    for (name, value) in headers {
        reply = reply.header(name, value);
    }
    reply
}

/// `body`'s fields over `attributes`, but for `except`.
fn merge(attributes: &mut Map<String, Value>, body: &Value, except: &[&str]) {
    for (key, value) in body.as_object().into_iter().flatten() {
        if !except.contains(&key.as_str()) {
            attributes.insert(key.clone(), value.clone());
        }
    }
}

fn authorship(org: &str, user: Option<&str>) -> Value {
    let mut relationships = json!({ "org": reference("org", org) });
    if let Some(user) = user {
        relationships["createdBy"] = reference("user", user);
        relationships["modifiedBy"] = reference("user", user);
    }
    relationships
}

fn touch(record: &mut Value, at: &str, modifier: Option<&str>) {
    record["attributes"]["updatedAt"] = json!(at);
    record["attributes"]["modifiedAt"] = json!(at);
    if let Some(rev) = record["attributes"]["rev"].as_u64() {
        record["attributes"]["rev"] = json!(rev + 1);
    }
    if let Some(user) = modifier {
        record["relationships"]["modifiedBy"] = reference("user", user);
    }
}

fn display_name(attributes: &Value) -> Value {
    [
        &attributes["name"],
        &attributes["emails"][0]["email"],
        &attributes["phones"][0]["phone"],
    ]
    .into_iter()
    .find(|value| value.is_string())
    .cloned()
    .unwrap_or(Value::Null)
}

/// Kustomer locks optimistically: a `rev` that is not the record's current one is a conflict.
fn check_revision(record: &Value, body: &Value) -> Result<(), Refused> {
    let Some(given) = body.get("rev") else {
        return Ok(());
    };
    let current = &record["attributes"]["rev"];
    if given != current {
        return Err(Refused::new(409, format!("rev {given} is stale (current rev is {current})")).at("/rev"));
    }
    Ok(())
}

fn check_customer_attributes(body: &Value) -> Result<(), Refused> {
    let fields = require_object(body, "")?;
    for key in fields.keys() {
        if !CUSTOMER_ATTRIBUTES.contains(&key.as_str()) {
            return Err(bad_field(
                &format!("/{key}"),
                format!("Unknown customer attribute {key}"),
            ));
        }
    }
    optional_string(body, "name")?;
    optional_string(body, "externalId")?;
    let email = |value: &str| {
        let Some((local, domain)) = value.split_once('@') else {
            return false;
        };
        !local.is_empty()
            && !value.contains(char::is_whitespace)
            && !domain.contains('@')
            && domain
                .split_once('.')
                .is_some_and(|(a, b)| !a.is_empty() && !b.is_empty())
    };
    let phone = |value: &str| {
        let digits = value.strip_prefix('+').unwrap_or(value);
        digits.chars().count() >= 3 && digits.chars().all(|c| c.is_ascii_digit() || " ()-.".contains(c))
    };
    contact_list(body, "emails", "email", email, "an email address")?;
    contact_list(body, "phones", "phone", phone, "a phone number")?;
    contact_list(body, "whatsapps", "phone", phone, "a phone number")?;
    string_list(body, "tags")?;
    if let Some(custom) = body.get("custom") {
        check_custom(custom, "/custom")?;
    }
    if let Some(rev) = body.get("rev")
        && rev.as_i64().is_none()
    {
        return Err(bad_field("/rev", "rev must be an integer"));
    }
    Ok(())
}

/// Custom attributes: each name ends with the suffix that fixes its value's type.
fn check_custom(custom: &Value, pointer: &str) -> Result<(), Refused> {
    let fields = require_object(custom, pointer)?;
    for (name, value) in fields {
        let at = format!("{pointer}/{name}");
        let suffix = ["Str", "Txt", "Num", "At", "Bool", "Url"]
            .into_iter()
            .find(|suffix| name.strip_suffix(suffix).is_some_and(valid_stem));
        let Some(suffix) = suffix else {
            return Err(bad_field(
                &at,
                format!(
                    "Custom attribute {name} must end with a type suffix: Str, Txt, Num, At, Bool or Url"
                ),
            ));
        };
        if value.is_null() {
            continue;
        }
        let (fits, expected) = match suffix {
            "Str" | "Txt" => (
                value
                    .as_str()
                    .is_some_and(|text| text.chars().count() <= CUSTOM_TEXT_MAX_LENGTH),
                format!("a string of at most {CUSTOM_TEXT_MAX_LENGTH} characters"),
            ),
            "Num" => (value.is_number(), "a number".to_owned()),
            "At" => (
                value.as_str().is_some_and(is_date_time),
                "an ISO 8601 date-time".to_owned(),
            ),
            "Bool" => (value.is_boolean(), "a boolean".to_owned()),
            _ => (value.as_str().is_some_and(is_http_url), "a URL".to_owned()),
        };
        if !fits {
            return Err(bad_field(
                &at,
                format!("Custom attribute {name} must be {expected} or null"),
            ));
        }
    }
    Ok(())
}

/// A custom attribute's name before its suffix: a letter, then letters and digits.
fn valid_stem(stem: &str) -> bool {
    let mut chars = stem.chars();
    chars.next().is_some_and(|first| first.is_ascii_alphabetic()) && chars.all(|c| c.is_ascii_alphanumeric())
}

fn is_date_time(value: &str) -> bool {
    let bytes = value.as_bytes();
    let shaped = bytes.len() >= 16
        && bytes[..4].iter().all(u8::is_ascii_digit)
        && bytes[4] == b'-'
        && bytes[7] == b'-'
        && bytes[10] == b'T'
        && bytes[13] == b':';
    shaped && Timestamp::parse_rfc3339(value).is_some()
}

fn is_http_url(value: &str) -> bool {
    ["http://", "https://"].iter().any(|scheme| {
        value
            .strip_prefix(scheme)
            .is_some_and(|rest| !rest.is_empty() && !rest.starts_with('/'))
    })
}

fn require_object<'v>(value: &'v Value, pointer: &str) -> Result<&'v Map<String, Value>, Refused> {
    value.as_object().ok_or_else(|| {
        if pointer.is_empty() {
            bad_field("/", "Request body must be a JSON object")
        } else {
            bad_field(pointer, format!("{} must be an object", &pointer[1..]))
        }
    })
}

fn optional_string(body: &Value, field: &str) -> Result<(), Refused> {
    match body.get(field) {
        None | Some(Value::Null | Value::String(_)) => Ok(()),
        Some(_) => Err(bad_field(
            &format!("/{field}"),
            format!("{field} must be a string"),
        )),
    }
}

fn one_of(body: &Value, field: &str, allowed: &[&str]) -> Result<(), Refused> {
    match body.get(field) {
        None => Ok(()),
        Some(value) if value.as_str().is_some_and(|value| allowed.contains(&value)) => Ok(()),
        Some(value) => Err(bad_field(
            &format!("/{field}"),
            format!("{field} must be one of {} (got {value})", allowed.join(", ")),
        )),
    }
}

fn date_time(body: &Value, field: &str) -> Result<(), Refused> {
    match body.get(field) {
        None => Ok(()),
        Some(value) if value.as_str().is_some_and(is_date_time) => Ok(()),
        Some(_) => Err(bad_field(
            &format!("/{field}"),
            format!("{field} must be an ISO 8601 date-time"),
        )),
    }
}

fn string_list(body: &Value, field: &str) -> Result<(), Refused> {
    let Some(value) = body.get(field) else {
        return Ok(());
    };
    let Some(items) = value.as_array() else {
        return Err(bad_field(
            &format!("/{field}"),
            format!("{field} must be an array of strings"),
        ));
    };
    match items.iter().position(|item| !item.is_string()) {
        Some(index) => Err(bad_field(
            &format!("/{field}/{index}"),
            format!("{field} must be an array of strings"),
        )),
        None => Ok(()),
    }
}

fn id_list(body: &Value, field: &str, exists: impl Fn(&str) -> bool, not_found: &str) -> Result<(), Refused> {
    let Some(value) = body.get(field) else {
        return Ok(());
    };
    let Some(items) = value.as_array() else {
        return Err(bad_field(
            &format!("/{field}"),
            format!("{field} must be an array of ids"),
        ));
    };
    for (index, item) in items.iter().enumerate() {
        if !item.as_str().is_some_and(&exists) {
            return Err(bad_field(
                &format!("/{field}/{index}"),
                format!("{not_found}: {item}"),
            ));
        }
    }
    Ok(())
}

/// `emails`, `phones`, `whatsapps`: arrays of `{type?, <value_field>, verified?}`.
fn contact_list(
    body: &Value,
    field: &str,
    value_field: &str,
    valid: impl Fn(&str) -> bool,
    what: &str,
) -> Result<(), Refused> {
    let Some(value) = body.get(field) else {
        return Ok(());
    };
    let Some(entries) = value.as_array() else {
        return Err(bad_field(
            &format!("/{field}"),
            format!("{field} must be an array"),
        ));
    };
    for (index, entry) in entries.iter().enumerate() {
        let at = format!("/{field}/{index}");
        let Some(fields) = entry.as_object() else {
            return Err(bad_field(
                &at,
                format!("{field} entries must be objects with {value_field}"),
            ));
        };
        if let Some(key) = fields
            .keys()
            .find(|key| !["type", value_field, "verified"].contains(&key.as_str()))
        {
            return Err(bad_field(
                &format!("{at}/{key}"),
                format!("Unknown {field} field {key}"),
            ));
        }
        if fields.get("type").is_some_and(|kind| !kind.is_string()) {
            return Err(bad_field(&format!("{at}/type"), "type must be a string"));
        }
        if !entry[value_field].as_str().is_some_and(&valid) {
            return Err(bad_field(
                &format!("{at}/{value_field}"),
                format!("{value_field} must be {what}"),
            ));
        }
    }
    Ok(())
}

/// A path segment, percent-decoded.
fn decode(segment: &str) -> Result<String, Refused> {
    let bytes = segment.as_bytes();
    let mut decoded = Vec::with_capacity(bytes.len());
    let mut at = 0;
    while at < bytes.len() {
        if bytes[at] == b'%' {
            let hex = segment
                .get(at + 1..at + 3)
                .and_then(|hex| u8::from_str_radix(hex, 16).ok())
                .ok_or_else(|| Refused::new(400, format!("Malformed path segment {segment}")))?;
            decoded.push(hex);
            at += 3;
        } else {
            decoded.push(bytes[at]);
            at += 1;
        }
    }
    String::from_utf8(decoded).map_err(|_| Refused::new(400, format!("Malformed path segment {segment}")))
}

/// A page number or size from the query: a positive integer.
fn read_page(call: &Outbound, name: &str, fallback: usize) -> Result<usize, Refused> {
    match call.query().get(name) {
        None => Ok(fallback),
        Some(value) => value
            .parse::<usize>()
            .ok()
            .filter(|number| *number > 0 && !value.starts_with('0'))
            .ok_or_else(|| {
                let mut refused =
                    Refused::new(400, format!("{name} must be a positive integer (got {value})"));
                refused.source = Some(json!({ "parameter": name }));
                refused
            }),
    }
}

/// A page of `records` as Kustomer lists them.
fn page(records: &[Value], call: &Outbound, max_page_size: usize) -> Result<Value, Refused> {
    let number = read_page(call, "page", 1)?;
    let size = read_page(call, "pageSize", DEFAULT_PAGE_SIZE)?.min(max_page_size);
    let start = (number - 1).saturating_mul(size);
    let path = call.path();
    let link = |n: usize| format!("{path}?page={n}&pageSize={size}");
    let data: Vec<Value> = records.iter().skip(start).take(size).cloned().collect();
    Ok(json!({
        "data": data,
        "links": {
            "self": link(number),
            "first": link(1),
            "prev": (number > 1).then(|| link(number - 1)),
            "next": (start + size < records.len()).then(|| link(number + 1)),
        },
        "meta": { "page": number, "pageSize": size }
    }))
}

/// Kustomer's error document.
pub fn error(status: u16, detail: &str, pointer: Option<&str>) -> Reply {
    let (code, title) = match status {
        400 => ("bad_request", "Bad Request"),
        401 => ("unauthorized", "Unauthorized"),
        403 => ("forbidden", "Forbidden"),
        404 => ("not_found", "Not Found"),
        405 => ("method_not_allowed", "Method Not Allowed"),
        409 => ("conflict", "Conflict"),
        413 => ("payload_too_large", "Payload Too Large"),
        429 => ("too_many_requests", "Too Many Requests"),
        502 => ("bad_gateway", "Bad Gateway"),
        503 => ("service_unavailable", "Service Unavailable"),
        _ => ("internal_error", "Internal Server Error"),
    };
    let mut error = json!({ "status": status.to_string(), "code": code, "title": title, "detail": detail });
    if let Some(pointer) = pointer {
        error["source"] = json!({ "pointer": pointer });
    }
    json_reply(status, &json!({ "errors": [error] }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use edge::runtime::native::Stack;

    fn call(method: &str, path: &str, key: &str, body: Option<Value>) -> Outbound {
        Outbound {
            method: method.to_owned(),
            url: format!("https://acme.api.kustomerapp.com{path}"),
            headers: vec![("authorization".to_owned(), format!("Bearer {key}"))],
            body: body.map(|body| body.to_string().into_bytes()).unwrap_or_default(),
            at_ms: edge::runtime::native::now_ms(),
        }
    }

    fn answered(kustomer: &Kustomer, call: &Outbound) -> (u16, Value) {
        let reply = kustomer.answer(call);
        (
            reply.status,
            serde_json::from_slice(&reply.body).unwrap_or_default(),
        )
    }

    #[test]
    fn a_key_without_a_permission_is_refused_with_the_role_it_needs_and_orgs_keep_apart() {
        let stack = Stack::new();
        let kustomer = Kustomer::install(&stack, "acme", "full");
        kustomer.add_key("reader", &kustomer.org(), &["customers:read"]);
        let other = kustomer.other_org("globex");
        kustomer.add_key("globex", &other, &PERMISSIONS);
        let created = answered(
            &kustomer,
            &call(
                "POST",
                "/v1/customers",
                "full",
                Some(json!({ "name": "Ada", "externalId": "x1" })),
            ),
        );
        assert_eq!(created.0, 201, "{}", created.1);
        let refused = answered(
            &kustomer,
            &call("POST", "/v1/customers", "reader", Some(json!({ "name": "Bo" }))),
        );
        assert_eq!(refused.0, 403);
        assert!(
            refused.1["errors"][0]["detail"]
                .as_str()
                .is_some_and(|detail| detail.contains("org.permission.customer.create")),
            "{}",
            refused.1
        );
        let read = answered(
            &kustomer,
            &call("GET", "/v1/customers/externalId=x1", "reader", None),
        );
        assert_eq!(read.0, 200, "a reader of the same org reads it");
        let elsewhere = answered(
            &kustomer,
            &call("GET", "/v1/customers/externalId=x1", "globex", None),
        );
        assert_eq!(elsewhere.0, 404, "another org does not: {}", elsewhere.1);
        let user = answered(&kustomer, &call("GET", "/v1/users/current", "globex", None));
        assert_eq!(
            user.1["data"]["relationships"]["org"]["data"]["id"],
            other.as_str()
        );
    }

    #[test]
    fn the_org_budget_is_reported_in_headers_and_a_spent_one_answers_429_until_its_window_ends() {
        let stack = Stack::new();
        let kustomer = Kustomer::install(&stack, "acme", "key");
        kustomer.rate_limit(Some(Limit::per_minute(2)));
        let first = kustomer.answer(&call("GET", "/v1/teams", "key", None));
        let header = |reply: &Reply, name: &str| {
            reply
                .headers
                .iter()
                .find(|(key, _)| key == name)
                .map(|(_, value)| value.clone())
        };
        assert_eq!(header(&first, "x-ratelimit-limit").as_deref(), Some("2"));
        assert_eq!(header(&first, "x-ratelimit-remaining").as_deref(), Some("1"));
        assert_eq!(header(&first, "x-ratelimit-reset").as_deref(), Some("60"));
        kustomer.answer(&call("GET", "/v1/teams", "key", None));
        stack.advance(Duration::from_secs(20));
        let spent = kustomer.answer(&call("GET", "/v1/teams", "key", None));
        assert_eq!(spent.status, 429);
        assert_eq!(header(&spent, "retry-after").as_deref(), Some("40"));
        assert_eq!(kustomer.throttles().len(), 1);
        stack.advance(Duration::from_secs(40));
        let next = kustomer.answer(&call("GET", "/v1/teams", "key", None));
        assert_eq!(next.status, 200, "a new window");
    }

    #[test]
    fn a_customer_gets_so_many_creates_a_minute_and_imports_are_exempt() {
        let stack = Stack::new();
        let kustomer = Kustomer::install(&stack, "acme", "key");
        kustomer.customer_create_limit(Limit::per_minute(1));
        let customer = kustomer.seed_customer(json!({ "name": "Ada" }));
        let id = customer["id"].as_str().unwrap_or_default();
        let body = json!({ "customer": id });
        let first = answered(
            &kustomer,
            &call("POST", "/v1/conversations", "key", Some(body.clone())),
        );
        assert_eq!(first.0, 201, "{}", first.1);
        let second = kustomer.answer(&call("POST", "/v1/conversations", "key", Some(body)));
        assert_eq!(second.status, 429);
        assert!(second.headers.iter().any(|(name, _)| name == "retry-after"));
        let imported = answered(
            &kustomer,
            &call(
                "POST",
                "/v1/conversations",
                "key",
                Some(json!({ "customer": id, "importedAt": "2026-01-01T00:00:00Z" })),
            ),
        );
        assert_eq!(imported.0, 201, "{}", imported.1);
    }

    #[test]
    fn bad_bodies_are_refused_with_the_field_that_is_wrong() {
        let stack = Stack::new();
        let kustomer = Kustomer::install(&stack, "acme", "key");
        let cases = [
            (json!({ "nickname": "x" }), "/nickname", "an unknown attribute"),
            (
                json!({ "emails": [{ "email": "not-an-email" }] }),
                "/emails/0/email",
                "a bad email",
            ),
            (
                json!({ "custom": { "plan": "gold" } }),
                "/custom/plan",
                "a custom name without its suffix",
            ),
            (
                json!({ "custom": { "seatsNum": "ten" } }),
                "/custom/seatsNum",
                "a Num that is text",
            ),
        ];
        for (body, pointer, why) in cases {
            let (status, answer) = answered(&kustomer, &call("POST", "/v1/customers", "key", Some(body)));
            assert_eq!(status, 400, "{why}: {answer}");
            assert_eq!(answer["errors"][0]["source"]["pointer"], pointer, "{why}");
        }
        let (status, _) = answered(&kustomer, &call("DELETE", "/v1/customers", "key", None));
        assert_eq!(status, 405, "a known path with another method");
    }

    #[test]
    fn a_webhook_is_signed_with_the_hex_hmac_of_its_raw_body() {
        let stack = Stack::new();
        let kustomer = Kustomer::install(&stack, "acme", "key");
        let webhook = kustomer.webhook(
            "token",
            &json!({ "name": "kustomer.conversation.update", "data": { "type": "conversation", "id": "c1" } }),
        );
        let signature = webhook
            .headers
            .iter()
            .find(|(name, _)| name == SIGNATURE_HEADER)
            .map(|(_, value)| value.clone())
            .unwrap_or_default();
        // Computed with a second, independent HMAC: RFC 2104 by hand over SHA-256.
        let mut key = [0u8; 64];
        key[..5].copy_from_slice(b"token");
        let inner: Vec<u8> = key
            .iter()
            .map(|byte| byte ^ 0x36)
            .chain(webhook.body.iter().copied())
            .collect();
        let inner = Sha256::digest(&inner);
        let outer: Vec<u8> = key
            .iter()
            .map(|byte| byte ^ 0x5c)
            .chain(inner.iter().copied())
            .collect();
        assert_eq!(signature, hex::encode(Sha256::digest(&outer)));
        let envelope: Value = serde_json::from_slice(&webhook.body).unwrap_or_default();
        assert_eq!(envelope["org"], kustomer.org().as_str());
        assert_eq!(envelope["data"]["id"], "c1");
    }
}
