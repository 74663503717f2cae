//! A business's CRM as a partner: the REST endpoints the CRM links guide's examples link to,
//! serving customer lists in pages with each CRM's own conventions (as tests/e2e/links'
//! crm-server.mjs does over HTTP):
//!
//! - `GET /admin/api/2024-01/customers.json`, Shopify's REST Admin API: `X-Shopify-Access-Token`;
//!   `limit` (default 50, at most 250); cursor pagination by `Link: <…&page_info=…>; rel="next"`
//!   (and `rel="previous"`), the cursor opaque; every answer reports the leaky bucket
//!   (`X-Shopify-Shop-Api-Call-Limit: n/40`, 2 leak a second), and a full bucket is a 429 with
//!   `Retry-After: 2.0`.
//! - `GET /crm/v3/objects/contacts`, HubSpot's CRM v3: `Authorization: Bearer <token>`; `limit`
//!   (default 10, at most 100) and `after`; `paging.next.{after, link}` in the body; errors as
//!   `{status: "error", message, correlationId, category}`.
//! - `GET /api/customers`, the guide's own example: `{customers: [{id, name, email,
//!   subscription, support_level}]}` in one answer, `X-API-Key` required.
//! - `GET /exports/customers.csv` (the custom customers as CSV) and `GET /kb/returns-policy.txt`.
//!
//! A test changes the data between fetches ([`Crm::update`], [`Crm::add`], [`Crm::remove`]),
//! scripts faults ([`Fault`]: a status in the CRM's own error shape, 429 with `Retry-After`, a
//! slow answer, a body over 4 MiB), takes the CRM down and up, and reads every request served
//! with the status it got ([`Crm::served`]).

use super::json_reply;
use edge::runtime::native::{Outbound, Reply, Stack};
use serde_json::{Value, json};
use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

pub const SHOPIFY_PATH: &str = "/admin/api/2024-01/customers.json";
pub const HUBSPOT_PATH: &str = "/crm/v3/objects/contacts";
pub const CUSTOM_PATH: &str = "/api/customers";
pub const CSV_PATH: &str = "/exports/customers.csv";
pub const TEXT_PATH: &str = "/kb/returns-policy.txt";

/// The credentials of the guide's examples.
pub const SHOPIFY_TOKEN: &str = "shppa_1234567890";
pub const HUBSPOT_TOKEN: &str = "pat-na1-1234567890";
pub const CUSTOM_KEY: &str = "internal-key-123";

const SHOPIFY_BUCKET_SIZE: f64 = 40.0;
const SHOPIFY_LEAK_PER_SECOND: f64 = 2.0;
/// Just over the fetcher's 4 MiB page limit.
pub const OVERSIZE_BYTES: usize = 4 * 1024 * 1024 + 256 * 1024;
/// A fault that lasts until [`Crm::clear_faults`].
pub const ALWAYS: usize = usize::MAX;

/// The plain-text document the CRM serves.
pub const RETURNS_POLICY: &str = "Returns policy

You may return any unworn item within 30 days of delivery for a full refund.
Sale items can be exchanged but not refunded.
Refunds are paid to the original payment method within 5 working days of the item reaching our warehouse in Kilkenny.
Customers on gold support or above get a free prepaid returns label; everyone else pays 4.95 EUR for the label.
Damaged or faulty goods are collected free of charge: email returns@shop.example with a photo and your order number.
";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    Shopify,
    Hubspot,
    Custom,
}

/// How many records each source holds, and the page size each answers by default.
#[derive(Debug, Clone, Copy)]
pub struct Sizes {
    pub shopify: usize,
    pub shopify_page: usize,
    pub hubspot: usize,
    pub hubspot_page: usize,
    pub custom: usize,
}

impl Sizes {
    /// The plumbing tests' sizes: the pinned customers only.
    pub const SMALL: Self = Self {
        shopify: 6,
        shopify_page: 50,
        hubspot: 5,
        hubspot_page: 10,
        custom: 4,
    };
}

/// A request the CRM got, and what it answered (status 0: the CRM was down).
#[derive(Debug, Clone)]
pub struct Served {
    pub call: Outbound,
    pub status: u16,
    pub bytes: usize,
}

/// A scripted misbehaviour for the next matching requests.
pub struct Fault {
    kind: FaultKind,
    times: usize,
    matches: Box<dyn Fn(&Outbound) -> bool>,
}

enum FaultKind {
    /// The status in the CRM's own error shape, with `Retry-After` when given.
    Status {
        status: u16,
        retry_after: Option<String>,
    },
    /// The usual answer, after a while.
    Slow(Duration),
    /// The usual answer grown past `bytes` (a JSON body with trailing whitespace, text with more
    /// lines).
    Oversize(usize),
}

impl Fault {
    /// Answers `status` in the CRM's own error shape, once.
    pub fn status(status: u16) -> Self {
        Self::of(FaultKind::Status {
            status,
            retry_after: None,
        })
    }

    /// A 429 asking to wait `retry_after` (as the CRM writes it: `30`, Shopify's `2.0`), once.
    pub fn throttled(retry_after: &str) -> Self {
        Self::of(FaultKind::Status {
            status: 429,
            retry_after: Some(retry_after.to_owned()),
        })
    }

    /// The usual answer after `wait`, once.
    pub fn slow(wait: Duration) -> Self {
        Self::of(FaultKind::Slow(wait))
    }

    /// The usual answer grown past `bytes`, once.
    pub fn oversize(bytes: usize) -> Self {
        Self::of(FaultKind::Oversize(bytes))
    }

