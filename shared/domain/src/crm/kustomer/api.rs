//! Kustomer's REST API as we use it: the requests (method, path under `/v1`, JSON body) and how
//! to read its JSON:API answers and its errors.
//!
//! The runtime prefixes each path with [`KustomerSettings::api_base`](super::KustomerSettings::api_base)
//! and sends `Authorization: Bearer <api_key>`; every id or address put into a path is
//! percent-encoded here, so a value cannot add a segment or a query.

use super::MAX_NOTE_CHARS;
use super::settings::{KustomerSettings, Priority};
use crate::channel::{Channel, Direction};
use crate::crm::fields::names;
use crate::crm::request::percent_encoded;
pub use crate::crm::request::{ApiRequest, Method};
use crate::error::ApiError;
use crate::json::Malformed;
use crate::message::{ConversationStatus, Message};
use crate::text::cut_chars;
use serde::Serialize;
use serde_json::{Map, Value, json};

/// What our messages and conversations say they were written by, in Kustomer's `app` field.
pub const APP: &str = "crm-edge";
/// Kustomer assigns at most this many users, and this many teams, to a conversation.
const MAX_ASSIGNEES: usize = 10;
const MAX_PAGE_SIZE: u32 = 100;

/// The user the API key belongs to: the cheapest call that proves a key works.
pub fn current_user() -> ApiRequest {
    ApiRequest::get("/v1/users/current".to_owned())
}

/// The API key itself: its roles and, when it has one, its expiry. Kustomer documents
/// `/v1/auth/tokens/current` as needing no particular role, so a key can always read it.
pub fn current_token() -> ApiRequest {
    ApiRequest::get("/v1/auth/tokens/current".to_owned())
}

/// Answered with the customer, or 404 when none has this address.
pub fn find_customer_by_email(email: &str) -> ApiRequest {
    ApiRequest::get(format!("/v1/customers/email={}", percent_encoded(email.trim())))
}

/// Answered with the customer, or 404 when none has this `externalId`.
pub fn find_customer_by_external_id(external_id: &str) -> ApiRequest {
    ApiRequest::get(format!(
        "/v1/customers/externalId={}",
        percent_encoded(external_id.trim())
    ))
}

/// `body` is [`FieldMapping::customer_body`](super::FieldMapping::customer_body)'s.
pub fn create_customer(body: Map<String, Value>) -> ApiRequest {
    ApiRequest::with(Method::Post, "/v1/customers".to_owned(), Value::Object(body))
}

/// Replaces the attributes in `body` (lists such as `emails` are replaced whole).
pub fn update_customer(kustomer_id: &str, body: Map<String, Value>) -> ApiRequest {
    ApiRequest::with(
        Method::Put,
        format!("/v1/customers/{}", percent_encoded(kustomer_id)),
        Value::Object(body),
    )
}

/// Deletes the customer with what Kustomer keeps of them (an erasure here): 204, or 404 when
/// there is none.
pub fn delete_customer(kustomer_id: &str) -> ApiRequest {
    ApiRequest::delete(format!("/v1/customers/{}", percent_encoded(kustomer_id)))
}

/// A conversation to open on a Kustomer customer.
#[derive(Debug, Clone, PartialEq)]
pub struct NewConversation<'a> {
    /// The Kustomer customer id.
    pub customer: &'a str,
    pub name: String,
    pub priority: Priority,
    pub team: Option<&'a str>,
    /// Ours, so that the conversation can be found again after a crash.
    pub external_id: Option<String>,
    pub tags: Vec<String>,
}

/// Opens a conversation (status `open`). `direction` is left to Kustomer, which sets it from the
/// first message we add.
pub fn create_conversation(conversation: &NewConversation) -> ApiRequest {
    let mut body = Map::new();
    body.insert("customer".to_owned(), json!(conversation.customer));
    body.insert("name".to_owned(), json!(conversation.name));
    body.insert("status".to_owned(), json!("open"));
    body.insert("priority".to_owned(), json!(conversation.priority.get()));
    if let Some(team) = conversation.team {
        body.insert("assignedTeams".to_owned(), json!([team]));
    }
    if let Some(external_id) = &conversation.external_id {
        body.insert("externalId".to_owned(), json!(external_id));
    }
    if !conversation.tags.is_empty() {
        body.insert("tags".to_owned(), json!(conversation.tags));
    }
    ApiRequest::with(Method::Post, "/v1/conversations".to_owned(), Value::Object(body))
}

/// The channels a conversation opened through the API may be answered on (Kustomer's
/// `replyChannel`): the guide's "Ticket Creation Test" opens one on `chat`.
pub const REPLY_CHANNELS: [&str; 7] = [
    "chat",
    "email",
    "sms",
    "whatsapp",
    "facebook",
    "instagram",
    "voice",
];
/// A conversation's title, at most (Kustomer's limit on a conversation's title).
pub const MAX_TITLE_CHARS: usize = 256;

