//! Krayin CRM's REST API (the krayin/rest-api package, v2.1, on Laravel 10 with Sanctum) as a
//! partner script, ported from `tests/e2e/crm/krayin.mjs`: the paths our connector calls, all under
//! `/api/v1`:
//!
//! ```text
//! GET   /get                                      the token's user
//! GET   /contacts/persons                         (paginated)   POST /contacts/persons
//! GET   /contacts/persons/search?search=&searchFields=&searchJoin=&limit=
//! GET, PUT /contacts/persons/{id}
//! GET   /contacts/organizations?name=...          (paginated, exact filters)   POST ...
//! GET, PUT /contacts/organizations/{id}
//! GET   /leads                                    (paginated)   POST /leads
//! GET, PUT /leads/{id}      PUT /leads/stage/edit/{id}
//! GET   /settings/pipelines[/{id}]  /settings/sources[/{id}]  /settings/types[/{id}]
//! GET   /activities                               (paginated)   POST /activities
//! GET, PUT /activities/{id}
//! ```
//!
//! with Krayin's conventions, read from its sources: `Authorization: Bearer <Sanctum token>`; JSON
//! answers only when the request "expects JSON" (an `Accept` naming JSON, or `X-Requested-With:
//! XMLHttpRequest` with no or a `*/*` Accept): otherwise a 401 or a 422 is a 302 redirect, as
//! Laravel does for browsers. A created or updated record is answered 200 `{data, message}`; a
//! record `{data}`; a list `{data, links, meta}` (Laravel's paginator: 10 a page, newest first,
//! `?page=&limit=`, `?pagination=0` for all); a person search `{data}` without paging. Errors: 422
//! `{message, errors: {"emails.0.value": ["..."]}}` with Laravel's and Krayin's wording, 404/401
//! `{message}`.
//!
//! Validation follows Krayin's attribute forms, quirks included: a rule applies only to a key the
//! body carries (a missing `name` is not "required"); emails and contact numbers are unique across
//! persons (compared exactly, as JSON values); `lead_pipeline_stage_id` must be a key of a lead
//! body (without it Krayin fails with a 500; null is refused as required; 0 means the default
//! pipeline's first stage); a person body must carry `contact_numbers` with at least one entry
//! whose value is not null (a 500 otherwise; `""` passes and is never checked for uniqueness); an
//! unknown organization, source, type or user id is a database error, a 500.
//!
//! Limits, as Laravel's `throttle:api` applies them when a test turns them on
//! ([`Krayin::set_rate_limit`]): so many requests a window per user, the window starting at the
//! user's first request; every authenticated answer carries `X-RateLimit-Limit` and
//! `X-RateLimit-Remaining`; past the budget a 429 `{"message": "Too Many Attempts."}` with
//! `Retry-After`, `X-RateLimit-Reset` (Unix seconds) and a remaining of 0. Unauthenticated
//! requests are refused before they count. Time is the stack's clock.
//!
//! A test scripts faults with [`Krayin::fail`] (a status for the next matching calls, 429 with
//! `Retry-After`, 5xx, Krayin's own 422 body), [`Krayin::down`] (connections refused until
//! [`Krayin::up`]) and [`Krayin::set_latency`] (every answer after a while, so that the workers
//! waiting on Krayin interleave as concurrent isolates do), and reads what was written from the records kept here, as stored (not as a
//! second reading of our own requests).

use super::json_reply;
use domain::time::Timestamp;
use edge::runtime::native::{Outbound, Reply, Stack};
use serde::Serialize;
use serde_json::{Map, Value, json};
use std::cell::RefCell;
use std::cmp::Ordering;
use std::collections::BTreeMap;
use std::rc::Rc;
use std::time::Duration;

pub const API_PREFIX: &str = "/api/v1";
pub const DEFAULT_PAGE_SIZE: usize = 10;

pub const UNAUTHENTICATED: &str = "You are not authenticated. Please log in to continue.";
pub const NOT_FOUND: &str = "The requested resource could not be found.";
pub const FORBIDDEN: &str = "You do not have permission to access this resource.";
pub const SERVER_ERROR: &str = "An unexpected error occurred on the server. Please try again later.";
pub const TOO_MANY_ATTEMPTS: &str = "Too Many Attempts.";
pub const TAKEN: &str = "The value has already been taken.";
pub const DECIMAL: &str = "The field must be a decimal number.";

/// The Krayin user the token of an installed Krayin belongs to.
pub const USER_ID: u64 = 1;
pub const USER_NAME: &str = "Chat Integration";
pub const USER_EMAIL: &str = "integration@krayin.test";
/// The token an installed Krayin answers (a Sanctum 3 plain token: `{id}|{40 characters}`).
pub const TOKEN: &str = "1|KrayinPlainTextTokenOfTheIntegration0000001";

/// A user of Krayin's, as its `users` table has them.
#[derive(Debug, Clone)]
pub struct User {
    pub id: u64,
    pub name: String,
    pub email: String,
    /// `global` sees every person; `individual` only its own.
    pub view_permission: &'static str,
}

/// A stage of a pipeline, as seeded.
#[derive(Debug, Clone, Serialize)]
pub struct Stage {
    pub id: u64,
    pub code: &'static str,
    pub name: &'static str,
    pub probability: u8,
    pub sort_order: u32,
    pub lead_value: u64,
    pub is_user_defined: u8,
    pub lead_pipeline_id: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct Pipeline {
    pub id: u64,
    pub name: &'static str,
    pub is_default: u8,
    pub rotten_days: u32,
    pub stages: Vec<Stage>,
}

/// A lead source or type: `{id, name}`.
#[derive(Debug, Clone, Serialize)]
pub struct Named {
    pub id: u64,
    pub name: &'static str,
}

/// A person as stored: what the body gave, as JSON values.
#[derive(Debug, Clone, Serialize)]
pub struct Person {
    pub id: u64,
    pub name: Value,
    pub emails: Vec<Value>,
    pub contact_numbers: Vec<Value>,
    pub job_title: Value,
    pub organization_id: Option<u64>,
    pub user_id: Option<u64>,
    pub created_at: i64,
    pub updated_at: i64,
}

#[derive(Debug, Clone, Serialize)]
pub struct Organization {
    pub id: u64,
    pub name: Value,
    pub address: Value,
    pub user_id: Value,
    pub created_at: i64,
    pub updated_at: i64,
}

/// A move of a lead from one stage to another, and which call made it.
#[derive(Debug, Clone, PartialEq)]
pub struct StageMove {
    pub at_ms: i64,
    pub from: Option<u64>,
    pub to: u64,
    pub code: &'static str,
    /// `create`, `update` or `stage-edit`.
    pub via: &'static str,
}

#[derive(Debug, Clone, Serialize)]
pub struct Lead {
    pub id: u64,
    pub title: Value,
    pub description: Value,
    pub lead_value: Value,
    /// What the last body sent as `lead_value`: a fresh record echoes it.
    #[serde(skip)]
    pub lead_value_input: Value,
    pub status: u8,
    pub lost_reason: Value,
    pub closed_at: Option<i64>,
    pub user_id: Option<u64>,
    pub person_id: Option<u64>,
    pub lead_source_id: Option<u64>,
    pub lead_type_id: Option<u64>,
    pub lead_pipeline_id: Option<u64>,
    pub lead_pipeline_stage_id: Option<u64>,
    pub expected_close_date: Value,
    pub created_at: i64,
    pub updated_at: i64,
    #[serde(skip)]
    pub stage_history: Vec<StageMove>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Participant {
    User(u64),
    Person(u64),
}

#[derive(Debug, Clone, Serialize)]
pub struct Activity {
    pub id: u64,
    pub title: Value,
    #[serde(rename = "type")]
    pub activity_type: Value,
    pub comment: Value,
    pub additional: Value,
    pub location: Value,
    /// On the stack's clock, ms.
    pub schedule_from: Option<i64>,
    pub schedule_to: Option<i64>,
    pub is_done: u8,
    pub user_id: u64,
    #[serde(skip)]
    pub participants: Vec<Participant>,
    /// The leads and persons Krayin's listener linked it to.
    pub lead_ids: Vec<u64>,
    pub person_ids: Vec<u64>,
    pub created_at: i64,
    pub updated_at: i64,
}

impl Activity {
    pub fn title(&self) -> &str {
        self.title.as_str().unwrap_or_default()
    }

    pub fn comment(&self) -> &str {
        self.comment.as_str().unwrap_or_default()
    }

    /// The persons among its participants (`activity_participants.person_id`), in the order given.
    pub fn participant_persons(&self) -> Vec<u64> {
        self.participants
            .iter()
            .filter_map(|participant| match participant {
                Participant::Person(id) => Some(*id),
                Participant::User(_) => None,
            })
            .collect()
    }
}

/// One request Krayin got, and the status it answered (0: a connection it never answered).
#[derive(Debug, Clone)]
pub struct Call {
    pub call: Outbound,
    pub status: u16,
}

/// A 429 the rate limit gave (not an injected one).
#[derive(Debug, Clone, PartialEq)]
pub struct Throttle {
    pub at_ms: i64,
    pub user_id: u64,
    pub method: String,
    pub path: String,
    pub retry_after: i64,
}

/// Laravel's `throttle:api`: `per_window` requests per user every `window_ms`.
#[derive(Debug, Clone, Copy)]
pub struct RateLimit {
    pub per_window: u32,
    pub window_ms: i64,
}

/// Which calls a fault is for.
type Matcher = Box<dyn Fn(&Outbound) -> bool>;

/// A scripted failure: the next `times` calls it matches (all, without a matcher) answer `status`
/// with Krayin's `{message}` for it (or `body`), and `Retry-After` when given.
pub struct Fault {
    status: u16,
    retry_after: Option<u32>,
    times: usize,
    matches: Option<Matcher>,
    body: Option<Value>,
}

impl Fault {
    pub fn status(status: u16) -> Self {
        Self {
            status,
            retry_after: None,
            times: 1,
            matches: None,
            body: None,
        }
    }

    pub fn times(mut self, times: usize) -> Self {
        self.times = times;
        self
    }

    pub fn retry_after(mut self, seconds: u32) -> Self {
        self.retry_after = Some(seconds);
        self
    }

    pub fn body(mut self, body: Value) -> Self {
        self.body = Some(body);
        self
    }

    /// Only calls for which `matches` holds.
    pub fn matching(mut self, matches: impl Fn(&Outbound) -> bool + 'static) -> Self {
        self.matches = Some(Box::new(matches));
        self
    }