    fn of(kind: FaultKind) -> Self {
        Self {
            kind,
            times: 1,
            matches: Box::new(|_| true),
        }
    }

    /// For the next `times` matching requests ([`ALWAYS`]: until cleared).
    pub fn times(mut self, times: usize) -> Self {
        self.times = times;
        self
    }

    /// Only for requests `matches` holds for.
    pub fn when(mut self, matches: impl Fn(&Outbound) -> bool + 'static) -> Self {
        self.matches = Box::new(matches);
        self
    }
}

/// A request for a page after the first (a cursor named by the CRM).
pub fn later_page(call: &Outbound) -> bool {
    let query = call.query();
    query.get("page_info").is_some() || query.get("after").is_some()
}

/// One CRM, reached at one or more hosts, all serving the same data.
#[derive(Clone)]
pub struct Crm {
    state: Rc<RefCell<State>>,
}

struct State {
    host: String,
    sizes: Sizes,
    shopify: Vec<Value>,
    hubspot: Vec<Value>,
    custom: Vec<Value>,
    /// Filler records made so far per source, so that added ones are new people.
    made: [usize; 3],
    shopify_token: String,
    hubspot_token: String,
    custom_key: String,
    bucket_on: bool,
    /// (level, at ms)
    bucket: (f64, i64),
    faults: Vec<Fault>,
    down: bool,
    served: Vec<Served>,
    correlation: u64,
}

impl Crm {
    /// A CRM at `https://{host}` with the pinned customers spread through `sizes` records per
    /// source, answering the guide's example credentials.
    pub fn install(stack: &Stack, host: &str, sizes: Sizes) -> Self {
        let mut state = State {
            host: host.to_owned(),
            sizes,
            shopify: Vec::new(),
            hubspot: Vec::new(),
            custom: Vec::new(),
            made: [0; 3],
            shopify_token: SHOPIFY_TOKEN.to_owned(),
            hubspot_token: HUBSPOT_TOKEN.to_owned(),
            custom_key: CUSTOM_KEY.to_owned(),
            bucket_on: true,
            bucket: (0.0, 0),
            faults: Vec::new(),
            down: false,
            served: Vec::new(),
            correlation: 0,
        };
        state.shopify = state.generate(Source::Shopify, sizes.shopify);
        state.hubspot = state.generate(Source::Hubspot, sizes.hubspot);
        state.custom = state.generate(Source::Custom, sizes.custom);
        let crm = Self {
            state: Rc::new(RefCell::new(state)),
        };
        crm.serve_at(stack, host);
        crm
    }

    /// The same CRM answers at `https://{host}` too (the guide's examples name three hosts).
    pub fn serve_at(&self, stack: &Stack, host: &str) {
        let serving = self.clone();
        stack.partner(host, move |call| serving.answer(call));
    }

    /// `https://{host}{path}` on the CRM's first host.
    pub fn url(&self, path: &str) -> String {
        format!("https://{}{path}", self.state.borrow().host)
    }

    /// The custom CRM answers only this `X-API-Key` from now on.
    pub fn require_custom_key(&self, key: &str) {
        self.state.borrow_mut().custom_key = key.to_owned();
    }

    /// Turns Shopify's leaky bucket on or off (emptied either way).
    pub fn set_bucket(&self, on: bool) {
        let mut state = self.state.borrow_mut();
        state.bucket_on = on;
        state.bucket = (0.0, 0);
    }

    /// The source's records, in list order.
    pub fn records(&self, source: Source) -> Vec<Value> {
        self.state.borrow().list(source).clone()
    }

    /// Merges `changes` into the record `id` (`properties` and `default_address` merged field by
    /// field); returns the record as it is now.
    pub fn update(&self, source: Source, id: &str, changes: Value) -> Value {
        let mut state = self.state.borrow_mut();
        let list = state.list_mut(source);
        let record = list
            .iter_mut()
            .find(|record| record_id(record) == id)
            .unwrap_or_else(|| panic!("the CRM has no {source:?} record {id}"));
        if let (Some(record), Value::Object(changes)) = (record.as_object_mut(), changes) {
            for (key, value) in changes {
                match (record.get_mut(&key), value) {
                    (Some(Value::Object(inner)), Value::Object(value))
                        if key == "properties" || key == "default_address" =>
                    {
                        inner.extend(value);
                    }
                    (_, value) => {
                        record.insert(key, value);
                    }
                }
            }
        }
        record.clone()
    }

    /// Appends `count` new customers (people not in the list before); returns them.
    pub fn add(&self, source: Source, count: usize) -> Vec<Value> {
        let mut state = self.state.borrow_mut();
        let added: Vec<Value> = (0..count).map(|_| state.filler(source)).collect();
        state.list_mut(source).extend(added.iter().cloned());
        added
    }

    /// Removes the record `id`; returns it.
    pub fn remove(&self, source: Source, id: &str) -> Value {
        let mut state = self.state.borrow_mut();
        let list = state.list_mut(source);
        let at = list
            .iter()
            .position(|record| record_id(record) == id)
            .unwrap_or_else(|| panic!("the CRM has no {source:?} record {id}"));
        list.remove(at)
    }

    pub fn fail(&self, fault: Fault) {
        self.state.borrow_mut().faults.push(fault);
    }

    pub fn clear_faults(&self) {
        self.state.borrow_mut().faults.clear();
    }

    /// Connections are refused until [`Crm::up`]; the data is kept.
    pub fn down(&self) {
        self.state.borrow_mut().down = true;
    }

    pub fn up(&self) {
        self.state.borrow_mut().down = false;
    }