/// A conversation a business opens on a Kustomer customer by hand (the guide's
/// `createConversation(customerId, title, channel)`): checked before Kustomer is called.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TitledConversation {
    /// The Kustomer customer id.
    pub customer: String,
    pub title: String,
    /// One of [`REPLY_CHANNELS`].
    pub channel: &'static str,
}

impl TitledConversation {
    /// The conversation asked for, or 422 naming the field that is wrong; the channel defaults to
    /// `chat`.
    pub fn parse(customer_id: &str, title: &str, channel: Option<&str>) -> Result<Self, ApiError> {
        let customer = customer_id.trim();
        if !is_kustomer_id(customer) {
            return Err(ApiError::invalid(
                "customer_id",
                "customer_id is a Kustomer customer id (24 hex digits), as finding the customer answers it",
            ));
        }
        let title = title.trim();
        if title.is_empty() || title.chars().count() > MAX_TITLE_CHARS {
            return Err(ApiError::invalid(
                "title",
                format!("title is 1 to {MAX_TITLE_CHARS} characters"),
            ));
        }
        let asked = channel.map(str::trim).unwrap_or("chat");
        let channel = REPLY_CHANNELS
            .into_iter()
            .find(|known| known.eq_ignore_ascii_case(asked))
            .ok_or_else(|| {
                ApiError::invalid(
                    "channel",
                    format!("channel is one of {}", REPLY_CHANNELS.join(", ")),
                )
            })?;
        Ok(Self {
            customer: customer.to_owned(),
            title: title.to_owned(),
            channel,
        })
    }
}

/// Opens the titled conversation (status `open`), answered on its channel.
pub fn create_titled_conversation(conversation: &TitledConversation) -> ApiRequest {
    ApiRequest::with(
        Method::Post,
        "/v1/conversations".to_owned(),
        json!({
            "customer": conversation.customer,
            "name": conversation.title,
            "status": "open",
            "replyChannel": conversation.channel,
        }),
    )
}

/// The name agents see for a conversation we open: its channel, as people write it.
pub fn conversation_name(channel: Channel) -> String {
    let label = match channel {
        Channel::Whatsapp => "WhatsApp",
        Channel::Email => "Email",
        Channel::Sms => "SMS",
        Channel::Facebook => "Messenger",
        Channel::Instagram => "Instagram",
    };
    format!("{label} conversation")
}

/// Kustomer's status for ours: `open` is open, `resolved` and `closed` are `done`.
///
/// `pending` (waiting on the customer) maps to nothing: Kustomer's `snoozed` needs a snooze time
/// we do not have, and writing `open` would wake a conversation an agent snoozed; the caller
/// then leaves Kustomer's status alone.
pub fn kustomer_status(our_status: ConversationStatus) -> Option<&'static str> {
    match our_status {
        ConversationStatus::Open => Some("open"),
        ConversationStatus::Resolved | ConversationStatus::Closed => Some("done"),
        ConversationStatus::Pending => None,
    }
}

/// Sets a conversation's status (one of [`kustomer_status`]'s).
pub fn update_conversation_status(kustomer_conversation_id: &str, status: &str) -> ApiRequest {
    ApiRequest::with(
        Method::Patch,
        format!("/v1/conversations/{}", percent_encoded(kustomer_conversation_id)),
        json!({ "status": status }),
    )
}

/// Assigns users and teams (each list cut to Kustomer's 10, repeats dropped). A list left empty
/// is not sent, so assigning a team keeps the agent already on the conversation.
pub fn assign_conversation(kustomer_conversation_id: &str, users: &[String], teams: &[String]) -> ApiRequest {
    fn list(ids: &[String]) -> Vec<&str> {
        let mut unique: Vec<&str> = Vec::new();
        for id in ids.iter().map(|id| id.trim()).filter(|id| !id.is_empty()) {
            if !unique.contains(&id) && unique.len() < MAX_ASSIGNEES {
                unique.push(id);
            }
        }
        unique
    }
    let mut body = Map::new();
    let (users, teams) = (list(users), list(teams));
    if !users.is_empty() {
        body.insert("assignedUsers".to_owned(), json!(users));
    }
    if !teams.is_empty() {
        body.insert("assignedTeams".to_owned(), json!(teams));
    }
    ApiRequest::with(
        Method::Patch,
        format!("/v1/conversations/{}", percent_encoded(kustomer_conversation_id)),
        Value::Object(body),
    )
}

