//! The calls the connector makes to HubSpot's REST API, as its public documentation describes
//! them, and how to read the answers. Objects live under the date-versioned
//! `/crm/objects/2026-03/{object}` (HubSpot's v3 paths are served until 2027-03-30; the dated ones
//! are the current). Requests carry `Authorization: Bearer <token>`; errors come back as
//! `{status: "error", message, correlationId, category}`.

use crate::crm::request::{ApiRequest, Method, percent_encoded};
use crate::json::Malformed;
use serde::Deserialize;
use serde_json::{Map, Value, json};

/// The API version of every object path.
const OBJECTS: &str = "/crm/objects/2026-03";

/// HubSpot's own association types (`HUBSPOT_DEFINED`) the connector makes, from an object to
/// another: a record made with one of these in its `associations` is linked in the same call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Association {
    CommunicationToContact,
    EmailToContact,
    NoteToContact,
    NoteToTicket,
    TicketToContact,
    CompanyToContact,
}

impl Association {
    pub fn type_id(self) -> u32 {
        match self {
            Self::CommunicationToContact => 81,
            Self::EmailToContact => 198,
            Self::NoteToContact => 202,
            Self::NoteToTicket => 228,
            Self::TicketToContact => 16,
            Self::CompanyToContact => 280,
        }
    }

    fn to(self, id: &str) -> Value {
        json!({
            "to": { "id": id },
            "types": [{ "associationCategory": "HUBSPOT_DEFINED", "associationTypeId": self.type_id() }],
        })
    }
}

/// A CRM object HubSpot answered with: its id and the properties it sent back.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Object {
    pub id: String,
    #[serde(default)]
    pub properties: Map<String, Value>,
}

impl Object {
    /// A property's value as text (HubSpot sends every property as a string, or null).
    pub fn property(&self, name: &str) -> Option<&str> {
        self.properties.get(name).and_then(Value::as_str)
    }
}