    /// Every request, with what it was answered.
    pub fn served(&self) -> Vec<Served> {
        self.state.borrow().served.clone()
    }

    /// The requests to `path`.
    pub fn served_at(&self, path: &str) -> Vec<Served> {
        self.served()
            .into_iter()
            .filter(|served| served.call.path() == path)
            .collect()
    }

    fn answer(&self, call: &Outbound) -> Reply {
        let mut state = self.state.borrow_mut();
        let reply = if state.down {
            Reply::refused()
        } else {
            state.route(call)
        };
        let status = if reply.refused.is_some() { 0 } else { reply.status };
        state.served.push(Served {
            call: call.clone(),
            status,
            bytes: reply.body.len(),
        });
        reply
    }
}

/// The id of a record as the record writes it (Shopify's number as text).
pub fn record_id(record: &Value) -> String {
    match &record["id"] {
        Value::String(id) => id.clone(),
        other => other.to_string(),
    }
}

fn reason(status: u16) -> &'static str {
    match status {
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        _ => "Error",
    }
}

impl State {
    fn list(&self, source: Source) -> &Vec<Value> {
        match source {
            Source::Shopify => &self.shopify,
            Source::Hubspot => &self.hubspot,
            Source::Custom => &self.custom,
        }
    }

    fn list_mut(&mut self, source: Source) -> &mut Vec<Value> {
        match source {
            Source::Shopify => &mut self.shopify,
            Source::Hubspot => &mut self.hubspot,
            Source::Custom => &mut self.custom,
        }
    }

    /// `size` records: the first pinned ones spread evenly (pinned k of p at index
    /// floor((k + 0.5) * size / p)), new people around them.
    fn generate(&mut self, source: Source, size: usize) -> Vec<Value> {
        let pinned: Vec<Value> = pinned(source).into_iter().take(size).collect();
        let count = pinned.len();
        let mut slots: Vec<Option<Value>> = vec![None; size];
        for (k, record) in pinned.into_iter().enumerate() {
            slots[(2 * k + 1) * size / (2 * count)] = Some(record);
        }
        slots
            .into_iter()
            .map(|slot| slot.unwrap_or_else(|| self.filler(source)))
            .collect()
    }

    fn filler(&mut self, source: Source) -> Value {
        let at = match source {
            Source::Shopify => 0,
            Source::Hubspot => 1,
            Source::Custom => 2,
        };
        let n = self.made[at];
        self.made[at] += 1;
        filler(source, n)
    }

    fn take_fault(&mut self, call: &Outbound, kind: impl Fn(&FaultKind) -> bool) -> Option<FaultKind> {
        let at = self
            .faults
            .iter()
            .position(|fault| kind(&fault.kind) && (fault.matches)(call))?;
        let fault = &mut self.faults[at];
        fault.times = fault.times.saturating_sub(1);
        if fault.times == 0 {
            return Some(self.faults.remove(at).kind);
        }
        Some(match &fault.kind {
            FaultKind::Status { status, retry_after } => FaultKind::Status {
                status: *status,
                retry_after: retry_after.clone(),
            },
            FaultKind::Slow(wait) => FaultKind::Slow(*wait),
            FaultKind::Oversize(bytes) => FaultKind::Oversize(*bytes),
        })
    }

    fn route(&mut self, call: &Outbound) -> Reply {
        let path = call.path().to_owned();
        let source = match path.as_str() {
            SHOPIFY_PATH => Some(Source::Shopify),
            HUBSPOT_PATH => Some(Source::Hubspot),
            CUSTOM_PATH | CSV_PATH | TEXT_PATH => Some(Source::Custom),
            _ => None,
        };
        let Some(source) = source.filter(|_| call.method == "GET") else {
            return json_reply(404, &json!({ "errors": "Not Found" }));
        };
        if let Some(FaultKind::Status { status, retry_after }) =
            self.take_fault(call, |kind| matches!(kind, FaultKind::Status { .. }))
        {
            return self.error(source, status, retry_after.as_deref());
        }
        let mut reply = match path.as_str() {
            SHOPIFY_PATH => self.shopify(call),
            HUBSPOT_PATH => self.hubspot(call),
            CUSTOM_PATH => self.custom(call),
            CSV_PATH => self.csv(),
            _ => Reply::text(200, RETURNS_POLICY),
        };
        if reply.status == 200
            && let Some(FaultKind::Oversize(bytes)) =
                self.take_fault(call, |kind| matches!(kind, FaultKind::Oversize(_)))
        {
            reply = inflate(reply, bytes);
        }
        if let Some(FaultKind::Slow(wait)) = self.take_fault(call, |kind| matches!(kind, FaultKind::Slow(_)))
        {
            reply = reply.after(wait);
        }
        reply
    }

