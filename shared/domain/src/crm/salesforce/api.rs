//! The calls the connector makes to a Salesforce org's REST API, as plain values, and how to read
//! the answers: the identity of whoever connected, the org's limits and object access, SOQL
//! queries, records written one at a time, by sObject Collections (200 a call) and by Composite
//! (25 subrequests a call), Salesforce's error bodies, and the `Sforce-Limit-Info` header every
//! answer carries.
//!
//! Every path is below the org's address (`instance_url`) and, for the REST API, below
//! `/services/data/v66.0`. Requests carry `Authorization: Bearer <access_token>`; errors come back
//! as `[{"message", "errorCode", "fields"}]` (per record of a collection, `statusCode` in place of
//! `errorCode`).

use super::ids::{OrganizationId, SalesforceId};
use super::settings::{ApiShare, CustomerObject, FieldName};
use crate::crm::request::{ApiRequest, Method, percent_encoded};
use crate::crm::retry::{CallFailure, MAX_PAUSE_SECONDS};
use crate::json::Malformed;
use serde::Deserialize;
use serde_json::{Map, Value, json};
use std::collections::HashSet;

/// The REST API's root, below the org's address.
pub const DATA: &str = "/services/data/v66.0";
/// Who the access token belongs to (OpenID Connect's UserInfo, at the org's address).
pub const USERINFO_PATH: &str = "/services/oauth2/userinfo";
/// The response header that says how much of the org's daily allowance is used.
pub const LIMIT_INFO_HEADER: &str = "Sforce-Limit-Info";
/// sObject Collections take at most this many records a call.
pub const MAX_COLLECTION_RECORDS: usize = 200;
/// ... and records of at most this many runs of one type (`{account1, account2, contact1}` is
/// two runs).
pub const MAX_COLLECTION_TYPE_RUNS: usize = 10;
/// Composite takes at most this many subrequests a call...
pub const MAX_COMPOSITE_SUBREQUESTS: usize = 25;
/// ... of which at most this many are queries or sObject Collections.
pub const MAX_COMPOSITE_HEAVY: usize = 5;
/// Salesforce refuses a URI (its query included) longer than this (414).
pub const MAX_URI_BYTES: usize = 16_384;
/// How long the connector waits once the org's allowance is spent (or its share of it): the
/// allowance is counted over the last 24 hours, so calls free up as the oldest age out; an hour
/// later the connector looks again.
pub const LIMIT_WAIT_SECONDS: u32 = MAX_PAUSE_SECONDS;

/// The sObjects the connector reads and writes: the only names that go into a path or a query.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SObject {
    Contact,
    Lead,
    Task,
    Case,
}

impl SObject {
    pub fn api_name(self) -> &'static str {
        match self {
            Self::Contact => "Contact",
            Self::Lead => "Lead",
            Self::Task => "Task",
            Self::Case => "Case",
        }
    }

    pub const ALL: [SObject; 4] = [Self::Contact, Self::Lead, Self::Task, Self::Case];
}

impl From<CustomerObject> for SObject {
    fn from(object: CustomerObject) -> Self {
        match object {
            CustomerObject::Contact => Self::Contact,
            CustomerObject::Lead => Self::Lead,
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Who connected, and what the org allows

/// `GET /services/oauth2/userinfo`: the user and org the access token belongs to.
pub fn identity() -> ApiRequest {
    ApiRequest::get(USERINFO_PATH.to_owned())
}

/// Who connected, as the identity service says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    pub organization_id: OrganizationId,
    pub user_id: SalesforceId,
    pub username: Option<String>,
    pub name: Option<String>,
    pub email: Option<String>,
}

pub fn parse_identity(body: &[u8]) -> Result<Identity, Malformed> {
    #[derive(Deserialize)]
    struct UserInfo {
        organization_id: String,
        user_id: String,
        #[serde(default)]
        preferred_username: Option<String>,
        #[serde(default)]
        name: Option<String>,
        #[serde(default)]
        email: Option<String>,
    }
    let info: UserInfo = serde_json::from_slice(body)
        .map_err(|error| format!("not Salesforce's user information: {error}"))?;
    Ok(Identity {
        organization_id: OrganizationId::parse(&info.organization_id)
            .ok_or("Salesforce's user information names no org id")?,
        user_id: SalesforceId::parse(&info.user_id)
            .ok_or("Salesforce's user information names no user id")?,
        username: info.preferred_username,
        name: info.name,
        email: info.email,
    })
}

/// `GET …/limits`: the org's limits (it needs the View Setup and Configuration permission).
pub fn limits() -> ApiRequest {
    ApiRequest::get(format!("{DATA}/limits"))
}

/// The org's allowance of API calls over the last 24 hours, and what is left of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DailyApiRequests {
    pub max: u64,
    pub remaining: u64,
}

impl DailyApiRequests {
    pub fn used(&self) -> u64 {
        self.max.saturating_sub(self.remaining)
    }
}

pub fn parse_limits(body: &[u8]) -> Result<DailyApiRequests, Malformed> {
    #[derive(Deserialize)]
    struct Limits {
        #[serde(rename = "DailyApiRequests")]
        daily: Limit,
    }
    #[derive(Deserialize)]
    struct Limit {
        #[serde(rename = "Max")]
        max: u64,
        #[serde(rename = "Remaining")]
        remaining: u64,
    }
    let limits: Limits =
        serde_json::from_slice(body).map_err(|error| format!("not Salesforce's limits: {error}"))?;
    Ok(DailyApiRequests {
        max: limits.daily.max,
        remaining: limits.daily.remaining,
    })
}

/// `GET …/sobjects`: every object the user can see, with what it may do with each.
pub fn objects() -> ApiRequest {
    ApiRequest::get(format!("{DATA}/sobjects"))
}

/// What the connected user may do with one object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectAccess {
    pub name: String,
    pub queryable: bool,
    pub createable: bool,
    pub updateable: bool,
}

/// The access to the objects the connector uses, in the answer's order (objects the user cannot
/// see at all are absent).
pub fn parse_objects(body: &[u8]) -> Result<Vec<ObjectAccess>, Malformed> {
    #[derive(Deserialize)]
    struct Global {
        sobjects: Vec<Described>,
    }
    #[derive(Deserialize)]
    struct Described {
        name: String,
        #[serde(default)]
        queryable: bool,
        #[serde(default)]
        createable: bool,
        #[serde(default)]
        updateable: bool,
    }
    let global: Global =
        serde_json::from_slice(body).map_err(|error| format!("not Salesforce's object list: {error}"))?;
    Ok(global
        .sobjects
        .into_iter()
        .filter(|object| SObject::ALL.iter().any(|known| known.api_name() == object.name))
        .map(|object| ObjectAccess {
            name: object.name,
            queryable: object.queryable,
            createable: object.createable,
            updateable: object.updateable,
        })
        .collect())
}

// ---------------------------------------------------------------------------------------------
// SOQL

/// `text` as a SOQL string literal: quoted, with the quote, the backslash, the double quote and
/// the control characters escaped, so that nothing in it ends the literal or reads as SOQL.
pub fn soql_string(text: &str) -> String {
    let mut literal = String::with_capacity(text.len() + 2);
    literal.push('\'');
    for c in text.chars() {
        match c {
            '\'' => literal.push_str("\\'"),
            '\\' => literal.push_str("\\\\"),
            '"' => literal.push_str("\\\""),
            '\n' => literal.push_str("\\n"),
            '\r' => literal.push_str("\\r"),
            '\t' => literal.push_str("\\t"),
            '\u{0c}' => literal.push_str("\\f"),
            c if c.is_control() => literal.push_str(&format!("\\u{:04x}", u32::from(c))),
            c => literal.push(c),
        }
    }
    literal.push('\'');
    literal
}