/// Raises a conversation to `priority`, reopens it, and gives it to `teams` when there are any
/// (an escalation of a conversation already in Kustomer).
pub fn escalate_conversation(
    kustomer_conversation_id: &str,
    priority: Priority,
    teams: &[String],
) -> ApiRequest {
    let mut request = assign_conversation(kustomer_conversation_id, &[], teams);
    if let Some(Value::Object(body)) = request.body.as_mut() {
        body.insert("priority".to_owned(), json!(priority.get()));
        body.insert("status".to_owned(), json!("open"));
    }
    request
}

/// Changes an escalated conversation's priority, its team, or both (a part left out is kept).
pub fn reroute_conversation(
    kustomer_conversation_id: &str,
    priority: Option<Priority>,
    team: Option<&str>,
) -> ApiRequest {
    let teams: Vec<String> = team.map(str::to_owned).into_iter().collect();
    let mut request = assign_conversation(kustomer_conversation_id, &[], &teams);
    if let (Some(priority), Some(Value::Object(body))) = (priority, request.body.as_mut()) {
        body.insert("priority".to_owned(), json!(priority.get()));
    }
    request
}

/// True for the form of Kustomer's ids (MongoDB ObjectIds): 24 lowercase hex digits.
pub fn is_kustomer_id(text: &str) -> bool {
    text.len() == 24
        && text
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// The `channel` of a Kustomer message for our channel.
pub fn channel_of(channel: Channel) -> &'static str {
    match channel {
        Channel::Whatsapp => "whatsapp",
        Channel::Email => "email",
        Channel::Sms => "sms",
        Channel::Facebook => "facebook",
        Channel::Instagram => "instagram",
    }
}

/// Records one of our messages on a Kustomer conversation (it delivers nothing: we did).
///
/// `externalId` is our message id, by which the runtime recognises the message when Kustomer's
/// webhook echoes it back; `sentAt` is when we received or sent it. Files are listed in the
/// preview as links (`attachment_links` are filename and URL), since Kustomer cannot fetch
/// attachments from an API-created message.
pub fn create_message(
    kustomer_conversation_id: &str,
    message: &Message,
    attachment_links: &[(String, String)],
) -> ApiRequest {
    let mut preview = message.content.trim().to_owned();
    if !attachment_links.is_empty() {
        if !preview.is_empty() {
            preview.push_str("\n\n");
        }
        preview.push_str("Attachments:");
        for (filename, url) in attachment_links {
            preview.push_str(&format!("\n- {filename}: {url}"));
        }
    }
    let mut body = json!({
        "channel": channel_of(message.channel),
        "app": APP,
        "direction": match message.direction {
            Direction::Inbound => "in",
            Direction::Outbound => "out",
        },
        "preview": preview,
        "externalId": message.id.as_str(),
        "sentAt": message.created_at,
    });
    if !attachment_links.is_empty()
        && let Some(fields) = body.as_object_mut()
    {
        let files: Vec<Value> = attachment_links
            .iter()
            .map(|(filename, url)| json!({ "filename": filename, "url": url }))
            .collect();
        fields.insert("meta".to_owned(), json!({ "attachments": files }));
    }
    ApiRequest::with(
        Method::Post,
        format!(
            "/v1/conversations/{}/messages",
            percent_encoded(kustomer_conversation_id)
        ),
        body,
    )
}

/// Said at the end of a note cut to fit Kustomer's limit.
pub const NOTE_CUT_MARKER: &str = "\n[…cut: longer than Kustomer's 10,240-character note limit]";

/// An internal note on a conversation, cut to Kustomer's 10,240 characters (at a character
/// boundary, ending with [`NOTE_CUT_MARKER`]) rather than refused.
pub fn create_note(kustomer_conversation_id: &str, body: &str) -> ApiRequest {
    ApiRequest::with(
        Method::Post,
        format!(
            "/v1/conversations/{}/notes",
            percent_encoded(kustomer_conversation_id)
        ),
        json!({ "body": cut_chars(body, MAX_NOTE_CHARS, NOTE_CUT_MARKER) }),
    )
}

/// One page (from 1) of the organization's teams, 100 to a page.
pub fn list_teams(page: u32) -> ApiRequest {
    ApiRequest::get("/v1/teams".to_owned()).query(format!("page={}&pageSize={MAX_PAGE_SIZE}", page.max(1)))
}

/// One page (from 1) of a customer's conversations; `page_size` is kept within 1 to 100.
pub fn customer_conversations(kustomer_customer_id: &str, page: u32, page_size: u32) -> ApiRequest {
    ApiRequest::get(format!(
        "/v1/customers/{}/conversations",
        percent_encoded(kustomer_customer_id)
    ))
    .query(format!(
        "page={}&pageSize={}",
        page.max(1),
        page_size.clamp(1, MAX_PAGE_SIZE)
    ))
}