    /// The answer a source gives for an error status, in that CRM's own shape.
    fn error(&mut self, source: Source, status: u16, retry_after: Option<&str>) -> Reply {
        self.correlation += 1;
        let correlation = format!("8e3b2a51-0000-4000-8000-{:012}", self.correlation);
        let reply = match source {
            Source::Shopify => {
                let errors = match status {
                    401 => "[API] Invalid API key or access token (unrecognized login or wrong password)",
                    429 => {
                        "Exceeded 2 calls per second for api client. Reduce request rates to resume uninterrupted service."
                    }
                    _ => reason(status),
                };
                json_reply(status, &json!({ "errors": errors }))
            }
            Source::Hubspot => {
                let (message, category) = match status {
                    401 => (
                        "Authentication credentials not found. This API supports OAuth 2.0 authentication and you can find more details at https://developers.hubspot.com/docs/methods/auth/oauth-overview",
                        "INVALID_AUTHENTICATION",
                    ),
                    404 => ("Resource not found", "OBJECT_NOT_FOUND"),
                    429 => ("You have reached your ten_secondly_rolling limit.", "RATE_LIMIT"),
                    _ => ("internal error", "INTERNAL_ERROR"),
                };
                json_reply(
                    status,
                    &json!({ "status": "error", "message": message, "correlationId": correlation, "category": category }),
                )
            }
            Source::Custom if status == 503 => Reply::text(status, "Service Unavailable"),
            Source::Custom => json_reply(status, &json!({ "error": reason(status) })),
        };
        match retry_after {
            Some(seconds) => reply.header("retry-after", seconds),
            None => reply,
        }
    }

    fn origin(call: &Outbound) -> String {
        let scheme = call.url.split_once("://").map_or("https", |(scheme, _)| scheme);
        format!("{scheme}://{}", call.host())
    }

    /// Shopify's leaky bucket: each call adds one, 2 leak away a second; a full bucket is None.
    fn shopify_call_limit(&mut self, at_ms: i64) -> Option<String> {
        let (level, then) = self.bucket;
        let leaked = (at_ms - then).max(0) as f64 / 1000.0 * SHOPIFY_LEAK_PER_SECOND;
        let level = (level - leaked).max(0.0);
        if self.bucket_on && level + 1.0 > SHOPIFY_BUCKET_SIZE {
            self.bucket = (level, at_ms);
            return None;
        }
        self.bucket = (level + 1.0, at_ms);
        Some(format!("{}/{SHOPIFY_BUCKET_SIZE}", (level + 1.0).ceil()))
    }

    fn shopify(&mut self, call: &Outbound) -> Reply {
        if call.header("x-shopify-access-token") != Some(self.shopify_token.as_str()) {
            return self.error(Source::Shopify, 401, None);
        }
        let Some(call_limit) = self.shopify_call_limit(call.at_ms) else {
            return self.error(Source::Shopify, 429, Some("2.0"));
        };
        let query = call.query();
        let limit = query
            .get("limit")
            .and_then(|limit| limit.parse::<usize>().ok())
            .unwrap_or(self.sizes.shopify_page)
            .clamp(1, 250);
        let start = match query.get("page_info") {
            None => 0,
            Some(cursor) => match decode_cursor(cursor).and_then(|cursor| cursor["start"].as_u64()) {
                Some(start) => usize::try_from(start)
                    .unwrap_or(usize::MAX)
                    .min(self.shopify.len()),
                None => return json_reply(400, &json!({ "errors": { "page_info": ["Invalid value."] } })),
            },
        };
        let page: Vec<Value> = self.shopify.iter().skip(start).take(limit).cloned().collect();
        let origin = Self::origin(call);
        let page_url = |from: usize, direction: &str| {
            let last = if direction == "next" {
                page.last()
            } else {
                page.first()
            };
            let cursor = encode_cursor(&json!({
                "start": from, "direction": direction, "last_id": last.map(|record| record["id"].clone())
            }));
            format!("{origin}{SHOPIFY_PATH}?limit={limit}&page_info={cursor}")
        };
        let mut links = Vec::new();
        if start > 0 {
            links.push(format!(
                "<{}>; rel=\"previous\"",
                page_url(start.saturating_sub(limit), "prev")
            ));
        }
        if start + limit < self.shopify.len() {
            links.push(format!("<{}>; rel=\"next\"", page_url(start + limit, "next")));
        }
        let mut reply = ordered_reply(200, &json!({ "customers": page }))
            .header("x-shopify-shop-api-call-limit", &call_limit)
            .header("x-shopify-api-version", "2024-01");
        if !links.is_empty() {
            reply = reply.header("link", &links.join(", "));
        }
        reply
    }

    fn hubspot(&mut self, call: &Outbound) -> Reply {
        let bearer = call
            .header("authorization")
            .and_then(|value| value.strip_prefix("Bearer "));
        if bearer != Some(self.hubspot_token.as_str()) {
            return self.error(Source::Hubspot, 401, None);
        }
        let query = call.query();
        let limit = query
            .get("limit")
            .and_then(|limit| limit.parse::<usize>().ok())
            .unwrap_or(self.sizes.hubspot_page)
            .clamp(1, 100);
        let start = match query.get("after") {
            None => 0,
            Some(cursor) => match decode_cursor(cursor).and_then(|cursor| cursor["offset"].as_u64()) {
                Some(offset) => usize::try_from(offset)
                    .unwrap_or(usize::MAX)
                    .min(self.hubspot.len()),
                None => {
                    return json_reply(
                        400,
                        &json!({ "status": "error", "message": "Invalid input JSON on line 1: after is not a valid paging cursor", "category": "VALIDATION_ERROR" }),
                    );
                }
            },
        };
        let results: Vec<Value> = self.hubspot.iter().skip(start).take(limit).cloned().collect();
        let mut body = json!({ "results": results });
        if start + limit < self.hubspot.len() {
            let after = encode_cursor(&json!({ "offset": start + limit }));
            let link = format!("{}{HUBSPOT_PATH}?limit={limit}&after={after}", Self::origin(call));
            body["paging"] = json!({ "next": { "after": after, "link": link } });
        }
        ordered_reply(200, &body)
    }