/// A ticket pipeline and its stages, as `GET /crm/pipelines/2026-03/tickets` lists them.
#[derive(Debug, Clone, PartialEq)]
pub struct Pipeline {
    pub id: String,
    pub label: String,
    pub stages: Vec<Stage>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Stage {
    pub id: String,
    pub label: String,
    /// `metadata.ticketState` is `CLOSED`.
    pub closed: bool,
}

/// A user tickets can be given to (`GET /crm/owners/2026-03`).
#[derive(Debug, Clone, PartialEq)]
pub struct Owner {
    pub id: String,
    pub email: String,
}

/// `GET /account-info/2026-03/details`: the account the token belongs to.
pub fn account_details() -> ApiRequest {
    ApiRequest::get("/account-info/2026-03/details".to_owned())
}

/// `GET /crm/pipelines/2026-03/tickets`.
pub fn ticket_pipelines() -> ApiRequest {
    ApiRequest::get("/crm/pipelines/2026-03/tickets".to_owned())
}

/// `GET /crm/owners/2026-03`, the largest page HubSpot gives (500 owners).
pub fn owners() -> ApiRequest {
    ApiRequest::get("/crm/owners/2026-03".to_owned()).query("limit=500&archived=false".to_owned())
}

/// The contacts whose `property` equals `value` (`POST …/contacts/search`). Search reads an index
/// that follows writes a few seconds behind, so it finds contacts made before, never the one a
/// call just made.
pub fn search_contacts(property: &str, value: &str) -> ApiRequest {
    ApiRequest::with(
        Method::Post,
        format!("{OBJECTS}/contacts/search"),
        json!({
            "filterGroups": [{ "filters": [{ "propertyName": property, "operator": "EQ", "value": value }] }],
            "properties": ["email", "phone", "firstname", "lastname"],
            "limit": 2,
        }),
    )
}

/// The companies whose `domain` is `domain` (`POST …/companies/search`), at most two.
pub fn search_companies(domain: &str) -> ApiRequest {
    ApiRequest::with(
        Method::Post,
        format!("{OBJECTS}/companies/search"),
        json!({
            "filterGroups": [{ "filters": [{ "propertyName": "domain", "operator": "EQ", "value": domain }] }],
            "properties": ["name", "domain"],
            "limit": 2,
        }),
    )
}

/// A company at `domain`, named after it (HubSpot fills in the rest from the domain), associated
/// with `contact` as it is made.
pub fn create_company(domain: &str, contact: &str) -> ApiRequest {
    ApiRequest::with(
        Method::Post,
        format!("{OBJECTS}/companies"),
        json!({
            "properties": { "name": domain, "domain": domain },
            "associations": [Association::CompanyToContact.to(contact)],
        }),
    )
}

/// The contact's default association with the company (`PUT …/contacts/{id}/associations/default/
/// companies/{company}`): made once, however often it is asked for.
pub fn associate_company(contact: &str, company: &str) -> ApiRequest {
    ApiRequest {
        method: Method::Put,
        path: format!(
            "{OBJECTS}/contacts/{}/associations/default/companies/{}",
            percent_encoded(contact),
            percent_encoded(company)
        ),
        query: None,
        body: None,
    }
}

/// Deletes the contact for good, as the GDPR asks (an erasure here): what it did and sent, its
/// associations, and its email, which HubSpot then refuses to track again. 204; 404 when there
/// is no such contact.
pub fn gdpr_delete_contact(contact_id: &str) -> ApiRequest {
    ApiRequest::with(
        Method::Post,
        format!("{OBJECTS}/contacts/gdpr-delete"),
        serde_json::json!({ "objectId": contact_id }),
    )
}

/// Creates the contact, or updates the one whose unique `id_property` (`email`, or the
/// business's own unique property) is `value`: one call, safe to repeat
/// (`POST …/contacts/batch/upsert`).
pub fn upsert_contact(id_property: &str, value: &str, properties: &Map<String, Value>) -> ApiRequest {
    ApiRequest::with(
        Method::Post,
        format!("{OBJECTS}/contacts/batch/upsert"),
        json!({ "inputs": [{ "id": value, "idProperty": id_property, "properties": properties }] }),
    )
}

/// `POST …/contacts`.
pub fn create_contact(properties: &Map<String, Value>) -> ApiRequest {
    ApiRequest::with(
        Method::Post,
        format!("{OBJECTS}/contacts"),
        json!({ "properties": properties }),
    )
}

/// `PATCH …/contacts/{id}`.
pub fn update_contact(id: &str, properties: &Map<String, Value>) -> ApiRequest {
    ApiRequest::with(
        Method::Patch,
        format!("{OBJECTS}/contacts/{}", percent_encoded(id)),
        json!({ "properties": properties }),
    )
}

/// Creates a record of `object` (`communications`, `emails`, `notes`, `tickets`) with
/// `properties`, associated with the records of `associations` as it is made.
pub fn create_object(object: &str, properties: Value, associations: &[(Association, &str)]) -> ApiRequest {
    let associations: Vec<Value> = associations
        .iter()
        .map(|(association, id)| association.to(id))
        .collect();
    ApiRequest::with(
        Method::Post,
        format!("{OBJECTS}/{object}"),
        json!({ "properties": properties, "associations": associations }),
    )
}

/// `PATCH …/tickets/{id}`.
pub fn update_ticket(id: &str, properties: Value) -> ApiRequest {
    ApiRequest::with(
        Method::Patch,
        format!("{OBJECTS}/tickets/{}", percent_encoded(id)),
        json!({ "properties": properties }),
    )
}

/// One object (a create's or update's answer).
pub fn parse_object(body: &[u8]) -> Result<Object, Malformed> {
    serde_json::from_slice(body).map_err(|error| Malformed::new(format!("not a HubSpot object: {error}")))
}

/// The contacts a search found.
pub fn parse_search(body: &[u8]) -> Result<Vec<Object>, Malformed> {
    #[derive(Deserialize)]
    struct Found {
        results: Vec<Object>,
    }
    serde_json::from_slice::<Found>(body)
        .map(|found| found.results)
        .map_err(|error| Malformed::new(format!("not a HubSpot search result: {error}")))
}

/// The one contact a batch upsert of one input made or updated; a batch that reports errors
/// (`numErrors`, a `status` other than COMPLETE) is read as failed, with HubSpot's words.
pub fn parse_upserted(body: &[u8]) -> Result<Object, Malformed> {
    #[derive(Deserialize)]
    struct Batch {
        #[serde(default)]
        status: String,
        #[serde(default)]
        results: Vec<Object>,
        #[serde(default)]
        errors: Vec<Value>,
    }
    let batch: Batch =
        serde_json::from_slice(body).map_err(|error| format!("not a HubSpot batch result: {error}"))?;
    if let Some(error) = batch.errors.first() {
        let message = error
            .get("message")
            .and_then(Value::as_str)
            .unwrap_or("no message");
        return Err(format!("the upsert failed: {message}").into());
    }
    match batch.results.into_iter().next() {
        Some(object) if batch.status == "COMPLETE" => Ok(object),
        Some(_) => Err(format!("the upsert ended {}", batch.status).into()),
        None => Err("the upsert answered no contact".into()),
    }
}

/// The account (portal) id kept in what [`parse_account`] made.
pub fn portal_of(account: &Value) -> Option<u64> {
    account.get("portal_id")?.as_u64()
}

/// The account's id (`portalId`) and what else the connection test shows of it.
pub fn parse_account(body: &[u8]) -> Result<Value, Malformed> {
    let details: Value =
        serde_json::from_slice(body).map_err(|error| format!("not HubSpot's account details: {error}"))?;
    let portal = details
        .get("portalId")
        .and_then(Value::as_u64)
        .ok_or("HubSpot's account details carry no portalId")?;
    Ok(json!({
        "name": format!("HubSpot account {portal}"),
        "portal_id": portal,
        "time_zone": details.get("timeZone"),
        "data_hosting_location": details.get("dataHostingLocation"),
        "ui_domain": details.get("uiDomain"),
    }))
}

pub fn parse_pipelines(body: &[u8]) -> Result<Vec<Pipeline>, Malformed> {
    #[derive(Deserialize)]
    struct List {
        results: Vec<RawPipeline>,
    }
    #[derive(Deserialize)]
    struct RawPipeline {
        id: String,
        #[serde(default)]
        label: String,
        #[serde(default)]
        stages: Vec<RawStage>,
    }
    #[derive(Deserialize)]
    struct RawStage {
        id: String,
        #[serde(default)]
        label: String,
        #[serde(default)]
        metadata: Map<String, Value>,
    }
    let list: List =
        serde_json::from_slice(body).map_err(|error| format!("not HubSpot's pipelines: {error}"))?;
    Ok(list
        .results
        .into_iter()
        .map(|pipeline| Pipeline {
            id: pipeline.id,
            label: pipeline.label,
            stages: pipeline
                .stages
                .into_iter()
                .map(|stage| Stage {
                    closed: stage.metadata.get("ticketState").and_then(Value::as_str) == Some("CLOSED"),
                    id: stage.id,
                    label: stage.label,
                })
                .collect(),
        })
        .collect())
}

pub fn parse_owners(body: &[u8]) -> Result<Vec<Owner>, Malformed> {
    #[derive(Deserialize)]
    struct List {
        results: Vec<RawOwner>,
    }
    #[derive(Deserialize)]
    struct RawOwner {
        id: String,
        #[serde(default)]
        email: Option<String>,
    }
    let list: List =
        serde_json::from_slice(body).map_err(|error| format!("not HubSpot's owners: {error}"))?;
    Ok(list
        .results
        .into_iter()
        .map(|owner| Owner {
            id: owner.id,
            email: owner.email.unwrap_or_default(),
        })
        .collect())
}

/// The contact a 409 says has the email already, from its message as the error reason carries
/// it (`Contact already exists. Existing ID: 123`).
pub fn existing_id(said: &str) -> Option<String> {
    let (_, after) = said.split_once("Existing ID: ")?;
    let id: String = after.chars().take_while(char::is_ascii_digit).collect();
    (!id.is_empty()).then_some(id)
}

/// What a HubSpot error answer says, for the sync log: its message, and for the statuses that
/// need it, what to check.
pub fn error_reason(status: u16, body: &[u8]) -> String {
    let error: Option<Value> = serde_json::from_slice(body).ok();
    let field = |name: &str| {
        error
            .as_ref()
            .and_then(|error| error.get(name))
            .and_then(Value::as_str)
            .map(str::to_owned)
    };
    let scopes: Vec<String> = error
        .as_ref()
        .and_then(|error| error.get("errors"))
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|item| {
            item.pointer("/context/requiredGranularScopes")?
                .as_array()
                .cloned()
        })
        .flatten()
        .filter_map(|scope| scope.as_str().map(str::to_owned))
        .collect();
    let missing_scopes = (!scopes.is_empty()).then(|| {
        format!(
            "Give the private app the scope {} (Development › Legacy apps › the app › Scopes).",
            scopes.join(", ")
        )
    });
    let advice = match status {
        401 => Some(
            "Check secrets.access_token: HubSpot no longer takes it (revoked, rotated, or an OAuth token that expired)."
                .to_owned(),
        ),
        403 => missing_scopes.or(Some(
            "The token lacks a scope this call needs: give the app crm.objects.contacts.read, \
             crm.objects.contacts.write and tickets."
                .to_owned(),
        )),
        _ => None,
    };
    crate::crm::spec::error_reason("HubSpot", status, field("message"), advice.as_deref())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn objects_are_made_with_their_associations_under_the_dated_path() {
        let request = create_object(
            "communications",
            json!({ "hs_communication_channel_type": "WHATS_APP" }),
            &[(Association::CommunicationToContact, "501")],
        );
        assert_eq!(request.method, Method::Post);
        assert_eq!(request.path, "/crm/objects/2026-03/communications");
        assert_eq!(
            request
                .body
                .as_ref()
                .and_then(|body| body.pointer("/associations/0")),
            Some(&json!({
                "to": { "id": "501" },
                "types": [{ "associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 81 }],
            }))
        );
        let ids: Vec<u32> = [
            Association::EmailToContact,
            Association::NoteToContact,
            Association::NoteToTicket,
            Association::TicketToContact,
        ]
        .map(Association::type_id)
        .to_vec();
        assert_eq!(ids, [198, 202, 228, 16]);
    }

    #[test]
    fn ids_in_paths_stay_one_segment() {
        assert_eq!(
            update_contact("12/../34", &Map::new()).path,
            "/crm/objects/2026-03/contacts/12%2F..%2F34"
        );
        assert_eq!(update_ticket("9", json!({})).method, Method::Patch);
    }

    #[test]
    fn an_upsert_is_one_input_keyed_by_its_unique_property() {
        let mut properties = Map::new();
        properties.insert("firstname".to_owned(), json!("Ada"));
        let request = upsert_contact("email", "ada@acme.example", &properties);
        assert_eq!(request.path, "/crm/objects/2026-03/contacts/batch/upsert");
        assert_eq!(
            request.body,
            Some(
                json!({ "inputs": [{ "id": "ada@acme.example", "idProperty": "email", "properties": { "firstname": "Ada" } }] })
            )
        );
        let answer = br#"{"status":"COMPLETE","results":[{"id":"77","new":true,"properties":{"email":"ada@acme.example"}}]}"#;
        assert_eq!(
            parse_upserted(answer).map(|object| object.id),
            Ok("77".to_owned())
        );
        let failed = br#"{"status":"COMPLETE","results":[],"numErrors":1,"errors":[{"message":"Property values were not valid"}]}"#;
        assert_eq!(
            parse_upserted(failed),
            Err(Malformed::new(
                "the upsert failed: Property values were not valid"
            ))
        );
    }

    #[test]
    fn answers_are_read_or_say_why_not() {
        let found = parse_search(br#"{"total":1,"results":[{"id":"5","properties":{"email":"a@b.c"}}]}"#)
            .unwrap_or_else(|error| panic!("{error}"));
        assert_eq!(found[0].property("email"), Some("a@b.c"));
        assert!(parse_search(b"<html>").is_err());
        let pipelines = parse_pipelines(
            br#"{"results":[{"id":"0","label":"Support","stages":[{"id":"1","label":"New","metadata":{"ticketState":"OPEN"}},{"id":"4","label":"Closed","metadata":{"ticketState":"CLOSED"}}]}]}"#,
        )
        .unwrap_or_else(|error| panic!("{error}"));
        assert_eq!(
            pipelines[0].stages.iter().map(|s| s.closed).collect::<Vec<_>>(),
            [false, true]
        );
        let account = parse_account(br#"{"portalId":62515,"timeZone":"US/Eastern"}"#)
            .unwrap_or_else(|error| panic!("{error}"));
        assert_eq!(account["portal_id"], 62515);
        assert_eq!(portal_of(&account), Some(62515));
        assert!(parse_account(b"{}").is_err());
    }

    #[test]
    fn a_conflict_names_the_contact_that_has_the_email() {
        let body = br#"{"status":"error","message":"Contact already exists. Existing ID: 12345","category":"CONFLICT"}"#;
        assert_eq!(existing_id(&error_reason(409, body)), Some("12345".to_owned()));
        assert_eq!(existing_id("HubSpot answered 409: Conflict"), None);
    }

    #[test]
    fn errors_say_what_hubspot_said_and_what_to_check() {
        let scopes = br#"{"status":"error","message":"This app hasn't been granted all required scopes to make this call.","category":"MISSING_SCOPES","errors":[{"message":"One or more of the following scopes are required.","context":{"requiredGranularScopes":["tickets"]}}]}"#;
        let reason = error_reason(403, scopes);
        assert!(
            reason.starts_with("HubSpot answered 403: This app hasn't been granted"),
            "{reason}"
        );
        assert!(
            reason.contains("Give the private app the scope tickets"),
            "{reason}"
        );
        assert!(error_reason(401, b"").contains("Check secrets.access_token"));
        assert_eq!(
            error_reason(502, b"<html>bad gateway</html>"),
            "HubSpot answered 502"
        );
    }
}