/// `GET …/query?q=<soql>`.
pub fn query(soql: &str) -> ApiRequest {
    ApiRequest::get(format!("{DATA}/query")).query(format!("q={}", percent_encoded(soql)))
}

/// `GET …/queryAll?q=<soql>`: deleted and merged records too.
pub fn query_all(soql: &str) -> ApiRequest {
    ApiRequest::get(format!("{DATA}/queryAll")).query(format!("q={}", percent_encoded(soql)))
}

/// How a customer is looked for.
#[derive(Debug, Clone, Copy)]
pub enum Lookup<'a> {
    Email(&'a str),
    /// The business's External ID field holding our customer's id.
    ExternalId {
        field: &'a FieldName,
        value: &'a str,
    },
}

/// The customer's records (at most two, oldest first: a second one says the org has a
/// duplicate, which the connector never adds to). A converted Lead is not looked at: it is read
/// only, its person is a Contact now.
pub fn find_customer(
    object: CustomerObject,
    lookup: Lookup<'_>,
    external_id_field: Option<&FieldName>,
) -> ApiRequest {
    let mut fields = vec!["Id", "Email", "FirstName", "LastName"];
    if let Some(field) = external_id_field {
        fields.push(field.as_str());
    }
    let condition = match lookup {
        Lookup::Email(email) => format!("Email = {}", soql_string(email.trim())),
        Lookup::ExternalId { field, value } => format!("{} = {}", field.as_str(), soql_string(value)),
    };
    let converted = match object {
        CustomerObject::Lead => " AND IsConverted = false",
        CustomerObject::Contact => "",
    };
    query(&format!(
        "SELECT {} FROM {} WHERE {condition}{converted} ORDER BY CreatedDate ASC LIMIT 2",
        fields.join(", "),
        object.api_name()
    ))
}

/// The records of several customers' emails, in as few queries as Salesforce's URI limit allows
/// (a query a call): every record of each email, oldest first, for [`oldest_of_email`] to choose
/// from. A converted Lead is not looked at, as in [`find_customer`].
pub fn find_customers_by_email(object: CustomerObject, emails: &[&str]) -> Vec<ApiRequest> {
    let converted = match object {
        CustomerObject::Lead => " AND IsConverted = false",
        CustomerObject::Contact => "",
    };
    let soql = |literals: &[String]| {
        format!(
            "SELECT Id, Email FROM {} WHERE Email IN ({}){converted} ORDER BY CreatedDate ASC",
            object.api_name(),
            literals.join(", ")
        )
    };
    let fits = |literals: &[String]| query(&soql(literals)).target().len() < MAX_URI_BYTES;
    let mut requests = Vec::new();
    let mut literals: Vec<String> = Vec::new();
    for email in emails
        .iter()
        .map(|email| email.trim())
        .filter(|email| !email.is_empty())
    {
        literals.push(soql_string(email));
        if literals.len() > 1 && !fits(&literals) {
            let last = literals.split_off(literals.len() - 1);
            requests.push(query(&soql(&literals)));
            literals = last;
        }
    }
    if !literals.is_empty() {
        requests.push(query(&soql(&literals)));
    }
    requests
}

/// The oldest record the query found with `email`, compared as Salesforce compares it (not
/// minding case); the records come oldest first.
pub fn oldest_of_email<'a>(found: &'a [Found], email: &str) -> Option<&'a SalesforceId> {
    let email = email.trim();
    found
        .iter()
        .find(|record| {
            record
                .text("Email")
                .is_some_and(|kept| kept.trim().eq_ignore_ascii_case(email))
        })
        .map(|record| &record.id)
}

/// What became of a record the connector keeps: still there, in the recycle bin, or merged into
/// another (`queryAll` sees deleted records).
pub fn record_fate(object: SObject, id: &SalesforceId) -> ApiRequest {
    query_all(&format!(
        "SELECT Id, IsDeleted, MasterRecordId FROM {} WHERE Id = {}",
        object.api_name(),
        soql_string(id.as_str())
    ))
}

/// What became of a record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fate {
    Alive,
    /// Deleted, not merged: a customer of ours kept there is made again.
    Deleted,
    /// Merged into this record: what the connector kept on the old one is now on it.
    MergedInto(SalesforceId),
    /// Not even in the recycle bin (emptied, or never this org's).
    Gone,
}

pub fn parse_fate(body: &[u8]) -> Result<Fate, Malformed> {
    let found = parse_query(body)?;
    let Some(record) = found.records.first() else {
        return Ok(Fate::Gone);
    };
    let master = record
        .fields
        .get("MasterRecordId")
        .and_then(Value::as_str)
        .and_then(SalesforceId::parse);
    let deleted = record.fields.get("IsDeleted").and_then(Value::as_bool) == Some(true);
    Ok(match (master, deleted) {
        (Some(master), _) => Fate::MergedInto(master),
        (None, true) => Fate::Deleted,
        (None, false) => Fate::Alive,
    })
}

/// One record a query answered.
#[derive(Debug, Clone, PartialEq)]
pub struct Found {
    pub id: SalesforceId,
    pub fields: Map<String, Value>,
}

impl Found {
    /// A field's value as text.
    pub fn text(&self, name: &str) -> Option<&str> {
        self.fields.get(name).and_then(Value::as_str)
    }
}

/// A query's answer: its records, and whether more are left (`nextRecordsUrl`).
#[derive(Debug, Clone, PartialEq)]
pub struct QueryResult {
    pub total_size: u64,
    pub records: Vec<Found>,
    pub next_records_url: Option<String>,
}

pub fn parse_query(body: &[u8]) -> Result<QueryResult, Malformed> {
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Answer {
        total_size: u64,
        records: Vec<Map<String, Value>>,
        #[serde(default)]
        next_records_url: Option<String>,
    }
    let answer: Answer =
        serde_json::from_slice(body).map_err(|error| format!("not a Salesforce query result: {error}"))?;
    let records = answer
        .records
        .into_iter()
        .map(|mut fields| {
            fields.remove("attributes");
            let id = fields
                .get("Id")
                .and_then(Value::as_str)
                .and_then(SalesforceId::parse)
                .ok_or("a record of the query result has no Id")?;
            Ok(Found { id, fields })
        })
        .collect::<Result<Vec<_>, Malformed>>()?;
    Ok(QueryResult {
        total_size: answer.total_size,
        records,
        next_records_url: answer.next_records_url,
    })
}

// ---------------------------------------------------------------------------------------------
// Records, one at a time

/// `POST …/sobjects/{object}`: 201 with the new record's id.
pub fn create(object: SObject, fields: &Map<String, Value>) -> ApiRequest {
    ApiRequest::with(
        Method::Post,
        format!("{DATA}/sobjects/{}", object.api_name()),
        Value::Object(fields.clone()),
    )
}

/// `PATCH …/sobjects/{object}/{id}`: 204.
pub fn update(object: SObject, id: &SalesforceId, fields: &Map<String, Value>) -> ApiRequest {
    ApiRequest::with(
        Method::Patch,
        format!("{DATA}/sobjects/{}/{}", object.api_name(), id.as_str()),
        Value::Object(fields.clone()),
    )
}

/// `PATCH …/sobjects/{object}/{field}/{value}`: creates the record (201) or updates the one
/// whose External ID `field` is `value` (200); 300 when several have it. The value travels in
/// the path, so the body leaves the field out.
pub fn upsert(object: SObject, field: &FieldName, value: &str, fields: &Map<String, Value>) -> ApiRequest {
    let mut body = fields.clone();
    body.remove(field.as_str());
    ApiRequest::with(
        Method::Patch,
        format!(
            "{DATA}/sobjects/{}/{}/{}",
            object.api_name(),
            field.as_str(),
            percent_encoded(value)
        ),
        Value::Object(body),
    )
}