/// One JSON:API resource object.
#[derive(Debug, Clone, PartialEq)]
pub struct Resource {
    /// JSON:API's `type` (`customer`, `conversation`, `user`, `team`…).
    pub kind: String,
    pub id: String,
    pub attributes: Map<String, Value>,
    pub relationships: Map<String, Value>,
}

impl Resource {
    fn from_value(value: &Value) -> Result<Self, Malformed> {
        let object = value.as_object().ok_or("a resource is not an object")?;
        let text = |name: &str| {
            object
                .get(name)
                .and_then(Value::as_str)
                .filter(|text| !text.is_empty())
                .map(str::to_owned)
                .ok_or_else(|| Malformed::new(format!("a resource has no {name}")))
        };
        let members = |name: &str| match object.get(name) {
            None | Some(Value::Null) => Ok(Map::new()),
            Some(Value::Object(members)) => Ok(members.clone()),
            Some(_) => Err(Malformed::new(format!("a resource's {name} is not an object"))),
        };
        Ok(Self {
            kind: text("type")?,
            id: text("id")?,
            attributes: members("attributes")?,
            relationships: members("relationships")?,
        })
    }

    fn text(&self, name: &str) -> Option<String> {
        self.attributes
            .get(name)
            .and_then(Value::as_str)
            .map(str::trim)
            .filter(|text| !text.is_empty())
            .map(str::to_owned)
    }

    /// The id a relationship points at (`relationships.{name}.data.id`).
    pub fn related_id(&self, name: &str) -> Option<String> {
        self.relationships
            .get(name)?
            .get("data")?
            .get("id")?
            .as_str()
            .filter(|id| !id.is_empty())
            .map(str::to_owned)
    }
}

fn document(body: &[u8]) -> Result<Value, Malformed> {
    serde_json::from_slice(body)
        .map_err(|error| Malformed::new(format!("Kustomer's answer is not JSON: {error}")))
}

/// The resource of a `{data: {...}}` answer.
pub fn parse_resource(body: &[u8]) -> Result<Resource, Malformed> {
    let document = document(body)?;
    let data = document.get("data").ok_or("Kustomer's answer has no data")?;
    Resource::from_value(data)
}

/// The resources of a `{data: [...], links: {next}}` answer, and whether there is a next page.
pub fn parse_list(body: &[u8]) -> Result<(Vec<Resource>, bool), Malformed> {
    let document = document(body)?;
    let items = document
        .get("data")
        .and_then(Value::as_array)
        .ok_or("Kustomer's answer has no data list")?;
    let resources = items
        .iter()
        .map(Resource::from_value)
        .collect::<Result<Vec<_>, _>>()?;
    let has_next = document
        .get("links")
        .and_then(|links| links.get("next"))
        .and_then(Value::as_str)
        .is_some_and(|next| !next.trim().is_empty());
    Ok((resources, has_next))
}

/// Who an API key acts as (`GET /v1/users/current`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CurrentUser {
    pub id: String,
    pub name: Option<String>,
    pub email: Option<String>,
    /// The organization's id, from the `org` relationship (or attribute).
    pub org: Option<String>,
}