    fn custom(&mut self, call: &Outbound) -> Reply {
        if call.header("x-api-key") != Some(self.custom_key.as_str()) {
            return json_reply(401, &json!({ "error": "invalid or missing X-API-Key" }));
        }
        ordered_reply(200, &json!({ "customers": self.custom }))
    }

    fn csv(&self) -> Reply {
        let columns = ["id", "name", "email", "subscription", "support_level"];
        let mut lines = vec![columns.join(",")];
        for record in &self.custom {
            let fields: Vec<String> = columns
                .iter()
                .map(|column| csv_field(record[*column].as_str().unwrap_or_default()))
                .collect();
            lines.push(fields.join(","));
        }
        Reply::status(200)
            .header("content-type", "text/csv; charset=utf-8")
            .body(format!("{}\r\n", lines.join("\r\n")))
    }
}

/// Where each field comes in a record as the CRMs write them (serde_json's maps sort their keys):
/// Shopify's customer and address, HubSpot's contact and properties and the custom CRM's
/// customer all keep their own order in this one list; a field not in it comes after, by name.
const FIELD_ORDER: [&str; 43] = [
    "customers",
    "results",
    "id",
    "name",
    "firstname",
    "lastname",
    "email",
    "first_name",
    "last_name",
    "phone",
    "company",
    "jobtitle",
    "address1",
    "city",
    "province",
    "country",
    "country_code",
    "zip",
    "state",
    "verified_email",
    "orders_count",
    "total_spent",
    "currency",
    "tags",
    "note",
    "created_at",
    "updated_at",
    "default_address",
    "lifecyclestage",
    "subscription",
    "support_plan",
    "support_level",
    "hs_object_id",
    "createdate",
    "lastmodifieddate",
    "properties",
    "createdAt",
    "updatedAt",
    "archived",
    "paging",
    "next",
    "after",
    "link",
];

/// `value` as JSON with each object's fields in the CRM's order.
pub fn ordered_json(value: &Value) -> String {
    match value {
        Value::Object(fields) => {
            let mut keys: Vec<&String> = fields.keys().collect();
            keys.sort_by_key(|key| {
                (
                    FIELD_ORDER
                        .iter()
                        .position(|known| known == key)
                        .unwrap_or(FIELD_ORDER.len()),
                    key.as_str(),
                )
            });
            let entries: Vec<String> = keys
                .into_iter()
                .map(|key| format!("{}:{}", Value::from(key.as_str()), ordered_json(&fields[key])))
                .collect();
            format!("{{{}}}", entries.join(","))
        }
        Value::Array(items) => format!(
            "[{}]",
            items.iter().map(ordered_json).collect::<Vec<_>>().join(",")
        ),
        scalar => scalar.to_string(),
    }
}

fn ordered_reply(status: u16, body: &Value) -> Reply {
    Reply::status(status)
        .header("content-type", "application/json; charset=utf-8")
        .body(ordered_json(body))
}

/// The same answer made bigger than `bytes`: a JSON body gains trailing whitespace (the same
/// data, as a pretty-printing server sends it), text more lines.
fn inflate(mut reply: Reply, bytes: usize) -> Reply {
    let json = reply
        .headers
        .iter()
        .any(|(name, value)| name == "content-type" && value.starts_with("application/json"));
    if json {
        reply.body.push(b'\n');
        reply.body.extend(std::iter::repeat_n(b' ', bytes));
    } else {
        let line = format!("{}\n", "filler ".repeat(15));
        for _ in 0..bytes.div_ceil(line.len()) {
            reply.body.extend_from_slice(line.as_bytes());
        }
    }
    reply
}

/// One CSV field, quoted when it must be (RFC 4180).
fn csv_field(value: &str) -> String {
    if value.contains([',', '"', '\r', '\n']) {
        format!("\"{}\"", value.replace('"', "\"\""))
    } else {
        value.to_owned()
    }
}

/// Opaque cursors: base64url JSON, as Shopify's `page_info` and HubSpot's `after` look.
fn encode_cursor(value: &Value) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(value.to_string())
}

fn decode_cursor(text: &str) -> Option<Value> {
    use base64::Engine;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(text)
        .ok()?;
    serde_json::from_slice::<Value>(&bytes)
        .ok()
        .filter(Value::is_object)
}

/// `since` days into the generated history, as each CRM writes times.
fn day(since: u64) -> (u64, u64, u64) {
    (2021 + since / 336, 1 + since / 28 % 12, 1 + since % 28)
}

fn shopify_time(since: u64) -> String {
    let (year, month, day) = day(since);
    format!("{year}-{month:02}-{day:02}T09:00:00+00:00")
}

fn hubspot_time(since: u64) -> String {
    let (year, month, day) = day(since);
    format!("{year}-{month:02}-{day:02}T09:00:00.000Z")
}

struct Customer<'a> {
    id: u64,
    first: &'a str,
    last: &'a str,
    email: &'a str,
    phone: &'a str,
    state: &'a str,
    orders: u64,
    spent: &'a str,
    tags: &'a str,
    note: &'a str,
    since: u64,
    address: [&'a str; 6],
}

fn shopify_record(customer: &Customer<'_>) -> Value {
    let [address1, city, province, country, country_code, zip] = customer.address;
    json!({
        "id": customer.id,
        "email": customer.email,
        "first_name": customer.first,
        "last_name": customer.last,
        "phone": customer.phone,
        "state": customer.state,
        "verified_email": true,
        "orders_count": customer.orders,
        "total_spent": customer.spent,
        "currency": "EUR",
        "tags": customer.tags,
        "note": customer.note,
        "created_at": shopify_time(customer.since),
        "updated_at": shopify_time(customer.since + 30),
        "default_address": {
            "address1": address1, "city": city, "province": province,
            "country": country, "country_code": country_code, "zip": zip
        }
    })
}

