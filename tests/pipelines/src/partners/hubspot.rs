//! HubSpot's public REST API as a partner script, at `api.hubapi.com`: the CRM objects our
//! connector writes (contacts, companies, communications, emails, notes, tickets) under the date-versioned
//! paths (`/crm/objects/2026-03/{object}`) and the legacy ones (`/crm/v3/objects/{object}`), ticket
//! pipelines, owners, the account's details, OAuth 2.0, and the webhooks HubSpot sends to an app.
//!
//! Conventions, as HubSpot documents them: `Authorization: Bearer <token>`, a private app's token
//! (never expires) or an OAuth access token (expires after `expires_in` seconds, 1800 unless set);
//! a missing, unknown or expired one answers 401. Each token holds scopes; a call without the
//! one it needs answers 403 `MISSING_SCOPES` naming it (`requiredGranularScopes`): contacts and
//! the engagements (communications, emails, notes) need `crm.objects.contacts.read` to read or
//! search and `.write` to write, companies `crm.objects.companies.read` and `.write`, tickets and
//! their pipelines `tickets`, owners `crm.objects.owners.read`; the account's details any token. Every error is
//! `{status: "error", message, correlationId, category}`, with `errors` and `context` at times.
//! Ids are numeric strings (beyond 32 bits, as HubSpot's are); every property value is a string
//! (numbers and booleans sent are kept as text, `null` or `""` clears one); a property no object
//! of the type has, or a read-only one, is refused with 400 `VALIDATION_ERROR` whose message
//! lists each bad value (`Property values were not valid: [{isValid, message, error, name}]`).
//! Reads (GET, search) answer an object's default properties plus those asked for
//! (`?properties=`, search's `properties`), a property asked for but unset as null; writes answer
//! every property set. A contact's `email` is unique, compared without case (and stored in
//! lowercase); so is any custom property [`HubSpot::add_contact_property`] makes unique: a second
//! contact with the value answers 409 `Contact already exists. Existing ID: <id>`. GET, PATCH and
//! DELETE (which archives: 204) take `?idProperty=` to name a record by a unique property.
//! Batch upsert (at most 100 inputs) creates or updates by a unique property. Search (`filterGroups`
//! ORed, their `filters` ANDed; at most 5 groups, 6 filters a group and 18 in all; `limit` at
//! most 200, 10 unless given; `after` an offset) sees a record only after the search index has
//! caught up with its last write ([`HubSpot::search_lag`], none unless set): until then it finds
//! the record as it was at its last indexed write, or not at all. Engagements need
//! `hs_timestamp` (milliseconds or ISO 8601, answered as ISO 8601), communications a channel
//! (`WHATS_APP`, `LINKEDIN_MESSAGE`, `SMS`) and `hs_communication_logged_from: CRM`, tickets a
//! `subject` and a `hs_pipeline_stage` of their `hs_pipeline` (the first pipeline unless given);
//! enumerations (priority, category, email direction and status, lifecycle stage) and owners
//! (`hubspot_owner_id`) are checked against their options; a note's body is at most 65,536
//! characters. Associations made on create name a HUBSPOT_DEFINED type id that must go from the
//! created object to an existing record ([`ASSOCIATION_TYPES`]); `PUT …/{object}/{id}/associations/
//! default/{to}/{to_id}` associates two records both ways (made once however often asked). JSON bodies need
//! `Content-Type: application/json` (415 otherwise); bodies over 2 MB answer 413; unknown paths
//! 404, a known path with another method 405.
//!
//! Limits, as HubSpot documents them for private apps: a rolling burst of 100 requests per 10
//! seconds per app (each private app token is an app; OAuth tokens count against their client
//! id), 250,000 requests a day per account for private apps (the day ends at midnight in the
//! account's time zone, US/Eastern, taken as UTC-5; OAuth calls have no daily limit), and 5
//! searches per second per account. Every authenticated answer carries
//! `X-HubSpot-RateLimit-Max`, `-Remaining` and `-Interval-Milliseconds`, and for a private app's
//! token `-Daily` and `-Daily-Remaining` (OAuth calls do not carry the daily headers). A spent
//! limit answers 429 `{status: "error", message: "You have reached your <policy> limit.",
//! errorType: "RATE_LIMIT", correlationId, policyName}` (`TEN_SECONDLY_ROLLING`, `SECONDLY`,
//! `DAILY`) with `Retry-After` (whole seconds until the window frees). Windows run on the stack's
//! clock.
//!
//! OAuth 2.0: an app ([`HubSpot::register_app`]) sends the user to
//! `https://app.hubspot.com/oauth/authorize?client_id=&scope=&redirect_uri=&state=`; their
//! consent ([`HubSpot::consent`], or [`HubSpot::authorize`]) gives a code, single-use and good
//! for 10 minutes, that `POST /oauth/v1/token` (form-encoded) exchanges for an access token and a
//! refresh token; the refresh token stays valid across refreshes (until the app is uninstalled or
//! it is revoked with `DELETE /oauth/v1/refresh-tokens/{token}`), each refresh giving a new
//! access token. Refusals answer 400 `{status: BAD_CLIENT_ID | BAD_AUTH_CODE | BAD_REDIRECT_URI
//! | BAD_REFRESH_TOKEN | BAD_GRANT_TYPE, message}`. `GET /oauth/v1/access-tokens/{token}` and
//! `/refresh-tokens/{token}` describe a token.
//!
//! Webhooks ([`HubSpot::webhook`]): a JSON array of events, signed with the app's client secret:
//! `X-HubSpot-Signature-v3` is the base64 HMAC-SHA256 of `POST` + the full request URI + the raw
//! body + the `X-HubSpot-Request-Timestamp` (milliseconds, as decimal text); the v1 signature
//! (hex SHA-256 of the secret followed by the body) comes along as well. A receiver refuses a
//! timestamp more than 5 minutes old.
//!
//! A test scripts faults with [`HubSpot::fail`] (a reply for the next matching calls),
//! [`HubSpot::hang`] (calls that are never answered), [`HubSpot::down`] (connections refused),
//! and reads what was written from the records kept here.

use super::script::{Script, status_seen};
use super::{form_fields, hmac_sha256, json_reply, unique_hex};
use base64::Engine;
use domain::time::Timestamp;
use edge::runtime::native::{Outbound, Reply, Stack};
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};
use std::cell::RefCell;
use std::collections::{BTreeMap, VecDeque};
use std::rc::Rc;
use std::time::Duration;

pub const HOST: &str = "api.hubapi.com";
/// The date version of the paths served (besides the legacy `v3` ones).
pub const VERSION: &str = "2026-03";
/// The page a user consents on.
pub const AUTHORIZE_URL: &str = "https://app.hubspot.com/oauth/authorize";
pub const CONTACTS_READ: &str = "crm.objects.contacts.read";
pub const CONTACTS_WRITE: &str = "crm.objects.contacts.write";
pub const TICKETS: &str = "tickets";
pub const OWNERS_READ: &str = "crm.objects.owners.read";
pub const COMPANIES_READ: &str = "crm.objects.companies.read";
pub const COMPANIES_WRITE: &str = "crm.objects.companies.write";
pub const OAUTH: &str = "oauth";
/// The scopes [`HubSpot::install`]'s token holds (and companies' read and write), and an app's.
pub const SCOPES: [&str; 5] = [CONTACTS_READ, CONTACTS_WRITE, TICKETS, OWNERS_READ, OAUTH];
/// The account's id (its hub id).
pub const PORTAL_ID: u64 = 48_213_077;
pub const BODY_MAX_BYTES: usize = 2 * 1024 * 1024;
pub const NOTE_BODY_MAX_CHARS: usize = 65_536;
pub const BATCH_MAX_INPUTS: usize = 100;
pub const SEARCH_DEFAULT_LIMIT: usize = 10;
pub const SEARCH_MAX_LIMIT: usize = 200;
pub const SEARCH_MAX_FILTER_GROUPS: usize = 5;
pub const SEARCH_MAX_FILTERS_PER_GROUP: usize = 6;
pub const SEARCH_MAX_FILTERS: usize = 18;
pub const SEARCHES_PER_SECOND: u32 = 5;
pub const BURST_PER_TEN_SECONDS: u32 = 100;
pub const DAILY_LIMIT: u32 = 250_000;
pub const ACCESS_TOKEN_SECONDS: u64 = 1800;
pub const AUTH_CODE_SECONDS: i64 = 600;
pub const SIGNATURE_HEADER: &str = "X-HubSpot-Signature-v3";
pub const TIMESTAMP_HEADER: &str = "X-HubSpot-Request-Timestamp";
/// The message of every 401 for a token HubSpot does not know.
pub const UNAUTHENTICATED: &str = "Authentication credentials not found. This API supports OAuth 2.0 authentication and you can find more details at https://developers.hubspot.com/docs/methods/auth/oauth-overview";
/// The user who installs apps and whose OAuth tokens these are.
pub const USER_EMAIL: &str = "admin@acme.example";
pub const USER_ID: u64 = 7_340_021;
pub const HUB_DOMAIN: &str = "acme.example";

/// HUBSPOT_DEFINED association types: (type id, from object, to object).
pub const ASSOCIATION_TYPES: [(u64, &str, &str); 8] = [
    (202, "notes", "contacts"),
    (228, "notes", "tickets"),
    (198, "emails", "contacts"),
    (81, "communications", "contacts"),
    (16, "tickets", "contacts"),
    (15, "contacts", "tickets"),
    (279, "contacts", "companies"),
    (280, "companies", "contacts"),
];

const CHANNEL_TYPES: [&str; 3] = ["WHATS_APP", "LINKEDIN_MESSAGE", "SMS"];
const EMAIL_DIRECTIONS: [&str; 3] = ["EMAIL", "INCOMING_EMAIL", "FORWARDED_EMAIL"];
const EMAIL_STATUSES: [&str; 5] = ["BOUNCED", "FAILED", "SCHEDULED", "SENDING", "SENT"];
const TICKET_PRIORITIES: [&str; 4] = ["LOW", "MEDIUM", "HIGH", "URGENT"];
const TICKET_CATEGORIES: [&str; 4] = [
    "PRODUCT_ISSUE",
    "BILLING_ISSUE",
    "FEATURE_REQUEST",
    "GENERAL_INQUIRY",
];
const LIFECYCLE_STAGES: [&str; 8] = [
    "subscriber",
    "lead",
    "marketingqualifiedlead",
    "salesqualifiedlead",
    "opportunity",
    "customer",
    "evangelist",
    "other",
];
/// Properties HubSpot sets itself: read, searched, never written.
const READ_ONLY: [&str; 5] = [
    "hs_object_id",
    "createdate",
    "lastmodifieddate",
    "hs_createdate",
    "hs_lastmodifieddate",
];
const SEARCH_OPERATORS: [&str; 13] = [
    "EQ",
    "NEQ",
    "LT",
    "LTE",
    "GT",
    "GTE",
    "BETWEEN",
    "IN",
    "NOT_IN",
    "HAS_PROPERTY",
    "NOT_HAS_PROPERTY",
    "CONTAINS_TOKEN",
    "NOT_CONTAINS_TOKEN",
];
const DAY_MS: i64 = 86_400_000;
/// US/Eastern, without daylight saving time.
const ACCOUNT_UTC_OFFSET_MS: i64 = -18_000_000;
/// Where record ids start: past 2^32, as HubSpot's do.
const FIRST_ID: u64 = 93_018_349_500;

/// The CRM objects kept here.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Object {
    Contacts,
    Companies,
    Communications,
    Emails,
    Notes,
    Tickets,
}

const OBJECTS: [Object; 6] = [
    Object::Contacts,
    Object::Companies,
    Object::Communications,
    Object::Emails,
    Object::Notes,
    Object::Tickets,
];

impl Object {
    /// Its name in paths.
    pub fn name(self) -> &'static str {
        match self {
            Object::Contacts => "contacts",
            Object::Companies => "companies",
            Object::Communications => "communications",
            Object::Emails => "emails",
            Object::Notes => "notes",
            Object::Tickets => "tickets",
        }
    }

    fn singular(self) -> &'static str {
        match self {
            Object::Contacts => "contact",
            Object::Companies => "company",
            Object::Communications => "communication",
            Object::Emails => "email",
            Object::Notes => "note",
            Object::Tickets => "ticket",
        }
    }

    fn type_id(self) -> &'static str {
        match self {
            Object::Contacts => "0-1",
            Object::Companies => "0-2",
            Object::Communications => "0-18",
            Object::Emails => "0-49",
            Object::Notes => "0-46",
            Object::Tickets => "0-5",
        }
    }

    /// The object a path names: its plural, its singular or its type id (`0-1`).
    pub fn named(name: &str) -> Option<Self> {
        OBJECTS
            .into_iter()
            .find(|object| [object.name(), object.singular(), object.type_id()].contains(&name))
    }

    /// The scope a read or a write of the object needs.
    fn scope(self, write: bool) -> &'static str {
        match (self, write) {
            (Object::Tickets, _) => TICKETS,
            (Object::Companies, true) => COMPANIES_WRITE,
            (Object::Companies, false) => COMPANIES_READ,
            (_, true) => CONTACTS_WRITE,
            (_, false) => CONTACTS_READ,
        }
    }

    /// The properties a client may set (contacts also have custom ones).
    fn properties(self) -> &'static [&'static str] {
        match self {
            Object::Contacts => &[
                "email",
                "firstname",
                "lastname",
                "phone",
                "mobilephone",
                "company",
                "website",
                "lifecyclestage",
                "hs_whatsapp_phone_number",
            ],
            Object::Companies => &[
                "name", "domain", "website", "industry", "phone", "city", "country",
            ],
            Object::Communications => &[
                "hs_communication_channel_type",
                "hs_communication_logged_from",
                "hs_timestamp",
                "hs_communication_body",
                "hubspot_owner_id",
            ],
            Object::Emails => &[
                "hs_timestamp",
                "hs_email_direction",
                "hs_email_status",
                "hs_email_subject",
                "hs_email_text",
                "hs_email_html",
                "hs_email_headers",
                "hubspot_owner_id",
            ],
            Object::Notes => &[
                "hs_timestamp",
                "hs_note_body",
                "hubspot_owner_id",
                "hs_attachment_ids",
            ],
            Object::Tickets => &[
                "subject",
                "hs_pipeline",
                "hs_pipeline_stage",
                "content",
                "hs_ticket_priority",
                "hubspot_owner_id",
                "hs_ticket_category",
            ],
        }
    }

    fn required(self) -> &'static [&'static str] {
        match self {
            Object::Contacts | Object::Companies => &[],
            Object::Communications => &[
                "hs_communication_channel_type",
                "hs_communication_logged_from",
                "hs_timestamp",
            ],
            Object::Emails | Object::Notes => &["hs_timestamp"],
            Object::Tickets => &["subject", "hs_pipeline", "hs_pipeline_stage"],
        }
    }

    /// What a read answers when no properties are asked for.
    fn defaults(self) -> &'static [&'static str] {
        match self {
            Object::Contacts => &[
                "createdate",
                "email",
                "firstname",
                "hs_object_id",
                "lastmodifieddate",
                "lastname",
            ],
            Object::Tickets => &[
                "content",
                "createdate",
                "hs_lastmodifieddate",
                "hs_object_id",
                "hs_pipeline",
                "hs_pipeline_stage",
                "hs_ticket_category",
                "hs_ticket_priority",
                "subject",
            ],
            _ => &["hs_createdate", "hs_lastmodifieddate", "hs_object_id"],
        }
    }

    fn created(self) -> &'static str {
        match self {
            Object::Contacts | Object::Companies | Object::Tickets => "createdate",
            _ => "hs_createdate",
        }
    }

    fn modified(self) -> &'static str {
        match self {
            Object::Contacts => "lastmodifieddate",
            _ => "hs_lastmodifieddate",
        }
    }

    /// The properties `query` (search's free text) looks in.
    fn searchable(self) -> &'static [&'static str] {
        match self {
            Object::Contacts => &[
                "email",
                "firstname",
                "lastname",
                "phone",
                "mobilephone",
                "company",
                "website",
            ],
            Object::Tickets => &["subject", "content"],
            Object::Companies => &["name", "domain", "website"],
            _ => &[],
        }
    }
}

fn singular_of(object: &str) -> &str {
    match Object::named(object) {
        Some(object) => object.singular(),
        None => object,
    }
}

/// One HubSpot account (portal) at `api.hubapi.com`.
#[derive(Clone)]
pub struct HubSpot {
    state: Rc<RefCell<State>>,
}

/// A call HubSpot received, and the status it was answered with (None: never answered, or the
/// connection was refused).
#[derive(Debug, Clone)]
pub struct Received {
    pub call: Outbound,
    pub status: Option<u16>,
}

/// Which limit a 429 came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Policy {
    /// An app's burst: so many requests per rolling ten seconds.
    TenSecondly,
    /// The account's searches per second.
    Secondly,
    /// The account's private apps' requests per day.
    Daily,
}

impl Policy {
    /// Its `policyName`.
    pub fn name(self) -> &'static str {
        match self {
            Policy::TenSecondly => "TEN_SECONDLY_ROLLING",
            Policy::Secondly => "SECONDLY",
            Policy::Daily => "DAILY",
        }
    }
}

/// A 429 a limit gave (not a scripted one).
#[derive(Debug, Clone)]
pub struct Throttle {
    pub at_ms: i64,
    pub policy: Policy,
    pub method: String,
    pub path: String,
    pub retry_after: u64,
}