/// `DELETE …/sobjects/{object}/{id}`: 204; the record goes to the org's recycle bin.
pub fn delete(object: SObject, id: &SalesforceId) -> ApiRequest {
    ApiRequest::delete(format!("{DATA}/sobjects/{}/{}", object.api_name(), id.as_str()))
}

/// `GET …/sobjects/Case/{id}?fields=Status,IsClosed`.
pub fn case_state(id: &SalesforceId) -> ApiRequest {
    ApiRequest::get(format!("{DATA}/sobjects/Case/{}", id.as_str()))
        .query("fields=Status,IsClosed".to_owned())
}

/// A Case's status, as the connector follows it back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaseState {
    pub id: SalesforceId,
    pub status: String,
    pub closed: bool,
}

pub fn parse_case_state(body: &[u8]) -> Result<CaseState, Malformed> {
    #[derive(Deserialize)]
    struct Case {
        #[serde(rename = "Id")]
        id: String,
        #[serde(rename = "Status", default)]
        status: Option<String>,
        #[serde(rename = "IsClosed", default)]
        closed: bool,
    }
    let case: Case =
        serde_json::from_slice(body).map_err(|error| format!("not a Salesforce Case: {error}"))?;
    Ok(CaseState {
        id: SalesforceId::parse(&case.id).ok_or("the Case has no valid Id")?,
        status: case.status.unwrap_or_default(),
        closed: case.closed,
    })
}

/// A record saved: its id, and for an upsert whether it was made rather than updated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Saved {
    pub id: SalesforceId,
    pub created: Option<bool>,
}

/// The answer of a create or an upsert (`{"id", "success", "errors", "created"}`): the record
/// saved, or Salesforce's reasons for refusing it. Err: an answer that is neither.
pub fn parse_saved(body: &[u8]) -> Result<Item, Malformed> {
    let answer: Value =
        serde_json::from_slice(body).map_err(|error| format!("not a Salesforce save result: {error}"))?;
    Ok(parse_item(&answer))
}

// ---------------------------------------------------------------------------------------------
// Many records at once

/// A record for sObject Collections: its type, and for an update its id.
#[derive(Debug, Clone, PartialEq)]
pub struct CollectionRecord {
    pub object: SObject,
    pub id: Option<SalesforceId>,
    pub fields: Map<String, Value>,
}

impl CollectionRecord {
    fn to_json(&self) -> Value {
        let mut record = Map::new();
        record.insert("attributes".to_owned(), json!({ "type": self.object.api_name() }));
        if let Some(id) = &self.id {
            record.insert("id".to_owned(), json!(id.as_str()));
        }
        for (name, value) in &self.fields {
            if name != "attributes" && !name.eq_ignore_ascii_case("id") {
                record.insert(name.clone(), value.clone());
            }
        }
        Value::Object(record)
    }
}

/// `records` in calls of sObject Collections, in order: at most 200 records and 10 runs of one
/// type each. Each record stands alone (`allOrNone: false`): one refused does not sink the rest.
fn collection_chunks(records: &[CollectionRecord]) -> Vec<&[CollectionRecord]> {
    let mut chunks = Vec::new();
    let mut start = 0;
    while start < records.len() {
        let mut end = start;
        let mut runs = 0;
        while end < records.len() && end - start < MAX_COLLECTION_RECORDS {
            let new_run = end == start || records[end].object != records[end - 1].object;
            if new_run && runs == MAX_COLLECTION_TYPE_RUNS {
                break;
            }
            runs += usize::from(new_run);
            end += 1;
        }
        chunks.push(&records[start..end]);
        start = end;
    }
    chunks
}

fn collection_body(records: &[CollectionRecord]) -> Value {
    json!({
        "allOrNone": false,
        "records": records.iter().map(CollectionRecord::to_json).collect::<Vec<_>>(),
    })
}

/// `POST …/composite/sobjects`, as many calls as `records` need. Records with an id are refused
/// by Salesforce here; give them to [`update_many`].
pub fn create_many(records: &[CollectionRecord]) -> Vec<ApiRequest> {
    collection_chunks(records)
        .into_iter()
        .map(|chunk| {
            ApiRequest::with(
                Method::Post,
                format!("{DATA}/composite/sobjects"),
                collection_body(chunk),
            )
        })
        .collect()
}

/// `PATCH …/composite/sobjects`, as many calls as `records` need (each has its id).
pub fn update_many(records: &[CollectionRecord]) -> Vec<ApiRequest> {
    collection_chunks(records)
        .into_iter()
        .map(|chunk| {
            ApiRequest::with(
                Method::Patch,
                format!("{DATA}/composite/sobjects"),
                collection_body(chunk),
            )
        })
        .collect()
}

/// `PATCH …/composite/sobjects/{object}/{field}`: records of one type upserted by their External
/// ID `field`, 200 a call. Each record carries its value of `field`.
pub fn upsert_many(object: SObject, field: &FieldName, records: &[Map<String, Value>]) -> Vec<ApiRequest> {
    let records: Vec<CollectionRecord> = records
        .iter()
        .map(|fields| CollectionRecord {
            object,
            id: None,
            fields: fields.clone(),
        })
        .collect();
    collection_chunks(&records)
        .into_iter()
        .map(|chunk| {
            ApiRequest::with(
                Method::Patch,
                format!(
                    "{DATA}/composite/sobjects/{}/{}",
                    object.api_name(),
                    field.as_str()
                ),
                collection_body(chunk),
            )
        })
        .collect()
}

/// What became of one record of a collection, in the order they were sent.
#[derive(Debug, Clone, PartialEq)]
pub enum Item {
    Saved(Saved),
    Failed(Vec<SalesforceError>),
}

pub fn parse_collection(body: &[u8]) -> Result<Vec<Item>, Malformed> {
    let items: Vec<Value> = serde_json::from_slice(body)
        .map_err(|error| format!("not a Salesforce collection result: {error}"))?;
    Ok(items.iter().map(parse_item).collect())
}

fn parse_item(item: &Value) -> Item {
    let saved = item.get("success").and_then(Value::as_bool) == Some(true);
    let id = item
        .get("id")
        .and_then(Value::as_str)
        .and_then(SalesforceId::parse);
    match (saved, id) {
        (true, Some(id)) => Item::Saved(Saved {
            id,
            created: item.get("created").and_then(Value::as_bool),
        }),
        _ => {
            let errors = item
                .get("errors")
                .and_then(Value::as_array)
                .map(|errors| errors.iter().filter_map(parse_error).collect::<Vec<_>>())
                .unwrap_or_default();
            Item::Failed(if errors.is_empty() {
                vec![SalesforceError {
                    code: ErrorCode::Other("UNKNOWN".to_owned()),
                    error_code: "UNKNOWN".to_owned(),
                    message: "Salesforce saved nothing and said no more".to_owned(),
                    fields: Vec::new(),
                }]
            } else {
                errors
            })
        }
    }
}

/// A Composite subrequest's reference id: a letter, then letters, digits and underscores.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ReferenceId(String);