    /// Only `method` calls to `path` (`/api/v1/leads`).
    pub fn on(self, method: &'static str, path: &'static str) -> Self {
        self.matching(move |call| call.method == method && call.path() == path)
    }
}

#[derive(Default)]
struct Window {
    hits: u32,
    reset_at_ms: i64,
}

#[derive(Default)]
struct Ids {
    person: u64,
    organization: u64,
    lead: u64,
    activity: u64,
}

struct State {
    host: String,
    tokens: Vec<(String, u64)>,
    users: Vec<User>,
    pipelines: Vec<Pipeline>,
    sources: Vec<Named>,
    types: Vec<Named>,
    seeded_at: i64,
    persons: Vec<Person>,
    organizations: Vec<Organization>,
    leads: Vec<Lead>,
    activities: Vec<Activity>,
    ids: Ids,
    rate_limit: Option<RateLimit>,
    windows: BTreeMap<u64, Window>,
    throttles: Vec<Throttle>,
    faults: Vec<Fault>,
    down: bool,
    /// How long each answer takes, on the stack's clock.
    latency: Duration,
    calls: Vec<Call>,
}

/// Why a request is answered with an error: Laravel's exception, as it renders.
#[derive(Debug)]
struct Failure {
    status: u16,
    body: Value,
}

type Handled = Result<(u16, Value), Failure>;

fn not_found() -> Failure {
    Failure {
        status: 404,
        body: json!({ "message": NOT_FOUND }),
    }
}

fn server_error(detail: &str) -> Failure {
    Failure {
        status: 500,
        body: json!({ "message": SERVER_ERROR, "detail": detail }),
    }
}

/// Laravel's 422: the first message, "(and N more errors)", and every field's messages.
pub fn validation_body(errors: &[(String, Vec<String>)]) -> Value {
    let messages: Vec<&String> = errors.iter().flat_map(|(_, list)| list).collect();
    let more = messages.len().saturating_sub(1);
    let first = messages.first().map(|m| m.as_str()).unwrap_or_default();
    let message = match more {
        0 => first.to_owned(),
        1 => format!("{first} (and 1 more error)"),
        n => format!("{first} (and {n} more errors)"),
    };
    let mut fields = Map::new();
    for (field, list) in errors {
        fields.insert(field.clone(), json!(list));
    }
    json!({ "message": message, "errors": fields })
}

/// Collects errors field by field, in the order the rules are checked.
#[derive(Default)]
struct Errors(Vec<(String, Vec<String>)>);

impl Errors {
    fn add(&mut self, field: &str, message: String) {
        match self.0.iter_mut().find(|(known, _)| known == field) {
            Some((_, list)) => list.push(message),
            None => self.0.push((field.to_owned(), vec![message])),
        }
    }

    fn check(self) -> Result<(), Failure> {
        if self.0.is_empty() {
            return Ok(());
        }
        Err(Failure {
            status: 422,
            body: validation_body(&self.0),
        })
    }
}

/// Laravel names a field in a message by its key with underscores as spaces.
fn label(field: &str) -> String {
    field.replace('_', " ")
}

fn is_blank(value: Option<&Value>) -> bool {
    match value {
        None | Some(Value::Null) => true,
        Some(Value::String(text)) => text.trim().is_empty(),
        Some(Value::Array(items)) => items.is_empty(),
        Some(Value::Object(members)) => members.is_empty(),
        Some(_) => false,
    }
}

fn is_email(value: &Value) -> bool {
    let Some(text) = value.as_str() else {
        return false;
    };
    if text.chars().any(char::is_whitespace) {
        return false;
    }
    let Some((local, domain)) = text.split_once('@') else {
        return false;
    };
    !local.is_empty()
        && !domain.contains('@')
        && domain
            .char_indices()
            .any(|(at, c)| c == '.' && at > 0 && at + 1 < domain.len())
}

/// JavaScript's `String(value)`, for the rules that compare text.
fn js_string(value: &Value) -> String {
    match value {
        Value::Null => "null".to_owned(),
        Value::String(text) => text.clone(),
        Value::Number(number) => match number.as_f64() {
            Some(float) if float.fract() == 0.0 && float.abs() < 1e21 => format!("{}", float as i64),
            _ => number.to_string(),
        },
        Value::Bool(flag) => flag.to_string(),
        Value::Array(items) => items.iter().map(js_string).collect::<Vec<_>>().join(","),
        Value::Object(_) => "[object Object]".to_owned(),
    }
}

/// JavaScript's `Number(value)`: NaN as None.
fn js_number(value: &Value) -> Option<f64> {
    match value {
        Value::Null => Some(0.0),
        Value::Bool(flag) => Some(f64::from(u8::from(*flag))),
        Value::Number(number) => number.as_f64(),
        Value::String(text) if text.trim().is_empty() => Some(0.0),
        Value::String(text) => text.trim().parse().ok(),
        _ => None,
    }
}

fn js_truthy(value: Option<&Value>) -> bool {
    match value {
        None | Some(Value::Null) => false,
        Some(Value::Bool(flag)) => *flag,
        Some(Value::Number(number)) => number.as_f64().is_some_and(|n| n != 0.0 && !n.is_nan()),
        Some(Value::String(text)) => !text.is_empty(),
        Some(_) => true,
    }
}

/// An id as Krayin's `find($id)` reads it: a positive whole number.
fn id_of(value: &Value) -> Option<u64> {
    js_number(value)
        .filter(|n| *n > 0.0 && n.fract() == 0.0)
        .map(|n| n as u64)
}

fn is_decimal(value: &Value) -> bool {
    let text = js_string(value);
    let (whole, fraction) = match text.split_once('.') {
        Some((whole, fraction)) => (whole, Some(fraction)),
        None => (text.as_str(), None),
    };
    whole.bytes().all(|b| b.is_ascii_digit())
        && fraction.is_none_or(|f| (1..=4).contains(&f.len()) && f.bytes().all(|b| b.is_ascii_digit()))
}

/// Krayin's datetime columns take `Y-m-d`, `Y-m-d H:i[:s[.u]]` (UTC) or an ISO 8601 time with an
/// offset; anything else is MySQL's "invalid datetime format".
fn datetime(value: &str) -> Option<i64> {
    let text = value.trim().replacen(' ', "T", 1);
    let (date, rest) = text.split_at(text.len().min(10));
    let normal = if rest.is_empty() {
        format!("{date}T00:00:00Z")
    } else {
        let rest = rest.strip_prefix('T')?;
        let zone_at = rest.find(['Z', 'z', '+', '-']).unwrap_or(rest.len());
        let (time, zone) = rest.split_at(zone_at);
        let time = if time.len() == 5 {
            format!("{time}:00")
        } else {
            time.to_owned()
        };
        let zone = match zone {
            "" => "Z".to_owned(),
            zone if zone.len() == 5 && !zone.contains(':') => format!("{}:{}", &zone[..3], &zone[3..]),
            zone => zone.to_owned(),
        };
        format!("{date}T{time}{zone}")
    };
    Timestamp::parse_rfc3339(&normal).map(Timestamp::millis)
}

/// Laravel serialises dates as ISO 8601 with microseconds in UTC.
fn laravel_date(ms: Option<i64>) -> Value {
    ms.map_or(Value::Null, |ms| {
        json!(Timestamp::from_millis(ms).to_rfc3339_micros())
    })
}

/// Krayin runs Laravel's TrimStrings (but not ConvertEmptyStringsToNull) on every request.
fn trim_strings(value: Value) -> Value {
    match value {
        Value::String(text) => Value::String(text.trim().to_owned()),
        Value::Array(items) => Value::Array(items.into_iter().map(trim_strings).collect()),
        Value::Object(members) => Value::Object(
            members
                .into_iter()
                .map(|(key, value)| (key, trim_strings(value)))
                .collect(),
        ),
        other => other,
    }
}

/// Laravel's `expectsJson()`: an Accept naming JSON, or an XHR that accepts anything.
pub fn expects_json(call: &Outbound) -> bool {
    let accept = call.header("accept").unwrap_or_default();
    let first = accept
        .split(',')
        .next()
        .and_then(|part| part.split(';').next())
        .unwrap_or_default()
        .trim();
    if first.contains("/json") || first.contains("+json") {
        return true;
    }
    let ajax = call
        .header("x-requested-with")
        .is_some_and(|value| value.eq_ignore_ascii_case("xmlhttprequest"));
    ajax && (first.is_empty() || first == "*/*" || first == "*")
}

/// The entries of a list a body gives as an array or as an object (`{"0": ...}`).
fn entries(list: Option<&Value>) -> Vec<(String, Value)> {
    match list {
        Some(Value::Array(items)) => items
            .iter()
            .enumerate()
            .map(|(at, item)| (at.to_string(), item.clone()))
            .collect(),
        Some(Value::Object(members)) => members.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
        _ => Vec::new(),
    }
}

fn kept_entries(list: Option<&Value>) -> Vec<Value> {
    entries(list)
        .into_iter()
        .map(|(_, entry)| entry)
        .filter(|entry| !entry.get("value").is_none_or(Value::is_null))
        .collect()
}

/// A JavaScript comparison of two column values, for `?sort=`.
fn compare(a: Option<&Value>, b: Option<&Value>) -> Ordering {
    match (a, b) {
        (Some(Value::Number(a)), Some(Value::Number(b))) => {
            a.as_f64().partial_cmp(&b.as_f64()).unwrap_or(Ordering::Equal)
        }
        (Some(Value::String(a)), Some(Value::String(b))) => a.cmp(b),
        _ => Ordering::Equal,
    }
}

/// One Krayin installation at `https://{host}`, with one Sanctum token of [`USER_ID`].
#[derive(Clone)]
pub struct Krayin {
    state: Rc<RefCell<State>>,
}

impl Krayin {
    /// Krayin at `https://{host}` as its installer seeds it (two pipelines, five sources, two
    /// types), answering [`TOKEN`], its own rate limit off.
    pub fn install(stack: &Stack, host: &str) -> Self {
        let krayin = Self::new(host, stack.now_ms());
        let serving = krayin.clone();
        stack.partner(host, move |call| serving.answer(call));
        krayin
    }

    /// The same Krayin, not yet reachable: its records made at `seeded_at` (ms).
    pub fn new(host: &str, seeded_at: i64) -> Self {
        Self {
            state: Rc::new(RefCell::new(State {
                host: host.to_owned(),
                tokens: vec![(TOKEN.to_owned(), USER_ID)],
                users: vec![User {
                    id: USER_ID,
                    name: USER_NAME.to_owned(),
                    email: USER_EMAIL.to_owned(),
                    view_permission: "global",
                }],
                pipelines: default_pipelines(),
                sources: ["Email", "Web", "Web Form", "Phone", "Direct"]
                    .iter()
                    .zip(1..)
                    .map(|(name, id)| Named { id, name })
                    .collect(),
                types: vec![
                    Named {
                        id: 1,
                        name: "New Business",
                    },
                    Named {
                        id: 2,
                        name: "Existing Business",
                    },
                ],
                seeded_at,
                persons: Vec::new(),
                organizations: Vec::new(),
                leads: Vec::new(),
                activities: Vec::new(),
                ids: Ids::default(),
                rate_limit: None,
                windows: BTreeMap::new(),
                throttles: Vec::new(),
                faults: Vec::new(),
                down: false,
                latency: Duration::ZERO,
                calls: Vec::new(),
            })),
        }
    }

    pub fn host(&self) -> String {
        self.state.borrow().host.clone()
    }

    /// What a connector is configured with: `https://{host}`.
    pub fn origin(&self) -> String {
        format!("https://{}", self.host())
    }