/// So many requests per rolling window.
#[derive(Debug, Clone, Copy)]
pub struct Limit {
    pub per_window: u32,
    pub window: Duration,
}

impl Limit {
    pub fn per_ten_seconds(per_window: u32) -> Self {
        Self {
            per_window,
            window: Duration::from_secs(10),
        }
    }
}

/// An association a record was created with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Association {
    /// `contacts`, `tickets`, ...
    pub to_object: String,
    pub to_id: String,
    pub category: String,
    pub type_id: u64,
}

impl Association {
    /// HubSpot's name of its type, e.g. `note_to_contact`.
    pub fn label(&self, from: &str) -> String {
        format!("{}_to_{}", singular_of(from), singular_of(&self.to_object))
    }

    fn json(&self, from: &str) -> Value {
        json!({
            "toObjectType": self.to_object,
            "toObjectId": self.to_id,
            "associationCategory": self.category,
            "associationTypeId": self.type_id,
            "label": self.label(from),
        })
    }
}

/// A webhook delivery as HubSpot makes it: `body` is the raw JSON the signatures cover.
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

/// A record's properties after one write, and when it was made.
type Write = (i64, Map<String, Value>);

struct Record {
    object: Object,
    id: String,
    /// Every value a string; system properties included.
    properties: Map<String, Value>,
    created_ms: i64,
    updated_ms: i64,
    associations: Vec<Association>,
    /// The properties after each write, and when: what the search index catches up with.
    writes: Vec<Write>,
}

impl Record {
    fn api(&self, properties: Map<String, Value>, updated_ms: i64) -> Value {
        json!({
            "id": self.id,
            "properties": properties,
            "createdAt": iso(self.created_ms),
            "updatedAt": iso(updated_ms),
            "archived": false,
        })
    }

    /// Every property and association, as the read helpers give it.
    fn full(&self) -> Value {
        let mut record = self.api(self.properties.clone(), self.updated_ms);
        let from = self.object.name();
        record["associations"] = self
            .associations
            .iter()
            .map(|association| association.json(from))
            .collect();
        record
    }

    /// What search sees of the record `lag_ms` after its writes: its last write indexed by now.
    fn indexed(&self, now_ms: i64, lag_ms: i64) -> Option<&Write> {
        self.writes.iter().rev().find(|(at, _)| at + lag_ms <= now_ms)
    }
}

/// A token and what it may do.
struct Token {
    scopes: Vec<String>,
    /// None: a private app's token, which never expires.
    oauth: Option<Issued>,
}

struct Issued {
    client_id: String,
    refresh_token: String,
    expires_ms: i64,
}

struct App {
    client_secret: String,
    redirect_uri: String,
    scopes: Vec<String>,
    app_id: u64,
}

struct Code {
    client_id: String,
    redirect_uri: String,
    scopes: Vec<String>,
    expires_ms: i64,
}

struct Grant {
    client_id: String,
    scopes: Vec<String>,
}

/// Who made an authenticated call.
struct Caller {
    /// The app whose burst the call spends.
    app: String,
    private: bool,
    scopes: Vec<String>,
}

/// What a request spent of its limits: the headers to answer with, and the limit that refused it
/// with the seconds until it frees.
struct Spent {
    headers: Vec<(&'static str, String)>,
    refusal: Option<(Policy, u64)>,
}

struct State {
    next_id: u64,
    next_app_id: u64,
    next_event_id: u64,
    tokens: BTreeMap<String, Token>,
    apps: BTreeMap<String, App>,
    codes: BTreeMap<String, Code>,
    refresh_tokens: BTreeMap<String, Grant>,
    access_token_lifetime: Duration,
    /// Custom contact properties, and whether each is unique.
    contact_properties: Vec<(String, bool)>,
    records: Vec<Record>,
    /// The ids of the contacts deleted through `gdpr-delete`, in order.
    gdpr_deleted: Vec<String>,
    /// Emails HubSpot refuses to track again after a GDPR delete.
    gdpr_blocked: Vec<String>,
    owners: Vec<Value>,
    pipelines: Vec<Value>,
    /// (client id, subscription type and property) → subscription id.
    subscriptions: BTreeMap<(String, String), u64>,
    search_lag: Duration,
    /// Faults, hangs, down and latency, as a test scripted them.
    script: Script,
    rate_limit: Option<Limit>,
    daily_limit: Option<u32>,
    search_limit: Option<u32>,
    /// Each app's requests in its rolling window.
    bursts: BTreeMap<String, VecDeque<i64>>,
    searches: VecDeque<i64>,
    /// (day, requests the private apps made on it)
    daily: (i64, u32),
    received: Vec<Received>,
    throttles: Vec<Throttle>,
}

/// Why HubSpot refused a request, in its error form.
struct Refused {
    status: u16,
    category: &'static str,
    message: String,
    extra: Vec<(&'static str, Value)>,
}

impl Refused {
    fn new(status: u16, category: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            category,
            message: message.into(),
            extra: Vec::new(),
        }
    }

    fn with(mut self, key: &'static str, value: Value) -> Self {
        self.extra.push((key, value));
        self
    }

    fn reply(self) -> Reply {
        let mut body = error_body(self.category, &self.message);
        for (key, value) in self.extra {
            body[key] = value;
        }
        json_reply(self.status, &body)
    }
}

fn invalid(message: impl Into<String>) -> Refused {
    Refused::new(400, "VALIDATION_ERROR", message)
}

fn not_found() -> Refused {
    Refused::new(404, "OBJECT_NOT_FOUND", "resource not found")
}

/// One property value HubSpot would not take.
struct Problem {
    name: String,
    error: &'static str,
    message: String,
}

impl Problem {
    fn new(name: &str, error: &'static str, message: impl Into<String>) -> Self {
        Self {
            name: name.to_owned(),
            error,
            message: message.into(),
        }
    }

    fn option<S: AsRef<str>>(name: &str, value: &str, allowed: &[S]) -> Self {
        let allowed: Vec<&str> = allowed.iter().map(AsRef::as_ref).collect();
        Self::new(
            name,
            "INVALID_OPTION",
            format!(
                "{value} was not one of the allowed options: [{}]",
                allowed.join(", ")
            ),
        )
    }
}

/// HubSpot's 400 for property values: each problem listed in the message, as HubSpot writes it.
fn not_valid(problems: &[Problem]) -> Refused {
    let text = |value: &str| Value::String(value.to_owned()).to_string();
    let listed: Vec<String> = problems
        .iter()
        .map(|problem| {
            format!(
                "{{\"isValid\":false,\"message\":{},\"error\":{},\"name\":{}}}",
                text(&problem.message),
                text(problem.error),
                text(&problem.name)
            )
        })
        .collect();
    let errors: Vec<Value> = problems
        .iter()
        .map(|problem| {
            json!({
                "message": problem.message,
                "code": problem.error,
                "context": { "propertyName": [problem.name] },
            })
        })
        .collect();
    invalid(format!("Property values were not valid: [{}]", listed.join(",")))
        .with("errors", Value::Array(errors))
}

/// The calls a path answers.
#[derive(Debug, Clone)]
enum Route {
    Create(Object),
    Get(Object, String),
    Patch(Object, String),
    Archive(Object, String),
    /// `POST …/contacts/gdpr-delete`: a contact deleted for good, by id or by `idProperty`.
    GdprDelete(Object),
    BatchUpsert(Object),
    Search(Object),
    /// `PUT …/{object}/{id}/associations/default/{to}/{to_id}`: the default association.
    AssociateDefault(Object, String, Object, String),
    UnknownObject(String),
    Pipelines,
    Pipeline(String),
    Owners,
    Owner(String),
    AccountDetails,
    Token,
    AccessTokenInfo(String),
    RefreshTokenInfo(String),
    RevokeRefreshToken(String),
}

impl Route {
    /// The scope the call needs.
    fn scope(&self) -> Option<&'static str> {
        match self {
            Route::Create(object)
            | Route::Patch(object, _)
            | Route::Archive(object, _)
            | Route::GdprDelete(object) => Some(object.scope(true)),
            Route::BatchUpsert(object) | Route::AssociateDefault(object, ..) => Some(object.scope(true)),
            Route::Get(object, _) | Route::Search(object) => Some(object.scope(false)),
            Route::Pipelines | Route::Pipeline(_) => Some(TICKETS),
            Route::Owners | Route::Owner(_) => Some(OWNERS_READ),
            _ => None,
        }
    }

    /// The OAuth endpoints, which take no bearer token.
    fn is_oauth(&self) -> bool {
        matches!(
            self,
            Route::Token
                | Route::AccessTokenInfo(_)
                | Route::RefreshTokenInfo(_)
                | Route::RevokeRefreshToken(_)
        )
    }

    /// The calls with a JSON body.
    fn takes_json(&self) -> bool {
        matches!(
            self,
            Route::Create(_)
                | Route::Patch(..)
                | Route::BatchUpsert(_)
                | Route::Search(_)
                | Route::GdprDelete(_)
        )
    }
}

/// The route of `method` among `candidates`; Err(true) when the path is known but not the method.
fn pick(method: &str, candidates: Vec<(&str, Route)>) -> Result<Route, bool> {
    let known = !candidates.is_empty();
    candidates
        .into_iter()
        .find(|(allowed, _)| *allowed == method)
        .map(|(_, route)| route)
        .ok_or(known)
}

fn object_route(method: &str, rest: &[&str]) -> Result<Route, bool> {
    let [name, tail @ ..] = rest else {
        return Err(false);
    };
    let Some(object) = Object::named(name) else {
        return Ok(Route::UnknownObject((*name).to_owned()));
    };
    let candidates = match tail {
        [] => vec![("POST", Route::Create(object))],
        ["batch", "upsert"] => vec![("POST", Route::BatchUpsert(object))],
        [id] => {
            let id = (*id).to_owned();
            let mut candidates = vec![
                ("GET", Route::Get(object, id.clone())),
                ("PATCH", Route::Patch(object, id.clone())),
                ("DELETE", Route::Archive(object, id.clone())),
            ];
            if id == "search" {
                candidates.push(("POST", Route::Search(object)));
            }
            if id == "gdpr-delete" && object == Object::Contacts {
                candidates.push(("POST", Route::GdprDelete(object)));
            }
            candidates
        }
        [id, "associations", "default", to, to_id] => match Object::named(to) {
            Some(to) => vec![(
                "PUT",
                Route::AssociateDefault(object, (*id).to_owned(), to, (*to_id).to_owned()),
            )],
            None => return Ok(Route::UnknownObject((*to).to_owned())),
        },
        _ => Vec::new(),
    };
    pick(method, candidates)
}

/// The route of `method` on `path`; Err(true) when the path is known but not the method.
fn route(method: &str, path: &str) -> Result<Route, bool> {
    let decoded: Vec<String> = path.trim_matches('/').split('/').map(percent_decode).collect();
    let segments: Vec<&str> = decoded.iter().map(String::as_str).collect();
    let owned = |segment: &str| segment.to_owned();
    let candidates = match segments.as_slice() {
        ["crm", "objects", VERSION, rest @ ..] | ["crm", "v3", "objects", rest @ ..] => {
            return object_route(method, rest);
        }
        ["crm", "pipelines", VERSION, object, rest @ ..] | ["crm", "v3", "pipelines", object, rest @ ..]
            if Object::named(object) == Some(Object::Tickets) =>
        {
            match rest {
                [] => vec![("GET", Route::Pipelines)],
                [id] => vec![("GET", Route::Pipeline(owned(id)))],
                _ => Vec::new(),
            }
        }
        ["crm", "owners", VERSION] | ["crm", "v3", "owners"] => vec![("GET", Route::Owners)],
        ["crm", "owners", VERSION, id] | ["crm", "v3", "owners", id] => {
            vec![("GET", Route::Owner(owned(id)))]
        }
        ["account-info", VERSION | "v3", "details"] => vec![("GET", Route::AccountDetails)],
        ["oauth", "v1" | VERSION, "token"] => vec![("POST", Route::Token)],
        ["oauth", "v1" | VERSION, "access-tokens", token] => {
            vec![("GET", Route::AccessTokenInfo(owned(token)))]
        }
        ["oauth", "v1" | VERSION, "refresh-tokens", token] => vec![
            ("GET", Route::RefreshTokenInfo(owned(token))),
            ("DELETE", Route::RevokeRefreshToken(owned(token))),
        ],
        _ => Vec::new(),
    };
    pick(method, candidates)
}

/// Calls with `method` to `path` (a fault's matcher).
pub fn call_to(method: &'static str, path: &'static str) -> impl Fn(&Outbound) -> bool {
    move |call| call.method == method && call.path() == path
}

/// Every call (a fault's matcher).
pub fn any_call(_call: &Outbound) -> bool {
    true
}

/// A 429 of the ten-secondly limit as HubSpot answers it, asking for `retry_after` seconds.
pub fn too_many_requests(retry_after: u64) -> Reply {
    rate_limited(Policy::TenSecondly, retry_after)
}

fn rate_limited(policy: Policy, retry_after: u64) -> Reply {
    let body = json!({
        "status": "error",
        "message": format!("You have reached your {} limit.", policy.name().to_lowercase()),
        "errorType": "RATE_LIMIT",
        "correlationId": correlation_id(),
        "policyName": policy.name(),
    });
    json_reply(429, &body).header("retry-after", &retry_after.to_string())
}

/// HubSpot's error document.
pub fn error(status: u16, category: &str, message: &str) -> Reply {
    json_reply(status, &error_body(category, message))
}

fn error_body(category: &str, message: &str) -> Value {
    json!({
        "status": "error",
        "message": message,
        "correlationId": correlation_id(),
        "category": category,
    })
}

/// 32 hex digits shaped like a UUID.
fn uuid_like() -> String {
    let hex = unique_hex(32);
    format!(
        "{}-{}-{}-{}-{}",
        &hex[..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..]
    )
}

fn correlation_id() -> String {
    uuid_like()
}

fn iso(ms: i64) -> String {
    Timestamp::from_millis(ms).to_rfc3339()
}

fn now_ms() -> i64 {
    edge::runtime::native::now_ms()
}

fn millis(duration: Duration) -> i64 {
    i64::try_from(duration.as_millis()).unwrap_or(i64::MAX / 2)
}

/// A time HubSpot takes: milliseconds since the epoch, an ISO 8601 date-time, or a date.
fn parse_time(text: &str) -> Option<i64> {
    if let Ok(ms) = text.parse::<i64>() {
        return Some(ms);
    }
    if text.len() == 10 {
        return Timestamp::parse_rfc3339(&format!("{text}T00:00:00Z")).map(Timestamp::millis);
    }
    Timestamp::parse_rfc3339(text).map(Timestamp::millis)
}

fn is_email(text: &str) -> bool {
    let Some((local, domain)) = text.split_once('@') else {
        return false;
    };
    !local.is_empty()
        && !text.contains(char::is_whitespace)
        && !domain.contains('@')
        && domain
            .rsplit_once('.')
            .is_some_and(|(name, tld)| !name.is_empty() && tld.len() >= 2)
}

/// A path segment, percent-decoded (kept as it is when it does not decode).
fn percent_decode(segment: &str) -> String {
    let bytes = segment.as_bytes();
    let mut decoded = Vec::with_capacity(bytes.len());
    let mut at = 0;
    while at < bytes.len() {
        let byte = segment
            .get(at + 1..at + 3)
            .filter(|_| bytes[at] == b'%')
            .and_then(|hex| u8::from_str_radix(hex, 16).ok());
        match byte {
            Some(byte) => {
                decoded.push(byte);
                at += 3;
            }
            None => {
                decoded.push(bytes[at]);
                at += 1;
            }
        }
    }
    String::from_utf8(decoded).unwrap_or_else(|_| segment.to_owned())
}

/// A property value as HubSpot keeps it: text.
fn as_text(value: &Value) -> Option<String> {
    match value {
        Value::String(text) => Some(text.clone()),
        Value::Number(number) => Some(number.to_string()),
        Value::Bool(flag) => Some(flag.to_string()),
        Value::Null => Some(String::new()),
        _ => None,
    }
}

fn day_of(at_ms: i64) -> i64 {
    (at_ms + ACCOUNT_UTC_OFFSET_MS).div_euclid(DAY_MS)
}

fn seconds_to_next_day(at_ms: i64) -> u64 {
    let next = (day_of(at_ms) + 1) * DAY_MS - ACCOUNT_UTC_OFFSET_MS;
    u64::try_from((next - at_ms + 999) / 1000).unwrap_or(1).max(1)
}

/// Drops the hits at or before `cutoff_ms`.
fn forget_until(hits: &mut VecDeque<i64>, cutoff_ms: i64) {
    while hits.front().is_some_and(|at| *at <= cutoff_ms) {
        hits.pop_front();
    }
}

/// Whole seconds until the oldest hit leaves its window.
fn seconds_until_free(hits: &VecDeque<i64>, window_ms: i64, now_ms: i64) -> u64 {
    let oldest = hits.front().copied().unwrap_or(now_ms);
    u64::try_from((oldest + window_ms - now_ms + 999) / 1000)
        .unwrap_or(1)
        .max(1)
}

fn with_headers(mut reply: Reply, headers: &[(&str, String)]) -> Reply {
    for (name, value) in headers {
        reply = reply.header(name, value);
    }
    reply
}

/// The names a query parameter lists, repeated or comma-separated.
fn listed(call: &Outbound, name: &str) -> Vec<String> {
    call.query()
        .pairs()
        .iter()
        .filter(|(key, _)| key == name)
        .flat_map(|(_, value)| value.split(','))
        .map(str::trim)
        .filter(|value| !value.is_empty())
        .map(str::to_owned)
        .collect()
}