impl ReferenceId {
    pub fn parse(text: &str) -> Option<Self> {
        let fits = text.len() <= 80
            && text.starts_with(|c: char| c.is_ascii_alphabetic())
            && text.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        fits.then(|| Self(text.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// One subrequest of a Composite call: a REST API request, named so that later subrequests of
/// its unit can use its answer (`@{name.id}`).
#[derive(Debug, Clone, PartialEq)]
pub struct Subrequest {
    pub reference_id: ReferenceId,
    pub request: ApiRequest,
}

impl Subrequest {
    /// Queries and sObject Collections, of which a call takes at most five.
    fn heavy(&self) -> bool {
        ["query", "queryAll", "composite/sobjects"]
            .iter()
            .any(|resource| self.request.path.starts_with(&format!("{DATA}/{resource}")))
    }

    fn to_json(&self) -> Value {
        let mut subrequest = json!({
            "method": self.request.method.as_str(),
            "url": self.request.target(),
            "referenceId": self.reference_id.as_str(),
        });
        if let (Some(fields), Some(body)) = (subrequest.as_object_mut(), &self.request.body) {
            fields.insert("body".to_owned(), body.clone());
        }
        subrequest
    }
}

/// Why subrequests cannot go as Composite calls.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CompositeRefusal {
    /// A unit has more subrequests (or queries and collections) than one call takes.
    UnitTooLarge { unit: usize },
    /// Two subrequests have the same reference id.
    DuplicateReference(String),
    /// A subrequest is not a REST API request of this version.
    NotRest(String),
}

/// `units` in Composite calls (`POST …/composite`), in order: each unit whole in one call (its
/// subrequests may refer to each other's answers), at most 25 subrequests and 5 queries or
/// collections a call. Units are independent of each other (`allOrNone: false`).
pub fn composite(units: &[Vec<Subrequest>]) -> Result<Vec<ApiRequest>, CompositeRefusal> {
    let mut seen = HashSet::new();
    for (at, unit) in units.iter().enumerate() {
        let heavy = unit.iter().filter(|sub| sub.heavy()).count();
        if unit.len() > MAX_COMPOSITE_SUBREQUESTS || heavy > MAX_COMPOSITE_HEAVY {
            return Err(CompositeRefusal::UnitTooLarge { unit: at });
        }
        for sub in unit {
            if !sub.request.path.starts_with(&format!("{DATA}/")) {
                return Err(CompositeRefusal::NotRest(sub.request.path.clone()));
            }
            if !seen.insert(sub.reference_id.clone()) {
                return Err(CompositeRefusal::DuplicateReference(sub.reference_id.0.clone()));
            }
        }
    }
    let mut calls = Vec::new();
    let mut current: Vec<Value> = Vec::new();
    let mut current_heavy = 0;
    for unit in units.iter().filter(|unit| !unit.is_empty()) {
        let heavy = unit.iter().filter(|sub| sub.heavy()).count();
        if current.len() + unit.len() > MAX_COMPOSITE_SUBREQUESTS
            || current_heavy + heavy > MAX_COMPOSITE_HEAVY
        {
            calls.push(composite_call(std::mem::take(&mut current)));
            current_heavy = 0;
        }
        current.extend(unit.iter().map(Subrequest::to_json));
        current_heavy += heavy;
    }
    if !current.is_empty() {
        calls.push(composite_call(current));
    }
    Ok(calls)
}

fn composite_call(subrequests: Vec<Value>) -> ApiRequest {
    ApiRequest::with(
        Method::Post,
        format!("{DATA}/composite"),
        json!({ "allOrNone": false, "compositeRequest": subrequests }),
    )
}

/// One subrequest's answer.
#[derive(Debug, Clone, PartialEq)]
pub struct SubResponse {
    pub reference_id: String,
    pub status: u16,
    pub body: Value,
}

pub fn parse_composite(body: &[u8]) -> Result<Vec<SubResponse>, Malformed> {
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Answer {
        composite_response: Vec<Sub>,
    }
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Sub {
        reference_id: String,
        http_status_code: u16,
        #[serde(default)]
        body: Value,
    }
    let answer: Answer = serde_json::from_slice(body)
        .map_err(|error| format!("not a Salesforce composite result: {error}"))?;
    Ok(answer
        .composite_response
        .into_iter()
        .map(|sub| SubResponse {
            reference_id: sub.reference_id,
            status: sub.http_status_code,
            body: sub.body,
        })
        .collect())
}

// ---------------------------------------------------------------------------------------------
// Errors

/// Salesforce's error codes the connector acts on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ErrorCode {
    /// The session (access token) expired or was revoked.
    InvalidSessionId,
    /// The org's API allowance is spent, or too many long calls run at once.
    RequestLimitExceeded,
    /// The record was deleted (merged records are deleted too).
    EntityIsDeleted,
    /// A duplicate rule of the org blocked the save.
    DuplicatesDetected,
    /// A unique field (an External ID) has this value on another record already.
    DuplicateValue,
    RequiredFieldMissing,
    /// A field the request names does not exist, or the user cannot see it.
    InvalidField,
    /// The user lacks access to the object, the record or a record it refers to.
    InsufficientAccess,
    NotFound,
    Other(String),
}

impl ErrorCode {
    fn parse(code: &str) -> Self {
        match code {
            "INVALID_SESSION_ID" => Self::InvalidSessionId,
            "REQUEST_LIMIT_EXCEEDED" => Self::RequestLimitExceeded,
            "ENTITY_IS_DELETED" => Self::EntityIsDeleted,
            "DUPLICATES_DETECTED" => Self::DuplicatesDetected,
            "DUPLICATE_VALUE" => Self::DuplicateValue,
            "REQUIRED_FIELD_MISSING" => Self::RequiredFieldMissing,
            "INVALID_FIELD" | "INVALID_FIELD_FOR_INSERT_UPDATE" | "NO_SUCH_COLUMN" => Self::InvalidField,
            "INSUFFICIENT_ACCESS"
            | "INSUFFICIENT_ACCESS_OR_READONLY"
            | "INSUFFICIENT_ACCESS_ON_CROSS_REFERENCE_ENTITY"
            | "API_DISABLED_FOR_ORG"
            | "API_CURRENTLY_DISABLED" => Self::InsufficientAccess,
            "NOT_FOUND" => Self::NotFound,
            other => Self::Other(other.to_owned()),
        }
    }
}

/// One error Salesforce reported.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SalesforceError {
    pub code: ErrorCode,
    /// The code as Salesforce wrote it (`INSUFFICIENT_ACCESS_ON_CROSS_REFERENCE_ENTITY`).
    pub error_code: String,
    pub message: String,
    pub fields: Vec<String>,
}

fn parse_error(error: &Value) -> Option<SalesforceError> {
    let code = error
        .get("errorCode")
        .or_else(|| error.get("statusCode"))
        .and_then(Value::as_str)?;
    Some(SalesforceError {
        code: ErrorCode::parse(code),
        error_code: code.to_owned(),
        message: error
            .get("message")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned(),
        fields: error
            .get("fields")
            .and_then(Value::as_array)
            .map(|fields| {
                fields
                    .iter()
                    .filter_map(Value::as_str)
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default(),
    })
}

/// The errors of an error answer (`[{"message", "errorCode", "fields"}]`); none when the body is
/// not Salesforce's (a proxy's page, an empty 503).
pub fn parse_errors(body: &[u8]) -> Vec<SalesforceError> {
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Array(errors)) => errors.iter().filter_map(parse_error).collect(),
        Ok(error @ Value::Object(_)) => parse_error(&error).into_iter().collect(),
        _ => Vec::new(),
    }
}

fn describe(errors: &[SalesforceError]) -> String {
    errors
        .iter()
        .map(|error| {
            let code = &error.error_code;
            if error.fields.is_empty() {
                format!("{code}: {}", error.message)
            } else {
                format!("{code}: {} ({})", error.message, error.fields.join(", "))
            }
        })
        .collect::<Vec<_>>()
        .join("; ")
}

/// What a failed call means for the connector.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Trouble {
    /// The access token expired or was revoked: refresh it, then call again.
    SessionExpired,
    /// The org's allowance is spent: wait [`LIMIT_WAIT_SECONDS`]; nothing is lost.
    LimitExceeded,
    /// Salesforce is down for maintenance or overloaded (503), or failed (5xx): try again.
    Unavailable,
    /// The record is deleted (or merged into another): find out which with [`record_fate`].
    Deleted,
    /// The org's duplicate rules say the record exists already: find it rather than make it.
    Duplicate,
    /// The connected user lacks access: an administrator must grant it.
    NoAccess,
    /// The request does not fit this org (a field it lacks, one it requires): its settings must
    /// change. Retrying cannot help.
    Rejected,
}