    pub fn token(&self) -> &'static str {
        TOKEN
    }

    /// Queues a failure; steps are tried in the order queued, each request takes at most one.
    pub fn fail(&self, fault: Fault) {
        self.state.borrow_mut().faults.push(fault);
    }

    /// Stops listening: every connection is refused until [`Krayin::up`]; what it keeps is kept.
    pub fn down(&self) {
        self.state.borrow_mut().down = true;
    }

    pub fn up(&self) {
        self.state.borrow_mut().down = false;
    }

    /// Every answer takes `latency` (on the stack's clock): the workers waiting on Krayin
    /// interleave, as concurrent isolates do.
    pub fn set_latency(&self, latency: Duration) {
        self.state.borrow_mut().latency = latency;
    }

    /// Sets (or, with None, removes) the per-user budget; the current windows start afresh.
    pub fn set_rate_limit(&self, limit: Option<RateLimit>) {
        let mut state = self.state.borrow_mut();
        state.rate_limit = limit;
        state.windows.clear();
    }

    pub fn persons(&self) -> Vec<Person> {
        self.state.borrow().persons.clone()
    }

    pub fn organizations(&self) -> Vec<Organization> {
        self.state.borrow().organizations.clone()
    }

    pub fn leads(&self) -> Vec<Lead> {
        self.state.borrow().leads.clone()
    }

    pub fn activities(&self) -> Vec<Activity> {
        self.state.borrow().activities.clone()
    }

    pub fn activity_titled(&self, title: &str) -> Option<Activity> {
        self.activities().into_iter().find(|a| a.title() == title)
    }

    /// The activities of conversations (`Conversation #…`).
    pub fn conversation_activities(&self) -> Vec<Activity> {
        self.activities()
            .into_iter()
            .filter(|a| a.title().starts_with("Conversation #"))
            .collect()
    }

    /// The activities of messages (`Message from …`).
    pub fn message_activities(&self) -> Vec<Activity> {
        self.activities()
            .into_iter()
            .filter(|a| a.title().starts_with("Message from "))
            .collect()
    }

    /// Every request received while up, in order, with the status it was answered.
    pub fn calls(&self) -> Vec<Call> {
        self.state.borrow().calls.clone()
    }

    /// The calls under the API (`/api/v1/…`).
    pub fn api_calls(&self) -> Vec<Call> {
        self.calls()
            .into_iter()
            .filter(|call| call.call.path().starts_with(&format!("{API_PREFIX}/")))
            .collect()
    }

    /// The writes (POST, PUT) under the API.
    pub fn writes(&self) -> Vec<Call> {
        self.api_calls()
            .into_iter()
            .filter(|call| call.call.method == "POST" || call.call.method == "PUT")
            .collect()
    }

    /// How many `method` calls to `path` Krayin got.
    pub fn count(&self, method: &str, path: &str) -> usize {
        self.calls()
            .iter()
            .filter(|call| call.call.method == method && call.call.path() == path)
            .count()
    }

    pub fn throttles(&self) -> Vec<Throttle> {
        self.state.borrow().throttles.clone()
    }

    /// A record as the API answers it (`person`, `organization`, `lead`, `activity`).
    pub fn out(&self, kind: &str, id: u64) -> Option<Value> {
        let state = self.state.borrow();
        match kind {
            "person" => state
                .persons
                .iter()
                .find(|p| p.id == id)
                .map(|p| state.person_out(p)),
            "organization" => state
                .organizations
                .iter()
                .find(|o| o.id == id)
                .map(organization_out),
            "lead" => state
                .leads
                .iter()
                .find(|l| l.id == id)
                .map(|l| state.lead_out(l, false)),
            "activity" => state
                .activities
                .iter()
                .find(|a| a.id == id)
                .map(|a| state.activity_out(a)),
            _ => None,
        }
    }

    /// A person Krayin already has, stored as `POST /contacts/persons` would, without the checks.
    pub fn seed_person(&self, fields: Value) -> Person {
        let mut body = json!({ "contact_numbers": [{ "value": "", "label": "work" }] });
        merge(&mut body, fields);
        let mut state = self.state.borrow_mut();
        let now = state.seeded_at;
        state
            .store_person(body_of(&body), true, now)
            .unwrap_or_else(|failure| panic!("seeding a person: {failure:?}"))
    }

    pub fn seed_organization(&self, fields: Value) -> Organization {
        let mut state = self.state.borrow_mut();
        let now = state.seeded_at;
        state
            .store_organization(body_of(&fields), now)
            .unwrap_or_else(|failure| panic!("seeding an organization: {failure:?}"))
    }

    pub fn seed_lead(&self, fields: Value) -> Lead {
        let mut body = json!({ "lead_pipeline_stage_id": 0 });
        merge(&mut body, fields);
        let mut state = self.state.borrow_mut();
        let now = state.seeded_at;
        state
            .store_lead(body_of(&body), now)
            .unwrap_or_else(|failure| panic!("seeding a lead: {failure:?}"))
    }