struct Contact<'a> {
    id: &'a str,
    first: &'a str,
    last: &'a str,
    email: &'a str,
    phone: &'a str,
    company: &'a str,
    job: &'a str,
    city: &'a str,
    stage: &'a str,
    plan: &'a str,
    since: u64,
}

fn hubspot_record(contact: &Contact<'_>) -> Value {
    let (created, modified) = (hubspot_time(contact.since), hubspot_time(contact.since + 45));
    json!({
        "id": contact.id,
        "properties": {
            "firstname": contact.first,
            "lastname": contact.last,
            "email": contact.email,
            "phone": contact.phone,
            "company": contact.company,
            "jobtitle": contact.job,
            "city": contact.city,
            "lifecyclestage": contact.stage,
            "support_plan": contact.plan,
            "hs_object_id": contact.id,
            "createdate": created,
            "lastmodifieddate": modified,
        },
        "createdAt": created,
        "updatedAt": modified,
        "archived": false,
    })
}

fn custom_record(id: &str, name: &str, email: &str, subscription: &str, support_level: &str) -> Value {
    json!({ "id": id, "name": name, "email": email, "subscription": subscription, "support_level": support_level })
}

/// The customers the tests ask about (tests/e2e/links/crm-data.mjs's first pinned records); the
/// custom CRM's first is the guide's own John Doe.
fn pinned(source: Source) -> Vec<Value> {
    match source {
        Source::Shopify => [
            Customer {
                id: 7_310_243_561_001,
                first: "Priya",
                last: "Nair",
                email: "priya.nair@mailbox.example",
                phone: "+353871234501",
                state: "enabled",
                orders: 14,
                spent: "1899.50",
                tags: "gold-support, vip",
                note: "Premium annual plan. Prefers WhatsApp over email.",
                since: 40,
                address: ["12 Grand Parade", "Cork", "Co. Cork", "Ireland", "IE", "T12 X2Y4"],
            },
            Customer {
                id: 7_310_243_561_002,
                first: "Declan",
                last: "Byrne",
                email: "declan.byrne@mailbox.example",
                phone: "+353861230002",
                state: "enabled",
                orders: 2,
                spent: "240.00",
                tags: "newsletter",
                note: "",
                since: 95,
                address: [
                    "4 Douglas Street",
                    "Cork",
                    "Co. Cork",
                    "Ireland",
                    "IE",
                    "T12 K8P3",
                ],
            },
            Customer {
                id: 7_310_243_561_003,
                first: "Margaret",
                last: "O'Connell",
                email: "m.oconnell@westshore.example",
                phone: "+353912340003",
                state: "enabled",
                orders: 37,
                spent: "5310.75",
                tags: "silver-support, wholesale",
                note: "Wholesale account, invoiced monthly.",
                since: 12,
                address: [
                    "7 Quay Street",
                    "Galway",
                    "Co. Galway",
                    "Ireland",
                    "IE",
                    "H91 C2T8",
                ],
            },
            Customer {
                id: 7_310_243_561_004,
                first: "Tomasz",
                last: "Wiśniewski",
                email: "tomasz.w@poczta.example",
                phone: "+48601234567",
                state: "enabled",
                orders: 5,
                spent: "412.30",
                tags: "bronze-support",
                note: "",
                since: 210,
                address: [
                    "ul. Marszałkowska 84",
                    "Warsaw",
                    "Mazowieckie",
                    "Poland",
                    "PL",
                    "00-514",
                ],
            },
            Customer {
                id: 7_310_243_561_005,
                first: "Aoife",
                last: "Gallagher",
                email: "aoife.gallagher@mailbox.example",
                phone: "+353719120005",
                state: "disabled",
                orders: 3,
                spent: "129.99",
                tags: "churned",
                note: "Closed her account in March after a delivery dispute.",
                since: 150,
                address: [
                    "22 Wine Street",
                    "Sligo",
                    "Co. Sligo",
                    "Ireland",
                    "IE",
                    "F91 H6W2",
                ],
            },
            Customer {
                id: 7_310_243_561_006,
                first: "Hiroshi",
                last: "Tanaka",
                email: "hiroshi.tanaka@kaisha.example",
                phone: "+81355550106",
                state: "enabled",
                orders: 1,
                spent: "58.00",
                tags: "",
                note: "Signed up at the Tokyo pop-up.",
                since: 400,
                address: ["2-11-3 Jingumae", "Tokyo", "Tokyo", "Japan", "JP", "150-0001"],
            },
            Customer {
                id: 7_310_243_561_007,
                first: "Fatima",
                last: "El Idrissi",
                email: "fatima.elidrissi@atlas.example",
                phone: "+212661230007",
                state: "enabled",
                orders: 58,
                spent: "12450.00",
                tags: "platinum-support, vip, wholesale",
                note: "Buys for three boutiques.",
                since: 7,
                address: [
                    "18 Rue de la Liberté",
                    "Marrakesh",
                    "Marrakesh-Safi",
                    "Morocco",
                    "MA",
                    "40000",
                ],
            },
            Customer {
                id: 7_310_243_561_008,
                first: "Siobhán",
                last: "Kelly",
                email: "siobhan.kelly@mailbox.example",
                phone: "+353611230008",
                state: "enabled",
                orders: 9,
                spent: "860.00",
                tags: "gold-support",
                note: "Allergic to latex: never ship latex gloves.",
                since: 88,
                address: [
                    "3 Thomas Street",
                    "Limerick",
                    "Co. Limerick",
                    "Ireland",
                    "IE",
                    "V94 E8R1",
                ],
            },
        ]
        .iter()
        .map(shopify_record)
        .collect(),
        Source::Hubspot => [
            Contact {
                id: "501",
                first: "Sofia",
                last: "Marquez",
                email: "sofia.marquez@brightline.example",
                phone: "+34961230501",
                company: "Brightline Logistics",
                job: "Operations Director",
                city: "Valencia",
                stage: "customer",
                plan: "Enterprise",
                since: 20,
            },
            Contact {
                id: "502",
                first: "Oluwaseun",
                last: "Adeyemi",
                email: "oluwaseun@kestrel-analytics.example",
                phone: "+2348031230502",
                company: "Kestrel Analytics",
                job: "Data Engineer",
                city: "Lagos",
                stage: "opportunity",
                plan: "Standard",
                since: 75,
            },
            Contact {
                id: "503",
                first: "Ingrid",
                last: "Halvorsen",
                email: "ingrid@fjordside.example",
                phone: "+4755230503",
                company: "Fjordside Seafood",
                job: "Purchasing Manager",
                city: "Bergen",
                stage: "lead",
                plan: "Basic",
                since: 310,
            },
            Contact {
                id: "504",
                first: "Rafael",
                last: "Oliveira",
                email: "rafael@copacabana-roasters.example",
                phone: "+5521991230504",
                company: "Copacabana Coffee Roasters",
                job: "Founder",
                city: "Rio de Janeiro",
                stage: "customer",
                plan: "Premium",
                since: 140,
            },
            Contact {
                id: "505",
                first: "Wei",
                last: "Chen",
                email: "wei.chen@lotus-robotics.example",
                phone: "+8675512340505",
                company: "Lotus Robotics",
                job: "CTO",
                city: "Shenzhen",
                stage: "evangelist",
                plan: "Premium",
                since: 55,
            },
            Contact {
                id: "506",
                first: "Nadia",
                last: "Petrova",
                email: "n.petrova@volga-textiles.example",
                phone: "+78432340506",
                company: "Volga Textiles",
                job: "Head of Procurement",
                city: "Kazan",
                stage: "salesqualifiedlead",
                plan: "Standard",
                since: 260,
            },
        ]
        .iter()
        .map(hubspot_record)
        .collect(),
        Source::Custom => vec![
            custom_record("cust-123", "John Doe", "john@example.com", "Premium", "Gold"),
            custom_record(
                "cust-124",
                "Amara Okafor",
                "amara.okafor@example.com",
                "Basic",
                "Bronze",
            ),
            custom_record(
                "cust-125",
                "Björn Lindqvist",
                "bjorn.lindqvist@example.com",
                "Enterprise",
                "Platinum",
            ),
            custom_record(
                "cust-126",
                "Mei Zhou",
                "mei.zhou@example.com",
                "Premium",
                "Silver",
            ),
            custom_record(
                "cust-127",
                "Gianluca Rossi",
                "gianluca.rossi@example.com",
                "Standard",
                "Gold",
            ),
            custom_record(
                "cust-128",
                "Zainab Hussain",
                "zainab.hussain@example.com",
                "Premium",
                "Platinum",
            ),
        ],
    }
}