impl CurrentUser {
    pub fn from_resource(resource: &Resource) -> Self {
        Self {
            id: resource.id.clone(),
            name: resource.text("name").or_else(|| resource.text("displayName")),
            email: resource.text("email"),
            org: resource.related_id("org").or_else(|| resource.text("org")),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
pub struct Team {
    pub id: String,
    /// The team's name, or its id when Kustomer gave none (a list must still show something).
    pub name: String,
}

impl Team {
    /// Checks the settings' default team against the organization's `teams`, as the admin API
    /// saves them: a team Kustomer does not have would fail every escalation later.
    pub fn check_default(settings: &KustomerSettings, teams: &[Team]) -> Result<(), ApiError> {
        let Some(wanted) = settings.default_team_id.as_deref() else {
            return Ok(());
        };
        if teams.iter().any(|team| team.id == wanted) {
            return Ok(());
        }
        Err(ApiError::invalid(
            "settings.default_team_id",
            format!(
                "settings.default_team_id {wanted} is not a team of this Kustomer organization; its teams are {}",
                names(teams.iter().map(|team| (&team.id, team.name.as_str())))
            ),
        ))
    }

    pub fn from_resource(resource: &Resource) -> Self {
        Self {
            id: resource.id.clone(),
            name: resource
                .text("name")
                .or_else(|| resource.text("displayName"))
                .unwrap_or_else(|| resource.id.clone()),
        }
    }
}

/// A customer's earlier conversation, as the history lookup shows it.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
pub struct PastConversation {
    pub id: String,
    pub name: Option<String>,
    pub status: Option<String>,
    pub priority: Option<u8>,
    pub created_at: Option<String>,
    pub updated_at: Option<String>,
    pub message_count: Option<u64>,
    /// The customer's rating; Kustomer writes 0 until there is one, which is no rating here.
    pub satisfaction: Option<f64>,
}

impl PastConversation {
    pub fn from_resource(resource: &Resource) -> Self {
        let number = |name: &str| resource.attributes.get(name).and_then(Value::as_f64);
        Self {
            id: resource.id.clone(),
            name: resource.text("name"),
            status: resource.text("status"),
            priority: resource
                .attributes
                .get("priority")
                .and_then(Value::as_u64)
                .and_then(|level| u8::try_from(level).ok())
                .filter(|level| (1..=5).contains(level)),
            created_at: resource.text("createdAt"),
            updated_at: resource.text("updatedAt"),
            message_count: resource.attributes.get("messageCount").and_then(Value::as_u64),
            satisfaction: number("satisfaction").filter(|score| *score > 0.0),
        }
    }
}

/// What Kustomer said, for people: the first errors of either documented shape
/// (`{code, message}` or JSON:API's `{status, code, title, detail, source}`), bounded, and for
/// 401 and 403 what to check. Only Kustomer's error fields are read, so a body that echoes our
/// request (customer data) is never passed on.
pub fn error_reason(status: u16, body: &[u8]) -> String {
    let said = serde_json::from_slice::<Value>(body)
        .ok()
        .and_then(|document| what_kustomer_said(&document));
    let advice = match status {
        401 => Some("Check the Kustomer API key in the connector's secrets"),
        403 => Some(
            "Check that the API key has the roles this needs (customers, conversations, messages, notes) \
             and belongs to this organization",
        ),
        429 => Some("Kustomer's rate limit was reached; the call is retried later"),
        _ => None,
    };
    crate::crm::spec::error_reason("Kustomer", status, said, advice)
}

fn what_kustomer_said(document: &Value) -> Option<String> {
    let text = |value: &Value, name: &str| {
        value
            .get(name)
            .and_then(Value::as_str)
            .map(str::trim)
            .filter(|text| !text.is_empty())
            .map(str::to_owned)
    };
    if let Some(errors) = document.get("errors").and_then(Value::as_array) {
        let parts: Vec<String> = errors
            .iter()
            .take(3)
            .filter_map(|error| {
                let message = text(error, "message")
                    .or_else(|| text(error, "detail"))
                    .or_else(|| text(error, "title"));
                let code = text(error, "code");
                let at = error
                    .get("source")
                    .and_then(|source| text(source, "pointer").or_else(|| text(source, "parameter")));
                let mut part = match (code, message) {
                    (Some(code), Some(message)) => format!("{code}: {message}"),
                    (Some(only), None) | (None, Some(only)) => only,
                    (None, None) => return None,
                };
                if let Some(at) = at {
                    part.push_str(&format!(" (at {at})"));
                }
                Some(part)
            })
            .collect();
        return (!parts.is_empty()).then(|| parts.join("; "));
    }
    text(document, "message").or_else(|| text(document, "error"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::channel::MessageStatus;
    use crate::ids::{ConversationId, CustomerId, MessageId};

    const CONVERSATION: &str = "5f3c1a2b4d5e6f7a8b9c0d1e";

    fn message(direction: Direction, content: &str) -> Message {
        Message {
            id: MessageId::generate([1; 16]),
            conversation_id: ConversationId::generate([2; 16]),
            customer_id: CustomerId::generate([3; 16]),
            content: content.to_owned(),
            platform: Channel::Whatsapp,
            channel: Channel::Whatsapp,
            direction,
            status: MessageStatus::Received,
            status_reason: None,
            created_at: "2026-11-23T10:00:00.000Z".to_owned(),
            updated_at: "2026-11-23T10:00:00.000Z".to_owned(),
            attachments: None,
            created_us: 0,
        }
    }

    #[test]
    fn lookups_put_every_value_in_one_encoded_percent_encoded() {
        let cases = [
            (current_user(), "/v1/users/current"),
            (
                find_customer_by_email(" ann+test@example.com "),
                "/v1/customers/email=ann%2Btest%40example.com",
            ),
            (
                find_customer_by_external_id("crm/42?x=1"),
                "/v1/customers/externalId=crm%2F42%3Fx%3D1",
            ),
            (
                find_customer_by_external_id("ü 1"),
                "/v1/customers/externalId=%C3%BC%201",
            ),
            (
                update_customer("../teams", Map::new()),
                "/v1/customers/..%2Fteams",
            ),
            (list_teams(0), "/v1/teams?page=1&pageSize=100"),
            (list_teams(3), "/v1/teams?page=3&pageSize=100"),
            (
                customer_conversations(CONVERSATION, 2, 500),
                "/v1/customers/5f3c1a2b4d5e6f7a8b9c0d1e/conversations?page=2&pageSize=100",
            ),
            (
                customer_conversations("a b", 1, 0),
                "/v1/customers/a%20b/conversations?page=1&pageSize=1",
            ),
        ];
        for (request, path) in cases {
            assert_eq!(request.target(), path);
        }
        assert_eq!(current_user().method.as_str(), "GET");
        assert_eq!(find_customer_by_email("a@b.c").body, None);
    }

    #[test]
    fn customers_are_created_with_the_mapped_body_and_updated_with_put() {
        let mut body = Map::new();
        body.insert("name".to_owned(), json!("Ann"));
        let created = create_customer(body.clone());
        assert_eq!(
            (created.method, created.path.as_str()),
            (Method::Post, "/v1/customers")
        );
        assert_eq!(created.body, Some(json!({ "name": "Ann" })));
        let updated = update_customer(CONVERSATION, body);
        assert_eq!(updated.method.as_str(), "PUT");
    }

    #[test]
    fn a_conversation_is_opened_with_its_priority_team_and_external_id() {
        let request = create_conversation(&NewConversation {
            customer: "6a1b2c3d4e5f6a7b8c9d0e1f",
            name: conversation_name(Channel::Whatsapp),
            priority: Priority::HIGH,
            team: Some("7b1b2c3d4e5f6a7b8c9d0e1f"),
            external_id: Some("c0ffee00-0000-4000-8000-000000000000".to_owned()),
            tags: vec!["whatsapp".to_owned()],
        });
        assert_eq!(
            (request.method, request.path.as_str()),
            (Method::Post, "/v1/conversations")
        );
        assert_eq!(
            request.body,
            Some(json!({
                "customer": "6a1b2c3d4e5f6a7b8c9d0e1f",
                "name": "WhatsApp conversation",
                "status": "open",
                "priority": 4,
                "assignedTeams": ["7b1b2c3d4e5f6a7b8c9d0e1f"],
                "externalId": "c0ffee00-0000-4000-8000-000000000000",
                "tags": ["whatsapp"],
            }))
        );
        let bare = create_conversation(&NewConversation {
            customer: "c",
            name: conversation_name(Channel::Sms),
            priority: Priority::MEDIUM,
            team: None,
            external_id: None,
            tags: Vec::new(),
        });
        assert_eq!(
            bare.body,
            Some(json!({ "customer": "c", "name": "SMS conversation", "status": "open", "priority": 3 }))
        );
    }

    #[test]
    fn our_statuses_map_to_kustomers_where_they_mean_the_same() {
        let cases = [
            (ConversationStatus::Open, Some("open")),
            (ConversationStatus::Resolved, Some("done")),
            (ConversationStatus::Closed, Some("done")),
            (ConversationStatus::Pending, None),
        ];
        for (ours, theirs) in cases {
            assert_eq!(kustomer_status(ours), theirs, "{ours}");
        }
        let request = update_conversation_status(CONVERSATION, "done");
        assert_eq!(request.method, Method::Patch);
        assert_eq!(request.path, format!("/v1/conversations/{CONVERSATION}"));
        assert_eq!(request.body, Some(json!({ "status": "done" })));
    }

    #[test]
    fn assignment_sends_only_the_lists_given_without_repeats_and_at_most_ten() {
        let users: Vec<String> = (0..12)
            .map(|n| format!("u{n}"))
            .chain(["u0".to_owned()])
            .collect();
        let request = assign_conversation(CONVERSATION, &users, &[]);
        let body = request.body.unwrap_or_default();
        assert_eq!(body["assignedUsers"].as_array().map(Vec::len), Some(10));
        assert!(body.get("assignedTeams").is_none());
        let request = assign_conversation(CONVERSATION, &[], &["t1".to_owned(), "t1".to_owned()]);
        assert_eq!(request.body, Some(json!({ "assignedTeams": ["t1"] })));
    }

    #[test]
    fn an_escalation_reopens_at_its_priority_and_gives_the_team_only_when_there_is_one() {
        let request = escalate_conversation(CONVERSATION, Priority::HIGH, &["t1".to_owned()]);
        assert_eq!(request.method, Method::Patch);
        assert_eq!(
            request.body,
            Some(json!({ "assignedTeams": ["t1"], "priority": 4, "status": "open" }))
        );
        let without_team = escalate_conversation(CONVERSATION, Priority::URGENT, &[]);
        assert_eq!(
            without_team.body,
            Some(json!({ "priority": 5, "status": "open" }))
        );
    }

    #[test]
    fn kustomer_ids_are_24_lowercase_hex_digits() {
        assert!(is_kustomer_id("5f3c1a2b4d5e6f7a8b9c0d1e"));
        for not_an_id in [
            "5F3C1A2B4D5E6F7A8B9C0D1E",
            "5f3c1a2b4d5e6f7a8b9c0d1",
            "5f3c1a2b4d5e6f7a8b9c0d1g",
            "",
        ] {
            assert!(!is_kustomer_id(not_an_id), "{not_an_id}");
        }
    }

    #[test]
    fn a_message_is_recorded_with_our_id_direction_time_and_links() {
        let links = [(
            "invoice.pdf".to_owned(),
            "https://edge.example.com/d/1".to_owned(),
        )];
        let request = create_message(
            CONVERSATION,
            &message(Direction::Inbound, "Where is my order?"),
            &links,
        );
        assert_eq!(request.path, format!("/v1/conversations/{CONVERSATION}/messages"));
        assert_eq!(
            request.body,
            Some(json!({
                "channel": "whatsapp",
                "app": "crm-edge",
                "direction": "in",
                "preview": "Where is my order?\n\nAttachments:\n- invoice.pdf: https://edge.example.com/d/1",
                "externalId": MessageId::generate([1; 16]).as_str(),
                "sentAt": "2026-11-23T10:00:00.000Z",
                "meta": { "attachments": [{ "filename": "invoice.pdf", "url": "https://edge.example.com/d/1" }] },
            }))
        );
        let reply = create_message(CONVERSATION, &message(Direction::Outbound, "On its way"), &[]);
        let body = reply.body.unwrap_or_default();
        assert_eq!(
            (body["direction"].as_str(), body["preview"].as_str()),
            (Some("out"), Some("On its way"))
        );
        assert!(body.get("meta").is_none());
    }

    #[test]
    fn every_channel_has_a_kustomer_channel_and_a_name() {
        for channel in Channel::ALL {
            assert_eq!(channel_of(channel), channel.as_str());
            assert!(conversation_name(channel).ends_with(" conversation"));
        }
        assert_eq!(conversation_name(Channel::Facebook), "Messenger conversation");
    }

    #[test]
    fn a_long_note_is_cut_to_kustomers_limit_at_a_character_boundary() {
        let short = create_note(CONVERSATION, "Customer asked for a person");
        assert_eq!(short.path, format!("/v1/conversations/{CONVERSATION}/notes"));
        assert_eq!(short.body, Some(json!({ "body": "Customer asked for a person" })));
        let long = "é".repeat(MAX_NOTE_CHARS + 1);
        let note = create_note(CONVERSATION, &long).body.unwrap_or_default();
        let text = note["body"].as_str().unwrap_or_default();
        assert_eq!(text.chars().count(), MAX_NOTE_CHARS);
        assert!(text.ends_with(NOTE_CUT_MARKER));
        let exact = "é".repeat(MAX_NOTE_CHARS);
        assert_eq!(
            create_note(CONVERSATION, &exact).body,
            Some(json!({ "body": exact }))
        );
    }

    #[test]
    fn resources_and_lists_are_read_from_json_api_documents() {
        let body = br#"{"data":{"type":"user","id":"u1","attributes":{"name":"Agent Smith","email":"smith@acme.com"},
            "relationships":{"org":{"data":{"type":"org","id":"o1"}}},"links":{"self":"/v1/users/u1"}}}"#;
        let user = parse_resource(body).map(|r| CurrentUser::from_resource(&r));
        assert_eq!(
            user,
            Ok(CurrentUser {
                id: "u1".to_owned(),
                name: Some("Agent Smith".to_owned()),
                email: Some("smith@acme.com".to_owned()),
                org: Some("o1".to_owned()),
            })
        );
        let teams = br#"{"data":[{"type":"team","id":"t1","attributes":{"name":"Billing"}},{"type":"team","id":"t2"}],
            "links":{"self":"/v1/teams?page=1","next":"/v1/teams?page=2"},"meta":{"pageSize":100}}"#;
        let (resources, more) = parse_list(teams).unwrap_or_default();
        let teams: Vec<Team> = resources.iter().map(Team::from_resource).collect();
        assert!(more);
        assert_eq!(
            teams[0],
            Team {
                id: "t1".to_owned(),
                name: "Billing".to_owned()
            }
        );
        assert_eq!(teams[1].name, "t2");
        let last = br#"{"data":[],"links":{"next":null}}"#;
        assert_eq!(parse_list(last), Ok((Vec::new(), false)));
    }

    #[test]
    fn a_past_conversation_keeps_what_the_history_shows() {
        let body =
            br#"{"data":{"type":"conversation","id":"c1","attributes":{"name":"Order late","status":"done",
            "priority":4,"createdAt":"2026-10-01T09:00:00.000Z","updatedAt":"2026-10-02T09:00:00.000Z",
            "messageCount":6,"satisfaction":5}}}"#;
        let past = parse_resource(body).map(|r| PastConversation::from_resource(&r));
        assert_eq!(
            past.map(|p| (p.status, p.priority, p.message_count, p.satisfaction)),
            Ok((Some("done".to_owned()), Some(4), Some(6), Some(5.0)))
        );
        let unrated =
            br#"{"data":{"type":"conversation","id":"c2","attributes":{"satisfaction":0,"priority":9}}}"#;
        let past = parse_resource(unrated).map(|r| PastConversation::from_resource(&r));
        assert_eq!(past.map(|p| (p.satisfaction, p.priority)), Ok((None, None)));
    }

    #[test]
    fn answers_that_are_not_resources_are_refused() {
        let cases: [&[u8]; 8] = [
            b"",
            b"<html>502</html>",
            b"{}",
            b"{\"data\":null}",
            b"{\"data\":{\"type\":\"user\"}}",
            b"{\"data\":{\"type\":\"user\",\"id\":7}}",
            b"{\"data\":{\"type\":\"user\",\"id\":\"u\",\"attributes\":[]}}",
            b"{\"data\":[]}",
        ];
        for body in cases {
            assert!(parse_resource(body).is_err(), "{}", String::from_utf8_lossy(body));
        }
        assert!(parse_list(b"{\"data\":{}}").is_err());
        assert!(parse_list(b"{\"data\":[{\"id\":\"x\"}]}").is_err());
    }

    #[test]
    fn errors_of_both_shapes_are_told_to_people_without_the_request() {
        let cases: [(u16, &[u8], &str); 7] = [
            (
                400,
                br#"{"errors":[{"code":"bad_request","message":"Invalid request body or parameters.","meta":{}}]}"#,
                "Kustomer answered 400: bad_request: Invalid request body or parameters.",
            ),
            (
                400,
                br#"{"errors":[{"status":"400","code":"invalid","title":"Bad value","detail":"priority must be <= 5","source":{"pointer":"/data/attributes/priority"}}]}"#,
                "Kustomer answered 400: invalid: priority must be <= 5 (at /data/attributes/priority)",
            ),
            (
                401,
                br#"{"errors":[{"status":"401","title":"Unauthorized"}]}"#,
                "Kustomer answered 401: Unauthorized. Check the Kustomer API key in the connector's secrets",
            ),
            (
                403,
                b"",
                "Kustomer answered 403. Check that the API key has the roles this needs (customers, conversations, messages, notes) and belongs to this organization",
            ),
            (404, br#"{"message":"Not Found"}"#, "Kustomer answered 404: Not Found"),
            (502, b"<html><body>Bad gateway</body></html>", "Kustomer answered 502"),
            (
                400,
                br#"{"request":{"emails":[{"email":"ann@example.com"}]},"errors":[]}"#,
                "Kustomer answered 400",
            ),
        ];
        for (status, body, expected) in cases {
            assert_eq!(error_reason(status, body), expected);
        }
        let long = format!(r#"{{"errors":[{{"message":"{}"}}]}}"#, "ä".repeat(1000));
        let reason = error_reason(400, long.as_bytes());
        assert!(reason.chars().count() <= 330 && reason.ends_with('…'), "{reason}");
    }

    #[test]
    fn a_titled_conversation_needs_a_kustomer_id_a_title_and_a_known_channel() {
        let id = "5f1e0a2b3c4d5e6f7a8b9c0d";
        let opened = TitledConversation::parse(id, "  Test Support Request ", None)
            .unwrap_or_else(|error| panic!("{error:?}"));
        assert_eq!(
            (opened.title.as_str(), opened.channel),
            ("Test Support Request", "chat")
        );
        let request = create_titled_conversation(&opened);
        assert_eq!(request.path, "/v1/conversations");
        assert_eq!(
            request.body,
            Some(
                json!({ "customer": id, "name": "Test Support Request", "status": "open", "replyChannel": "chat" })
            )
        );
        assert_eq!(
            TitledConversation::parse(id, "t", Some("EMAIL")).map(|c| c.channel),
            Ok("email")
        );
        for (customer, title, channel, field) in [
            ("cust-1", "t", None, "customer_id"),
            (id, "  ", None, "title"),
            (id, &"x".repeat(MAX_TITLE_CHARS + 1), None, "title"),
            (id, "t", Some("pigeon"), "channel"),
        ] {
            let error = TitledConversation::parse(customer, title, channel)
                .err()
                .unwrap_or_else(|| panic!("{customer} {title} {channel:?} was taken"));
            assert_eq!(error.body.field.as_deref(), Some(field), "{error:?}");
        }
    }
}