    fn answer(&self, call: &Outbound) -> Reply {
        if self.state.borrow().down {
            return Reply::refused();
        }
        let reply = self.state.borrow_mut().handle(call);
        let mut state = self.state.borrow_mut();
        state.calls.push(Call {
            call: call.clone(),
            status: reply.status,
        });
        reply.after(state.latency)
    }
}

fn body_of(value: &Value) -> &Map<String, Value> {
    static EMPTY: std::sync::OnceLock<Map<String, Value>> = std::sync::OnceLock::new();
    value.as_object().unwrap_or_else(|| EMPTY.get_or_init(Map::new))
}

fn merge(into: &mut Value, fields: Value) {
    if let (Some(into), Value::Object(fields)) = (into.as_object_mut(), fields) {
        into.extend(fields);
    }
}

/// The pipelines Krayin's installer seeds (the default one, stages 1 to 6), and a second one.
fn default_pipelines() -> Vec<Pipeline> {
    let pipeline =
        |id, name, is_default, rotten_days, stages: &[(u64, &'static str, &'static str, u8)]| Pipeline {
            id,
            name,
            is_default,
            rotten_days,
            stages: stages
                .iter()
                .zip(1..)
                .map(|(&(stage, code, name, probability), sort_order)| Stage {
                    id: stage,
                    code,
                    name,
                    probability,
                    sort_order,
                    lead_value: 0,
                    is_user_defined: 0,
                    lead_pipeline_id: id,
                })
                .collect(),
        };
    vec![
        pipeline(
            1,
            "Default Pipeline",
            1,
            30,
            &[
                (1, "new", "New", 100),
                (2, "follow-up", "Follow Up", 100),
                (3, "prospect", "Prospect", 100),
                (4, "negotiation", "Negotiation", 100),
                (5, "won", "Won", 100),
                (6, "lost", "Lost", 0),
            ],
        ),
        pipeline(
            2,
            "Partnerships",
            0,
            60,
            &[
                (7, "new", "New", 100),
                (8, "qualified", "Qualified", 100),
                (9, "won", "Won", 100),
                (10, "lost", "Lost", 0),
            ],
        ),
    ]
}

/// The routes, as Krayin's `routes/api.php` declares them (path patterns after `/api/v1`).
#[derive(Debug, Clone, Copy)]
enum Route<'a> {
    CurrentUser,
    ListPersons,
    SearchPersons,
    GetPerson(&'a str),
    CreatePerson,
    UpdatePerson(&'a str),
    DeletePerson(&'a str),
    ListOrganizations,
    GetOrganization(&'a str),
    CreateOrganization,
    UpdateOrganization(&'a str),
    ListLeads,
    GetLead(&'a str),
    CreateLead,
    EditLeadStage(&'a str),
    UpdateLead(&'a str),
    ListPipelines,
    GetPipeline(&'a str),
    ListSources,
    GetSource(&'a str),
    ListTypes,
    GetType(&'a str),
    ListActivities,
    GetActivity(&'a str),
    CreateActivity,
    UpdateActivity(&'a str),
}

fn numeric(segment: &str) -> bool {
    !segment.is_empty() && segment.bytes().all(|b| b.is_ascii_digit())
}

/// Every route whose pattern the path matches, with its method, in the routes' order.
fn routes_of(path: &str) -> Vec<(&'static str, Route<'_>)> {
    let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let mut found = Vec::new();
    match segments.as_slice() {
        ["get"] => found.push(("GET", Route::CurrentUser)),
        ["contacts", "persons"] => {
            found.push(("GET", Route::ListPersons));
            found.push(("POST", Route::CreatePerson));
        }
        ["contacts", "persons", id] if !id.is_empty() => {
            if *id == "search" {
                found.push(("GET", Route::SearchPersons));
            }
            if numeric(id) {
                found.push(("GET", Route::GetPerson(id)));
            }
            found.push(("PUT", Route::UpdatePerson(id)));
            found.push(("DELETE", Route::DeletePerson(id)));
        }
        ["contacts", "organizations"] => {
            found.push(("GET", Route::ListOrganizations));
            found.push(("POST", Route::CreateOrganization));
        }
        ["contacts", "organizations", id] if !id.is_empty() => {
            found.push(("GET", Route::GetOrganization(id)));
            found.push(("PUT", Route::UpdateOrganization(id)));
        }
        ["leads"] => {
            found.push(("GET", Route::ListLeads));
            found.push(("POST", Route::CreateLead));
        }
        ["leads", id] if !id.is_empty() => {
            if numeric(id) {
                found.push(("GET", Route::GetLead(id)));
            }
            found.push(("PUT", Route::UpdateLead(id)));
        }
        ["leads", "stage", "edit", id] if !id.is_empty() => found.push(("PUT", Route::EditLeadStage(id))),
        ["settings", "pipelines"] => found.push(("GET", Route::ListPipelines)),
        ["settings", "pipelines", id] if !id.is_empty() => found.push(("GET", Route::GetPipeline(id))),
        ["settings", "sources"] => found.push(("GET", Route::ListSources)),
        ["settings", "sources", id] if !id.is_empty() => found.push(("GET", Route::GetSource(id))),
        ["settings", "types"] => found.push(("GET", Route::ListTypes)),
        ["settings", "types", id] if !id.is_empty() => found.push(("GET", Route::GetType(id))),
        ["activities"] => {
            found.push(("GET", Route::ListActivities));
            found.push(("POST", Route::CreateActivity));
        }
        ["activities", id] if !id.is_empty() => {
            found.push(("GET", Route::GetActivity(id)));
            found.push(("PUT", Route::UpdateActivity(id)));
        }
        _ => {}
    }
    found
}

fn id_in_path(segment: &str) -> Option<u64> {
    id_of(&Value::String(segment.to_owned()))
}

fn must<T>(record: Option<T>) -> Result<T, Failure> {
    record.ok_or_else(not_found)
}

fn saved(data: Value, message: &str) -> Handled {
    Ok((200, json!({ "data": data, "message": message })))
}

fn one(data: Value) -> Handled {
    Ok((200, json!({ "data": data })))
}

impl State {
    fn handle(&mut self, call: &Outbound) -> Reply {
        let now = call.at_ms;
        if let Some(reply) = self.take_fault(call) {
            return reply;
        }
        let full_path = call.path().to_owned();
        let Some(path) = full_path
            .strip_prefix(API_PREFIX)
            .filter(|path| path.starts_with('/'))
        else {
            return json_reply(404, &json!({ "message": NOT_FOUND }));
        };
        let candidates = routes_of(path);
        let Some(route) = candidates
            .iter()
            .find(|(method, _)| *method == call.method || (call.method == "HEAD" && *method == "GET"))
            .map(|(_, route)| *route)
        else {
            if candidates.is_empty() {
                return json_reply(404, &json!({ "message": NOT_FOUND }));
            }
            let mut allowed: Vec<&str> = Vec::new();
            for (method, _) in &candidates {
                let names: &[&str] = if *method == "GET" {
                    &["GET", "HEAD"]
                } else {
                    &[method]
                };
                for name in names {
                    if !allowed.contains(name) {
                        allowed.push(name);
                    }
                }
            }
            return json_reply(
                405,
                &json!({ "message": format!(
                    "The {} method is not supported for route {}. Supported methods: {}.",
                    call.method,
                    full_path.trim_start_matches('/'),
                    allowed.join(", ")
                ) }),
            );
        };
        let wants_json = expects_json(call);
        let bearer = call
            .header("authorization")
            .and_then(|value| {
                let (scheme, token) = value.trim().split_once(char::is_whitespace)?;
                scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
            })
            .filter(|token| !token.is_empty() && !token.contains(char::is_whitespace));
        let user = bearer.and_then(|token| {
            let id = self.tokens.iter().find(|(known, _)| known == token)?.1;
            self.users.iter().find(|user| user.id == id).cloned()
        });
        let Some(user) = user else {
            if !wants_json {
                return Reply::status(302).header("location", "/admin/login");
            }
            return json_reply(401, &json!({ "message": UNAUTHENTICATED }));
        };
        let mut limit_headers = Vec::new();
        if let Some(limit) = self.rate_limit {
            let window = self.windows.entry(user.id).or_default();
            if window.reset_at_ms == 0 || now >= window.reset_at_ms {
                *window = Window {
                    hits: 0,
                    reset_at_ms: now + limit.window_ms,
                };
            }
            let retry_after = ((window.reset_at_ms - now + 999) / 1000).max(1);
            limit_headers.push(("x-ratelimit-limit", limit.per_window.to_string()));
            if window.hits >= limit.per_window {
                let reset = (window.reset_at_ms + 999) / 1000;
                self.throttles.push(Throttle {
                    at_ms: now,
                    user_id: user.id,
                    method: call.method.clone(),
                    path: full_path.clone(),
                    retry_after,
                });
                return with_headers(
                    json_reply(429, &json!({ "message": TOO_MANY_ATTEMPTS })),
                    &[
                        ("x-ratelimit-limit", limit.per_window.to_string()),
                        ("x-ratelimit-remaining", "0".to_owned()),
                        ("retry-after", retry_after.to_string()),
                        ("x-ratelimit-reset", reset.to_string()),
                    ],
                );
            }
            window.hits += 1;
            limit_headers.push((
                "x-ratelimit-remaining",
                (limit.per_window - window.hits).to_string(),
            ));
        }
        let parsed: Option<Value> = if call.body.is_empty() {
            Some(Value::Null)
        } else {
            serde_json::from_slice(&call.body).ok()
        };
        if matches!(call.method.as_str(), "POST" | "PUT") && parsed.is_none() {
            return with_headers(
                json_reply(400, &json!({ "message": "Syntax error" })),
                &limit_headers,
            );
        }
        let body = match parsed.map(trim_strings) {
            Some(Value::Object(body)) => body,
            _ => Map::new(),
        };
        match self.run(route, call, &body, &user, now) {
            Ok((status, body)) => with_headers(json_reply(status, &body), &limit_headers),
            Err(failure) if failure.status == 422 && !wants_json => {
                let referer = call.header("referer").unwrap_or("/").to_owned();
                let mut headers = limit_headers;
                headers.push(("location", referer));
                with_headers(Reply::status(302), &headers)
            }
            Err(failure) => with_headers(json_reply(failure.status, &failure.body), &limit_headers),
        }
    }

    fn take_fault(&mut self, call: &Outbound) -> Option<Reply> {
        let at = self.faults.iter().position(|fault| {
            fault.times > 0 && fault.matches.as_ref().is_none_or(|matches| matches(call))
        })?;
        let fault = &mut self.faults[at];
        fault.times -= 1;
        let message = match fault.status {
            401 => UNAUTHENTICATED.to_owned(),
            403 => FORBIDDEN.to_owned(),
            404 => NOT_FOUND.to_owned(),
            429 => TOO_MANY_ATTEMPTS.to_owned(),
            status => format!("Injected failure {status}"),
        };
        let body = fault
            .body
            .clone()
            .unwrap_or_else(|| json!({ "message": message }));
        let mut reply = json_reply(fault.status, &body);
        if let Some(seconds) = fault.retry_after {
            reply = reply.header("retry-after", &seconds.to_string());
        }
        if fault.times == 0 {
            self.faults.remove(at);
        }
        Some(reply)
    }

    fn run(
        &mut self,
        route: Route<'_>,
        call: &Outbound,
        body: &Map<String, Value>,
        user: &User,
        now: i64,
    ) -> Handled {
        let query = call.query();
        let path = call.path().to_owned();
        match route {
            Route::CurrentUser => one(self.user_out(user)),
            Route::ListPersons => {
                let rows = self.persons.clone();
                Ok((200, list_resources(&rows, &query, &path, |p| self.person_out(p))))
            }
            Route::SearchPersons => Ok((200, self.search_persons(&query, user)?)),
            Route::GetPerson(id) => {
                let person = must(self.person(id_in_path(id)))?;
                one(self.person_out(&person))
            }
            Route::CreatePerson => {
                let mut errors = Errors::default();
                self.check_person_attributes(&mut errors, body, "", None);
                errors.check()?;
                let person = self.store_person(body, true, now)?;
                saved(self.person_out(&person), "Person created successfully.")
            }
            Route::DeletePerson(id) => {
                // Krayin deletes the person's leads with them (their foreign key cascades).
                let at = must(self.persons.iter().position(|p| Some(p.id) == id_in_path(id)))?;
                let person = self.persons.remove(at);
                self.leads.retain(|lead| lead.person_id != Some(person.id));
                Ok((200, json!({ "message": "Person deleted successfully." })))
            }
            Route::UpdatePerson(id) => {
                let mut errors = Errors::default();
                let except = body.get("id").cloned().unwrap_or_else(|| json!(id));
                self.check_person_attributes(&mut errors, body, "", id_of(&except));
                errors.check()?;
                let fields = self.person_fields(body, true, now)?;
                let at = must(self.persons.iter().position(|p| Some(p.id) == id_in_path(id)))?;
                let person = &mut self.persons[at];
                fields.apply(person);
                person.updated_at = now;
                let person = person.clone();
                saved(self.person_out(&person), "Person updated successfully.")
            }
            Route::ListOrganizations => {
                let rows = self.organizations.clone();
                Ok((200, list_resources(&rows, &query, &path, organization_out)))
            }
            Route::GetOrganization(id) => {
                let organization = must(self.organizations.iter().find(|o| Some(o.id) == id_in_path(id)))?;
                one(organization_out(organization))
            }
            Route::CreateOrganization => {
                self.check_organization(body, None)?;
                let organization = self.store_organization(body, now)?;
                saved(
                    organization_out(&organization),
                    "Organization created successfully.",
                )
            }
            Route::UpdateOrganization(id) => {
                let except = body.get("id").cloned().unwrap_or_else(|| json!(id));
                self.check_organization(body, id_of(&except))?;
                let organization = must(
                    self.organizations
                        .iter_mut()
                        .find(|o| Some(o.id) == id_in_path(id)),
                )?;
                if let Some(name) = body.get("name") {
                    organization.name = name.clone();
                }
                if let Some(address) = body.get("address") {
                    organization.address = address.clone();
                }
                organization.updated_at = now;
                saved(
                    organization_out(organization),
                    "Organization updated successfully.",
                )
            }
            Route::ListLeads => {
                let rows = self.leads.clone();
                Ok((
                    200,
                    list_resources(&rows, &query, &path, |l| self.lead_out(l, false)),
                ))
            }
            Route::GetLead(id) => {
                let lead = must(self.leads.iter().find(|l| Some(l.id) == id_in_path(id)))?;
                one(self.lead_out(lead, false))
            }
            Route::CreateLead => {
                let lead = self.store_lead(body, now)?;
                saved(self.lead_out(&lead, true), "Lead created successfully.")
            }
            Route::EditLeadStage(id) => {
                let lead = self.edit_lead_stage(id, body, now)?;
                saved(self.lead_out(&lead, false), "Lead updated successfully.")
            }
            Route::UpdateLead(id) => {
                let lead = self.update_lead(id, body, now)?;
                saved(self.lead_out(&lead, true), "Lead updated successfully.")
            }
            Route::ListPipelines => {
                let rows = self.pipelines.clone();
                Ok((
                    200,
                    list_resources(&rows, &query, &path, |p| self.pipeline_out(p)),
                ))
            }
            Route::GetPipeline(id) => {
                let pipeline = must(self.pipelines.iter().find(|p| Some(p.id) == id_in_path(id)))?;
                one(self.pipeline_out(pipeline))
            }
            Route::ListSources | Route::ListTypes => {
                let rows = if matches!(route, Route::ListSources) {
                    self.sources.clone()
                } else {
                    self.types.clone()
                };
                Ok((200, list_resources(&rows, &query, &path, |n| self.named_out(n))))
            }
            Route::GetSource(id) | Route::GetType(id) => {
                let rows = if matches!(route, Route::GetSource(_)) {
                    &self.sources
                } else {
                    &self.types
                };
                let named = must(rows.iter().find(|n| Some(n.id) == id_in_path(id)))?;
                one(self.named_out(named))
            }
            Route::ListActivities => {
                let rows = self.activities.clone();
                Ok((
                    200,
                    list_resources(&rows, &query, &path, |a| self.activity_out(a)),
                ))
            }
            Route::GetActivity(id) => {
                let activity = must(self.activities.iter().find(|a| Some(a.id) == id_in_path(id)))?;
                one(self.activity_out(activity))
            }
            Route::CreateActivity => {
                let activity = self.store_activity(body, user, now)?;
                saved(self.activity_out(&activity), "Activity created successfully.")
            }
            Route::UpdateActivity(id) => {
                let activity = self.update_activity(id, body, now)?;
                saved(self.activity_out(&activity), "Activity updated successfully.")
            }
        }
    }

    // ---- resources as Krayin's API answers them ----

    fn user_out(&self, user: &User) -> Value {
        let at = laravel_date(Some(self.seeded_at));
        json!({
            "id": user.id, "name": user.name, "email": user.email, "status": 1,
            "view_permission": user.view_permission,
            "role": { "id": 1, "name": "Administrator", "description": "Administrator role",
                      "permission_type": "all", "permissions": null, "created_at": at, "updated_at": at },
            "created_at": at, "updated_at": at, "image": null, "image_url": null,
        })
    }

    fn person(&self, id: Option<u64>) -> Option<Person> {
        self.persons.iter().find(|p| Some(p.id) == id).cloned()
    }

    fn person_out(&self, person: &Person) -> Value {
        let mut out = json!({
            "id": person.id, "name": person.name, "emails": person.emails,
            "contact_numbers": person.contact_numbers, "job_title": person.job_title,
            "created_at": laravel_date(Some(person.created_at)),
            "updated_at": laravel_date(Some(person.updated_at)),
        });
        if let Some(organization) = self
            .organizations
            .iter()
            .find(|o| Some(o.id) == person.organization_id)
        {
            out["organization"] = organization_out(organization);
        }
        if let Some(owner) = self.users.iter().find(|u| Some(u.id) == person.user_id) {
            out["sales_owner"] = self.user_out(owner);
        }
        out
    }

    fn stage_out(&self, stage: &Stage) -> Value {
        let at = laravel_date(Some(self.seeded_at));
        json!({
            "id": stage.id, "code": stage.code, "name": stage.name, "lead_value": stage.lead_value,
            "formatted_lead_value": format!("${:.2}", stage.lead_value as f64),
            "is_user_defined": stage.is_user_defined, "created_at": at, "updated_at": at,
        })
    }

    fn pipeline_out(&self, pipeline: &Pipeline) -> Value {
        let at = laravel_date(Some(self.seeded_at));
        json!({
            "id": pipeline.id, "name": pipeline.name, "is_default": pipeline.is_default,
            "rotten_days": pipeline.rotten_days,
            "stages": pipeline.stages.iter().map(|s| self.stage_out(s)).collect::<Vec<_>>(),
            "created_at": at, "updated_at": at,
        })
    }

    fn named_out(&self, named: &Named) -> Value {
        let at = laravel_date(Some(self.seeded_at));
        json!({ "id": named.id, "name": named.name, "created_at": at, "updated_at": at })
    }

    fn lead_out(&self, lead: &Lead, fresh: bool) -> Value {
        // A record read back from MySQL has its decimal(12,4) as a string; a fresh one echoes
        // the input.
        let lead_value = if fresh {
            lead.lead_value_input.clone()
        } else if lead.lead_value.is_null() {
            Value::Null
        } else {
            json!(format!("{:.4}", js_number(&lead.lead_value).unwrap_or(f64::NAN)))
        };
        json!({
            "id": lead.id, "title": lead.title, "description": lead.description,
            "lead_value": lead_value, "status": lead.status, "lost_reason": lead.lost_reason,
            "closed_at": laravel_date(lead.closed_at),
            "user": self.users.iter().find(|u| Some(u.id) == lead.user_id).map(|u| self.user_out(u)),
            "person": self.person(lead.person_id).map(|p| self.person_out(&p)),
            "lead_products": [],
            "lead_source_id": lead.lead_source_id, "lead_type_id": lead.lead_type_id,
            "lead_pipeline_id": lead.lead_pipeline_id,
            "lead_pipeline_stage_id": lead.lead_pipeline_stage_id,
            "created_at": laravel_date(Some(lead.created_at)),
            "updated_at": laravel_date(Some(lead.updated_at)),
            "expected_close_date": lead.expected_close_date,
        })
    }

    fn activity_out(&self, activity: &Activity) -> Value {
        let participants: Vec<Value> = activity
            .participants
            .iter()
            .map(|participant| match participant {
                Participant::User(id) => json!({
                    "user": self.users.iter().find(|u| u.id == *id).map(|u| self.user_out(u))
                }),
                Participant::Person(id) => json!({
                    "person": self.person(Some(*id)).map(|p| self.person_out(&p))
                }),
            })
            .collect();
        json!({
            "id": activity.id, "parent_id": null, "title": activity.title,
            "type": activity.activity_type, "comment": activity.comment,
            "additional": activity.additional,
            "schedule_from": laravel_date(activity.schedule_from),
            "schedule_to": laravel_date(activity.schedule_to),
            "is_done": activity.is_done,
            "user": self.users.iter().find(|u| u.id == activity.user_id).map(|u| self.user_out(u)),
            "files": [], "participants": participants, "location": activity.location,
            "created_at": laravel_date(Some(activity.created_at)),
            "updated_at": laravel_date(Some(activity.updated_at)),
        })
    }

    // ---- validation (Krayin's attribute forms) ----

    fn unique_across_persons(
        &self,
        errors: &mut Errors,
        field: &str,
        numbers: bool,
        value: Option<&Value>,
        except: Option<u64>,
    ) {
        let Some(Value::String(text)) = value else {
            return;
        };
        if text.trim().is_empty() {
            return;
        }
        let taken = self.persons.iter().any(|person| {
            let list = if numbers {
                &person.contact_numbers
            } else {
                &person.emails
            };
            Some(person.id) != except && list.iter().any(|entry| entry.get("value") == value)
        });
        if taken {
            errors.add(field, TAKEN.to_owned());
        }
    }

    /// The person attributes a body carries, checked under `prefix` (`""` or `"person."`).
    fn check_person_attributes(
        &self,
        errors: &mut Errors,
        body: &Map<String, Value>,
        prefix: &str,
        except: Option<u64>,
    ) {
        if body.contains_key("name") && is_blank(body.get("name")) {
            let field = format!("{prefix}name");
            errors.add(&field, format!("The {} field is required.", label(&field)));
        }
        if body.contains_key("emails") {
            if is_blank(body.get("emails")) {
                let field = format!("{prefix}emails");
                errors.add(&field, format!("The {} field is required.", label(&field)));
            }
            for (index, entry) in entries(body.get("emails")) {
                let field = format!("{prefix}emails.{index}.value");
                let value = entry.get("value");
                if is_blank(value) {
                    errors.add(&field, format!("The {} field is required.", label(&field)));
                } else if !value.is_some_and(is_email) {
                    errors.add(
                        &field,
                        format!("The {} must be a valid email address.", label(&field)),
                    );
                } else {
                    self.unique_across_persons(errors, &field, false, value, except);
                }
                let label_field = format!("{prefix}emails.{index}.label");
                if is_blank(entry.get("label")) {
                    errors.add(
                        &label_field,
                        format!("The {} field is required.", label(&label_field)),
                    );
                }
            }
        }
        if body.contains_key("contact_numbers") {
            for (index, entry) in entries(body.get("contact_numbers")) {
                let field = format!("{prefix}contact_numbers.{index}.value");
                self.unique_across_persons(errors, &field, true, entry.get("value"), except);
            }
        }
    }

    /// Krayin's foreign keys: an id of no row is MySQL's integrity error, a 500.
    fn foreign_key(&self, table: &str, value: Option<&Value>, column: &str) -> Result<Option<u64>, Failure> {
        let value = match value {
            None | Some(Value::Null) => return Ok(None),
            Some(Value::String(text)) if text.is_empty() => return Ok(None),
            Some(value) => value,
        };
        let id = id_of(value);
        let exists = match table {
            "organizations" => self.organizations.iter().any(|o| Some(o.id) == id),
            "users" => self.users.iter().any(|u| Some(u.id) == id),
            "persons" => self.persons.iter().any(|p| Some(p.id) == id),
            "sources" => self.sources.iter().any(|s| Some(s.id) == id),
            "types" => self.types.iter().any(|t| Some(t.id) == id),
            _ => false,
        };
        match (exists, id) {
            (true, Some(id)) => Ok(Some(id)),
            _ => Err(server_error(&format!(
                "SQLSTATE[23000]: Integrity constraint violation: foreign key {column}"
            ))),
        }
    }

    /// What Krayin's person repository keeps of a body, with its failures on odd contact numbers.
    fn person_fields(
        &mut self,
        body: &Map<String, Value>,
        from_controller: bool,
        now: i64,
    ) -> Result<PersonUpdate, Failure> {
        if from_controller && !body.contains_key("contact_numbers") {
            return Err(server_error("Undefined array key \"contact_numbers\""));
        }
        let mut fields = PersonUpdate {
            name: body.get("name").cloned(),
            job_title: body.get("job_title").cloned(),
            ..PersonUpdate::default()
        };
        if body.contains_key("emails") {
            fields.emails = Some(kept_entries(body.get("emails")));
        }
        if body.contains_key("contact_numbers") {
            let numbers = kept_entries(body.get("contact_numbers"));
            if numbers.is_empty() {
                return Err(server_error("Undefined array key 0"));
            }
            fields.contact_numbers = Some(numbers);
        }
        // `|| null`: 0, "" and false are no organization, no owner.
        let falsy_as_null = |value: Option<&Value>| value.filter(|v| js_truthy(Some(v))).cloned();
        if body.contains_key("organization_id") {
            let id = falsy_as_null(body.get("organization_id"));
            fields.organization_id =
                Some(self.foreign_key("organizations", id.as_ref(), "persons.organization_id")?);
        }
        if body.contains_key("user_id") {
            let id = falsy_as_null(body.get("user_id"));
            fields.user_id = Some(self.foreign_key("users", id.as_ref(), "persons.user_id")?);
        }
        if !from_controller
            && js_truthy(body.get("organization_name"))
            && let Some(name) = body.get("organization_name")
        {
            let known = self.organizations.iter().find(|o| &o.name == name).map(|o| o.id);
            let id = match known {
                Some(id) => id,
                None => {
                    self.store_organization(body_of(&json!({ "name": name })), now)?
                        .id
                }
            };
            fields.organization_id = Some(Some(id));
        }
        Ok(fields)
    }

    fn store_person(
        &mut self,
        body: &Map<String, Value>,
        from_controller: bool,
        now: i64,
    ) -> Result<Person, Failure> {
        let fields = self.person_fields(body, from_controller, now)?;
        if fields.name.as_ref().is_none_or(Value::is_null) {
            return Err(server_error("SQLSTATE[23000]: Column 'name' cannot be null"));
        }
        self.ids.person += 1;
        let mut person = Person {
            id: self.ids.person,
            name: Value::Null,
            emails: Vec::new(),
            contact_numbers: Vec::new(),
            job_title: Value::Null,
            organization_id: None,
            user_id: None,
            created_at: now,
            updated_at: now,
        };
        fields.apply(&mut person);
        self.persons.push(person.clone());
        Ok(person)
    }

    fn check_organization(&self, body: &Map<String, Value>, except: Option<u64>) -> Result<(), Failure> {
        let mut errors = Errors::default();
        if let Some(name) = body.get("name") {
            if is_blank(Some(name)) {
                errors.add("name", "The name field is required.".to_owned());
            } else if self
                .organizations
                .iter()
                .any(|o| Some(o.id) != except && &o.name == name)
            {
                errors.add("name", TAKEN.to_owned());
            }
        }
        errors.check()
    }

    fn store_organization(&mut self, body: &Map<String, Value>, now: i64) -> Result<Organization, Failure> {
        if is_blank(body.get("name")) {
            return Err(server_error("SQLSTATE[23000]: Column 'name' cannot be null"));
        }
        self.ids.organization += 1;
        let organization = Organization {
            id: self.ids.organization,
            name: body.get("name").cloned().unwrap_or_default(),
            address: body.get("address").cloned().unwrap_or_default(),
            user_id: body.get("user_id").cloned().unwrap_or_default(),
            created_at: now,
            updated_at: now,
        };
        self.organizations.push(organization.clone());
        Ok(organization)
    }

    fn check_lead(&self, body: &Map<String, Value>, now: i64) -> Result<(), Failure> {
        let mut errors = Errors::default();
        for field in [
            "title",
            "lead_source_id",
            "lead_type_id",
            "lead_pipeline_id",
            "lead_pipeline_stage_id",
        ] {
            if body.contains_key(field) && is_blank(body.get(field)) {
                errors.add(field, format!("The {} field is required.", label(field)));
            }
        }
        if let Some(value) = body.get("lead_value") {
            if is_blank(Some(value)) {
                errors.add("lead_value", "The lead value field is required.".to_owned());
            } else if !is_decimal(value) {
                errors.add("lead_value", DECIMAL.to_owned());
            }
        }
        if let Some(date) = body
            .get("expected_close_date")
            .filter(|date| !date.is_null() && date.as_str() != Some(""))
        {
            let value = js_string(date);
            let yesterday = Timestamp::from_millis(now - 86_400_000).to_rfc3339();
            let yesterday = yesterday.get(..10).unwrap_or_default();
            let is_date = value.len() == 10
                && value.bytes().enumerate().all(|(at, b)| {
                    if at == 4 || at == 7 {
                        b == b'-'
                    } else {
                        b.is_ascii_digit()
                    }
                });
            if !is_date {
                errors.add(
                    "expected_close_date",
                    "The expected close date does not match the format Y-m-d.".to_owned(),
                );
            } else if value.as_str() <= yesterday {
                errors.add(
                    "expected_close_date",
                    format!("The expected close date must be a date after {yesterday}."),
                );
            }
        }
        if let Some(Value::Object(person)) = body.get("person") {
            let except = person.get("id").and_then(id_of);
            self.check_person_attributes(&mut errors, person, "person.", except);
        }
        errors.check()
    }

    fn stage(&self, id: Option<u64>) -> Option<&Stage> {
        self.pipelines
            .iter()
            .flat_map(|p| &p.stages)
            .find(|s| Some(s.id) == id)
    }

    /// The stage a lead body names: its `lead_pipeline_stage_id`, or the default pipeline's first.
    fn stage_of_body(&self, body: &Map<String, Value>) -> Result<Stage, Failure> {
        let Some(wanted) = body.get("lead_pipeline_stage_id") else {
            return Err(server_error("Undefined array key \"lead_pipeline_stage_id\""));
        };
        if js_truthy(Some(wanted)) {
            return must(self.stage(id_of(wanted)).cloned());
        }
        let default = self
            .pipelines
            .iter()
            .find(|p| p.is_default == 1)
            .or_else(|| self.pipelines.first());
        must(default.and_then(|p| p.stages.first()).cloned())
    }

    fn person_of_lead(
        &mut self,
        body: &Map<String, Value>,
        now: i64,
    ) -> Result<Option<Option<u64>>, Failure> {
        let Some(Value::Object(person)) = body.get("person") else {
            if body.contains_key("person_id") {
                return Ok(Some(self.foreign_key(
                    "persons",
                    body.get("person_id"),
                    "leads.person_id",
                )?));
            }
            return Ok(None);
        };
        if js_truthy(person.get("id")) {
            let id = person.get("id").and_then(id_of);
            return Ok(Some(Some(must(self.person(id))?.id)));
        }
        let person = person.clone();
        Ok(Some(Some(self.store_person(&person, false, now)?.id)))
    }

    fn store_lead(&mut self, body: &Map<String, Value>, now: i64) -> Result<Lead, Failure> {
        self.check_lead(body, now)?;
        let stage = self.stage_of_body(body)?;
        let person_id = self.person_of_lead(body, now)?.flatten();
        let closes = matches!(stage.code, "won" | "lost");
        let lead_value = body.get("lead_value").cloned().unwrap_or_default();
        let expected_close_date = body
            .get("expected_close_date")
            .filter(|date| js_truthy(Some(date)))
            .cloned()
            .unwrap_or_default();
        let mut lead = Lead {
            id: self.ids.lead + 1,
            title: body.get("title").cloned().unwrap_or_default(),
            description: body.get("description").cloned().unwrap_or_default(),
            lead_value: lead_value.clone(),
            lead_value_input: lead_value,
            status: 1,
            lost_reason: body.get("lost_reason").cloned().unwrap_or_default(),
            closed_at: closes.then_some(now),
            user_id: self.foreign_key("users", body.get("user_id"), "leads.user_id")?,
            person_id,
            lead_source_id: self.foreign_key(
                "sources",
                body.get("lead_source_id"),
                "leads.lead_source_id",
            )?,
            lead_type_id: self.foreign_key("types", body.get("lead_type_id"), "leads.lead_type_id")?,
            lead_pipeline_id: None,
            lead_pipeline_stage_id: None,
            expected_close_date,
            created_at: now,
            updated_at: now,
            stage_history: Vec::new(),
        };
        self.ids.lead += 1;
        move_lead(&mut lead, &stage, "create", now);
        self.leads.push(lead.clone());
        Ok(lead)
    }

    fn update_lead(&mut self, id: &str, body: &Map<String, Value>, now: i64) -> Result<Lead, Failure> {
        self.check_lead(body, now)?;
        let stage = self.stage_of_body(body)?;
        let person_id = self.person_of_lead(body, now)?;
        let at = must(self.leads.iter().position(|l| Some(l.id) == id_in_path(id)))?;
        let user_id = match body.get("user_id") {
            Some(value) => Some(self.foreign_key("users", Some(value), "leads.user_id")?),
            None => None,
        };
        let source_id = match body.get("lead_source_id") {
            Some(value) => Some(self.foreign_key("sources", Some(value), "leads.lead_source_id")?),
            None => None,
        };
        let type_id = match body.get("lead_type_id") {
            Some(value) => Some(self.foreign_key("types", Some(value), "leads.lead_type_id")?),
            None => None,
        };
        let lead = &mut self.leads[at];
        for (key, field) in [
            ("title", &mut lead.title),
            ("description", &mut lead.description),
            ("lost_reason", &mut lead.lost_reason),
        ] {
            if let Some(value) = body.get(key) {
                *field = value.clone();
            }
        }
        if let Some(value) = body.get("lead_value") {
            lead.lead_value = value.clone();
            lead.lead_value_input = value.clone();
        }
        if let Some(user_id) = user_id {
            lead.user_id = user_id;
        }
        if let Some(source_id) = source_id {
            lead.lead_source_id = source_id;
        }
        if let Some(type_id) = type_id {
            lead.lead_type_id = type_id;
        }
        lead.expected_close_date = body
            .get("expected_close_date")
            .filter(|date| js_truthy(Some(date)))
            .cloned()
            .unwrap_or_default();
        if let Some(person_id) = person_id {
            lead.person_id = person_id;
        }
        set_closed_at(lead, &stage, now);
        move_lead(lead, &stage, "update", now);
        lead.updated_at = now;
        Ok(lead.clone())
    }

    fn edit_lead_stage(&mut self, id: &str, body: &Map<String, Value>, now: i64) -> Result<Lead, Failure> {
        let mut errors = Errors::default();
        let wanted = body.get("lead_pipeline_stage_id");
        if is_blank(wanted) {
            errors.add(
                "lead_pipeline_stage_id",
                "The lead pipeline stage id field is required.".to_owned(),
            );
        } else if self.stage(wanted.and_then(id_of)).is_none() {
            errors.add(
                "lead_pipeline_stage_id",
                "The selected lead pipeline stage id is invalid.".to_owned(),
            );
        }
        errors.check()?;
        let wanted = wanted.and_then(id_of);
        let at = must(self.leads.iter().position(|l| Some(l.id) == id_in_path(id)))?;
        // Krayin looks the stage up among the lead's pipeline's stages, with firstOrFail: a 404.
        let pipeline = self.leads[at].lead_pipeline_id;
        let stage = must(
            self.stage(wanted)
                .filter(|stage| Some(stage.lead_pipeline_id) == pipeline)
                .cloned(),
        )?;
        let lead = &mut self.leads[at];
        set_closed_at(lead, &stage, now);
        move_lead(lead, &stage, "stage-edit", now);
        lead.updated_at = now;
        Ok(lead.clone())
    }

    // ---- activities ----

    fn check_activity(body: &Map<String, Value>) -> Result<(), Failure> {
        let mut errors = Errors::default();
        let kind = body.get("type").and_then(Value::as_str);
        if is_blank(body.get("type")) {
            errors.add("type", "The type field is required.".to_owned());
        }
        if kind == Some("note") && is_blank(body.get("comment")) {
            errors.add(
                "comment",
                "The comment field is required when type is note.".to_owned(),
            );
        }
        for field in ["schedule_from", "schedule_to"] {
            if kind != Some("note") && kind != Some("file") && is_blank(body.get(field)) {
                errors.add(
                    field,
                    format!(
                        "The {} field is required unless type is in note, file.",
                        label(field)
                    ),
                );
            }
        }
        if kind == Some("file") && is_blank(body.get("file")) {
            errors.add("file", "The file field is required when type is file.".to_owned());
        }
        errors.check()
    }

    fn schedule_value(value: Option<&Value>, field: &str) -> Result<Option<i64>, Failure> {
        match value {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(text)) if text.is_empty() => Ok(None),
            Some(value) => value.as_str().and_then(datetime).map(Some).ok_or_else(|| {
                server_error(&format!(
                    "SQLSTATE[22007]: Invalid datetime format for column '{field}'"
                ))
            }),
        }
    }

    /// `participants[users][]` and `participants[persons][]`, one `activity_participants` row
    /// each (`ActivityRepository::create`; an update that carries `participants` replaces them
    /// all, one that does not leaves them); an unknown id is a foreign key error, a 500.
    fn participants_of(&self, given: Option<&Value>) -> Result<Vec<Participant>, Failure> {
        let Some(Value::Object(given)) = given else {
            return Ok(Vec::new());
        };
        let mut participants = Vec::new();
        let listed = |name: &str| -> Vec<Value> {
            given
                .get(name)
                .and_then(Value::as_array)
                .map(|ids| ids.iter().filter(|id| js_truthy(Some(id))).cloned().collect())
                .unwrap_or_default()
        };
        for id in listed("users") {
            if let Some(id) = self.foreign_key("users", Some(&id), "activity_participants.user_id")? {
                participants.push(Participant::User(id));
            }
        }
        for id in listed("persons") {
            if let Some(id) = self.foreign_key("persons", Some(&id), "activity_participants.person_id")? {
                participants.push(Participant::Person(id));
            }
        }
        Ok(participants)
    }

    /// Krayin's listener (`Admin\Listeners\Activity::afterUpdateOrCreate`) links an activity to
    /// the request's lead, or else to its person; its participants are stored apart from that
    /// link ([`Self::participants_of`]), so a body may name a lead and a participant person.
    fn link_activity(&self, activity: &mut Activity, body: &Map<String, Value>) -> Result<(), Failure> {
        let missing = || server_error("Attempt to read property \"activities\" on null");
        if js_truthy(body.get("lead_id")) {
            let id = body.get("lead_id").and_then(id_of);
            let lead = self.leads.iter().find(|l| Some(l.id) == id).ok_or_else(missing)?;
            if !activity.lead_ids.contains(&lead.id) {
                activity.lead_ids.push(lead.id);
            }
        } else if js_truthy(body.get("person_id")) {
            let id = body.get("person_id").and_then(id_of);
            let person = self
                .persons
                .iter()
                .find(|p| Some(p.id) == id)
                .ok_or_else(missing)?;
            if !activity.person_ids.contains(&person.id) {
                activity.person_ids.push(person.id);
            }
        }
        Ok(())
    }

    fn store_activity(
        &mut self,
        body: &Map<String, Value>,
        user: &User,
        now: i64,
    ) -> Result<Activity, Failure> {
        Self::check_activity(body)?;
        let kind = body.get("type").cloned().unwrap_or_default();
        let mut activity = Activity {
            id: self.ids.activity + 1,
            title: body.get("title").cloned().unwrap_or_default(),
            is_done: u8::from(kind.as_str() == Some("note")),
            activity_type: kind,
            comment: body.get("comment").cloned().unwrap_or_default(),
            additional: body.get("additional").cloned().unwrap_or_default(),
            location: body.get("location").cloned().unwrap_or_default(),
            schedule_from: Self::schedule_value(body.get("schedule_from"), "schedule_from")?,
            schedule_to: Self::schedule_value(body.get("schedule_to"), "schedule_to")?,
            user_id: user.id,
            participants: self.participants_of(body.get("participants"))?,
            lead_ids: Vec::new(),
            person_ids: Vec::new(),
            created_at: now,
            updated_at: now,
        };
        self.link_activity(&mut activity, body)?;
        self.ids.activity += 1;
        self.activities.push(activity.clone());
        Ok(activity)
    }

    fn update_activity(
        &mut self,
        id: &str,
        body: &Map<String, Value>,
        now: i64,
    ) -> Result<Activity, Failure> {
        let at = must(self.activities.iter().position(|a| Some(a.id) == id_in_path(id)))?;
        let mut activity = self.activities[at].clone();
        for (key, field) in [
            ("title", &mut activity.title),
            ("type", &mut activity.activity_type),
            ("comment", &mut activity.comment),
            ("additional", &mut activity.additional),
            ("location", &mut activity.location),
        ] {
            if let Some(value) = body.get(key) {
                *field = value.clone();
            }
        }
        if body.contains_key("schedule_from") {
            activity.schedule_from = Self::schedule_value(body.get("schedule_from"), "schedule_from")?;
        }
        if body.contains_key("schedule_to") {
            activity.schedule_to = Self::schedule_value(body.get("schedule_to"), "schedule_to")?;
        }
        if body.contains_key("is_done") {
            activity.is_done = u8::from(js_truthy(body.get("is_done")));
        }
        if body.contains_key("participants") {
            activity.participants = self.participants_of(body.get("participants"))?;
        }
        self.link_activity(&mut activity, body)?;
        activity.updated_at = now;
        self.activities[at] = activity.clone();
        Ok(activity)
    }

    // ---- search ----

    /// The search of Prettus' RequestCriteria, on the fields Krayin makes searchable for persons.
    fn search_persons(&self, query: &domain::query::Query, user: &User) -> Result<Value, Failure> {
        const SEARCHABLE: [&str; 6] = [
            "name",
            "emails",
            "contact_numbers",
            "organization_id",
            "job_title",
            "user_id",
        ];
        let search = query.get("search").unwrap_or_default();
        let mut field_values: BTreeMap<String, String> = BTreeMap::new();
        let mut plain = Some(search.to_owned());
        if search.contains(':') || search.contains(';') {
            plain = None;
            for part in search.split(';') {
                match part.split_once(':') {
                    None => plain = Some(part.to_owned()),
                    Some((field, value)) => {
                        field_values.insert(field.to_owned(), value.to_owned());
                    }
                }
            }
        }
        let mut fields: Vec<&str> = SEARCHABLE.to_vec();
        let mut conditions: BTreeMap<&str, String> =
            SEARCHABLE.iter().map(|f| (*f, "=".to_owned())).collect();
        if let Some(search_fields) = query.get("searchFields").filter(|f| !f.is_empty()) {
            let mut accepted = Vec::new();
            for part in search_fields.split(';') {
                let mut pieces = part.split(':');
                let field = pieces.next().unwrap_or_default();
                let Some(known) = SEARCHABLE.iter().find(|known| **known == field) else {
                    continue;
                };
                accepted.push(*known);
                if let Some(condition) = pieces.next().filter(|c| !c.is_empty()) {
                    conditions.insert(known, condition.trim().to_lowercase());
                }
            }
            if accepted.is_empty() {
                return Err(server_error(&format!(
                    "None of the search fields were accepted. Acceptable search fields are: {}",
                    SEARCHABLE.join(",")
                )));
            }
            fields = accepted;
        }
        let clauses: Vec<(&str, String)> = fields
            .iter()
            .filter_map(|field| {
                let value = field_values.get(*field).cloned().or_else(|| plain.clone())?;
                (!value.is_empty()).then_some((*field, value))
            })
            .collect();
        let every = query
            .get("searchJoin")
            .is_some_and(|join| join.eq_ignore_ascii_case("and"));
        let matches = |person: &Person, (field, value): &(&str, String)| {
            let condition = conditions.get(field).map(String::as_str).unwrap_or("=");
            person_matches(person, field, condition, value)
        };
        let rows: Vec<&Person> = self
            .persons
            .iter()
            .filter(|person| {
                clauses.is_empty()
                    || if every {
                        clauses.iter().all(|clause| matches(person, clause))
                    } else {
                        clauses.iter().any(|clause| matches(person, clause))
                    }
            })
            .filter(|person| user.view_permission == "global" || person.user_id == Some(user.id))
            .collect();
        let limit = query
            .get("limit")
            .and_then(|limit| limit.parse::<usize>().ok())
            .filter(|limit| *limit > 0)
            .unwrap_or(DEFAULT_PAGE_SIZE);
        let data: Vec<Value> = rows.iter().take(limit).map(|p| self.person_out(p)).collect();
        Ok(json!({ "data": data }))
    }
}

/// A column as MySQL holds it (emails and numbers as JSON text, compared case-sensitively), and
/// the search's condition on it.
fn person_matches(person: &Person, field: &str, condition: &str, value: &str) -> bool {
    let (column, caseless) = match field {
        "emails" => (Some(Value::from(person.emails.clone()).to_string()), false),
        "contact_numbers" => (
            Some(Value::from(person.contact_numbers.clone()).to_string()),
            false,
        ),
        "name" => (Some(&person.name).filter(|v| !v.is_null()).map(js_string), true),
        "job_title" => (
            Some(&person.job_title).filter(|v| !v.is_null()).map(js_string),
            true,
        ),
        "organization_id" => (person.organization_id.map(|id| id.to_string()), true),
        "user_id" => (person.user_id.map(|id| id.to_string()), true),
        _ => (None, true),
    };
    let Some(column) = column else {
        return false;
    };
    let fold = |text: &str| {
        if caseless {
            text.to_lowercase()
        } else {
            text.to_owned()
        }
    };
    if condition == "like" || condition == "ilike" {
        fold(&column).contains(&fold(value))
    } else {
        fold(&column) == fold(value)
    }
}

/// What a person body changes: `None` leaves a field as it is.
#[derive(Default)]
struct PersonUpdate {
    name: Option<Value>,
    job_title: Option<Value>,
    emails: Option<Vec<Value>>,
    contact_numbers: Option<Vec<Value>>,
    organization_id: Option<Option<u64>>,
    user_id: Option<Option<u64>>,
}

impl PersonUpdate {
    fn apply(self, person: &mut Person) {
        if let Some(name) = self.name {
            person.name = name;
        }
        if let Some(job_title) = self.job_title {
            person.job_title = job_title;
        }
        if let Some(emails) = self.emails {
            person.emails = emails;
        }
        if let Some(numbers) = self.contact_numbers {
            person.contact_numbers = numbers;
        }
        if let Some(organization_id) = self.organization_id {
            person.organization_id = organization_id;
        }
        if let Some(user_id) = self.user_id {
            person.user_id = user_id;
        }
    }
}

fn organization_out(organization: &Organization) -> Value {
    json!({
        "id": organization.id, "name": organization.name, "address": organization.address,
        "created_at": laravel_date(Some(organization.created_at)),
        "updated_at": laravel_date(Some(organization.updated_at)),
    })
}

fn move_lead(lead: &mut Lead, stage: &Stage, via: &'static str, now: i64) {
    let from = lead.lead_pipeline_stage_id;
    lead.lead_pipeline_id = Some(stage.lead_pipeline_id);
    lead.lead_pipeline_stage_id = Some(stage.id);
    if from != Some(stage.id) {
        lead.stage_history.push(StageMove {
            at_ms: now,
            from,
            to: stage.id,
            code: stage.code,
            via,
        });
    }
}

fn set_closed_at(lead: &mut Lead, stage: &Stage, now: i64) {
    lead.closed_at = if matches!(stage.code, "won" | "lost") {
        lead.closed_at.or(Some(now))
    } else {
        None
    };
}

/// Krayin's `allResources`: every other query key filters exactly (comma-separated values),
/// `?sort=&order=` orders (newest first by default), `?pagination=0` answers every row.
fn list_resources<T: Serialize>(
    rows: &[T],
    query: &domain::query::Query,
    path: &str,
    out: impl Fn(&T) -> Value,
) -> Value {
    let columns: Vec<Map<String, Value>> = rows
        .iter()
        .map(|row| match serde_json::to_value(row) {
            Ok(Value::Object(columns)) => columns,
            _ => Map::new(),
        })
        .collect();
    let mut kept: Vec<usize> = (0..rows.len()).collect();
    for (key, value) in query.pairs() {
        if ["entity_type", "limit", "page", "pagination", "order", "sort"].contains(&key.as_str()) {
            continue;
        }
        let wanted: Vec<&str> = value.split(',').map(str::trim).collect();
        kept.retain(|at| {
            columns[*at]
                .get(key)
                .is_some_and(|column| wanted.contains(&js_string(column).as_str()))
        });
    }
    let sort = query.get("sort").unwrap_or("id");
    let ascending = query
        .get("order")
        .is_some_and(|order| order.eq_ignore_ascii_case("asc"));
    kept.sort_by(|a, b| {
        let ordering = compare(columns[*a].get(sort), columns[*b].get(sort));
        if ascending { ordering } else { ordering.reverse() }
    });
    let items: Vec<Value> = kept.iter().map(|at| out(&rows[*at])).collect();
    if let Some(pagination) = query.get("pagination")
        && js_number(&json!(pagination)).is_none_or(|n| n == 0.0)
    {
        return json!({ "data": items });
    }
    paginate(items, query, path)
}

/// Laravel's length-aware paginator.
fn paginate(items: Vec<Value>, query: &domain::query::Query, path: &str) -> Value {
    let number = |name: &str, default: usize| {
        query
            .get(name)
            .and_then(|value| value.trim().parse::<usize>().ok())
            .filter(|n| *n > 0)
            .unwrap_or(default)
    };
    let per_page = number("limit", DEFAULT_PAGE_SIZE);
    let page = number("page", 1);
    let total = items.len();
    let last_page = total.div_ceil(per_page).max(1);
    let start = (page - 1) * per_page;
    let data: Vec<Value> = items.into_iter().skip(start).take(per_page).collect();
    let link = |n: usize| format!("http://localhost{path}?page={n}");
    json!({
        "links": {
            "first": link(1), "last": link(last_page),
            "prev": (page > 1).then(|| link(page - 1)),
            "next": (page < last_page).then(|| link(page + 1)),
        },
        "meta": {
            "current_page": page,
            "from": (!data.is_empty()).then_some(start + 1),
            "last_page": last_page, "links": [], "path": format!("http://localhost{path}"),
            "per_page": per_page,
            "to": (!data.is_empty()).then_some(start + data.len()),
            "total": total,
        },
        "data": data,
    })
}

fn with_headers(mut reply: Reply, headers: &[(&str, String)]) -> Reply {
    reply = reply.header("cache-control", "no-cache, private");
    for (name, value) in headers {
        reply = reply.header(name, value);
    }
    reply
}

#[cfg(test)]
mod tests {
    use super::*;

    fn call(method: &str, path: &str, body: Option<Value>) -> Outbound {
        let mut headers = vec![
            ("accept".to_owned(), "application/json".to_owned()),
            ("authorization".to_owned(), format!("Bearer {TOKEN}")),
        ];
        headers.sort();
        Outbound {
            method: method.to_owned(),
            url: format!("https://crm.krayin.test{path}"),
            headers,
            body: body.map(|b| b.to_string().into_bytes()).unwrap_or_default(),
            at_ms: 1_800_000_000_000,
        }
    }

    fn answer(krayin: &Krayin, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        let reply = krayin.answer(&call(method, path, body));
        (
            reply.status,
            serde_json::from_slice(&reply.body).unwrap_or_default(),
        )
    }

    #[test]
    fn a_person_search_matches_parts_of_the_stored_json_and_a_taken_email_is_refused() {
        let krayin = Krayin::new("crm.krayin.test", 0);
        let person = json!({ "name": "Jo Ann", "emails": [{ "value": "joann@x.com", "label": "work" }],
                             "contact_numbers": [{ "value": "+14155550123", "label": "work" }] });
        let (status, created) = answer(&krayin, "POST", "/api/v1/contacts/persons", Some(person.clone()));
        assert_eq!(status, 200, "{created}");
        assert_eq!(created["message"], "Person created successfully.");
        let (_, found) = answer(
            &krayin,
            "GET",
            "/api/v1/contacts/persons/search?search=emails%3Aann%40x.com&searchFields=emails%3Alike&limit=10",
            None,
        );
        assert_eq!(
            found["data"][0]["id"], created["data"]["id"],
            "like matches a part: {found}"
        );
        let (status, refused) = answer(&krayin, "POST", "/api/v1/contacts/persons", Some(person));
        assert_eq!(status, 422);
        assert_eq!(
            refused["errors"]["emails.0.value"][0], TAKEN,
            "the email is Krayin's unique rule: {refused}"
        );
        assert_eq!(refused["message"], format!("{TAKEN} (and 1 more error)"));
    }

    #[test]
    fn a_lead_needs_its_stage_key_and_moves_only_within_its_pipeline() {
        let krayin = Krayin::new("crm.krayin.test", 0);
        let cases = [
            (
                json!({ "title": "No stage key" }),
                500,
                "a body without lead_pipeline_stage_id",
            ),
            (
                json!({ "title": "Null stage", "lead_pipeline_stage_id": null }),
                422,
                "a null stage",
            ),
            (
                json!({ "title": "Zero", "lead_pipeline_stage_id": 0 }),
                200,
                "0 is the default's first",
            ),
            (
                json!({ "title": "Other", "lead_pipeline_stage_id": 7 }),
                200,
                "a stage of pipeline 2",
            ),
            (
                json!({ "title": "Bad", "lead_pipeline_stage_id": 0, "lead_value": "1.23456" }),
                422,
                "five decimals",
            ),
            (
                json!({ "title": "Bad", "lead_pipeline_stage_id": 0, "lead_source_id": 99 }),
                500,
                "no such source",
            ),
        ];
        for (body, status, description) in cases {
            assert_eq!(
                answer(&krayin, "POST", "/api/v1/leads", Some(body)).0,
                status,
                "{description}"
            );
        }
        let leads = krayin.leads();
        assert_eq!(
            leads
                .iter()
                .map(|l| (l.lead_pipeline_id, l.lead_pipeline_stage_id))
                .collect::<Vec<_>>(),
            vec![(Some(1), Some(1)), (Some(2), Some(7))]
        );
        let moved = answer(
            &krayin,
            "PUT",
            "/api/v1/leads/stage/edit/2",
            Some(json!({ "lead_pipeline_stage_id": 3 })),
        );
        assert_eq!(moved.0, 404, "stage 3 is not in the lead's pipeline: {}", moved.1);
        let moved = answer(
            &krayin,
            "PUT",
            "/api/v1/leads/stage/edit/2",
            Some(json!({ "lead_pipeline_stage_id": 9 })),
        );
        assert_eq!(moved.0, 200, "{}", moved.1);
        assert_eq!(moved.1["data"]["lead_value"], Value::Null);
        assert!(
            moved.1["data"]["closed_at"].is_string(),
            "won closes it: {}",
            moved.1
        );
    }

    #[test]
    fn an_activity_sits_on_its_lead_and_keeps_its_participants_until_an_update_names_others() {
        let krayin = Krayin::new("crm.krayin.test", 0);
        let person = json!({ "name": "Jo Ann", "emails": [{ "value": "jo@x.com", "label": "work" }],
                             "contact_numbers": [{ "value": "+14155550123", "label": "work" }] });
        let (_, person) = answer(&krayin, "POST", "/api/v1/contacts/persons", Some(person));
        let person_id = person["data"]["id"].as_u64().unwrap_or_default();
        let lead = json!({ "title": "Jo Ann", "lead_pipeline_stage_id": 0, "person_id": person_id });
        let (_, lead) = answer(&krayin, "POST", "/api/v1/leads", Some(lead));
        let lead_id = lead["data"]["id"].as_u64().unwrap_or_default();
        let (status, created) = answer(
            &krayin,
            "POST",
            "/api/v1/activities",
            Some(
                json!({ "type": "note", "title": "Conversation #1", "comment": "Hi", "lead_id": lead_id,
                         "person_id": person_id, "participants": { "persons": [person_id] } }),
            ),
        );
        assert_eq!(status, 200, "{created}");
        assert_eq!(
            created["data"]["participants"][0]["person"]["id"], person_id,
            "Krayin answers its participants: {created}"
        );
        let stored = |krayin: &Krayin| krayin.activities()[0].clone();
        let activity = stored(&krayin);
        assert_eq!(
            (activity.lead_ids.clone(), activity.person_ids.clone()),
            (vec![lead_id], vec![]),
            "linked to the lead only"
        );
        assert_eq!(activity.participant_persons(), [person_id]);
        let path = format!("/api/v1/activities/{}", activity.id);
        answer(&krayin, "PUT", &path, Some(json!({ "is_done": 1 })));
        assert_eq!(
            stored(&krayin).participant_persons(),
            [person_id],
            "an update without participants keeps them"
        );
        answer(
            &krayin,
            "PUT",
            &path,
            Some(json!({ "participants": { "users": [1] } })),
        );
        assert_eq!(
            (
                stored(&krayin).participant_persons(),
                stored(&krayin).participants.len()
            ),
            (vec![], 1),
            "an update naming participants replaces them all"
        );
        let unknown = json!({ "type": "note", "comment": "x", "participants": { "persons": [999] } });
        assert_eq!(
            answer(&krayin, "POST", "/api/v1/activities", Some(unknown)).0,
            500,
            "an unknown person is a foreign key error"
        );
    }

    #[test]
    fn lists_are_paginated_newest_first_and_filters_are_exact() {
        let krayin = Krayin::new("crm.krayin.test", 0);
        for name in ["Acme", "Acme Corp", "Globex"] {
            krayin.seed_organization(json!({ "name": name }));
        }
        let (_, page) = answer(&krayin, "GET", "/api/v1/contacts/organizations?limit=2", None);
        let names: Vec<&Value> = page["data"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|o| &o["name"])
            .collect();
        assert_eq!(names, [&json!("Globex"), &json!("Acme Corp")]);
        assert_eq!(page["meta"]["last_page"], 2);
        let (_, exact) = answer(
            &krayin,
            "GET",
            "/api/v1/contacts/organizations?name=Acme&limit=10",
            None,
        );
        assert_eq!(exact["data"].as_array().map(Vec::len), Some(1), "{exact}");
        let (_, all) = answer(&krayin, "GET", "/api/v1/settings/pipelines?pagination=0", None);
        assert!(all.get("meta").is_none(), "unpaginated: {all}");
        assert_eq!(all["data"][0]["stages"][0]["code"], "new");
    }

    #[test]
    fn without_a_token_or_json_krayin_refuses_or_redirects() {
        let krayin = Krayin::new("crm.krayin.test", 0);
        let mut anonymous = call("GET", "/api/v1/get", None);
        anonymous.headers.retain(|(name, _)| name != "authorization");
        assert_eq!(krayin.answer(&anonymous).status, 401);
        anonymous.headers.retain(|(name, _)| name != "accept");
        let redirected = krayin.answer(&anonymous);
        assert_eq!(
            (
                redirected.status,
                redirected
                    .headers
                    .iter()
                    .find(|(n, _)| n == "location")
                    .map(|(_, v)| v.as_str())
            ),
            (302, Some("/admin/login"))
        );
        assert_eq!(answer(&krayin, "DELETE", "/api/v1/leads", None).0, 405);
        krayin.set_rate_limit(Some(RateLimit {
            per_window: 1,
            window_ms: 60_000,
        }));
        assert_eq!(answer(&krayin, "GET", "/api/v1/get", None).0, 200);
        let throttled = krayin.answer(&call("GET", "/api/v1/get", None));
        assert_eq!(throttled.status, 429);
        assert_eq!(krayin.throttles().len(), 1);
        assert!(
            throttled
                .headers
                .iter()
                .any(|(n, v)| n == "retry-after" && v == "60"),
            "{:?}",
            throttled.headers
        );
    }
}