// Filler pools: none is a pinned customer's name, place or business.
const FIRST_NAMES: [&str; 24] = [
    "Alice", "Ben", "Carla", "Daniel", "Eva", "Felix", "Gemma", "Hugo", "Iris", "Jack", "Karen", "Leo",
    "Maria", "Noah", "Olivia", "Paul", "Quinn", "Rosa", "Tara", "Uma", "Victor", "Wendy", "Xavier", "Yara",
];
const LAST_NAMES: [&str; 24] = [
    "Smith", "Brown", "Walsh", "Ryan", "Clarke", "Hughes", "Foster", "Grant", "Hayes", "Jensen", "Keller",
    "Lambert", "Morgan", "Owens", "Price", "Quinlan", "Reid", "Shaw", "Turner", "Vance", "Ward", "Young",
    "Baker", "Carroll",
];
const PLACES: [[&str; 5]; 6] = [
    ["Dublin", "Co. Dublin", "Ireland", "IE", "D02"],
    ["Kilkenny", "Co. Kilkenny", "Ireland", "IE", "R95"],
    ["Belfast", "Northern Ireland", "United Kingdom", "GB", "BT1"],
    ["Amsterdam", "North Holland", "Netherlands", "NL", "1012"],
    ["Berlin", "Berlin", "Germany", "DE", "10115"],
    ["Lisbon", "Lisbon", "Portugal", "PT", "1100-148"],
];
const STREETS: [&str; 5] = [
    "High Street",
    "Church Road",
    "Station Road",
    "Mill Lane",
    "Park Avenue",
];
const TAGS: [&str; 4] = ["", "newsletter", "repeat-buyer", "bronze-support, newsletter"];
const NOTES: [&str; 4] = [
    "",
    "Prefers email updates.",
    "Subscribed at checkout.",
    "Uses the loyalty card.",
];
const COMPANIES: [&str; 6] = [
    "Blue Ridge Consulting",
    "Silver Field Software",
    "North Bridge Partners",
    "Cedar Grove Media",
    "Granite Peak Supplies",
    "Maple Point Builders",
];
const PLANS: [&str; 4] = ["Basic", "Standard", "Premium", "Enterprise"];
const LEVELS: [&str; 4] = ["Bronze", "Silver", "Gold", "Platinum"];