/// What a call that failed with `status` and `body` means.
pub fn classify(status: u16, body: &[u8]) -> (Trouble, Vec<SalesforceError>) {
    let errors = parse_errors(body);
    (trouble(status, &errors), errors)
}

fn trouble(status: u16, errors: &[SalesforceError]) -> Trouble {
    let has = |code: ErrorCode| errors.iter().any(|error| error.code == code);
    if has(ErrorCode::RequestLimitExceeded) {
        Trouble::LimitExceeded
    } else if status == 401 || has(ErrorCode::InvalidSessionId) {
        Trouble::SessionExpired
    } else if status >= 500 {
        Trouble::Unavailable
    } else if has(ErrorCode::EntityIsDeleted) {
        Trouble::Deleted
    } else if has(ErrorCode::DuplicatesDetected) || has(ErrorCode::DuplicateValue) || status == 300 {
        Trouble::Duplicate
    } else if has(ErrorCode::InsufficientAccess) || status == 403 {
        Trouble::NoAccess
    } else {
        Trouble::Rejected
    }
}

/// The failure as the connector framework's retry policy takes it: a spent allowance (a 403 to
/// Salesforce) is a rate limit that pauses the whole connector, not a refusal that fails the work.
pub fn call_failure(status: u16, body: &[u8]) -> CallFailure {
    failure_of(status, &parse_errors(body))
}

/// The failure of a record Salesforce answered it did not save (`"success": false` with its
/// `errors`), as an error answer with those errors would be.
pub fn refused_record(errors: &[SalesforceError]) -> CallFailure {
    failure_of(400, errors)
}

fn failure_of(status: u16, errors: &[SalesforceError]) -> CallFailure {
    let trouble = trouble(status, errors);
    let reason = reason_of(status, &trouble, errors);
    let (status, wait) = match trouble {
        Trouble::LimitExceeded => (429, Some(LIMIT_WAIT_SECONDS)),
        Trouble::SessionExpired => (401, None),
        _ => (status, None),
    };
    CallFailure::Status { status, wait, reason }
}

/// What a Salesforce error answer says, for the sync log: its errors, and what to check.
pub fn error_reason(status: u16, body: &[u8]) -> String {
    let (trouble, errors) = classify(status, body);
    reason_of(status, &trouble, &errors)
}

fn reason_of(status: u16, trouble: &Trouble, errors: &[SalesforceError]) -> String {
    let said = (!errors.is_empty()).then(|| describe(errors));
    let advice = match trouble {
        Trouble::SessionExpired => Some(
            "The access token expired or was revoked; the connector refreshes it, and if that fails, connect the org again.",
        ),
        Trouble::LimitExceeded => Some(
            "The org's daily API allowance is spent (Setup › System Overview shows it); the connector waits and tries again.",
        ),
        Trouble::NoAccess => Some(
            "The connected user lacks access: give its profile or a permission set Read, Create and Edit on \
             Contact (or Lead), Task and Case, and API Enabled.",
        ),
        Trouble::Rejected if errors.iter().any(|error| error.code == ErrorCode::InvalidField) => Some(
            "A field the settings name does not exist on this object, or the user cannot see it: check \
             settings.external_id_field, settings.task_channel_field and settings.task_message_id_field.",
        ),
        _ => None,
    };
    crate::crm::spec::error_reason("Salesforce", status, said, advice)
}

// ---------------------------------------------------------------------------------------------
// The daily allowance

/// The org's API usage as `Sforce-Limit-Info` reports it (`api-usage=25/15000`): calls in the last
/// 24 hours, and the allowance. `used` may exceed `max` (an org may run over for a while).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ApiUsage {
    pub used: u64,
    pub max: u64,
}

impl ApiUsage {
    /// The header's `api-usage` entry; None when it has none, or one that is not two numbers.
    pub fn parse(header: &str) -> Option<Self> {
        header.split([';', ',']).find_map(|entry| {
            let (name, value) = entry.trim().split_once('=')?;
            if !name.trim().eq_ignore_ascii_case("api-usage") {
                return None;
            }
            let (used, max) = value.trim().split_once('/')?;
            let number = |text: &str| {
                let text = text.trim();
                (!text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()))
                    .then(|| text.parse::<u64>().ok())
                    .flatten()
            };
            Some(Self {
                used: number(used)?,
                max: number(max)?,
            })
        })
    }

    /// Whether the connector should stop calling: the org has used the business's share of its
    /// allowance (or all of it). Its other integrations and its people keep the rest.
    pub fn should_pause(&self, share: ApiShare) -> bool {
        self.used >= share.of(self.max)
    }

    /// How long to pause after this answer, when it should.
    pub fn pause_seconds(&self, share: ApiShare) -> Option<u32> {
        self.should_pause(share).then_some(LIMIT_WAIT_SECONDS)
    }
}