/// A number a comparison takes: the value itself, or a date-time's milliseconds.
fn numeric(text: &str) -> Option<f64> {
    text.parse::<f64>()
        .ok()
        .or_else(|| Timestamp::parse_rfc3339(text).map(|at| at.millis() as f64))
}

/// Whether `value` holds `token`: a word of it, or the whole of it, without case; `*` at either
/// end of the token is a wildcard.
fn contains_token(value: &str, token: &str) -> bool {
    let token = token.to_lowercase();
    let value = value.to_lowercase();
    let (prefix, stem) = match token.strip_prefix('*') {
        Some(stem) => (true, stem),
        None => (false, token.as_str()),
    };
    let (suffix, stem) = match stem.strip_suffix('*') {
        Some(stem) => (true, stem),
        None => (false, stem),
    };
    let fits = |word: &str| match (prefix, suffix) {
        (true, true) => word.contains(stem),
        (true, false) => word.ends_with(stem),
        (false, true) => word.starts_with(stem),
        (false, false) => word == stem,
    };
    fits(&value)
        || value
            .split(|c: char| c.is_whitespace() || "@.,;:-_/".contains(c))
            .any(fits)
}

/// Whether a record's `properties` pass a (checked) search filter.
fn passes(filter: &Value, properties: &Map<String, Value>) -> bool {
    let name = filter["propertyName"].as_str().unwrap_or_default();
    let operator = filter["operator"].as_str().unwrap_or_default();
    let stored = properties.get(name).and_then(Value::as_str);
    let wanted = as_text(&filter["value"]).unwrap_or_default();
    let same = |stored: &str, wanted: &str| {
        if name == "email" {
            stored.eq_ignore_ascii_case(wanted)
        } else {
            stored == wanted
        }
    };
    let compare = |stored: &str, wanted: &str| match (numeric(stored), numeric(wanted)) {
        (Some(a), Some(b)) => a.partial_cmp(&b),
        _ => Some(stored.cmp(wanted)),
    };
    let values: Vec<String> = filter["values"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(as_text)
        .collect();
    let within = |stored: &str| values.iter().any(|value| stored.eq_ignore_ascii_case(value));
    use std::cmp::Ordering::{Equal, Greater, Less};
    match (operator, stored) {
        ("HAS_PROPERTY", stored) => stored.is_some(),
        ("NOT_HAS_PROPERTY", stored) => stored.is_none(),
        ("NEQ", None) | ("NOT_IN", None) | ("NOT_CONTAINS_TOKEN", None) => true,
        (_, None) => false,
        ("EQ", Some(stored)) => same(stored, &wanted),
        ("NEQ", Some(stored)) => !same(stored, &wanted),
        ("IN", Some(stored)) => within(stored),
        ("NOT_IN", Some(stored)) => !within(stored),
        ("CONTAINS_TOKEN", Some(stored)) => contains_token(stored, &wanted),
        ("NOT_CONTAINS_TOKEN", Some(stored)) => !contains_token(stored, &wanted),
        ("LT", Some(stored)) => compare(stored, &wanted) == Some(Less),
        ("LTE", Some(stored)) => matches!(compare(stored, &wanted), Some(Less | Equal)),
        ("GT", Some(stored)) => compare(stored, &wanted) == Some(Greater),
        ("GTE", Some(stored)) => matches!(compare(stored, &wanted), Some(Greater | Equal)),
        ("BETWEEN", Some(stored)) => {
            let high = as_text(&filter["highValue"]).unwrap_or_default();
            matches!(compare(stored, &wanted), Some(Greater | Equal))
                && matches!(compare(stored, &high), Some(Less | Equal))
        }
        _ => false,
    }
}

/// A record's properties as a read answers them: the object's defaults and those asked for.
fn chosen(object: Object, properties: &Map<String, Value>, asked: &[String]) -> Map<String, Value> {
    object
        .defaults()
        .iter()
        .copied()
        .chain(asked.iter().map(String::as_str))
        .map(|name| {
            (
                name.to_owned(),
                properties.get(name).cloned().unwrap_or(Value::Null),
            )
        })
        .collect()
}

fn default_pipeline() -> Value {
    let stage = |id: &str, label: &str, order: u32, state: &str| {
        json!({
            "id": id,
            "label": label,
            "displayOrder": order,
            "archived": false,
            "metadata": { "ticketState": state },
        })
    };
    json!({
        "id": "0",
        "label": "Support Pipeline",
        "displayOrder": 0,
        "archived": false,
        "stages": [
            stage("1", "New", 0, "OPEN"),
            stage("2", "Waiting on contact", 1, "OPEN"),
            stage("3", "Waiting on us", 2, "OPEN"),
            stage("4", "Closed", 3, "CLOSED"),
        ],
    })
}

impl State {
    fn new() -> Self {
        Self {
            next_id: FIRST_ID,
            next_app_id: 3_210_000,
            next_event_id: 3_816_279_340,
            tokens: BTreeMap::new(),
            apps: BTreeMap::new(),
            codes: BTreeMap::new(),
            refresh_tokens: BTreeMap::new(),
            access_token_lifetime: Duration::from_secs(ACCESS_TOKEN_SECONDS),
            contact_properties: Vec::new(),
            records: Vec::new(),
            gdpr_deleted: Vec::new(),
            gdpr_blocked: Vec::new(),
            owners: Vec::new(),
            pipelines: vec![default_pipeline()],
            subscriptions: BTreeMap::new(),
            search_lag: Duration::ZERO,
            script: Script::default(),
            rate_limit: Some(Limit::per_ten_seconds(BURST_PER_TEN_SECONDS)),
            daily_limit: Some(DAILY_LIMIT),
            search_limit: Some(SEARCHES_PER_SECOND),
            bursts: BTreeMap::new(),
            searches: VecDeque::new(),
            daily: (0, 0),
            received: Vec::new(),
            throttles: Vec::new(),
        }
    }

    fn new_id(&mut self) -> String {
        self.next_id += 1;
        self.next_id.to_string()
    }

    // Properties.

    /// Whether `object` has the property (to set it, or to read and search it).
    fn knows(&self, object: Object, name: &str) -> bool {
        object.properties().contains(&name)
            || [object.created(), object.modified(), "hs_object_id"].contains(&name)
            || (object == Object::Contacts && self.contact_properties.iter().any(|(known, _)| known == name))
    }

    fn unique_properties(&self, object: Object) -> Vec<String> {
        if object != Object::Contacts {
            return Vec::new();
        }
        std::iter::once("email".to_owned())
            .chain(
                self.contact_properties
                    .iter()
                    .filter(|(_, unique)| *unique)
                    .map(|(name, _)| name.clone()),
            )
            .collect()
    }

    /// The record of `object` whose `name` is `value` (but `except`).
    fn holder(&self, object: Object, name: &str, value: &str, except: Option<&str>) -> Option<usize> {
        self.records.iter().position(|record| {
            record.object == object
                && Some(record.id.as_str()) != except
                && record
                    .properties
                    .get(name)
                    .and_then(Value::as_str)
                    .is_some_and(|held| {
                        if name == "email" {
                            held.eq_ignore_ascii_case(value)
                        } else {
                            held == value
                        }
                    })
        })
    }

    /// A unique property's value held by another record is a conflict.
    fn check_unique(
        &self,
        object: Object,
        values: &Map<String, Value>,
        except: Option<&str>,
    ) -> Result<(), Refused> {
        for name in self.unique_properties(object) {
            let Some(value) = values
                .get(&name)
                .and_then(Value::as_str)
                .filter(|v| !v.is_empty())
            else {
                continue;
            };
            if let Some(at) = self.holder(object, &name, value, except) {
                return Err(Refused::new(
                    409,
                    "CONFLICT",
                    format!("Contact already exists. Existing ID: {}", self.records[at].id),
                ));
            }
        }
        Ok(())
    }

    /// The values of a create (`current` None) or an update, checked and normalised: each a
    /// string, `""` clearing the property.
    fn check_properties(
        &self,
        object: Object,
        given: &Value,
        current: Option<&Map<String, Value>>,
    ) -> Result<Map<String, Value>, Refused> {
        let fields = match given {
            Value::Object(fields) => fields.clone(),
            Value::Null => Map::new(),
            _ => {
                return Err(invalid(
                    "properties must be an object of property names to values",
                ));
            }
        };
        let mut problems = Vec::new();
        let mut values = Map::new();
        for (name, value) in &fields {
            if READ_ONLY.contains(&name.as_str()) {
                problems.push(Problem::new(
                    name,
                    "READ_ONLY_VALUE",
                    format!("\"{name}\" is a read only property; its value cannot be set."),
                ));
                continue;
            }
            if !self.knows(object, name) {
                problems.push(Problem::new(
                    name,
                    "PROPERTY_DOESNT_EXIST",
                    format!("Property \"{name}\" does not exist"),
                ));
                continue;
            }
            let Some(text) = as_text(value) else {
                problems.push(Problem::new(
                    name,
                    "INVALID_PROPERTY_VALUE",
                    format!("{value} is not a valid value for {name}: a property's value is a string"),
                ));
                continue;
            };
            if text.is_empty() {
                values.insert(name.clone(), json!(""));
                continue;
            }
            match self.check_value(name, &text) {
                Ok(normal) => {
                    values.insert(name.clone(), json!(normal));
                }
                Err(problem) => problems.push(problem),
            }
        }
        if object == Object::Tickets
            && current.is_none()
            && !values.contains_key("hs_pipeline")
            && let Some(first) = self.pipelines.first()
        {
            values.insert("hs_pipeline".into(), first["id"].clone());
        }
        for required in object.required() {
            let missing = match values.get(*required).and_then(Value::as_str) {
                None => current.is_none(),
                Some(value) => value.is_empty(),
            };
            let named = problems.iter().any(|problem| problem.name == *required);
            if missing && !named {
                problems.push(Problem::new(
                    required,
                    "REQUIRED_PROPERTY",
                    format!("Property \"{required}\" is required"),
                ));
            }
        }
        if object == Object::Tickets && problems.is_empty() {
            self.check_stage(&values, current, &mut problems);
        }
        if problems.is_empty() {
            Ok(values)
        } else {
            Err(not_valid(&problems))
        }
    }

    fn check_value(&self, name: &str, text: &str) -> Result<String, Problem> {
        let option = |allowed: &[&str]| {
            if allowed.contains(&text) {
                Ok(text.to_owned())
            } else {
                Err(Problem::option(name, text, allowed))
            }
        };
        match name {
            "email" if is_email(text) => Ok(text.to_lowercase()),
            "email" => Err(Problem::new(
                name,
                "INVALID_EMAIL",
                format!("Email address {text} is invalid"),
            )),
            "lifecyclestage" => option(&LIFECYCLE_STAGES),
            "hs_timestamp" => parse_time(text).map(iso).ok_or_else(|| {
                Problem::new(
                    name,
                    "INVALID_DATE",
                    format!("{text} is not a valid date-time: milliseconds since the epoch or ISO 8601"),
                )
            }),
            "hs_communication_channel_type" => option(&CHANNEL_TYPES),
            "hs_communication_logged_from" => option(&["CRM"]),
            "hs_email_direction" => option(&EMAIL_DIRECTIONS),
            "hs_email_status" => option(&EMAIL_STATUSES),
            "hs_ticket_priority" => option(&TICKET_PRIORITIES),
            "hs_ticket_category" => match text
                .split(';')
                .find(|category| !TICKET_CATEGORIES.contains(category))
            {
                Some(category) => Err(Problem::option(name, category, &TICKET_CATEGORIES)),
                None => Ok(text.to_owned()),
            },
            "hs_note_body" => {
                let length = text.chars().count();
                if length > NOTE_BODY_MAX_CHARS {
                    Err(Problem::new(
                        name,
                        "MAX_CHARACTERS",
                        format!(
                            "hs_note_body is {length} characters; at most {NOTE_BODY_MAX_CHARS} are allowed"
                        ),
                    ))
                } else {
                    Ok(text.to_owned())
                }
            }
            "hubspot_owner_id" => {
                let owners: Vec<&str> = self
                    .owners
                    .iter()
                    .filter_map(|owner| owner["id"].as_str())
                    .collect();
                if owners.contains(&text) {
                    Ok(text.to_owned())
                } else {
                    Err(Problem::option(name, text, &owners))
                }
            }
            _ => Ok(text.to_owned()),
        }
    }

    /// A ticket's stage must be one of its pipeline's.
    fn check_stage(
        &self,
        values: &Map<String, Value>,
        current: Option<&Map<String, Value>>,
        problems: &mut Vec<Problem>,
    ) {
        let given = |name: &str| values.get(name).and_then(Value::as_str);
        let stored = |name: &str| {
            current
                .and_then(|current| current.get(name))
                .and_then(Value::as_str)
        };
        if given("hs_pipeline").is_none() && given("hs_pipeline_stage").is_none() {
            return;
        }
        let (Some(pipeline), Some(stage)) = (
            given("hs_pipeline").or_else(|| stored("hs_pipeline")),
            given("hs_pipeline_stage").or_else(|| stored("hs_pipeline_stage")),
        ) else {
            return;
        };
        let Some(found) = self.pipeline(pipeline) else {
            let known: Vec<&str> = self
                .pipelines
                .iter()
                .filter_map(|pipeline| pipeline["id"].as_str())
                .collect();
            problems.push(Problem::option("hs_pipeline", pipeline, &known));
            return;
        };
        let stages: Vec<&str> = found["stages"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|stage| stage["id"].as_str())
            .collect();
        if !stages.contains(&stage) {
            problems.push(Problem::option("hs_pipeline_stage", stage, &stages));
        }
    }

    fn pipeline(&self, id: &str) -> Option<&Value> {
        self.pipelines.iter().find(|pipeline| pipeline["id"] == id)
    }

    /// The associations of a create, each to an existing record by a type that fits.
    fn check_associations(&self, object: Object, given: Option<&Value>) -> Result<Vec<Association>, Refused> {
        let items = match given {
            None | Some(Value::Null) => return Ok(Vec::new()),
            Some(Value::Array(items)) => items,
            Some(_) => return Err(invalid("associations must be an array")),
        };
        let from = object.singular();
        let mut associations = Vec::new();
        for (index, item) in items.iter().enumerate() {
            let to_id = match &item["to"]["id"] {
                Value::String(id) => id.clone(),
                Value::Number(id) => id.to_string(),
                _ => return Err(invalid(format!("associations[{index}].to.id is required"))),
            };
            let Some(types) = item["types"].as_array().filter(|types| !types.is_empty()) else {
                return Err(invalid(format!("associations[{index}].types is required")));
            };
            for kind in types {
                let category = kind["associationCategory"].as_str().unwrap_or_default();
                let Some(type_id) = kind["associationTypeId"].as_u64() else {
                    return Err(invalid(format!(
                        "associations[{index}].types: associationTypeId is required (a number)"
                    )));
                };
                if category != "HUBSPOT_DEFINED" {
                    return Err(invalid(format!(
                        "association type {category} {type_id} from {from} to record {to_id} does not exist in this account"
                    )));
                }
                let Some(&(_, type_from, type_to)) = ASSOCIATION_TYPES.iter().find(|(id, ..)| *id == type_id)
                else {
                    return Err(invalid(format!(
                        "association type HUBSPOT_DEFINED {type_id} from {from} to record {to_id} is not a known association type"
                    )));
                };
                let label = format!("{}_to_{}", singular_of(type_from), singular_of(type_to));
                if type_from != object.name() {
                    return Err(invalid(format!(
                        "association {label} (HUBSPOT_DEFINED {type_id}) cannot be made from a {from}: it goes from {} to {}",
                        singular_of(type_from),
                        singular_of(type_to)
                    )));
                }
                let exists = Object::named(type_to).is_some_and(|to| {
                    self.records
                        .iter()
                        .any(|record| record.object == to && record.id == to_id)
                });
                if !exists {
                    return Err(invalid(format!(
                        "association {label} (HUBSPOT_DEFINED {type_id}) to {} {to_id}: no {} has that id",
                        singular_of(type_to),
                        singular_of(type_to)
                    )));
                }
                associations.push(Association {
                    to_object: type_to.to_owned(),
                    to_id: to_id.clone(),
                    category: category.to_owned(),
                    type_id,
                });
            }
        }
        Ok(associations)
    }

    /// The default (unlabeled) association of record `id` to `to_id`, both ways as HubSpot keeps
    /// them; made once however often it is asked for.
    fn associate_default(
        &mut self,
        from: Object,
        id: &str,
        to: Object,
        to_id: &str,
    ) -> Result<Value, Refused> {
        let type_of = |a: Object, b: Object| {
            ASSOCIATION_TYPES
                .iter()
                .find(|(_, x, y)| *x == a.name() && *y == b.name())
                .map(|(type_id, ..)| *type_id)
        };
        let (Some(forward), Some(backward)) = (type_of(from, to), type_of(to, from)) else {
            return Err(invalid(format!(
                "there is no default association from {} to {}",
                from.singular(),
                to.singular()
            )));
        };
        let position = |object: Object, wanted: &str| {
            self.records
                .iter()
                .position(|record| record.object == object && record.id == wanted)
        };
        let (Some(at), Some(to_at)) = (position(from, id), position(to, to_id)) else {
            return Err(not_found());
        };
        for (at, object, other, type_id) in [(at, to, to_id, forward), (to_at, from, id, backward)] {
            let association = Association {
                to_object: object.name().to_owned(),
                to_id: other.to_owned(),
                category: "HUBSPOT_DEFINED".to_owned(),
                type_id,
            };
            if !self.records[at].associations.contains(&association) {
                self.records[at].associations.push(association);
            }
        }
        Ok(json!({
            "status": "COMPLETE",
            "results": [{
                "from": { "id": id },
                "to": { "id": to_id },
                "associationSpec": { "associationCategory": "HUBSPOT_DEFINED", "associationTypeId": forward },
            }],
        }))
    }

    // Records.

    fn insert(
        &mut self,
        object: Object,
        values: Map<String, Value>,
        associations: Vec<Association>,
        at_ms: i64,
    ) -> usize {
        let id = self.new_id();
        let mut properties: Map<String, Value> = values
            .into_iter()
            .filter(|(_, value)| value.as_str() != Some(""))
            .collect();
        properties.insert("hs_object_id".into(), json!(id));
        properties.insert(object.created().into(), json!(iso(at_ms)));
        properties.insert(object.modified().into(), json!(iso(at_ms)));
        self.records.push(Record {
            object,
            id,
            properties: properties.clone(),
            created_ms: at_ms,
            updated_ms: at_ms,
            associations,
            writes: vec![(at_ms, properties)],
        });
        self.records.len() - 1
    }

    fn modify(&mut self, at: usize, values: Map<String, Value>, at_ms: i64) {
        let record = &mut self.records[at];
        for (name, value) in values {
            if value.as_str() == Some("") {
                record.properties.remove(&name);
            } else {
                record.properties.insert(name, value);
            }
        }
        record
            .properties
            .insert(record.object.modified().into(), json!(iso(at_ms)));
        record.updated_ms = at_ms;
        record.writes.push((at_ms, record.properties.clone()));
    }

    /// The record a path names: by id, or by a unique property's value (`?idProperty=`).
    fn find(&self, object: Object, id: &str, id_property: Option<&str>) -> Result<usize, Refused> {
        match id_property.filter(|name| *name != "hs_object_id") {
            None => self
                .records
                .iter()
                .position(|record| record.object == object && record.id == id)
                .ok_or_else(not_found),
            Some(name) if self.unique_properties(object).iter().any(|unique| unique == name) => {
                self.holder(object, name, id, None).ok_or_else(not_found)
            }
            Some(name) => Err(invalid(format!(
                "idProperty {name} is not a unique property of {}",
                object.name()
            ))),
        }
    }

    fn create(&mut self, object: Object, body: &Value, at_ms: i64) -> Result<Value, Refused> {
        if !body.is_object() {
            return Err(invalid("The request body must be a JSON object"));
        }
        let values = self.check_properties(object, &body["properties"], None)?;
        self.check_unique(object, &values, None)?;
        let associations = self.check_associations(object, body.get("associations"))?;
        let at = self.insert(object, values, associations, at_ms);
        let record = &self.records[at];
        Ok(record.api(record.properties.clone(), record.updated_ms))
    }

    fn read(&self, object: Object, id: &str, call: &Outbound) -> Result<Value, Refused> {
        let at = self.find(object, id, call.query().get("idProperty"))?;
        let record = &self.records[at];
        let asked: Vec<String> = listed(call, "properties")
            .into_iter()
            .filter(|name| self.knows(object, name))
            .collect();
        let mut answer = record.api(chosen(object, &record.properties, &asked), record.updated_ms);
        let mut associated = Map::new();
        for to in listed(call, "associations") {
            let to_name: &str = match Object::named(&to) {
                Some(object) => object.name(),
                None => &to,
            };
            let results: Vec<Value> = record
                .associations
                .iter()
                .filter(|association| association.to_object == to_name)
                .map(|association| {
                    json!({ "id": association.to_id, "type": association.label(object.name()) })
                })
                .collect();
            if !results.is_empty() {
                associated.insert(to_name.to_owned(), json!({ "results": results }));
            }
        }
        if !associated.is_empty() {
            answer["associations"] = Value::Object(associated);
        }
        Ok(answer)
    }

    fn update(&mut self, object: Object, id: &str, call: &Outbound, body: &Value) -> Result<Value, Refused> {
        let at = self.find(object, id, call.query().get("idProperty"))?;
        if !body.is_object() {
            return Err(invalid("The request body must be a JSON object"));
        }
        let current = self.records[at].properties.clone();
        let values = self.check_properties(object, &body["properties"], Some(&current))?;
        let record_id = self.records[at].id.clone();
        self.check_unique(object, &values, Some(&record_id))?;
        self.modify(at, values, call.at_ms);
        let record = &self.records[at];
        Ok(record.api(record.properties.clone(), record.updated_ms))
    }

    fn archive(&mut self, object: Object, id: &str, call: &Outbound) -> Result<(), Refused> {
        let at = self.find(object, id, call.query().get("idProperty"))?;
        self.records.remove(at);
        Ok(())
    }

    /// Deletes the contact `objectId` names (by id, or by the unique `idProperty`) and every
    /// engagement associated with it alone, and blocks its email: an email no contact has is
    /// blocked all the same, as HubSpot documents.
    fn gdpr_delete(&mut self, object: Object, body: &Value) -> Result<(), Refused> {
        let Some(id) = body["objectId"].as_str() else {
            return Err(invalid("objectId is required"));
        };
        let id_property = body["idProperty"].as_str();
        let at = match self.find(object, id, id_property) {
            Ok(at) => at,
            Err(_) if id_property == Some("email") => {
                self.gdpr_blocked.push(id.to_lowercase());
                return Ok(());
            }
            Err(refused) => return Err(refused),
        };
        let contact = self.records.remove(at);
        if let Some(email) = contact.properties.get("email").and_then(Value::as_str) {
            self.gdpr_blocked.push(email.to_owned());
        }
        self.records.retain(|record| {
            let of_contact = |association: &Association| {
                association.to_object == "contacts" && association.to_id == contact.id
            };
            record.associations.is_empty() || !record.associations.iter().all(of_contact)
        });
        self.gdpr_deleted.push(contact.id);
        Ok(())
    }

    fn batch_upsert(&mut self, object: Object, body: &Value, at_ms: i64) -> Result<Value, Refused> {
        let Some(inputs) = body["inputs"].as_array() else {
            return Err(invalid(
                "inputs is required: an array of {id, idProperty, properties}",
            ));
        };
        if inputs.len() > BATCH_MAX_INPUTS {
            return Err(invalid(format!(
                "Batch input size {} exceeds the limit of {BATCH_MAX_INPUTS}",
                inputs.len()
            )));
        }
        let unique = self.unique_properties(object);
        // (record to update or None, its values)
        let mut plans: Vec<(Option<usize>, Map<String, Value>)> = Vec::new();
        let mut seen: Vec<String> = Vec::new();
        for (index, input) in inputs.iter().enumerate() {
            let Some(id_property) = input["idProperty"].as_str() else {
                return Err(invalid(format!("inputs[{index}].idProperty is required")));
            };
            if !unique.iter().any(|name| name == id_property) {
                return Err(invalid(format!(
                    "inputs[{index}].idProperty {id_property} is not a unique property of {}",
                    object.name()
                )));
            }
            let Some(value) = as_text(&input["id"]).filter(|value| !value.is_empty()) else {
                return Err(invalid(format!("inputs[{index}].id is required")));
            };
            let value = match self.check_value(id_property, &value) {
                Ok(value) => value,
                Err(problem) => return Err(not_valid(&[problem])),
            };
            let key = format!("{id_property}\n{}", value.to_lowercase());
            if seen.contains(&key) {
                return Err(invalid(format!("Duplicate IDs found in batch input: [{value}]")));
            }
            seen.push(key);
            let existing = self.holder(object, id_property, &value, None);
            let current = existing.map(|at| self.records[at].properties.clone());
            let mut values = self.check_properties(object, &input["properties"], current.as_ref())?;
            if existing.is_none() {
                values.insert(id_property.to_owned(), json!(value));
            }
            let except = existing.map(|at| self.records[at].id.clone());
            self.check_unique(object, &values, except.as_deref())?;
            plans.push((existing, values));
        }
        let mut results = Vec::new();
        for (existing, values) in plans {
            let (at, new) = match existing {
                Some(at) => {
                    self.modify(at, values, at_ms);
                    (at, false)
                }
                None => (self.insert(object, values, Vec::new(), at_ms), true),
            };
            let record = &self.records[at];
            let mut result = record.api(record.properties.clone(), record.updated_ms);
            result["new"] = json!(new);
            results.push(result);
        }
        Ok(json!({
            "status": "COMPLETE",
            "results": results,
            "startedAt": iso(at_ms),
            "completedAt": iso(at_ms),
        }))
    }

    fn search(&self, object: Object, body: &Value, now_ms: i64) -> Result<Value, Refused> {
        if !body.is_object() {
            return Err(invalid("The request body must be a JSON object"));
        }
        let groups: Vec<Value> = match &body["filterGroups"] {
            Value::Null => Vec::new(),
            Value::Array(groups) => groups.clone(),
            _ => return Err(invalid("filterGroups must be an array")),
        };
        if groups.len() > SEARCH_MAX_FILTER_GROUPS {
            return Err(invalid(format!(
                "Too many filter groups ({}): at most {SEARCH_MAX_FILTER_GROUPS} are allowed",
                groups.len()
            )));
        }
        let mut total_filters = 0;
        for (index, group) in groups.iter().enumerate() {
            let Some(filters) = group["filters"].as_array() else {
                return Err(invalid(format!("filterGroups[{index}].filters must be an array")));
            };
            if filters.len() > SEARCH_MAX_FILTERS_PER_GROUP {
                return Err(invalid(format!(
                    "Too many filters in filterGroups[{index}] ({}): at most {SEARCH_MAX_FILTERS_PER_GROUP} are allowed",
                    filters.len()
                )));
            }
            total_filters += filters.len();
            for filter in filters {
                self.check_filter(object, filter)?;
            }
        }
        if total_filters > SEARCH_MAX_FILTERS {
            return Err(invalid(format!(
                "Too many filters ({total_filters}): at most {SEARCH_MAX_FILTERS} are allowed in all"
            )));
        }
        let limit = match &body["limit"] {
            Value::Null => SEARCH_DEFAULT_LIMIT,
            limit => match limit.as_u64().and_then(|limit| usize::try_from(limit).ok()) {
                Some(limit) if limit <= SEARCH_MAX_LIMIT => limit,
                _ => {
                    return Err(invalid(format!(
                        "limit must be a number from 0 to {SEARCH_MAX_LIMIT} (got {limit})"
                    )));
                }
            },
        };
        let after = match as_text(&body["after"]) {
            None => return Err(invalid("after must be a string")),
            Some(after) if after.is_empty() => 0,
            Some(after) => after
                .parse::<usize>()
                .map_err(|_| invalid(format!("after {after} is not a valid paging cursor")))?,
        };
        let asked: Vec<String> = body["properties"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .filter(|name| self.knows(object, name))
            .map(str::to_owned)
            .collect();
        let query = body["query"].as_str().map(str::to_lowercase);
        let lag_ms = millis(self.search_lag);
        let mut hits: Vec<(&Record, &Write)> = self
            .records
            .iter()
            .filter(|record| record.object == object)
            .filter_map(|record| record.indexed(now_ms, lag_ms).map(|write| (record, write)))
            .filter(|(_, (_, properties))| {
                groups.is_empty()
                    || groups.iter().any(|group| {
                        group["filters"]
                            .as_array()
                            .into_iter()
                            .flatten()
                            .all(|filter| passes(filter, properties))
                    })
            })
            .filter(|(_, (_, properties))| {
                query.as_deref().is_none_or(|query| {
                    object.searchable().iter().any(|name| {
                        properties
                            .get(*name)
                            .and_then(Value::as_str)
                            .is_some_and(|value| value.to_lowercase().contains(query))
                    })
                })
            })
            .collect();
        let sort = body["sorts"].as_array().and_then(|sorts| sorts.first()).cloned();
        hits.sort_by(|(a, (_, a_properties)), (b, (_, b_properties))| {
            let by_id = a.id.len().cmp(&b.id.len()).then_with(|| a.id.cmp(&b.id));
            let Some(sort) = &sort else {
                return by_id;
            };
            let name = sort["propertyName"].as_str().unwrap_or_default();
            let value = |properties: &Map<String, Value>| {
                properties
                    .get(name)
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_owned()
            };
            let (a_value, b_value) = (value(a_properties), value(b_properties));
            let order = match (numeric(&a_value), numeric(&b_value)) {
                (Some(x), Some(y)) => x.partial_cmp(&y).unwrap_or(std::cmp::Ordering::Equal),
                _ => a_value.cmp(&b_value),
            };
            let order = if sort["direction"] == "DESCENDING" {
                order.reverse()
            } else {
                order
            };
            order.then(by_id)
        });
        let total = hits.len();
        let results: Vec<Value> = hits
            .iter()
            .skip(after)
            .take(limit)
            .map(|(record, (written_ms, properties))| {
                record.api(chosen(object, properties, &asked), *written_ms)
            })
            .collect();
        let mut answer = json!({ "total": total, "results": results });
        if after + limit < total {
            answer["paging"] = json!({ "next": { "after": (after + limit).to_string() } });
        }
        Ok(answer)
    }

    fn check_filter(&self, object: Object, filter: &Value) -> Result<(), Refused> {
        let Some(name) = filter["propertyName"].as_str() else {
            return Err(invalid("Each filter needs a propertyName"));
        };
        if !self.knows(object, name) {
            return Err(invalid(format!(
                "There was a problem with the request: {} property \"{name}\" does not exist",
                object.singular()
            )));
        }
        let operator = filter["operator"].as_str().unwrap_or_default();
        if !SEARCH_OPERATORS.contains(&operator) {
            return Err(invalid(format!(
                "Unknown operator \"{operator}\" in the filter on {name}: one of {}",
                SEARCH_OPERATORS.join(", ")
            )));
        }
        let needs_value = !matches!(operator, "HAS_PROPERTY" | "NOT_HAS_PROPERTY" | "IN" | "NOT_IN");
        if needs_value && as_text(&filter["value"]).is_none_or(|value| value.is_empty()) {
            return Err(invalid(format!("The {operator} filter on {name} needs a value")));
        }
        if matches!(operator, "IN" | "NOT_IN") && !filter["values"].is_array() {
            return Err(invalid(format!(
                "The {operator} filter on {name} needs values (an array)"
            )));
        }
        if operator == "BETWEEN" && as_text(&filter["highValue"]).is_none_or(|value| value.is_empty()) {
            return Err(invalid(format!("The BETWEEN filter on {name} needs a highValue")));
        }
        Ok(())
    }

    fn owners_page(&self, call: &Outbound) -> Result<Value, Refused> {
        let query = call.query();
        let limit = match query.get("limit") {
            None => 100,
            Some(limit) => limit
                .parse::<usize>()
                .ok()
                .filter(|limit| (1..=500).contains(limit))
                .ok_or_else(|| invalid(format!("limit must be a number from 1 to 500 (got {limit})")))?,
        };
        let after = match query.get("after") {
            None => 0,
            Some(after) => after
                .parse::<usize>()
                .map_err(|_| invalid(format!("after {after} is not a valid paging cursor")))?,
        };
        let email = query.get("email");
        let matching: Vec<&Value> = self
            .owners
            .iter()
            .filter(|owner| {
                email.is_none_or(|email| {
                    owner["email"]
                        .as_str()
                        .is_some_and(|held| held.eq_ignore_ascii_case(email))
                })
            })
            .collect();
        let results: Vec<Value> = matching
            .iter()
            .skip(after)
            .take(limit)
            .copied()
            .cloned()
            .collect();
        let mut answer = json!({ "results": results });
        if after + limit < matching.len() {
            answer["paging"] = json!({ "next": { "after": (after + limit).to_string() } });
        }
        Ok(answer)
    }

    fn handle(&mut self, route: &Route, call: &Outbound, body: &Value) -> Result<(u16, Value), Refused> {
        match route {
            Route::Create(object) => Ok((201, self.create(*object, body, call.at_ms)?)),
            Route::Get(object, id) => Ok((200, self.read(*object, id, call)?)),
            Route::Patch(object, id) => Ok((200, self.update(*object, id, call, body)?)),
            Route::Archive(object, id) => {
                self.archive(*object, id, call)?;
                Ok((204, Value::Null))
            }
            Route::GdprDelete(object) => {
                self.gdpr_delete(*object, body)?;
                Ok((204, Value::Null))
            }
            Route::BatchUpsert(object) => Ok((200, self.batch_upsert(*object, body, call.at_ms)?)),
            Route::Search(object) => Ok((200, self.search(*object, body, call.at_ms)?)),
            Route::AssociateDefault(from, id, to, to_id) => {
                Ok((200, self.associate_default(*from, id, *to, to_id)?))
            }
            Route::UnknownObject(name) => Err(invalid(format!("Unable to infer object type from: {name}"))),
            Route::Pipelines => Ok((200, json!({ "results": self.pipelines }))),
            Route::Pipeline(id) => Ok((200, self.pipeline(id).cloned().ok_or_else(not_found)?)),
            Route::Owners => Ok((200, self.owners_page(call)?)),
            Route::Owner(id) => {
                let owner = self.owners.iter().find(|owner| owner["id"] == id.as_str());
                Ok((200, owner.cloned().ok_or_else(not_found)?))
            }
            Route::AccountDetails => Ok((
                200,
                json!({
                    "portalId": PORTAL_ID,
                    "accountType": "STANDARD",
                    "timeZone": "US/Eastern",
                    "companyCurrency": "USD",
                    "additionalCurrencies": [],
                    "utcOffset": "-05:00",
                    "utcOffsetMilliseconds": ACCOUNT_UTC_OFFSET_MS,
                    "uiDomain": "app.hubspot.com",
                    "dataHostingLocation": "na1",
                }),
            )),
            Route::Token
            | Route::AccessTokenInfo(_)
            | Route::RefreshTokenInfo(_)
            | Route::RevokeRefreshToken(_) => Err(not_found()),
        }
    }

    // Authentication and limits.

    fn authenticate(&self, call: &Outbound) -> Result<Caller, Refused> {
        let unknown = || Refused::new(401, "INVALID_AUTHENTICATION", UNAUTHENTICATED);
        let bearer = call
            .header("authorization")
            .and_then(|value| value.split_once(' '))
            .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
            .map(|(_, token)| token.trim())
            .filter(|token| !token.is_empty())
            .ok_or_else(unknown)?;
        let token = self.tokens.get(bearer).ok_or_else(unknown)?;
        match &token.oauth {
            None => Ok(Caller {
                app: format!("private:{bearer}"),
                private: true,
                scopes: token.scopes.clone(),
            }),
            Some(issued) if call.at_ms >= issued.expires_ms => {
                let minutes = (call.at_ms - issued.expires_ms) / 60_000;
                Err(Refused::new(
                    401,
                    "EXPIRED_AUTHENTICATION",
                    format!("The OAuth token used to make this call expired {minutes} minute(s) ago."),
                ))
            }
            Some(issued) => Ok(Caller {
                app: format!("app:{}", issued.client_id),
                private: false,
                scopes: token.scopes.clone(),
            }),
        }
    }

    /// Spends one request of the caller's limits (none when a limit refuses it).
    fn spend(&mut self, caller: &Caller, search: bool, now_ms: i64) -> Spent {
        let mut refusal = None;
        let day = day_of(now_ms);
        if self.daily.0 != day {
            self.daily = (day, 0);
        }
        if caller.private
            && let Some(daily) = self.daily_limit
            && self.daily.1 >= daily
        {
            refusal = Some((Policy::Daily, seconds_to_next_day(now_ms)));
        }
        if let Some(limit) = self.rate_limit {
            let window_ms = millis(limit.window);
            let hits = self.bursts.entry(caller.app.clone()).or_default();
            forget_until(hits, now_ms - window_ms);
            if refusal.is_none() && hits.len() >= limit.per_window as usize {
                refusal = Some((Policy::TenSecondly, seconds_until_free(hits, window_ms, now_ms)));
            }
        }
        if search && let Some(per_second) = self.search_limit {
            forget_until(&mut self.searches, now_ms - 1000);
            if refusal.is_none() && self.searches.len() >= per_second as usize {
                refusal = Some((Policy::Secondly, seconds_until_free(&self.searches, 1000, now_ms)));
            }
        }
        if refusal.is_none() {
            if caller.private {
                self.daily.1 += 1;
            }
            if self.rate_limit.is_some() {
                self.bursts
                    .entry(caller.app.clone())
                    .or_default()
                    .push_back(now_ms);
            }
            if search && self.search_limit.is_some() {
                self.searches.push_back(now_ms);
            }
        }
        let mut headers = Vec::new();
        if let Some(limit) = self.rate_limit {
            let used = self.bursts.get(&caller.app).map_or(0, VecDeque::len);
            let remaining = (limit.per_window as usize).saturating_sub(used);
            headers.push(("X-HubSpot-RateLimit-Max", limit.per_window.to_string()));
            headers.push(("X-HubSpot-RateLimit-Remaining", remaining.to_string()));
            headers.push((
                "X-HubSpot-RateLimit-Interval-Milliseconds",
                millis(limit.window).to_string(),
            ));
        }
        if caller.private
            && let Some(daily) = self.daily_limit
        {
            headers.push(("X-HubSpot-RateLimit-Daily", daily.to_string()));
            headers.push((
                "X-HubSpot-RateLimit-Daily-Remaining",
                daily.saturating_sub(self.daily.1).to_string(),
            ));
        }
        Spent { headers, refusal }
    }

    /// An authenticated call, its limits spent.
    fn serve(&mut self, route: &Route, call: &Outbound, caller: &Caller) -> Reply {
        if let Some(scope) = route.scope()
            && !caller.scopes.iter().any(|held| held == scope)
        {
            return Refused::new(
                403,
                "MISSING_SCOPES",
                "This app hasn't been granted all required scopes to make this call. Read more about required scopes here: https://developers.hubspot.com/scopes.",
            )
            .with(
                "errors",
                json!([{
                    "message": "One or more of the following scopes are required.",
                    "context": { "requiredGranularScopes": [scope] },
                }]),
            )
            .with("links", json!({ "scopes": "https://developers.hubspot.com/scopes" }))
            .reply();
        }
        let mut body = Value::Null;
        if route.takes_json() {
            let json_type = call
                .header("content-type")
                .is_some_and(|kind| kind.to_ascii_lowercase().starts_with("application/json"));
            if !json_type {
                return error(415, "VALIDATION_ERROR", "HTTP 415 Unsupported Media Type");
            }
            body = match serde_json::from_slice::<Value>(&call.body) {
                Ok(body) => body,
                Err(problem) => {
                    return invalid(format!(
                        "Invalid input JSON on line {}, column {}: {problem}",
                        problem.line(),
                        problem.column()
                    ))
                    .reply();
                }
            };
        }
        match self.handle(route, call, &body) {
            Ok((204, _)) => Reply::status(204),
            Ok((status, answer)) => json_reply(status, &answer),
            Err(refused) => refused.reply(),
        }
    }

    // OAuth.

    fn issue_access_token(
        &mut self,
        client_id: &str,
        refresh_token: &str,
        scopes: &[String],
        now_ms: i64,
    ) -> Value {
        let access_token = format!("CO{}", unique_hex(62));
        let lifetime = self.access_token_lifetime;
        self.tokens.insert(
            access_token.clone(),
            Token {
                scopes: scopes.to_vec(),
                oauth: Some(Issued {
                    client_id: client_id.to_owned(),
                    refresh_token: refresh_token.to_owned(),
                    expires_ms: now_ms + millis(lifetime),
                }),
            },
        );
        json!({
            "token_type": "bearer",
            "access_token": access_token,
            "refresh_token": refresh_token,
            "expires_in": lifetime.as_secs(),
        })
    }

    fn oauth(&mut self, route: &Route, call: &Outbound) -> Reply {
        match route {
            Route::Token => self.token(call),
            Route::AccessTokenInfo(token) => {
                let Some(found) = self.tokens.get(token) else {
                    return not_found().reply();
                };
                let Some(issued) = &found.oauth else {
                    return not_found().reply();
                };
                if call.at_ms >= issued.expires_ms {
                    let minutes = (call.at_ms - issued.expires_ms) / 60_000;
                    return Refused::new(
                        401,
                        "EXPIRED_AUTHENTICATION",
                        format!("The OAuth token used to make this call expired {minutes} minute(s) ago."),
                    )
                    .reply();
                }
                let app_id = self.apps.get(&issued.client_id).map_or(0, |app| app.app_id);
                json_reply(
                    200,
                    &json!({
                        "token": token,
                        "user": USER_EMAIL,
                        "hub_domain": HUB_DOMAIN,
                        "scopes": found.scopes,
                        "hub_id": PORTAL_ID,
                        "app_id": app_id,
                        "expires_in": (issued.expires_ms - call.at_ms) / 1000,
                        "user_id": USER_ID,
                        "token_type": "access",
                    }),
                )
            }
            Route::RefreshTokenInfo(token) => match self.refresh_tokens.get(token) {
                None => not_found().reply(),
                Some(grant) => json_reply(
                    200,
                    &json!({
                        "token": token,
                        "user": USER_EMAIL,
                        "hub_domain": HUB_DOMAIN,
                        "scopes": grant.scopes,
                        "hub_id": PORTAL_ID,
                        "client_id": grant.client_id,
                        "user_id": USER_ID,
                        "token_type": "refresh",
                    }),
                ),
            },
            Route::RevokeRefreshToken(token) => match self.refresh_tokens.remove(token) {
                None => not_found().reply(),
                Some(_) => Reply::status(204),
            },
            _ => not_found().reply(),
        }
    }

    fn token(&mut self, call: &Outbound) -> Reply {
        let bad = |status: &str, message: &str| {
            json_reply(
                400,
                &json!({ "status": status, "message": message, "correlationId": correlation_id() }),
            )
        };
        let form = call
            .header("content-type")
            .is_some_and(|kind| kind.starts_with("application/x-www-form-urlencoded"));
        let fields = if form { form_fields(call) } else { Vec::new() };
        let field = |name: &str| {
            fields
                .iter()
                .find(|(key, _)| key == name)
                .map(|(_, value)| value.clone())
                .unwrap_or_default()
        };
        let grant_type = field("grant_type");
        if !["authorization_code", "refresh_token"].contains(&grant_type.as_str()) {
            return bad(
                "BAD_GRANT_TYPE",
                "grant_type must be authorization_code or refresh_token",
            );
        }
        let client_id = field("client_id");
        let Some(app) = self.apps.get(&client_id) else {
            return bad("BAD_CLIENT_ID", "missing or invalid client id");
        };
        if app.client_secret != field("client_secret") {
            return bad("BAD_CLIENT_ID", "missing or invalid client secret");
        }
        if grant_type == "authorization_code" {
            let code = field("code");
            let usable = self
                .codes
                .get(&code)
                .filter(|found| found.client_id == client_id && call.at_ms < found.expires_ms);
            let Some(found) = usable else {
                return bad("BAD_AUTH_CODE", "missing or unknown auth code");
            };
            if found.redirect_uri != field("redirect_uri") {
                return bad(
                    "BAD_REDIRECT_URI",
                    "redirect_uri does not match initial auth code URL",
                );
            }
            let scopes = found.scopes.clone();
            self.codes.remove(&code);
            let refresh_token = uuid_like();
            self.refresh_tokens.insert(
                refresh_token.clone(),
                Grant {
                    client_id: client_id.clone(),
                    scopes: scopes.clone(),
                },
            );
            let answer = self.issue_access_token(&client_id, &refresh_token, &scopes, call.at_ms);
            return json_reply(200, &answer);
        }
        let refresh_token = field("refresh_token");
        let scopes = match self.refresh_tokens.get(&refresh_token) {
            Some(grant) if grant.client_id == client_id => grant.scopes.clone(),
            _ => return bad("BAD_REFRESH_TOKEN", "missing or invalid refresh token"),
        };
        let answer = self.issue_access_token(&client_id, &refresh_token, &scopes, call.at_ms);
        json_reply(200, &answer)
    }
}

impl HubSpot {
    /// An account at `https://api.hubapi.com` with the default ticket pipeline, answering calls
    /// made with `access_token`, a private app's token holding [`SCOPES`]. Limits are on: 100
    /// requests per 10 seconds, 250,000 a day, 5 searches a second.
    pub fn install(stack: &Stack, access_token: &str) -> Self {
        let hubspot = Self {
            state: Rc::new(RefCell::new(State::new())),
        };
        hubspot.add_token(access_token, &SCOPES);
        hubspot.grant(access_token, &[COMPANIES_READ, COMPANIES_WRITE]);
        let serving = hubspot.clone();
        stack.partner(HOST, move |call| serving.answer(call));
        hubspot
    }

    pub fn host(&self) -> &'static str {
        HOST
    }

    pub fn portal_id(&self) -> u64 {
        PORTAL_ID
    }

    /// Another private app's token, holding `scopes`; a token added again is replaced.
    pub fn add_token(&self, token: &str, scopes: &[&str]) {
        self.state.borrow_mut().tokens.insert(
            token.to_owned(),
            Token {
                scopes: scopes.iter().map(|&scope| scope.to_owned()).collect(),
                oauth: None,
            },
        );
    }

    /// More scopes for a token.
    pub fn grant(&self, token: &str, scopes: &[&str]) {
        if let Some(found) = self.state.borrow_mut().tokens.get_mut(token) {
            found.scopes.extend(scopes.iter().map(|&scope| scope.to_owned()));
        }
    }

    /// A custom contact property; a unique one is matched like `email` (409 on a second
    /// contact with its value, and batch upsert's `idProperty`).
    pub fn add_contact_property(&self, name: &str, unique: bool) {
        let mut state = self.state.borrow_mut();
        state.contact_properties.retain(|(known, _)| known != name);
        state.contact_properties.push((name.to_owned(), unique));
    }

    /// A user of the account, who may own records; the owner's id.
    pub fn add_owner(&self, email: &str, first_name: &str, last_name: &str) -> String {
        let mut state = self.state.borrow_mut();
        let id = state.new_id();
        let user_id = 5_150_000 + state.owners.len() as u64;
        let at = iso(now_ms());
        state.owners.push(json!({
            "id": id,
            "email": email,
            "type": "PERSON",
            "firstName": first_name,
            "lastName": last_name,
            "userId": user_id,
            "createdAt": at,
            "updatedAt": at,
            "archived": false,
        }));
        id
    }

    /// Another ticket pipeline with `stages` (label, ticket state `OPEN` or `CLOSED`), in order;
    /// the pipeline as `GET /crm/pipelines/2026-03/tickets` lists it (its and its stages' ids).
    pub fn add_pipeline(&self, label: &str, stages: &[(&str, &str)]) -> Value {
        let mut state = self.state.borrow_mut();
        let id = state.new_id();
        let order = state.pipelines.len();
        let stages: Vec<Value> = stages
            .iter()
            .enumerate()
            .map(|(position, (stage, ticket_state))| {
                json!({
                    "id": state.new_id(),
                    "label": stage,
                    "displayOrder": position,
                    "archived": false,
                    "metadata": { "ticketState": ticket_state },
                })
            })
            .collect();
        let pipeline = json!({
            "id": id,
            "label": label,
            "displayOrder": order,
            "archived": false,
            "stages": stages,
        });
        state.pipelines.push(pipeline.clone());
        pipeline
    }

    /// A public app that can be installed on the account with OAuth: its client credentials,
    /// its redirect URL and the scopes it asks for; its app id.
    pub fn register_app(
        &self,
        client_id: &str,
        client_secret: &str,
        redirect_uri: &str,
        scopes: &[&str],
    ) -> u64 {
        let mut state = self.state.borrow_mut();
        state.next_app_id += 1;
        let app_id = state.next_app_id;
        state.apps.insert(
            client_id.to_owned(),
            App {
                client_secret: client_secret.to_owned(),
                redirect_uri: redirect_uri.to_owned(),
                scopes: scopes.iter().map(|&scope| scope.to_owned()).collect(),
                app_id,
            },
        );
        app_id
    }

    /// The code the user's consent gives back to `redirect_uri` (single-use, good for 10 minutes
    /// on the stack's clock) granting `scopes`. Panics where HubSpot's consent page would show
    /// an error: an unknown app, or a redirect URL that is not the app's.
    pub fn authorize(&self, client_id: &str, redirect_uri: &str, scopes: &[&str]) -> String {
        let mut state = self.state.borrow_mut();
        let app = state
            .apps
            .get(client_id)
            .unwrap_or_else(|| panic!("hubspot: no app with client id {client_id}"));
        assert_eq!(
            app.redirect_uri, redirect_uri,
            "hubspot: the redirect URL is not the app's"
        );
        let code = uuid_like();
        state.codes.insert(
            code.clone(),
            Code {
                client_id: client_id.to_owned(),
                redirect_uri: redirect_uri.to_owned(),
                scopes: scopes.iter().map(|&scope| scope.to_owned()).collect(),
                expires_ms: now_ms() + AUTH_CODE_SECONDS * 1000,
            },
        );
        code
    }

    /// The user consents on `authorize_url` (a URL of [`AUTHORIZE_URL`] with `client_id`,
    /// `scope` (space-separated, every scope the app asks for and no other), `optional_scope`,
    /// `redirect_uri` and `state`): the URL HubSpot sends the browser back to
    /// (`redirect_uri?code=..&state=..`), or what the page shows instead.
    pub fn consent(&self, authorize_url: &str) -> Result<String, String> {
        let url = url::Url::parse(authorize_url).map_err(|problem| format!("not a URL: {problem}"))?;
        let page = format!(
            "{}://{}{}",
            url.scheme(),
            url.host_str().unwrap_or_default(),
            url.path()
        );
        if page != AUTHORIZE_URL {
            return Err(format!("{page} is not HubSpot's authorize page"));
        }
        let parameter = |name: &str| {
            url.query_pairs()
                .find(|(key, _)| key == name)
                .map(|(_, value)| value.into_owned())
        };
        let client_id = parameter("client_id").ok_or("client_id is missing")?;
        let redirect_uri = parameter("redirect_uri").ok_or("redirect_uri is missing")?;
        let split = |scopes: Option<String>| -> Vec<String> {
            scopes
                .unwrap_or_default()
                .split([' ', '+'])
                .filter(|scope| !scope.is_empty())
                .map(str::to_owned)
                .collect()
        };
        let mut scopes = split(parameter("scope"));
        let optional = split(parameter("optional_scope"));
        {
            let state = self.state.borrow();
            let app = state
                .apps
                .get(&client_id)
                .ok_or_else(|| format!("no app with client id {client_id}"))?;
            if app.redirect_uri != redirect_uri {
                return Err(format!(
                    "redirect_uri {redirect_uri} is not one of the app's redirect URLs"
                ));
            }
            let mut asked = scopes.clone();
            asked.sort();
            let mut required = app.scopes.clone();
            required.sort();
            if asked != required {
                return Err(format!(
                    "the scopes asked for ({}) are not the app's ({})",
                    asked.join(" "),
                    required.join(" ")
                ));
            }
        }
        scopes.extend(optional);
        let granted: Vec<&str> = scopes.iter().map(String::as_str).collect();
        let code = self.authorize(&client_id, &redirect_uri, &granted);
        let mut back =
            url::Url::parse(&redirect_uri).map_err(|problem| format!("redirect_uri: {problem}"))?;
        back.query_pairs_mut().append_pair("code", &code);
        if let Some(state) = parameter("state") {
            back.query_pairs_mut().append_pair("state", &state);
        }
        Ok(back.to_string())
    }

    /// The app is uninstalled from the account: its refresh and access tokens stop working.
    pub fn uninstall(&self, client_id: &str) {
        let mut state = self.state.borrow_mut();
        state
            .refresh_tokens
            .retain(|_, grant| grant.client_id != client_id);
        state.tokens.retain(|_, token| {
            token
                .oauth
                .as_ref()
                .is_none_or(|issued| issued.client_id != client_id)
        });
    }

    /// Every OAuth access token issued so far expires now (refresh tokens stay good).
    pub fn expire_access_tokens_now(&self) {
        let now = now_ms();
        for token in self.state.borrow_mut().tokens.values_mut() {
            if let Some(issued) = &mut token.oauth {
                issued.expires_ms = issued.expires_ms.min(now);
            }
        }
    }

    /// How long the access tokens issued from now on last (30 minutes unless set).
    pub fn access_token_lifetime(&self, lifetime: Duration) {
        self.state.borrow_mut().access_token_lifetime = lifetime;
    }

    /// The refresh token an access token was issued with.
    pub fn refresh_token_of(&self, access_token: &str) -> Option<String> {
        let state = self.state.borrow();
        let issued = state.tokens.get(access_token)?.oauth.as_ref()?;
        Some(issued.refresh_token.clone())
    }

    /// The next `times` calls for which `matches` holds are answered `reply` (before the token is
    /// even looked at). Faults are tried in the order scripted; a call takes at most one.
    pub fn fail(&self, times: usize, matches: impl Fn(&Outbound) -> bool + 'static, reply: Reply) {
        self.state.borrow_mut().script.fail(times, matches, reply);
    }

    /// The next `times` calls are never answered: the caller's own timeout must end them.
    pub fn hang(&self, times: usize) {
        self.state.borrow_mut().script.hang(times);
    }

    /// Connections are refused until [`HubSpot::up`]; what HubSpot holds is kept.
    pub fn down(&self) {
        self.state.borrow_mut().script.set_down(true);
    }

    pub fn up(&self) {
        self.state.borrow_mut().script.set_down(false);
    }

    /// Every answer from now on comes after `each`.
    pub fn latency(&self, each: Duration) {
        self.state.borrow_mut().script.set_latency(each);
    }

    /// Sets (or with None removes, and its headers with it) each app's burst limit; current
    /// windows start afresh.
    pub fn rate_limit(&self, limit: Option<Limit>) {
        let mut state = self.state.borrow_mut();
        state.rate_limit = limit;
        state.bursts.clear();
    }

    /// Sets (or with None removes) the private apps' daily limit; today's count starts afresh.
    pub fn daily_limit(&self, limit: Option<u32>) {
        let mut state = self.state.borrow_mut();
        state.daily_limit = limit;
        state.daily = (0, 0);
    }

    /// Sets (or with None removes) the searches allowed per second.
    pub fn search_rate_limit(&self, per_second: Option<u32>) {
        let mut state = self.state.borrow_mut();
        state.search_limit = per_second;
        state.searches.clear();
    }

    /// How long after a write search sees it (on the stack's clock).
    pub fn search_lag(&self, lag: Duration) {
        self.state.borrow_mut().search_lag = lag;
    }

    fn records_of(&self, object: Object) -> Vec<Value> {
        self.state
            .borrow()
            .records
            .iter()
            .filter(|record| record.object == object)
            .map(Record::full)
            .collect()
    }

    /// Each contact with every property set and its associations
    /// (`[{toObjectType, toObjectId, associationCategory, associationTypeId, label}]`), in the
    /// order made.
    pub fn contacts(&self) -> Vec<Value> {
        self.records_of(Object::Contacts)
    }

    /// The ids of the contacts deleted through `gdpr-delete`, in order.
    pub fn gdpr_deleted(&self) -> Vec<String> {
        self.state.borrow().gdpr_deleted.clone()
    }

    pub fn communications(&self) -> Vec<Value> {
        self.records_of(Object::Communications)
    }

    pub fn emails(&self) -> Vec<Value> {
        self.records_of(Object::Emails)
    }

    pub fn notes(&self) -> Vec<Value> {
        self.records_of(Object::Notes)
    }

    pub fn tickets(&self) -> Vec<Value> {
        self.records_of(Object::Tickets)
    }

    pub fn companies(&self) -> Vec<Value> {
        self.records_of(Object::Companies)
    }

    /// The associations a record (`object` as a path names it) was created with.
    pub fn associations_of(&self, object: &str, id: &str) -> Vec<Association> {
        let Some(object) = Object::named(object) else {
            return Vec::new();
        };
        self.state
            .borrow()
            .records
            .iter()
            .find(|record| record.object == object && record.id == id)
            .map(|record| record.associations.clone())
            .unwrap_or_default()
    }

    pub fn owners(&self) -> Vec<Value> {
        self.state.borrow().owners.clone()
    }

    pub fn pipelines(&self) -> Vec<Value> {
        self.state.borrow().pipelines.clone()
    }

    /// A contact HubSpot already has (made in HubSpot, not by us), checked as `POST` checks it;
    /// the object as the create answers it.
    pub fn seed_contact(&self, properties: Value) -> Value {
        self.seed(Object::Contacts, properties)
    }

    /// A company HubSpot already has, checked as `POST` checks it.
    pub fn seed_company(&self, properties: Value) -> Value {
        self.seed(Object::Companies, properties)
    }

    /// A ticket HubSpot already has, checked as `POST` checks it.
    pub fn seed_ticket(&self, properties: Value) -> Value {
        self.seed(Object::Tickets, properties)
    }

    fn seed(&self, object: Object, properties: Value) -> Value {
        self.state
            .borrow_mut()
            .create(object, &json!({ "properties": properties }), now_ms())
            .unwrap_or_else(|refused| panic!("seeding {}: {}", object.name(), refused.message))
    }

    /// Deletes a contact in HubSpot (an agent did; search stops finding it at once); the record
    /// deleted.
    pub fn remove_contact(&self, id: &str) -> Option<Value> {
        let mut state = self.state.borrow_mut();
        let at = state
            .records
            .iter()
            .position(|record| record.object == Object::Contacts && record.id == id)?;
        Some(state.records.remove(at).full())
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

    /// One webhook event of the app `client_id` about record `object_id`, now on the stack's
    /// clock: `subscription_type` (`contact.creation`, `ticket.propertyChange`, ...) and, for a
    /// property change, the property and its new value. Its subscription id is the same for
    /// the same app, type and property.
    pub fn event(
        &self,
        client_id: &str,
        subscription_type: &str,
        object_id: &str,
        change: Option<(&str, &str)>,
    ) -> Value {
        let mut state = self.state.borrow_mut();
        let app_id = state
            .apps
            .get(client_id)
            .map(|app| app.app_id)
            .unwrap_or_else(|| panic!("hubspot: no app with client id {client_id}"));
        let object_id: u64 = object_id
            .parse()
            .unwrap_or_else(|problem| panic!("hubspot: record id {object_id} is not numeric: {problem}"));
        let property = change.map_or("", |(name, _)| name);
        let next_subscription = 1_900_000 + state.subscriptions.len() as u64 + 1;
        let subscription_id = *state
            .subscriptions
            .entry((client_id.to_owned(), format!("{subscription_type}/{property}")))
            .or_insert(next_subscription);
        state.next_event_id += 1;
        let mut event = json!({
            "eventId": state.next_event_id,
            "subscriptionId": subscription_id,
            "portalId": PORTAL_ID,
            "appId": app_id,
            "occurredAt": now_ms(),
            "subscriptionType": subscription_type,
            "attemptNumber": 0,
            "objectId": object_id,
            "changeSource": "CRM",
        });
        if let Some((name, value)) = change {
            event["propertyName"] = json!(name);
            event["propertyValue"] = json!(value);
            event["sourceId"] = json!(format!("userId:{USER_ID}"));
        }
        event
    }

    /// An agent moves ticket `ticket_id` to stage `stage_id` of its pipeline in HubSpot (the
    /// ticket is written, now on the stack's clock): the events app `client_id` is sent for it.
    pub fn ticket_moved(&self, client_id: &str, ticket_id: &str, stage_id: &str) -> Value {
        {
            let mut state = self.state.borrow_mut();
            let at = state
                .find(Object::Tickets, ticket_id, None)
                .unwrap_or_else(|_| panic!("hubspot: no ticket {ticket_id}"));
            let current = state.records[at].properties.clone();
            let change = json!({ "hs_pipeline_stage": stage_id });
            let values = state
                .check_properties(Object::Tickets, &change, Some(&current))
                .unwrap_or_else(|refused| panic!("hubspot: moving ticket {ticket_id}: {}", refused.message));
            state.modify(at, values, now_ms());
        }
        json!([self.event(
            client_id,
            "ticket.propertyChange",
            ticket_id,
            Some(("hs_pipeline_stage", stage_id)),
        )])
    }

    /// A webhook delivery of `events` (a JSON array) to `uri` (the full URL it is sent to),
    /// signed with the app's `client_secret` as of `timestamp_ms`.
    pub fn webhook(&self, client_secret: &str, uri: &str, events: &Value, timestamp_ms: i64) -> Webhook {
        assert!(
            events.is_array(),
            "hubspot: a webhook's body is an array of events"
        );
        let body = events.to_string().into_bytes();
        let timestamp = timestamp_ms.to_string();
        let mut signed = Vec::with_capacity(body.len() + uri.len() + 24);
        signed.extend_from_slice(b"POST");
        signed.extend_from_slice(uri.as_bytes());
        signed.extend_from_slice(&body);
        signed.extend_from_slice(timestamp.as_bytes());
        let v3 =
            base64::engine::general_purpose::STANDARD.encode(hmac_sha256(client_secret.as_bytes(), &signed));
        let v1 = hex::encode(
            Sha256::new()
                .chain_update(client_secret.as_bytes())
                .chain_update(&body)
                .finalize(),
        );
        Webhook {
            headers: vec![
                ("Content-Type".to_owned(), "application/json".to_owned()),
                (SIGNATURE_HEADER.to_owned(), v3),
                (TIMESTAMP_HEADER.to_owned(), timestamp),
                ("X-HubSpot-Signature".to_owned(), v1),
                ("X-HubSpot-Signature-Version".to_owned(), "v1".to_owned()),
            ],
            body,
        }
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
        let mut state = self.state.borrow_mut();
        if let Some(scripted) = state.script.scripted(call) {
            return scripted;
        }
        if call.body.len() > BODY_MAX_BYTES {
            return error(
                413,
                "VALIDATION_ERROR",
                &format!(
                    "Request body is {} bytes; the limit is {BODY_MAX_BYTES}",
                    call.body.len()
                ),
            );
        }
        let route = match route(&call.method, call.path()) {
            Ok(route) => route,
            Err(true) => return error(405, "VALIDATION_ERROR", "HTTP 405 Method Not Allowed"),
            Err(false) => return not_found().reply(),
        };
        if route.is_oauth() {
            return state.oauth(&route, call);
        }
        let caller = match state.authenticate(call) {
            Ok(caller) => caller,
            Err(refused) => return refused.reply(),
        };
        let search = matches!(route, Route::Search(_));
        let Spent { headers, refusal } = state.spend(&caller, search, call.at_ms);
        if let Some((policy, retry_after)) = refusal {
            state.throttles.push(Throttle {
                at_ms: call.at_ms,
                policy,
                method: call.method.clone(),
                path: call.path().to_owned(),
                retry_after,
            });
            return with_headers(rate_limited(policy, retry_after), &headers);
        }
        let reply = state.serve(&route, call, &caller);
        with_headers(reply, &headers)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::partners::form::url_encoded;

    const TOKEN: &str = "pat-na1-11111111-2222-3333-4444-555555555555";
    const OBJECTS_PATH: &str = "/crm/objects/2026-03";

    fn call(method: &str, path: &str, token: &str, body: Option<Value>) -> Outbound {
        let mut headers = vec![("authorization".to_owned(), format!("Bearer {token}"))];
        if body.is_some() {
            headers.push(("content-type".to_owned(), "application/json".to_owned()));
        }
        headers.sort();
        Outbound {
            method: method.to_owned(),
            url: format!("https://{HOST}{path}"),
            headers,
            body: body.map(|body| body.to_string().into_bytes()).unwrap_or_default(),
            at_ms: edge::runtime::native::now_ms(),
        }
    }

    fn answered(hubspot: &HubSpot, call: &Outbound) -> (u16, Value) {
        let reply = hubspot.answer(call);
        (
            reply.status,
            serde_json::from_slice(&reply.body).unwrap_or_default(),
        )
    }

    fn header(reply: &Reply, name: &str) -> Option<String> {
        let name = name.to_ascii_lowercase();
        reply
            .headers
            .iter()
            .find(|(key, _)| *key == name)
            .map(|(_, value)| value.clone())
    }

    fn text(value: &Value) -> String {
        value.as_str().unwrap_or_default().to_owned()
    }

    fn post_form(path: &str, fields: &[(&str, &str)]) -> Outbound {
        Outbound {
            method: "POST".to_owned(),
            url: format!("https://{HOST}{path}"),
            headers: vec![(
                "content-type".to_owned(),
                "application/x-www-form-urlencoded;charset=utf-8".to_owned(),
            )],
            body: url_encoded(fields).into_bytes(),
            at_ms: edge::runtime::native::now_ms(),
        }
    }

    fn search_by(property: &str, value: &str) -> Value {
        json!({
            "filterGroups": [{ "filters": [{ "propertyName": property, "operator": "EQ", "value": value }] }],
            "properties": ["email", "firstname", "phone"],
        })
    }

    #[test]
    fn a_contact_is_created_and_a_second_with_its_email_conflicts_naming_the_first() {
        let stack = Stack::new();
        let hubspot = HubSpot::install(&stack, TOKEN);
        let (status, created) = answered(
            &hubspot,
            &call(
                "POST",
                &format!("{OBJECTS_PATH}/contacts"),
                TOKEN,
                Some(
                    json!({ "properties": { "email": "Ada@Example.com", "firstname": "Ada", "phone": "+353 1 555 0101" } }),
                ),
            ),
        );
        assert_eq!(status, 201, "{created}");
        let id = text(&created["id"]);
        assert!(id.parse::<u64>().is_ok_and(|id| id > u64::from(u32::MAX)), "{id}");
        assert_eq!(created["properties"]["email"], "ada@example.com");
        assert_eq!(created["properties"]["hs_object_id"], id.as_str());
        assert!(created["properties"]["createdate"].is_string());
        assert_eq!(created["archived"], false);

        let (status, conflict) = answered(
            &hubspot,
            &call(
                "POST",
                "/crm/v3/objects/contacts",
                TOKEN,
                Some(json!({ "properties": { "email": "ADA@example.COM" } })),
            ),
        );
        assert_eq!(status, 409, "the legacy path checks the same: {conflict}");
        assert_eq!(conflict["status"], "error");
        assert_eq!(conflict["category"], "CONFLICT");
        assert_eq!(
            conflict["message"],
            format!("Contact already exists. Existing ID: {id}").as_str()
        );
        assert!(
            conflict["correlationId"]
                .as_str()
                .is_some_and(|id| id.len() == 36)
        );

        let (status, refused) = answered(
            &hubspot,
            &call(
                "POST",
                &format!("{OBJECTS_PATH}/contacts"),
                TOKEN,
                Some(json!({ "properties": { "email": "bo@example.com", "nickname": "Bo" } })),
            ),
        );
        assert_eq!(status, 400);
        assert_eq!(refused["category"], "VALIDATION_ERROR");
        assert_eq!(
            refused["message"],
            "Property values were not valid: [{\"isValid\":false,\"message\":\"Property \\\"nickname\\\" does not exist\",\"error\":\"PROPERTY_DOESNT_EXIST\",\"name\":\"nickname\"}]"
        );

        let (status, read) = answered(
            &hubspot,
            &call("GET", &format!("{OBJECTS_PATH}/contacts/{id}"), TOKEN, None),
        );
        assert_eq!(status, 200);
        assert_eq!(read["properties"]["firstname"], "Ada");
        assert!(
            read["properties"].get("phone").is_none(),
            "not a default property: {read}"
        );
        let (_, read) = answered(
            &hubspot,
            &call(
                "GET",
                &format!("{OBJECTS_PATH}/contacts/ada%40example.com?idProperty=email&properties=phone"),
                TOKEN,
                None,
            ),
        );
        assert_eq!(read["id"], id.as_str());
        assert_eq!(read["properties"]["phone"], "+353 1 555 0101");

        let (status, missing) = answered(
            &hubspot,
            &call("GET", &format!("{OBJECTS_PATH}/contacts/1"), TOKEN, None),
        );
        assert_eq!(
            (status, text(&missing["category"])),
            (404, "OBJECT_NOT_FOUND".to_owned())
        );

        let other = hubspot.seed_contact(json!({ "email": "cy@example.com" }));
        let (status, _) = answered(
            &hubspot,
            &call(
                "PATCH",
                &format!("{OBJECTS_PATH}/contacts/{}", text(&other["id"])),
                TOKEN,
                Some(json!({ "properties": { "email": "ada@example.com" } })),
            ),
        );
        assert_eq!(status, 409, "an update to another contact's email");
        let (status, updated) = answered(
            &hubspot,
            &call(
                "PATCH",
                &format!("{OBJECTS_PATH}/contacts/{}", text(&other["id"])),
                TOKEN,
                Some(json!({ "properties": { "lastname": "Young", "email": null } })),
            ),
        );
        assert_eq!(status, 200, "{updated}");
        assert!(updated["properties"].get("email").is_none(), "cleared: {updated}");
        assert_eq!(hubspot.contacts().len(), 2);
    }

    #[test]
    fn routes_bodies_and_content_types_are_checked_as_hubspot_checks_them() {
        let stack = Stack::new();
        let hubspot = HubSpot::install(&stack, TOKEN);
        let (status, _) = answered(&hubspot, &call("GET", "/crm/v3/nothing", TOKEN, None));
        assert_eq!(status, 404);
        let (status, _) = answered(
            &hubspot,
            &call("PUT", &format!("{OBJECTS_PATH}/contacts/1"), TOKEN, None),
        );
        assert_eq!(status, 405);
        let (status, answer) = answered(
            &hubspot,
            &call("POST", &format!("{OBJECTS_PATH}/widgets"), TOKEN, Some(json!({}))),
        );
        assert_eq!(status, 400, "{answer}");
        let mut bare = call(
            "POST",
            &format!("{OBJECTS_PATH}/contacts"),
            TOKEN,
            Some(json!({ "properties": {} })),
        );
        bare.headers.retain(|(name, _)| name != "content-type");
        assert_eq!(hubspot.answer(&bare).status, 415);
        let mut huge = call(
            "POST",
            &format!("{OBJECTS_PATH}/notes"),
            TOKEN,
            Some(json!({ "properties": {} })),
        );
        huge.body = vec![b' '; BODY_MAX_BYTES + 1];
        assert_eq!(hubspot.answer(&huge).status, 413);
        let mut broken = call(
            "POST",
            &format!("{OBJECTS_PATH}/contacts"),
            TOKEN,
            Some(json!({})),
        );
        broken.body = b"{\"properties\":".to_vec();
        let (status, answer) = answered(&hubspot, &broken);
        assert_eq!(status, 400);
        assert!(
            text(&answer["message"]).starts_with("Invalid input JSON"),
            "{answer}"
        );
        let (status, details) = answered(
            &hubspot,
            &call("GET", "/account-info/2026-03/details", TOKEN, None),
        );
        assert_eq!(status, 200);
        assert_eq!(details["portalId"], PORTAL_ID);
        assert_eq!(details["timeZone"], "US/Eastern");
        let received = hubspot.received();
        assert_eq!(received.len(), 7);
        assert_eq!(received[0].status, Some(404));
    }

    #[test]
    fn a_batch_upsert_creates_what_it_does_not_find_and_updates_what_it_does() {
        let stack = Stack::new();
        let hubspot = HubSpot::install(&stack, TOKEN);
        hubspot.add_contact_property("whatsapp_id", true);
        let bo = hubspot.seed_contact(json!({ "email": "bo@example.com", "firstname": "B" }));
        let path = format!("{OBJECTS_PATH}/contacts/batch/upsert");
        let (status, answer) = answered(
            &hubspot,
            &call(
                "POST",
                &path,
                TOKEN,
                Some(json!({ "inputs": [
                    { "id": "BO@example.com", "idProperty": "email", "properties": { "firstname": "Bo" } },
                    { "id": "cy@example.com", "idProperty": "email", "properties": { "firstname": "Cy" } },
                    { "id": "353861234567", "idProperty": "whatsapp_id", "properties": { "firstname": "Di" } },
                ] })),
            ),
        );
        assert_eq!(status, 200, "{answer}");
        assert_eq!(answer["status"], "COMPLETE");
        let results = answer["results"].as_array().cloned().unwrap_or_default();
        assert_eq!(results.len(), 3);
        assert_eq!(results[0]["id"], bo["id"]);
        assert_eq!(results[0]["new"], false);
        assert_eq!(results[0]["properties"]["firstname"], "Bo");
        assert_eq!(results[1]["new"], true);
        assert_eq!(results[1]["properties"]["email"], "cy@example.com");
        assert_eq!(results[2]["properties"]["whatsapp_id"], "353861234567");
        assert_eq!(hubspot.contacts().len(), 3);

        let (_, again) = answered(
            &hubspot,
            &call(
                "POST",
                &path,
                TOKEN,
                Some(json!({ "inputs": [
                    { "id": "353861234567", "idProperty": "whatsapp_id", "properties": { "lastname": "Doe" } },
                ] })),
            ),
        );
        assert_eq!(again["results"][0]["new"], false);
        assert_eq!(again["results"][0]["id"], results[2]["id"]);
        let (status, conflict) = answered(
            &hubspot,
            &call(
                "POST",
                &format!("{OBJECTS_PATH}/contacts"),
                TOKEN,
                Some(json!({ "properties": { "whatsapp_id": "353861234567" } })),
            ),
        );
        assert_eq!(status, 409, "a unique custom property: {conflict}");

        let (status, _) = answered(
            &hubspot,
            &call(
                "POST",
                &path,
                TOKEN,
                Some(json!({ "inputs": [{ "id": "Bo", "idProperty": "firstname", "properties": {} }] })),
            ),
        );
        assert_eq!(status, 400, "firstname is not unique");
        let too_many: Vec<Value> = (0..=BATCH_MAX_INPUTS)
            .map(|n| json!({ "id": format!("p{n}@example.com"), "idProperty": "email", "properties": {} }))
            .collect();
        let (status, _) = answered(
            &hubspot,
            &call("POST", &path, TOKEN, Some(json!({ "inputs": too_many }))),
        );
        assert_eq!(status, 400);
        assert_eq!(hubspot.contacts().len(), 3, "a refused batch writes nothing");
    }

    #[test]
    fn search_sees_a_write_only_once_the_index_has_caught_up() {
        let stack = Stack::new();
        let hubspot = HubSpot::install(&stack, TOKEN);
        hubspot.search_lag(Duration::from_secs(5));
        let path = format!("{OBJECTS_PATH}/contacts/search");
        let created = hubspot.seed_contact(
            json!({ "email": "ada@example.com", "firstname": "Ada", "phone": "+353 1 555 0101" }),
        );
        let (status, found) = answered(
            &hubspot,
            &call("POST", &path, TOKEN, Some(search_by("email", "ADA@example.com"))),
        );
        assert_eq!(status, 200, "{found}");
        assert_eq!(found["total"], 0, "not indexed yet: {found}");
        stack.advance(Duration::from_secs(5));
        let (_, found) = answered(
            &hubspot,
            &call("POST", &path, TOKEN, Some(search_by("email", "ADA@example.com"))),
        );
        assert_eq!(found["total"], 1, "{found}");
        assert_eq!(found["results"][0]["id"], created["id"]);
        assert_eq!(found["results"][0]["properties"]["phone"], "+353 1 555 0101");
        let (_, by_phone) = answered(
            &hubspot,
            &call("POST", &path, TOKEN, Some(search_by("phone", "+35315550101"))),
        );
        assert_eq!(by_phone["total"], 0, "phones compare as stored");

        let id = text(&created["id"]);
        let (status, _) = answered(
            &hubspot,
            &call(
                "PATCH",
                &format!("{OBJECTS_PATH}/contacts/{id}"),
                TOKEN,
                Some(json!({ "properties": { "firstname": "Adele" } })),
            ),
        );
        assert_eq!(status, 200);
        stack.advance(Duration::from_secs(1));
        let (_, stale) = answered(
            &hubspot,
            &call("POST", &path, TOKEN, Some(search_by("firstname", "Adele"))),
        );
        assert_eq!(stale["total"], 0);
        let (_, old) = answered(
            &hubspot,
            &call("POST", &path, TOKEN, Some(search_by("firstname", "Ada"))),
        );
        assert_eq!(old["total"], 1, "the index still has the old value");
        stack.advance(Duration::from_secs(4));
        let (_, fresh) = answered(
            &hubspot,
            &call("POST", &path, TOKEN, Some(search_by("firstname", "Adele"))),
        );
        assert_eq!(fresh["total"], 1);

        for n in 0..3 {
            hubspot.seed_contact(json!({ "email": format!("p{n}@example.com") }));
        }
        stack.advance(Duration::from_secs(5));
        let (_, page) = answered(
            &hubspot,
            &call(
                "POST",
                &path,
                TOKEN,
                Some(
                    json!({ "filterGroups": [{ "filters": [{ "propertyName": "email", "operator": "HAS_PROPERTY" }] }], "limit": 3 }),
                ),
            ),
        );
        assert_eq!(page["total"], 4);
        assert_eq!(page["paging"]["next"]["after"], "3");
        let (status, _) = answered(
            &hubspot,
            &call(
                "POST",
                &path,
                TOKEN,
                Some(json!({ "limit": SEARCH_MAX_LIMIT + 1 })),
            ),
        );
        assert_eq!(status, 400);
        let groups: Vec<Value> = (0..=SEARCH_MAX_FILTER_GROUPS)
            .map(|_| json!({ "filters": [{ "propertyName": "email", "operator": "HAS_PROPERTY" }] }))
            .collect();
        stack.advance(Duration::from_secs(1));
        let (status, _) = answered(
            &hubspot,
            &call("POST", &path, TOKEN, Some(json!({ "filterGroups": groups }))),
        );
        assert_eq!(status, 400);
    }

    #[test]
    fn an_unknown_token_is_refused_with_401_and_a_missing_scope_with_403_naming_it() {
        let stack = Stack::new();
        let hubspot = HubSpot::install(&stack, TOKEN);
        let (status, refused) = answered(
            &hubspot,
            &call(
                "GET",
                &format!("{OBJECTS_PATH}/contacts/1"),
                "pat-na1-unknown",
                None,
            ),
        );
        assert_eq!(status, 401);
        assert_eq!(refused["status"], "error");
        assert_eq!(refused["category"], "INVALID_AUTHENTICATION");
        assert_eq!(refused["message"], UNAUTHENTICATED);
        let mut anonymous = call("GET", "/crm/v3/owners", TOKEN, None);
        anonymous.headers.clear();
        assert_eq!(hubspot.answer(&anonymous).status, 401);

        hubspot.add_token("reader", &[CONTACTS_READ]);
        let (status, refused) = answered(
            &hubspot,
            &call(
                "POST",
                &format!("{OBJECTS_PATH}/notes"),
                "reader",
                Some(json!({ "properties": { "hs_timestamp": "1795694400000" } })),
            ),
        );
        assert_eq!(status, 403);
        assert_eq!(refused["category"], "MISSING_SCOPES");
        assert_eq!(
            refused["errors"][0]["context"]["requiredGranularScopes"],
            json!([CONTACTS_WRITE])
        );
        let (status, refused) = answered(&hubspot, &call("GET", "/crm/owners/2026-03", "reader", None));
        assert_eq!(status, 403);
        assert_eq!(
            refused["errors"][0]["context"]["requiredGranularScopes"],
            json!([OWNERS_READ])
        );
        let (status, refused) = answered(
            &hubspot,
            &call("GET", "/crm/pipelines/2026-03/tickets", "reader", None),
        );
        assert_eq!(
            (
                status,
                refused["errors"][0]["context"]["requiredGranularScopes"].clone()
            ),
            (403, json!([TICKETS]))
        );
        let (status, _) = answered(&hubspot, &call("GET", "/account-info/v3/details", "reader", None));
        assert_eq!(status, 200, "any token reads the account's details");
        let (status, _) = answered(
            &hubspot,
            &call(
                "POST",
                &format!("{OBJECTS_PATH}/contacts/search"),
                "reader",
                Some(json!({})),
            ),
        );
        assert_eq!(status, 200, "search is a read");
        assert!(hubspot.notes().is_empty());
    }

    #[test]
    fn a_spent_burst_answers_429_with_retry_after_and_every_answer_reports_the_limits() {
        let stack = Stack::new();
        let hubspot = HubSpot::install(&stack, TOKEN);
        let first = hubspot.answer(&call("GET", "/crm/v3/owners", TOKEN, None));
        assert_eq!(first.status, 200);
        assert_eq!(header(&first, "X-HubSpot-RateLimit-Max").as_deref(), Some("100"));
        assert_eq!(
            header(&first, "X-HubSpot-RateLimit-Remaining").as_deref(),
            Some("99")
        );
        assert_eq!(
            header(&first, "X-HubSpot-RateLimit-Interval-Milliseconds").as_deref(),
            Some("10000")
        );
        assert_eq!(
            header(&first, "X-HubSpot-RateLimit-Daily").as_deref(),
            Some("250000")
        );
        assert_eq!(
            header(&first, "X-HubSpot-RateLimit-Daily-Remaining").as_deref(),
            Some("249999")
        );

        hubspot.rate_limit(Some(Limit::per_ten_seconds(2)));
        hubspot.answer(&call("GET", "/crm/v3/owners", TOKEN, None));
        stack.advance(Duration::from_secs(3));
        hubspot.answer(&call("GET", "/crm/v3/owners", TOKEN, None));
        stack.advance(Duration::from_secs(3));
        let spent = hubspot.answer(&call("GET", "/crm/v3/owners", TOKEN, None));
        assert_eq!(spent.status, 429);
        assert_eq!(header(&spent, "retry-after").as_deref(), Some("4"));
        assert_eq!(
            header(&spent, "X-HubSpot-RateLimit-Remaining").as_deref(),
            Some("0")
        );
        let body: Value = serde_json::from_slice(&spent.body).unwrap_or_default();
        assert_eq!(body["policyName"], "TEN_SECONDLY_ROLLING");
        assert_eq!(body["errorType"], "RATE_LIMIT");
        assert_eq!(
            body["message"],
            "You have reached your ten_secondly_rolling limit."
        );
        let throttles = hubspot.throttles();
        assert_eq!(throttles.len(), 1);
        assert_eq!(
            (throttles[0].policy, throttles[0].retry_after),
            (Policy::TenSecondly, 4)
        );
        stack.advance(Duration::from_secs(4));
        let freed = hubspot.answer(&call("GET", "/crm/v3/owners", TOKEN, None));
        assert_eq!(freed.status, 200, "the first call left the rolling window");
        assert_eq!(
            header(&freed, "X-HubSpot-RateLimit-Remaining").as_deref(),
            Some("0")
        );

        hubspot.add_token("other-app", &SCOPES);
        let other = hubspot.answer(&call("GET", "/crm/v3/owners", "other-app", None));
        assert_eq!(other.status, 200, "each private app has its own burst");

        hubspot.rate_limit(None);
        let path = format!("{OBJECTS_PATH}/contacts/search");
        for _ in 0..SEARCHES_PER_SECOND {
            let (status, _) = answered(&hubspot, &call("POST", &path, TOKEN, Some(json!({}))));
            assert_eq!(status, 200);
        }
        let searched = hubspot.answer(&call("POST", &path, TOKEN, Some(json!({}))));
        assert_eq!(searched.status, 429);
        let body: Value = serde_json::from_slice(&searched.body).unwrap_or_default();
        assert_eq!(body["policyName"], "SECONDLY");
        assert!(
            header(&searched, "X-HubSpot-RateLimit-Max").is_none(),
            "the burst limit is off"
        );
        stack.advance(Duration::from_secs(1));
        let (status, _) = answered(&hubspot, &call("POST", &path, TOKEN, Some(json!({}))));
        assert_eq!(status, 200);

        hubspot.daily_limit(Some(1));
        assert_eq!(
            hubspot.answer(&call("GET", "/crm/v3/owners", TOKEN, None)).status,
            200
        );
        let daily = hubspot.answer(&call("GET", "/crm/v3/owners", TOKEN, None));
        assert_eq!(daily.status, 429);
        assert_eq!(hubspot.throttles().last().map(|t| t.policy), Some(Policy::Daily));

        hubspot.fail(1, call_to("GET", "/crm/v3/owners"), too_many_requests(7));
        let scripted = hubspot.answer(&call("GET", "/crm/v3/owners", TOKEN, None));
        assert_eq!(header(&scripted, "retry-after").as_deref(), Some("7"));
        assert_eq!(hubspot.throttles().len(), 3, "a scripted 429 is no throttle");
    }

    #[test]
    fn oauth_exchanges_a_code_refreshes_and_refuses_an_expired_access_token() {
        let stack = Stack::new();
        let hubspot = HubSpot::install(&stack, TOKEN);
        let redirect = "https://edge.example/hubspot/callback";
        let app_id = hubspot.register_app("client-1", "secret-1", redirect, &[OAUTH, CONTACTS_READ]);
        let authorize = format!(
            "{AUTHORIZE_URL}?{}",
            url_encoded(&[
                ("client_id", "client-1"),
                ("scope", "oauth crm.objects.contacts.read"),
                ("redirect_uri", redirect),
                ("state", "s-42"),
            ])
        );
        let back = hubspot
            .consent(&authorize)
            .unwrap_or_else(|problem| panic!("{problem}"));
        let back = url::Url::parse(&back).unwrap_or_else(|problem| panic!("{problem}"));
        let param = |name: &str| {
            back.query_pairs()
                .find(|(key, _)| key == name)
                .map(|(_, value)| value.into_owned())
                .unwrap_or_default()
        };
        assert_eq!(param("state"), "s-42");
        let code = param("code");
        assert!(
            hubspot
                .consent(&authorize.replace("scope=oauth+", "scope="))
                .is_err(),
            "the scopes must be the app's"
        );

        let exchange = |code: &str, secret: &str| {
            post_form(
                "/oauth/v1/token",
                &[
                    ("grant_type", "authorization_code"),
                    ("client_id", "client-1"),
                    ("client_secret", secret),
                    ("redirect_uri", redirect),
                    ("code", code),
                ],
            )
        };
        let (status, refused) = answered(&hubspot, &exchange(&code, "wrong"));
        assert_eq!(
            (status, text(&refused["status"])),
            (400, "BAD_CLIENT_ID".to_owned())
        );
        let (status, tokens) = answered(&hubspot, &exchange(&code, "secret-1"));
        assert_eq!(status, 200, "{tokens}");
        assert_eq!(tokens["token_type"], "bearer");
        assert_eq!(tokens["expires_in"], ACCESS_TOKEN_SECONDS);
        let access = text(&tokens["access_token"]);
        let refresh = text(&tokens["refresh_token"]);
        let (status, refused) = answered(&hubspot, &exchange(&code, "secret-1"));
        assert_eq!(
            (status, text(&refused["status"])),
            (400, "BAD_AUTH_CODE".to_owned()),
            "a code is single-use"
        );

        let used = hubspot.answer(&call("GET", "/account-info/2026-03/details", &access, None));
        assert_eq!(used.status, 200);
        assert!(header(&used, "X-HubSpot-RateLimit-Max").is_some());
        assert!(
            header(&used, "X-HubSpot-RateLimit-Daily").is_none(),
            "OAuth calls carry no daily headers"
        );
        let (status, _) = answered(
            &hubspot,
            &call(
                "POST",
                &format!("{OBJECTS_PATH}/contacts"),
                &access,
                Some(json!({ "properties": {} })),
            ),
        );
        assert_eq!(status, 403, "the grant holds only the read scope");
        let (_, info) = answered(
            &hubspot,
            &call("GET", &format!("/oauth/v1/access-tokens/{access}"), "", None),
        );
        assert_eq!(info["hub_id"], PORTAL_ID);
        assert_eq!(info["app_id"], app_id);
        assert_eq!(info["scopes"], json!([OAUTH, CONTACTS_READ]));
        assert_eq!(info["expires_in"], ACCESS_TOKEN_SECONDS);

        stack.advance(Duration::from_secs(ACCESS_TOKEN_SECONDS));
        let (status, expired) = answered(
            &hubspot,
            &call("GET", "/account-info/2026-03/details", &access, None),
        );
        assert_eq!(status, 401);
        assert_eq!(expired["category"], "EXPIRED_AUTHENTICATION");

        let refresh_with = |token: &str| {
            post_form(
                "/oauth/v1/token",
                &[
                    ("grant_type", "refresh_token"),
                    ("client_id", "client-1"),
                    ("client_secret", "secret-1"),
                    ("refresh_token", token),
                ],
            )
        };
        let (status, renewed) = answered(&hubspot, &refresh_with(&refresh));
        assert_eq!(status, 200, "{renewed}");
        assert_eq!(renewed["refresh_token"], refresh.as_str());
        let renewed_access = text(&renewed["access_token"]);
        assert_ne!(renewed_access, access);
        let (status, _) = answered(
            &hubspot,
            &call("GET", "/account-info/2026-03/details", &renewed_access, None),
        );
        assert_eq!(status, 200);
        hubspot.expire_access_tokens_now();
        let (status, _) = answered(
            &hubspot,
            &call("GET", "/account-info/2026-03/details", &renewed_access, None),
        );
        assert_eq!(status, 401);
        let (status, again) = answered(&hubspot, &refresh_with(&refresh));
        assert_eq!(status, 200, "the refresh token stays good: {again}");
        let (status, refused) = answered(&hubspot, &refresh_with("not-a-refresh-token"));
        assert_eq!(
            (status, text(&refused["status"])),
            (400, "BAD_REFRESH_TOKEN".to_owned())
        );

        stack.advance(Duration::from_secs(601));
        let late = hubspot.authorize("client-1", redirect, &[OAUTH]);
        stack.advance(Duration::from_secs(AUTH_CODE_SECONDS as u64));
        let (status, _) = answered(&hubspot, &exchange(&late, "secret-1"));
        assert_eq!(status, 400, "a code lasts 10 minutes");

        hubspot.uninstall("client-1");
        let (status, _) = answered(&hubspot, &refresh_with(&refresh));
        assert_eq!(status, 400, "an uninstalled app's refresh token is gone");
    }

    #[test]
    fn associations_must_fit_their_type_and_name_an_existing_record() {
        let stack = Stack::new();
        let hubspot = HubSpot::install(&stack, TOKEN);
        let contact = hubspot.seed_contact(json!({ "email": "ada@example.com" }));
        let contact_id = text(&contact["id"]);
        let note = |to: &str, type_id: u64| {
            json!({
                "properties": { "hs_timestamp": "2026-11-26T12:00:00Z", "hs_note_body": "Called back" },
                "associations": [{ "to": { "id": to }, "types": [{ "associationCategory": "HUBSPOT_DEFINED", "associationTypeId": type_id }] }],
            })
        };
        let path = format!("{OBJECTS_PATH}/notes");
        let (status, created) = answered(
            &hubspot,
            &call("POST", &path, TOKEN, Some(note(&contact_id, 202))),
        );
        assert_eq!(status, 201, "{created}");
        assert_eq!(created["properties"]["hs_timestamp"], "2026-11-26T12:00:00.000Z");
        let note_id = text(&created["id"]);
        assert_eq!(
            hubspot.associations_of("notes", &note_id),
            vec![Association {
                to_object: "contacts".into(),
                to_id: contact_id.clone(),
                category: "HUBSPOT_DEFINED".into(),
                type_id: 202,
            }]
        );
        assert_eq!(hubspot.notes()[0]["associations"][0]["label"], "note_to_contact");
        let (_, read) = answered(
            &hubspot,
            &call(
                "GET",
                &format!("{path}/{note_id}?associations=contacts"),
                TOKEN,
                None,
            ),
        );
        assert_eq!(
            read["associations"]["contacts"]["results"][0]["id"],
            contact_id.as_str()
        );

        for (to, type_id, why) in [
            ("1", 202, "no such contact"),
            (contact_id.as_str(), 228, "228 goes to a ticket"),
            (contact_id.as_str(), 16, "16 goes from a ticket"),
            (contact_id.as_str(), 99_999, "an unknown type"),
        ] {
            let (status, refused) = answered(&hubspot, &call("POST", &path, TOKEN, Some(note(to, type_id))));
            assert_eq!(status, 400, "{why}: {refused}");
            assert_eq!(refused["category"], "VALIDATION_ERROR", "{why}");
        }
        assert_eq!(hubspot.notes().len(), 1);

        let long = "x".repeat(NOTE_BODY_MAX_CHARS + 1);
        let (status, _) = answered(
            &hubspot,
            &call(
                "POST",
                &path,
                TOKEN,
                Some(json!({ "properties": { "hs_timestamp": "1795694400000", "hs_note_body": long } })),
            ),
        );
        assert_eq!(status, 400, "a note's body is at most 65,536 characters");

        let communication = |channel: &str| {
            json!({
                "properties": {
                    "hs_communication_channel_type": channel,
                    "hs_communication_logged_from": "CRM",
                    "hs_communication_body": "Hi!",
                    "hs_timestamp": 1_795_694_400_000_u64,
                },
                "associations": [{ "to": { "id": contact_id }, "types": [{ "associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 81 }] }],
            })
        };
        let path = format!("{OBJECTS_PATH}/communications");
        let (status, created) = answered(
            &hubspot,
            &call("POST", &path, TOKEN, Some(communication("WHATS_APP"))),
        );
        assert_eq!(status, 201, "{created}");
        let (status, refused) = answered(
            &hubspot,
            &call("POST", &path, TOKEN, Some(communication("WHATSAPP"))),
        );
        assert_eq!(status, 400);
        assert!(text(&refused["message"]).contains("INVALID_OPTION"), "{refused}");
        let (status, refused) = answered(
            &hubspot,
            &call(
                "POST",
                &path,
                TOKEN,
                Some(
                    json!({ "properties": { "hs_communication_logged_from": "CRM", "hs_timestamp": "1795694400000" } }),
                ),
            ),
        );
        assert_eq!(status, 400);
        assert!(
            text(&refused["message"]).contains("hs_communication_channel_type"),
            "{refused}"
        );
        assert_eq!(hubspot.communications().len(), 1);
    }

    #[test]
    fn a_ticket_stage_must_belong_to_its_pipeline_and_an_owner_must_exist() {
        let stack = Stack::new();
        let hubspot = HubSpot::install(&stack, TOKEN);
        let owner = hubspot.add_owner("agent@acme.example", "Ana", "Gent");
        let escalations = hubspot.add_pipeline("Escalations", &[("Raised", "OPEN"), ("Resolved", "CLOSED")]);
        let raised = text(&escalations["stages"][0]["id"]);
        let path = format!("{OBJECTS_PATH}/tickets");
        let ticket =
            |properties: Value| call("POST", &path, TOKEN, Some(json!({ "properties": properties })));

        let (status, created) = answered(
            &hubspot,
            &ticket(
                json!({ "subject": "Refund", "hs_pipeline": "0", "hs_pipeline_stage": "1", "hs_ticket_priority": "HIGH", "hubspot_owner_id": owner }),
            ),
        );
        assert_eq!(status, 201, "{created}");
        let (status, refused) = answered(
            &hubspot,
            &ticket(json!({ "subject": "Refund", "hs_pipeline": "0", "hs_pipeline_stage": raised })),
        );
        assert_eq!(status, 400, "a stage of another pipeline");
        assert!(
            text(&refused["message"]).contains("\"name\":\"hs_pipeline_stage\""),
            "{refused}"
        );
        let (status, _) = answered(
            &hubspot,
            &ticket(
                json!({ "subject": "Refund", "hs_pipeline": escalations["id"], "hs_pipeline_stage": raised }),
            ),
        );
        assert_eq!(status, 201);
        let (status, defaulted) = answered(
            &hubspot,
            &ticket(json!({ "subject": "Refund", "hs_pipeline_stage": "2" })),
        );
        assert_eq!(status, 201, "the first pipeline unless one is named: {defaulted}");
        assert_eq!(defaulted["properties"]["hs_pipeline"], "0");
        let (status, refused) = answered(
            &hubspot,
            &ticket(json!({ "subject": "Refund", "hs_pipeline_stage": "1", "hubspot_owner_id": "42" })),
        );
        assert_eq!(status, 400, "an unknown owner: {refused}");
        let (status, refused) = answered(&hubspot, &ticket(json!({ "hs_pipeline_stage": "1" })));
        assert_eq!(status, 400);
        assert!(text(&refused["message"]).contains("subject"), "{refused}");

        let id = text(&created["id"]);
        let (status, _) = answered(
            &hubspot,
            &call(
                "PATCH",
                &format!("{path}/{id}"),
                TOKEN,
                Some(json!({ "properties": { "hs_pipeline_stage": "9" } })),
            ),
        );
        assert_eq!(status, 400);
        let (status, moved) = answered(
            &hubspot,
            &call(
                "PATCH",
                &format!("{path}/{id}"),
                TOKEN,
                Some(json!({ "properties": { "hs_pipeline_stage": "4" } })),
            ),
        );
        assert_eq!(status, 200);
        assert_eq!(moved["properties"]["hs_pipeline_stage"], "4");

        let (_, pipelines) = answered(&hubspot, &call("GET", "/crm/v3/pipelines/tickets", TOKEN, None));
        assert_eq!(pipelines["results"][0]["label"], "Support Pipeline");
        assert_eq!(
            pipelines["results"][0]["stages"][3]["metadata"]["ticketState"],
            "CLOSED"
        );
        assert_eq!(pipelines["results"][1]["label"], "Escalations");
        let (_, owners) = answered(
            &hubspot,
            &call(
                "GET",
                "/crm/owners/2026-03?email=AGENT%40acme.example",
                TOKEN,
                None,
            ),
        );
        assert_eq!(owners["results"][0]["id"], owner.as_str());
        assert_eq!(owners["results"][0]["firstName"], "Ana");
    }

    #[test]
    fn a_webhook_is_signed_with_hubspots_v3_signature_and_a_moved_ticket_makes_its_event() {
        let stack = Stack::new();
        let hubspot = HubSpot::install(&stack, TOKEN);
        let app_id = hubspot.register_app(
            "client-1",
            "app-secret",
            "https://edge.example/cb",
            &[OAUTH, TICKETS],
        );
        let ticket = hubspot.seed_ticket(json!({ "subject": "Broken", "hs_pipeline_stage": "1" }));
        let id = text(&ticket["id"]);
        stack.advance(Duration::from_secs(60));
        let events = hubspot.ticket_moved("client-1", &id, "4");
        assert_eq!(hubspot.tickets()[0]["properties"]["hs_pipeline_stage"], "4");
        let event = &events[0];
        assert_eq!(event["subscriptionType"], "ticket.propertyChange");
        assert_eq!(event["propertyName"], "hs_pipeline_stage");
        assert_eq!(event["propertyValue"], "4");
        assert_eq!(
            event["objectId"].as_u64().map(|n| n.to_string()),
            Some(id.clone())
        );
        assert_eq!(event["portalId"], PORTAL_ID);
        assert_eq!(event["appId"], app_id);
        assert_eq!(event["occurredAt"], stack.now_ms());
        let again = hubspot.ticket_moved("client-1", &id, "3");
        assert_eq!(again[0]["subscriptionId"], event["subscriptionId"]);
        assert_ne!(again[0]["eventId"], event["eventId"]);

        let uri = "https://edge.example/hubspot/webhooks?tenant=acme";
        let timestamp = stack.now_ms();
        let webhook = hubspot.webhook("app-secret", uri, &events, timestamp);
        let named = |name: &str| {
            webhook
                .header_pairs()
                .into_iter()
                .find(|(key, _)| key.eq_ignore_ascii_case(name))
                .map(|(_, value)| value.to_owned())
                .unwrap_or_default()
        };
        assert_eq!(named(TIMESTAMP_HEADER), timestamp.to_string());
        assert_eq!(named("content-type"), "application/json");
        // Computed with a second, independent HMAC: RFC 2104 by hand over SHA-256.
        let mut message = b"POST".to_vec();
        message.extend_from_slice(uri.as_bytes());
        message.extend_from_slice(&webhook.body);
        message.extend_from_slice(timestamp.to_string().as_bytes());
        let mut key = [0u8; 64];
        key[..10].copy_from_slice(b"app-secret");
        let inner: Vec<u8> = key
            .iter()
            .map(|byte| byte ^ 0x36)
            .chain(message.iter().copied())
            .collect();
        let inner = Sha256::digest(&inner);
        let outer: Vec<u8> = key
            .iter()
            .map(|byte| byte ^ 0x5c)
            .chain(inner.iter().copied())
            .collect();
        let expected = base64::engine::general_purpose::STANDARD.encode(Sha256::digest(&outer));
        assert_eq!(named(SIGNATURE_HEADER), expected);
        let mut v1 = b"app-secret".to_vec();
        v1.extend_from_slice(&webhook.body);
        assert_eq!(named("X-HubSpot-Signature"), hex::encode(Sha256::digest(&v1)));
        let body: Value = serde_json::from_slice(&webhook.body).unwrap_or_default();
        assert_eq!(body, events);
    }

    #[test]
    fn faults_hang_and_down_are_recorded_with_their_status() {
        let stack = Stack::new();
        let hubspot = HubSpot::install(&stack, TOKEN);
        hubspot.fail(1, any_call, error(502, "INTERNAL_ERROR", "Bad gateway"));
        assert_eq!(
            hubspot.answer(&call("GET", "/crm/v3/owners", TOKEN, None)).status,
            502
        );
        hubspot.hang(1);
        let hung = hubspot.answer(&call("GET", "/crm/v3/owners", TOKEN, None));
        assert!(hung.delay_ms >= 3_600_000);
        hubspot.down();
        assert!(
            hubspot
                .answer(&call("GET", "/crm/v3/owners", TOKEN, None))
                .refused
                .is_some()
        );
        hubspot.up();
        hubspot.latency(Duration::from_millis(250));
        let slow = hubspot.answer(&call("GET", "/crm/v3/owners", TOKEN, None));
        assert_eq!((slow.status, slow.delay_ms), (200, 250));
        let statuses: Vec<Option<u16>> = hubspot
            .received()
            .iter()
            .map(|received| received.status)
            .collect();
        assert_eq!(statuses, vec![Some(502), None, None, Some(200)]);
        assert_eq!(hubspot.calls().len(), 4);
        let removed = hubspot.seed_contact(json!({ "email": "gone@example.com" }));
        assert!(hubspot.remove_contact(&text(&removed["id"])).is_some());
        assert!(hubspot.contacts().is_empty());
    }
}