/// The `n`th new person of a source: a name no earlier one has (first names cycle, last names
/// move on once per cycle; 576 names, then a middle initial).
fn filler(source: Source, n: usize) -> Value {
    let cycle = n / (FIRST_NAMES.len() * LAST_NAMES.len());
    let first = match cycle {
        0 => FIRST_NAMES[n % FIRST_NAMES.len()].to_owned(),
        _ => format!(
            "{} {}.",
            FIRST_NAMES[n % FIRST_NAMES.len()],
            char::from(b'A' + u8::try_from(cycle % 26).unwrap_or(0))
        ),
    };
    let last = LAST_NAMES[n / FIRST_NAMES.len() % LAST_NAMES.len()];
    let slug = |text: &str| -> String {
        text.chars()
            .filter(char::is_ascii_alphabetic)
            .collect::<String>()
            .to_lowercase()
    };
    let pick = |list: &[&'static str], salt: usize| list[(n * 7 + salt) % list.len()];
    let number = n as u64;
    match source {
        Source::Shopify => {
            let [city, province, country, code, zip] = PLACES[n % PLACES.len()];
            let email = format!("{}.{}{n}@shopper.example", slug(&first), slug(last));
            let phone = format!("+35387{:07}", 1_000_000 + number * 37 % 8_999_999);
            let street = format!("{} {}", 1 + n % 199, pick(&STREETS, 1));
            let zip = format!("{zip} {}", 100 + n % 900);
            let orders = number % 31;
            let spent = format!("{}.{:02}", orders * 47, n % 100);
            shopify_record(&Customer {
                id: 6_900_000_000_000 + number * 10_007,
                first: &first,
                last,
                email: &email,
                phone: &phone,
                state: "enabled",
                orders,
                spent: &spent,
                tags: pick(&TAGS, 2),
                note: pick(&NOTES, 3),
                since: number % 700,
                address: [&street, city, province, country, code, &zip],
            })
        }
        Source::Hubspot => {
            let company = pick(&COMPANIES, 0);
            let id = (1_001 + number * 3).to_string();
            let email = format!("{}.{}{n}@{}.example", slug(&first), slug(last), slug(company));
            let phone = format!("+1312555{:04}", n % 10_000);
            hubspot_record(&Contact {
                id: &id,
                first: &first,
                last,
                email: &email,
                phone: &phone,
                company,
                job: "Account Manager",
                city: "Chicago",
                stage: "customer",
                plan: pick(&PLANS, 1),
                since: number % 700,
            })
        }
        Source::Custom => custom_record(
            &format!("cust-{}", 2_000 + n),
            &format!("{first} {last}"),
            &format!("{}.{}{n}@example.net", slug(&first), slug(last)),
            pick(&PLANS, 2),
            pick(&LEVELS, 3),
        ),
    }
}

/// A record's display name, whatever its source.
pub fn record_name(record: &Value) -> String {
    if let Some(properties) = record.get("properties") {
        return format!(
            "{} {}",
            properties["firstname"].as_str().unwrap_or_default(),
            properties["lastname"].as_str().unwrap_or_default()
        );
    }
    if let Some(first) = record.get("first_name") {
        return format!(
            "{} {}",
            first.as_str().unwrap_or_default(),
            record["last_name"].as_str().unwrap_or_default()
        );
    }
    record["name"].as_str().unwrap_or_default().to_owned()
}

/// A record's email, whatever its source.
pub fn record_email(record: &Value) -> String {
    record
        .pointer("/properties/email")
        .or_else(|| record.get("email"))
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use edge::runtime::native::Stack;

    fn get(stack: &Stack, crm: &Crm, url: &str, headers: &[(&str, &str)]) -> Reply {
        let call = Outbound {
            method: "GET".into(),
            url: url.into(),
            headers: headers
                .iter()
                .map(|(name, value)| (name.to_ascii_lowercase(), (*value).to_owned()))
                .collect(),
            body: Vec::new(),
            at_ms: stack.now_ms(),
        };
        crm.answer(&call)
    }

    #[test]
    fn shopify_pages_follow_the_link_header_to_the_end_and_every_customer_comes_once() {
        let stack = Stack::new();
        let crm = Crm::install(
            &stack,
            "mystore.myshopify.com",
            Sizes {
                shopify: 7,
                shopify_page: 3,
                ..Sizes::SMALL
            },
        );
        let mut url = Some(crm.url(SHOPIFY_PATH));
        let mut seen = Vec::new();
        while let Some(next) = url.take() {
            let reply = get(&stack, &crm, &next, &[("X-Shopify-Access-Token", SHOPIFY_TOKEN)]);
            assert_eq!(reply.status, 200, "{next}");
            let body: Value = serde_json::from_slice(&reply.body).unwrap_or_default();
            seen.extend(body["customers"].as_array().cloned().unwrap_or_default());
            url = reply
                .headers
                .iter()
                .find(|(name, _)| name == "link")
                .and_then(|(_, link)| {
                    link.split(", ")
                        .find(|part| part.ends_with("rel=\"next\""))
                        .and_then(|part| part.split(['<', '>']).nth(1))
                        .map(str::to_owned)
                });
        }
        assert_eq!(
            seen,
            crm.records(Source::Shopify),
            "all seven, in order, once each"
        );
        assert_eq!(crm.served().len(), 3, "three pages of three");
        let refused = get(&stack, &crm, &crm.url(SHOPIFY_PATH), &[]);
        assert_eq!(refused.status, 401, "no token, no customers");
    }
}