impl From<DailyApiRequests> for ApiUsage {
    fn from(limits: DailyApiRequests) -> Self {
        Self {
            used: limits.used(),
            max: limits.max,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crm::salesforce::settings::API_VERSION;
    use url::form_urlencoded;

    fn field(name: &str) -> FieldName {
        FieldName::parse("f", &json!(name)).unwrap_or_else(|error| panic!("{error:?}"))
    }

    fn id(text: &str) -> SalesforceId {
        SalesforceId::parse(text).unwrap_or_else(|| panic!("{text}"))
    }

    fn soql_of(request: &ApiRequest) -> String {
        let query = request.query.clone().unwrap_or_default();
        let encoded = query.strip_prefix("q=").unwrap_or_else(|| panic!("{query}"));
        form_urlencoded::parse(format!("q={encoded}").as_bytes())
            .next()
            .map(|(_, value)| value.into_owned())
            .unwrap_or_default()
    }

    #[test]
    fn the_data_path_is_the_current_api_version() {
        assert_eq!(DATA, format!("/services/data/{API_VERSION}"));
        assert_eq!(limits().path, "/services/data/v66.0/limits");
    }

    #[test]
    fn identity_limits_and_object_access_are_read() {
        let identity = parse_identity(
            br#"{"sub":"https://login.salesforce.com/id/00Dx0000000BV7z/005x00000012Q9P","user_id":"005x00000012Q9P","organization_id":"00Dx0000000BV7z","preferred_username":"ada@acme.example","name":"Ada Lovelace","email":"ada@acme.example","active":true}"#,
        )
        .unwrap_or_else(|error| panic!("{error}"));
        assert_eq!(
            identity.organization_id,
            OrganizationId::parse("00Dx0000000BV7z").unwrap_or_else(|| panic!())
        );
        assert_eq!(identity.username.as_deref(), Some("ada@acme.example"));
        assert!(parse_identity(br#"{"user_id":"005x00000012Q9P","organization_id":"nope"}"#).is_err());

        let limits = parse_limits(br#"{"DailyApiRequests":{"Max":15000,"Remaining":14998,"Ant Migration Tool":{"Max":0,"Remaining":0}},"DailyBulkApiBatches":{"Max":15000,"Remaining":15000}}"#)
            .unwrap_or_else(|error| panic!("{error}"));
        assert_eq!(
            limits,
            DailyApiRequests {
                max: 15_000,
                remaining: 14_998
            }
        );
        assert_eq!(limits.used(), 2);
        assert!(parse_limits(b"{}").is_err());

        let access = parse_objects(
            br#"{"encoding":"UTF-8","maxBatchSize":200,"sobjects":[{"name":"Account","queryable":true,"createable":true,"updateable":true},{"name":"Contact","queryable":true,"createable":true,"updateable":false},{"name":"Case","queryable":true,"createable":false,"updateable":false}]}"#,
        )
        .unwrap_or_else(|error| panic!("{error}"));
        assert_eq!(
            access
                .iter()
                .map(|object| object.name.as_str())
                .collect::<Vec<_>>(),
            ["Contact", "Case"],
            "only the objects the connector uses"
        );
        assert!(!access[0].updateable);
    }

    #[test]
    fn soql_literals_keep_whatever_they_hold_inside_the_quotes() {
        let cases = [
            ("ada@acme.example", "'ada@acme.example'", "a plain email"),
            ("o'brien@acme.example", r"'o\'brien@acme.example'", "a quote"),
            (r"a\'b", r"'a\\\'b'", "a backslash before a quote"),
            (r"trailing\", r"'trailing\\'", "a trailing backslash"),
            (
                "x' OR Email != '",
                r"'x\' OR Email != \''",
                "an injection attempt",
            ),
            ("say \"hi\"", r#"'say \"hi\"'"#, "double quotes"),
            (
                "line\nbreak\r\ttab",
                r"'line\nbreak\r\ttab'",
                "control characters",
            ),
            ("bell\u{7}", r"'bell\u0007'", "another control character"),
            ("%_wild", "'%_wild'", "LIKE wildcards mean nothing to ="),
            ("名前@例え.jp", "'名前@例え.jp'", "letters outside ASCII"),
        ];
        for (text, literal, description) in cases {
            assert_eq!(soql_string(text), literal, "{description}");
        }
    }

    #[test]
    fn a_hostile_email_cannot_change_the_query() {
        let hostile = "x' OR Email != 'y' LIMIT 200 --\\";
        let request = find_customer(CustomerObject::Contact, Lookup::Email(hostile), None);
        assert_eq!(request.path, "/services/data/v66.0/query");
        let soql = soql_of(&request);
        assert_eq!(
            soql,
            r"SELECT Id, Email, FirstName, LastName FROM Contact WHERE Email = 'x\' OR Email != \'y\' LIMIT 200 --\\' ORDER BY CreatedDate ASC LIMIT 2"
        );
        // Read back the way SOQL reads a literal: the value is the whole email, nothing follows it
        // but the query's own clauses.
        let after_literal = soql
            .split_once("Email = ")
            .map(|(_, rest)| rest)
            .and_then(|rest| {
                let mut chars = rest.char_indices().skip(1);
                while let Some((at, c)) = chars.next() {
                    match c {
                        '\\' => {
                            chars.next();
                        }
                        '\'' => return rest.get(at + 1..),
                        _ => {}
                    }
                }
                None
            })
            .unwrap_or_default();
        assert_eq!(after_literal, " ORDER BY CreatedDate ASC LIMIT 2");
        assert!(
            request.target().len() < MAX_URI_BYTES,
            "the query stays within Salesforce's URI limit"
        );
    }

    #[test]
    fn several_customers_are_found_by_email_in_one_query_each_literal_escaped() {
        let requests = find_customers_by_email(
            CustomerObject::Lead,
            &["ada@example.com", " ", "x' OR Email != 'y"],
        );
        assert_eq!(requests.len(), 1);
        assert_eq!(
            soql_of(&requests[0]),
            r"SELECT Id, Email FROM Lead WHERE Email IN ('ada@example.com', 'x\' OR Email != \'y') AND IsConverted = false ORDER BY CreatedDate ASC"
        );
        assert!(find_customers_by_email(CustomerObject::Contact, &[]).is_empty());
    }

    #[test]
    fn emails_that_would_make_a_uri_too_long_are_split_across_queries() {
        let emails: Vec<String> = (0..400)
            .map(|n| format!("customer.number.{n:04}@a-long-domain-name.example.com"))
            .collect();
        let emails: Vec<&str> = emails.iter().map(String::as_str).collect();
        let requests = find_customers_by_email(CustomerObject::Contact, &emails);
        assert!(requests.len() > 1, "{} queries", requests.len());
        let mut asked = 0;
        for request in &requests {
            assert!(request.target().len() < MAX_URI_BYTES);
            asked += soql_of(request).matches("@a-long-domain-name").count();
        }
        assert_eq!(asked, emails.len(), "every email asked once");
    }

    #[test]
    fn the_oldest_record_of_an_email_is_chosen_whatever_its_case() {
        let found = parse_query(
            br#"{"totalSize":3,"done":true,"records":[
                {"attributes":{"type":"Contact"},"Id":"003000000000001AAA","Email":"Ada@Example.com"},
                {"attributes":{"type":"Contact"},"Id":"003000000000002AAA","Email":"ada@example.com"},
                {"attributes":{"type":"Contact"},"Id":"003000000000003AAA","Email":null}]}"#,
        )
        .unwrap_or_else(|error| panic!("{error}"));
        assert_eq!(
            oldest_of_email(&found.records, " ada@EXAMPLE.com").map(SalesforceId::as_str),
            Some("003000000000001AAA")
        );
        assert_eq!(oldest_of_email(&found.records, "bob@example.com"), None);
    }

    #[test]
    fn customers_are_found_by_their_external_id_and_leads_only_while_unconverted() {
        let external = field("Crm_Edge_Id__c");
        let request = find_customer(
            CustomerObject::Lead,
            Lookup::ExternalId {
                field: &external,
                value: "6f1c0b9e-1b2c-4d3e-8f9a-0b1c2d3e4f5a",
            },
            Some(&external),
        );
        assert_eq!(
            soql_of(&request),
            "SELECT Id, Email, FirstName, LastName, Crm_Edge_Id__c FROM Lead WHERE Crm_Edge_Id__c = \
             '6f1c0b9e-1b2c-4d3e-8f9a-0b1c2d3e4f5a' AND IsConverted = false ORDER BY CreatedDate ASC LIMIT 2"
        );
        assert!(
            request
                .query
                .as_deref()
                .is_some_and(|query| !query.contains(' ') && !query.contains('&')),
            "the query string is encoded"
        );
    }

    #[test]
    fn a_deleted_or_merged_record_is_followed_to_its_master() {
        let request = record_fate(SObject::Contact, &id("0035g00000abcde"));
        assert_eq!(request.path, "/services/data/v66.0/queryAll");
        assert_eq!(
            soql_of(&request),
            "SELECT Id, IsDeleted, MasterRecordId FROM Contact WHERE Id = '0035g00000abcdeAAA'"
        );
        let merged = br#"{"totalSize":1,"done":true,"records":[{"attributes":{"type":"Contact","url":"/services/data/v66.0/sobjects/Contact/0035g00000abcdeAAA"},"Id":"0035g00000abcdeAAA","IsDeleted":true,"MasterRecordId":"0035g00000fghijAAA"}]}"#;
        assert_eq!(parse_fate(merged), Ok(Fate::MergedInto(id("0035g00000fghij"))));
        let deleted = br#"{"totalSize":1,"done":true,"records":[{"Id":"0035g00000abcdeAAA","IsDeleted":true,"MasterRecordId":null}]}"#;
        assert_eq!(parse_fate(deleted), Ok(Fate::Deleted));
        let alive = br#"{"totalSize":1,"done":true,"records":[{"Id":"0035g00000abcdeAAA","IsDeleted":false,"MasterRecordId":null}]}"#;
        assert_eq!(parse_fate(alive), Ok(Fate::Alive));
        assert_eq!(
            parse_fate(br#"{"totalSize":0,"done":true,"records":[]}"#),
            Ok(Fate::Gone)
        );
    }

    #[test]
    fn records_are_made_updated_and_upserted_under_their_objects_path() {
        let mut fields = Map::new();
        fields.insert("LastName".to_owned(), json!("Lovelace"));
        fields.insert("Crm_Edge_Id__c".to_owned(), json!("c/1"));
        assert_eq!(
            create(SObject::Contact, &fields).path,
            "/services/data/v66.0/sobjects/Contact"
        );
        let updated = update(SObject::Contact, &id("0035g00000abcde"), &fields);
        assert_eq!(
            (updated.method, updated.path.as_str()),
            (
                Method::Patch,
                "/services/data/v66.0/sobjects/Contact/0035g00000abcdeAAA"
            )
        );
        let upserted = upsert(SObject::Contact, &field("Crm_Edge_Id__c"), "c/1", &fields);
        assert_eq!(
            upserted.path, "/services/data/v66.0/sobjects/Contact/Crm_Edge_Id__c/c%2F1",
            "the value stays one path segment"
        );
        assert_eq!(upserted.body, Some(json!({ "LastName": "Lovelace" })));
        assert_eq!(
            parse_saved(br#"{"id":"0035g00000abcdeAAA","errors":[],"success":true,"created":true}"#),
            Ok(Item::Saved(Saved {
                id: id("0035g00000abcde"),
                created: Some(true)
            }))
        );
        assert!(matches!(
            parse_saved(br#"{"success":false,"errors":[{"statusCode":"REQUIRED_FIELD_MISSING","message":"Required fields are missing: [LastName]","fields":["LastName"]}]}"#),
            Ok(Item::Failed(errors)) if errors.len() == 1
        ));
        assert!(parse_saved(b"<html>").is_err(), "an answer that is neither");
        assert_eq!(
            case_state(&id("5005g00000abcde")).target(),
            "/services/data/v66.0/sobjects/Case/5005g00000abcdeAAA?fields=Status,IsClosed"
        );
        assert_eq!(
            parse_case_state(br#"{"attributes":{"type":"Case"},"Id":"5005g00000abcdeAAA","Status":"Closed","IsClosed":true}"#),
            Ok(CaseState { id: id("5005g00000abcde"), status: "Closed".to_owned(), closed: true })
        );
    }

    fn contacts(count: usize) -> Vec<CollectionRecord> {
        (0..count)
            .map(|n| CollectionRecord {
                object: SObject::Contact,
                id: None,
                fields: [("LastName".to_owned(), json!(format!("n{n}")))]
                    .into_iter()
                    .collect(),
            })
            .collect()
    }

    fn records_in(request: &ApiRequest) -> usize {
        request
            .body
            .as_ref()
            .and_then(|body| body.get("records"))
            .and_then(Value::as_array)
            .map_or(0, Vec::len)
    }

    #[test]
    fn collections_carry_at_most_200_records_a_call_each_typed_and_standing_alone() {
        for (count, calls) in [
            (0, vec![]),
            (1, vec![1]),
            (200, vec![200]),
            (201, vec![200, 1]),
            (450, vec![200, 200, 50]),
        ] {
            let requests = create_many(&contacts(count));
            assert_eq!(
                requests.iter().map(records_in).collect::<Vec<_>>(),
                calls,
                "{count} records"
            );
        }
        let request = &create_many(&contacts(1))[0];
        assert_eq!(request.path, "/services/data/v66.0/composite/sobjects");
        assert_eq!(
            request.body,
            Some(
                json!({ "allOrNone": false, "records": [{ "attributes": { "type": "Contact" }, "LastName": "n0" }] })
            )
        );
        let upserts = upsert_many(
            SObject::Contact,
            &field("Crm_Edge_Id__c"),
            &contacts(201)
                .into_iter()
                .map(|record| record.fields)
                .collect::<Vec<_>>(),
        );
        assert_eq!(upserts.len(), 2);
        assert_eq!(upserts[0].method, Method::Patch);
        assert_eq!(
            upserts[0].path,
            "/services/data/v66.0/composite/sobjects/Contact/Crm_Edge_Id__c"
        );
    }

    #[test]
    fn a_collection_of_mixed_types_never_has_more_than_ten_runs_of_one_type_a_call() {
        let alternating: Vec<CollectionRecord> = (0..24)
            .map(|n| CollectionRecord {
                object: if n % 2 == 0 {
                    SObject::Contact
                } else {
                    SObject::Task
                },
                id: None,
                fields: Map::new(),
            })
            .collect();
        let requests = create_many(&alternating);
        assert_eq!(requests.iter().map(records_in).collect::<Vec<_>>(), [10, 10, 4]);
    }

    #[test]
    fn a_collections_answer_says_what_became_of_each_record() {
        let answer = br#"[{"id":"0035g00000abcdeAAA","success":true,"errors":[],"created":true},{"success":false,"errors":[{"statusCode":"DUPLICATES_DETECTED","message":"Use one of these records?","fields":[]}]},{"id":null,"success":false,"errors":[]}]"#;
        let items = parse_collection(answer).unwrap_or_else(|error| panic!("{error}"));
        assert_eq!(
            items[0],
            Item::Saved(Saved {
                id: id("0035g00000abcde"),
                created: Some(true)
            })
        );
        assert!(matches!(&items[1], Item::Failed(errors) if errors[0].code == ErrorCode::DuplicatesDetected));
        assert!(
            matches!(&items[2], Item::Failed(errors) if !errors.is_empty()),
            "a failure is never silent"
        );
    }

    fn sub(name: &str, request: ApiRequest) -> Subrequest {
        Subrequest {
            reference_id: ReferenceId::parse(name).unwrap_or_else(|| panic!("{name}")),
            request,
        }
    }

    fn subrequests_in(request: &ApiRequest) -> usize {
        request
            .body
            .as_ref()
            .and_then(|body| body.get("compositeRequest"))
            .and_then(Value::as_array)
            .map_or(0, Vec::len)
    }

    #[test]
    fn composite_packs_whole_units_into_calls_of_25_with_at_most_5_queries() {
        let units: Vec<Vec<Subrequest>> = (0..30)
            .map(|n| vec![sub(&format!("task{n}"), create(SObject::Task, &Map::new()))])
            .collect();
        let calls = composite(&units).unwrap_or_else(|error| panic!("{error:?}"));
        assert_eq!(calls.iter().map(subrequests_in).collect::<Vec<_>>(), [25, 5]);
        assert_eq!(calls[0].path, "/services/data/v66.0/composite");

        let with_queries: Vec<Vec<Subrequest>> = (0..7)
            .map(|n| {
                vec![
                    sub(&format!("find{n}"), query("SELECT Id FROM Contact LIMIT 1")),
                    sub(&format!("task{n}"), create(SObject::Task, &Map::new())),
                ]
            })
            .collect();
        let calls = composite(&with_queries).unwrap_or_else(|error| panic!("{error:?}"));
        assert_eq!(
            calls.iter().map(subrequests_in).collect::<Vec<_>>(),
            [10, 4],
            "5 queries a call"
        );
        let first = calls[0]
            .body
            .as_ref()
            .and_then(|body| body.pointer("/compositeRequest/0"))
            .cloned();
        assert_eq!(
            first,
            Some(json!({
                "method": "GET",
                "url": "/services/data/v66.0/query?q=SELECT%20Id%20FROM%20Contact%20LIMIT%201",
                "referenceId": "find0",
            }))
        );
    }

    #[test]
    fn composite_refuses_what_one_call_cannot_take() {
        let too_many = vec![
            (0..26)
                .map(|n| sub(&format!("t{n}"), create(SObject::Task, &Map::new())))
                .collect(),
        ];
        assert_eq!(
            composite(&too_many),
            Err(CompositeRefusal::UnitTooLarge { unit: 0 })
        );
        let too_heavy = vec![
            (0..6)
                .map(|n| sub(&format!("q{n}"), query("SELECT Id FROM Case")))
                .collect(),
        ];
        assert_eq!(
            composite(&too_heavy),
            Err(CompositeRefusal::UnitTooLarge { unit: 0 })
        );
        let twice = vec![vec![sub("a", limits())], vec![sub("a", limits())]];
        assert_eq!(
            composite(&twice),
            Err(CompositeRefusal::DuplicateReference("a".to_owned()))
        );
        let oauth = vec![vec![sub("me", identity())]];
        assert!(matches!(composite(&oauth), Err(CompositeRefusal::NotRest(_))));
        assert_eq!(ReferenceId::parse("1st"), None);
        assert_eq!(ReferenceId::parse("a.b"), None);
        let answer = br#"{"compositeResponse":[{"body":{"id":"00T5g00000ABCDEEAY","success":true,"errors":[]},"httpHeaders":{},"httpStatusCode":201,"referenceId":"task0"}]}"#;
        let responses = parse_composite(answer).unwrap_or_else(|error| panic!("{error}"));
        assert_eq!(
            (responses[0].reference_id.as_str(), responses[0].status),
            ("task0", 201)
        );
    }

    #[test]
    fn error_answers_are_classified_by_what_the_connector_does_next() {
        let cases: [(u16, &[u8], Trouble, &str); 12] = [
            (401, br#"[{"message":"Session expired or invalid","errorCode":"INVALID_SESSION_ID"}]"#, Trouble::SessionExpired, "an expired session"),
            (401, b"", Trouble::SessionExpired, "a bare 401"),
            (403, br#"[{"message":"TotalRequests Limit exceeded.","errorCode":"REQUEST_LIMIT_EXCEEDED"}]"#, Trouble::LimitExceeded, "the allowance spent"),
            (503, b"<html>maintenance</html>", Trouble::Unavailable, "maintenance"),
            (500, br#"[{"message":"An unexpected error occurred","errorCode":"UNKNOWN_EXCEPTION"}]"#, Trouble::Unavailable, "Salesforce's own fault"),
            (404, br#"[{"message":"entity is deleted","errorCode":"ENTITY_IS_DELETED","fields":[]}]"#, Trouble::Deleted, "a deleted record"),
            (400, br#"[{"message":"Use one of these records?","errorCode":"DUPLICATES_DETECTED","fields":[]}]"#, Trouble::Duplicate, "a duplicate rule"),
            (300, br#"["/services/data/v66.0/sobjects/Contact/0035g00000abcdeAAA","/services/data/v66.0/sobjects/Contact/0035g00000fghijAAA"]"#, Trouble::Duplicate, "an external id on two records"),
            (400, br#"[{"message":"Required fields are missing: [Company]","errorCode":"REQUIRED_FIELD_MISSING","fields":["Company"]}]"#, Trouble::Rejected, "a required field"),
            (400, br#"[{"message":"No such column 'Channel__c' on sobject of type Task","errorCode":"INVALID_FIELD"}]"#, Trouble::Rejected, "a field the org lacks"),
            (403, br#"[{"message":"insufficient access rights on object id","errorCode":"INSUFFICIENT_ACCESS_OR_READONLY"}]"#, Trouble::NoAccess, "no access"),
            (400, br#"{"message":"odd","errorCode":"SOMETHING_NEW"}"#, Trouble::Rejected, "an error code the connector does not know"),
        ];
        for (status, body, trouble, description) in cases {
            assert_eq!(classify(status, body).0, trouble, "{description}");
        }
        let errors = parse_errors(br#"[{"message":"Required fields are missing: [Company]","errorCode":"REQUIRED_FIELD_MISSING","fields":["Company"]}]"#);
        assert_eq!(
            errors,
            [SalesforceError {
                code: ErrorCode::RequiredFieldMissing,
                error_code: "REQUIRED_FIELD_MISSING".to_owned(),
                message: "Required fields are missing: [Company]".to_owned(),
                fields: vec!["Company".to_owned()],
            }]
        );
    }

    #[test]
    fn a_spent_allowance_pauses_the_connector_instead_of_failing_the_work() {
        let spent = call_failure(
            403,
            br#"[{"message":"TotalRequests Limit exceeded.","errorCode":"REQUEST_LIMIT_EXCEEDED"}]"#,
        );
        assert!(matches!(
            spent,
            CallFailure::Status {
                status: 429,
                wait: Some(3600),
                ..
            }
        ));
        let verdict = crate::crm::retry::classify(&spent, 1, 0.0);
        assert!(
            matches!(verdict, crate::crm::retry::Verdict::Throttled { .. }),
            "{verdict:?}"
        );
        let maintenance = crate::crm::retry::classify(&call_failure(503, b""), 1, 0.0);
        assert!(
            matches!(maintenance, crate::crm::retry::Verdict::Retry { .. }),
            "{maintenance:?}"
        );
        let refused = crate::crm::retry::classify(
            &call_failure(400, br#"[{"message":"Required fields are missing: [Company]","errorCode":"REQUIRED_FIELD_MISSING","fields":["Company"]}]"#),
            1,
            0.0,
        );
        assert!(
            matches!(refused, crate::crm::retry::Verdict::Fail { .. }),
            "{refused:?}"
        );
    }

    #[test]
    fn error_reasons_say_what_salesforce_said_and_what_to_check() {
        let reason = error_reason(403, br#"[{"message":"insufficient access rights on cross-reference id","errorCode":"INSUFFICIENT_ACCESS_ON_CROSS_REFERENCE_ENTITY"}]"#);
        assert!(reason.starts_with("Salesforce answered 403: INSUFFICIENT_ACCESS_ON_CROSS_REFERENCE_ENTITY: insufficient access rights"), "{reason}");
        assert!(reason.contains("Read, Create and Edit on Contact"), "{reason}");
        let reason = error_reason(
            400,
            br#"[{"message":"No such column","errorCode":"INVALID_FIELD"}]"#,
        );
        assert!(reason.contains("settings.external_id_field"), "{reason}");
        assert_eq!(
            error_reason(502, b"<html>bad gateway</html>"),
            "Salesforce answered 502"
        );
    }

    #[test]
    fn the_limit_header_is_read_whatever_else_it_carries() {
        let cases = [
            ("api-usage=25/15000", Some((25, 15_000)), "the documented form"),
            (
                "api-usage=18/5000; per-app-api-usage=17/250(appName=sample-connected-app)",
                Some((18, 5_000)),
                "with a per-app quota",
            ),
            (
                "api-usage=110018/100000; api-bursts=1/750",
                Some((110_018, 100_000)),
                "over the allowance",
            ),
            (
                "per-app-api-usage=17/250(appName=x), api-usage=7/100",
                Some((7, 100)),
                "another entry first",
            ),
            (" API-USAGE = 1 / 2 ", Some((1, 2)), "spaces and capitals"),
            ("api-usage=25", None, "no allowance"),
            ("api-usage=-1/100", None, "a negative count"),
            ("api-usage=1e3/100", None, "not digits"),
            ("api-usage=99999999999999999999999/1", None, "too large to count"),
            ("", None, "empty"),
        ];
        for (header, expected, description) in cases {
            assert_eq!(
                ApiUsage::parse(header).map(|usage| (usage.used, usage.max)),
                expected,
                "{description}"
            );
        }
    }

    #[test]
    fn the_connector_pauses_once_the_business_share_is_used() {
        let half = ApiShare::percent(50).unwrap_or_else(|| panic!());
        let usage = |used| ApiUsage { used, max: 15_000 };
        assert!(!usage(7_499).should_pause(half));
        assert!(usage(7_500).should_pause(half), "at the share");
        assert!(usage(16_000).should_pause(half), "over the whole allowance");
        assert_eq!(usage(7_500).pause_seconds(half), Some(3600));
        assert_eq!(usage(10).pause_seconds(half), None);
        let all = ApiShare::percent(100).unwrap_or_else(|| panic!());
        assert!(!usage(14_999).should_pause(all));
        assert!(usage(15_000).should_pause(all));
        let from_limits = ApiUsage::from(DailyApiRequests {
            max: 100_000,
            remaining: 40_000,
        });
        assert_eq!(
            from_limits,
            ApiUsage {
                used: 60_000,
                max: 100_000
            }
        );
        assert!(from_limits.should_pause(half));
    }
}
