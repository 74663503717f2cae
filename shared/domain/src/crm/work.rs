//! The work a connector does: the kinds of CRM, the operations of its sync log, their states, and
//! which of our events become work for which contact.

use crate::crm::chatwoot::Topic;
use crate::crm::chatwoot::webhook::{self as chatwoot_webhook, ChatwootEvent};
use crate::crm::priority::Priority;
use crate::crm::rollout::Rollout;
use crate::error::ApiError;
use crate::ids::{ConnectorId, ConversationId, CustomerId, EventId, MessageId};
use crate::webhooks::EventType;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Map, Value};
use std::fmt;

/// The CRMs a business can connect.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum ConnectorKind {
    Kustomer,
    Krayin,
    #[serde(rename = "hubspot")]
    HubSpot,
    Salesforce,
}

impl ConnectorKind {
    pub const ALL: [ConnectorKind; 4] = [Self::Kustomer, Self::Krayin, Self::HubSpot, Self::Salesforce];

    /// Its name in the API and in storage.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Kustomer => "kustomer",
            Self::Krayin => "krayin",
            Self::HubSpot => "hubspot",
            Self::Salesforce => "salesforce",
        }
    }

    /// How the admin API names a connector of this kind when it is given no name.
    pub fn display_name(self) -> &'static str {
        match self {
            Self::Kustomer => "Kustomer",
            Self::Krayin => "Krayin",
            Self::HubSpot => "HubSpot",
            Self::Salesforce => "Salesforce",
        }
    }

    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|kind| kind.as_str() == name)
    }
}

impl fmt::Display for ConnectorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One piece of CRM work: following one of our events, what the API asked for, or following an
/// event of the platform whose webhooks feed the connector.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    /// Follow one of our events (the record is read as it is when the work is done).
    Follow(EventType),
    /// Hand the conversation to a human in the CRM.
    Escalate,
    /// Change an escalation's priority or team in the CRM.
    ChangeEscalation,
    /// Add an internal note to the conversation in the CRM.
    Note,
    /// Follow a Chatwoot event: the delivery, as verified, is the work's input.
    Chatwoot(Topic),
    /// Delete (or anonymise) an erased customer's contact in the CRM (`edge::ops::erasure`): the
    /// work's subject is the CRM's id of the contact, the only thing kept of it.
    Erase,
}

impl Operation {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Follow(event) => event.as_str(),
            Self::Escalate => "escalate",
            Self::ChangeEscalation => "escalation_change",
            Self::Note => "note",
            Self::Chatwoot(topic) => topic.operation(),
            Self::Erase => "erase",
        }
    }

    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "escalate" => Some(Self::Escalate),
            "escalation_change" => Some(Self::ChangeEscalation),
            "note" => Some(Self::Note),
            "erase" => Some(Self::Erase),
            _ => Topic::from_operation(name).map(Self::Chatwoot).or_else(|| {
                EventType::parse(name)
                    .filter(|event| event.is_followed_by_crms())
                    .map(Self::Follow)
            }),
        }
    }
}

/// A job's work, read whole and once from what its row keeps (operation, subject id, input):
/// every id is of its kind and every input is what its operation needs, so a connector matches on
/// this and reads nothing of the row's text itself.
#[derive(Debug, Clone, PartialEq)]
pub enum Work {
    /// `customer.created` or `customer.updated`.
    Customer { id: CustomerId, event: EventType },
    /// `conversation.created`, `conversation.status_changed` or `conversation.assigned`.
    Conversation { id: ConversationId, event: EventType },
    /// `message.received` or `message.sent`.
    Message { id: MessageId },
    /// Hand the conversation to a person, for this reason, routed as asked.
    Escalate {
        conversation: ConversationId,
        reason: String,
        routing: Routing,
    },
    /// Route the conversation's escalation again: a new priority or team.
    ChangeEscalation {
        conversation: ConversationId,
        routing: Routing,
    },
    /// An internal note on the conversation.
    Note {
        conversation: ConversationId,
        body: String,
    },
    /// A delivery of Chatwoot's webhooks, as it was verified when it came.
    Chatwoot(Box<ChatwootEvent>),
    /// Delete the contact with this CRM id: its customer was erased here.
    Erase { crm_id: String },
}

impl Work {
    /// The work a stored row describes, or why the row is no work of its operation (a damaged
    /// row: our fault, never the CRM's).
    pub fn read(operation: Operation, subject_id: &str, input: Option<&Value>) -> Result<Self, String> {
        fn id<T>(subject_id: &str, parse: impl Fn(&str) -> Option<T>, kind: &str) -> Result<T, String> {
            parse(subject_id).ok_or_else(|| format!("its subject {subject_id:?} is not a {kind} id"))
        }
        let text = |key: &str| {
            input
                .and_then(|input| input.get(key))
                .and_then(Value::as_str)
                .map(str::to_owned)
                .ok_or_else(|| format!("its input has no {key}"))
        };
        Ok(match operation {
            Operation::Follow(event @ (EventType::CustomerCreated | EventType::CustomerUpdated)) => {
                Self::Customer {
                    id: id(subject_id, CustomerId::parse, "customer")?,
                    event,
                }
            }
            Operation::Follow(
                event @ (EventType::ConversationCreated
                | EventType::ConversationStatusChanged
                | EventType::ConversationAssigned),
            ) => Self::Conversation {
                id: id(subject_id, ConversationId::parse, "conversation")?,
                event,
            },
            Operation::Follow(EventType::MessageReceived | EventType::MessageSent) => Self::Message {
                id: id(subject_id, MessageId::parse, "message")?,
            },
            Operation::Follow(
                event @ (EventType::Test
                | EventType::AlertRaised
                | EventType::AlertResolved
                | EventType::CustomerErased),
            ) => {
                return Err(format!("{event} is no CRM work"));
            }
            Operation::Escalate => Self::Escalate {
                conversation: id(subject_id, ConversationId::parse, "conversation")?,
                reason: text("reason")?,
                routing: Routing::read(input)?,
            },
            Operation::ChangeEscalation => Self::ChangeEscalation {
                conversation: id(subject_id, ConversationId::parse, "conversation")?,
                routing: Routing::read(input)?,
            },
            Operation::Note => Self::Note {
                conversation: id(subject_id, ConversationId::parse, "conversation")?,
                body: text("body")?,
            },
            Operation::Erase => Self::Erase {
                crm_id: Some(subject_id.trim())
                    .filter(|id| !id.is_empty())
                    .ok_or("its subject names no CRM record")?
                    .to_owned(),
            },
            Operation::Chatwoot(_) => {
                let delivery = input.ok_or("it keeps no Chatwoot event")?.to_string();
                Self::Chatwoot(Box::new(
                    chatwoot_webhook::parse(delivery.as_bytes())
                        .map_err(|reason| format!("its Chatwoot event: {reason}"))?,
                ))
            }
        })
    }
}

/// Where an escalation goes in the CRM, as far as the caller said: the ticket's priority and the
/// team it is given. A part left out is the connector's setting (Kustomer's escalation priority,
/// its default team with Auto Assignment).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Routing {
    pub priority: Option<Priority>,
    pub team: Option<String>,
}

/// The longest team id taken; CRMs' ids are far shorter (Kustomer's are 24 characters).
pub const MAX_TEAM_ID_CHARS: usize = 64;

impl Routing {
    /// From an API body's `priority` (1 to 5, 5 highest, or low, medium, high, urgent) and
    /// `team_id`; each absent or null is left to the connector.
    pub fn parse(priority: Option<&Value>, team_id: Option<&str>) -> Result<Self, ApiError> {
        let priority = priority
            .filter(|value| !value.is_null())
            .map(|value| Priority::parse("priority", value))
            .transpose()?;
        let team = match team_id.map(str::trim) {
            None => None,
            Some(team)
                if !team.is_empty()
                    && team.len() <= MAX_TEAM_ID_CHARS
                    && team
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_') =>
            {
                Some(team.to_owned())
            }
            Some(_) => {
                return Err(ApiError::invalid(
                    "team_id",
                    format!(
                        "team_id is the CRM's id of a team (1 to {MAX_TEAM_ID_CHARS} letters, digits, - or _; \
                         Kustomer's teams: GET /admin/connectors/{{id}}/teams)"
                    ),
                ));
            }
        };
        Ok(Self { priority, team })
    }

    pub fn is_empty(&self) -> bool {
        self.priority.is_none() && self.team.is_none()
    }

    /// This change over the routing an escalation had: a part left out keeps what it was.
    pub fn over(&self, before: &Routing) -> Routing {
        Routing {
            priority: self.priority.or(before.priority),
            team: self.team.clone().or_else(|| before.team.clone()),
        }
    }

    /// Written into a job's input beside what else it keeps.
    pub fn write(&self, input: &mut Map<String, Value>) {
        if let Some(priority) = self.priority {
            input.insert("priority".to_owned(), Value::from(priority.get()));
        }
        if let Some(team) = &self.team {
            input.insert("team_id".to_owned(), Value::from(team.as_str()));
        }
    }

    /// Read back from a job's input.
    fn read(input: Option<&Value>) -> Result<Self, String> {
        let field = |key: &str| {
            input
                .and_then(|input| input.get(key))
                .filter(|value| !value.is_null())
        };
        let priority = field("priority")
            .map(|value| {
                value
                    .as_u64()
                    .and_then(|level| u8::try_from(level).ok())
                    .and_then(Priority::new)
                    .ok_or_else(|| format!("its input's priority {value} is not 1 to 5"))
            })
            .transpose()?;
        let team = field("team_id")
            .map(|value| {
                value
                    .as_str()
                    .map(str::to_owned)
                    .ok_or("its input's team_id is not text")
            })
            .transpose()?;
        Ok(Self { priority, team })
    }
}

/// Whose CRM work it is: one of our customers, or a contact of the platform whose webhooks feed
/// the connector. A contact's work is done in order by one worker at a time. Stored and queued as
/// text: a customer id, or `chatwoot:<contact id>`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ContactKey {
    Customer(CustomerId),
    Chatwoot(u64),
}

const CHATWOOT_CONTACT: &str = "chatwoot:";

impl ContactKey {
    pub fn parse(text: &str) -> Option<Self> {
        match text.strip_prefix(CHATWOOT_CONTACT) {
            Some(id) => (!id.starts_with('+') && !id.starts_with('0') || id == "0")
                .then(|| id.parse().ok())
                .flatten()
                .map(Self::Chatwoot),
            None => CustomerId::parse(text).map(Self::Customer),
        }
    }

    /// Our customer, when the contact is one.
    pub fn customer(&self) -> Option<&CustomerId> {
        match self {
            Self::Customer(id) => Some(id),
            Self::Chatwoot(_) => None,
        }
    }
}

impl fmt::Display for ContactKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Customer(id) => f.write_str(id.as_str()),
            Self::Chatwoot(id) => write!(f, "{CHATWOOT_CONTACT}{id}"),
        }
    }
}

impl Serialize for ContactKey {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for ContactKey {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        Self::parse(&text).ok_or_else(|| serde::de::Error::custom("not a contact key"))
    }
}

impl fmt::Display for Operation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where a piece of work stands. `pending` is the only state work leaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum JobStatus {
    Pending,
    Succeeded,
    /// Nothing to do: a toggle is off, the change came from this CRM, the record is there already.
    Skipped,
    /// The CRM refused it for a reason retrying cannot change (a 4xx other than 429).
    Failed,
    /// Retried for the whole retry window without success: kept, visible, and replayable.
    Dead,
}

impl JobStatus {
    pub const ALL: [JobStatus; 5] = [
        Self::Pending,
        Self::Succeeded,
        Self::Skipped,
        Self::Failed,
        Self::Dead,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Succeeded => "succeeded",
            Self::Skipped => "skipped",
            Self::Failed => "failed",
            Self::Dead => "dead",
        }
    }

    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|status| status.as_str() == name)
    }
}

/// The kinds of our records a connector keeps the CRM's id of.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkKind {
    Customer,
    Conversation,
    Message,
}

impl LinkKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Customer => "customer",
            Self::Conversation => "conversation",
            Self::Message => "message",
        }
    }
}

/// The key in an event's `detail` that names the connector a change came from: a change a CRM
/// made (an agent closed the conversation there) is not sent back to that CRM.
pub const ORIGIN_CONNECTOR: &str = "origin_connector";

/// An event as the planner needs it: its id, type, record, the customer its snapshot names, and
/// its detail.
pub struct EventToFollow<'a> {
    pub id: &'a EventId,
    pub kind: EventType,
    pub subject_id: &'a str,
    pub customer_id: Option<CustomerId>,
    pub detail: Option<&'a Value>,
}

/// One piece of work to record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedJob {
    pub connector_id: ConnectorId,
    pub customer_id: CustomerId,
    pub operation: Operation,
    pub subject_id: String,
    pub event_id: EventId,
    /// Recorded `skipped` with this reason rather than `pending`.
    pub skipped: Option<&'static str>,
}

/// The work `events` mean for the business's enabled `connectors` (each with its rollout): one
/// job per event and connector, in event order. An event about no customer (the test event) is
/// work for nobody; a change that came from a connector, and an event about a customer outside a
/// connector's rollout, are recorded there as skipped, so the log shows why nothing was sent.
pub fn plan(events: &[EventToFollow<'_>], connectors: &[(ConnectorId, Rollout)]) -> Vec<PlannedJob> {
    let mut jobs = Vec::new();
    for event in events {
        let Some(customer_id) = &event.customer_id else {
            continue;
        };
        if !event.kind.is_followed_by_crms() {
            continue;
        }
        let origin = event
            .detail
            .and_then(|detail| detail.get(ORIGIN_CONNECTOR))
            .and_then(Value::as_str);
        for (connector_id, rollout) in connectors {
            let skipped = if origin == Some(connector_id.as_str()) {
                Some("the change came from this CRM; it is not sent back")
            } else if !rollout.includes(connector_id, customer_id) {
                Some(rollout.skip_reason())
            } else {
                None
            };
            jobs.push(PlannedJob {
                connector_id: connector_id.clone(),
                customer_id: customer_id.clone(),
                operation: Operation::Follow(event.kind),
                subject_id: event.subject_id.to_owned(),
                event_id: event.id.clone(),
                skipped,
            });
        }
    }
    jobs
}

/// The connector's work settled in [since_us, until_us) by status, what is pending now, and the
/// oldest pending work.
#[derive(Debug, Default, Deserialize, Serialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
pub struct Summary {
    pub pending: i64,
    pub succeeded: i64,
    pub skipped: i64,
    pub failed: i64,
    pub dead: i64,
    pub oldest_pending_us: Option<i64>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn connector(n: u8) -> ConnectorId {
        ConnectorId::generate([n; 16])
    }

    fn everyone(n: u8) -> (ConnectorId, Rollout) {
        (connector(n), Rollout::EVERYONE)
    }

    #[test]
    fn operations_read_back_from_their_names() {
        for operation in [
            Operation::Escalate,
            Operation::ChangeEscalation,
            Operation::Note,
            Operation::Follow(EventType::MessageReceived),
            Operation::Follow(EventType::CustomerUpdated),
        ] {
            assert_eq!(Operation::parse(operation.as_str()), Some(operation));
        }
        for event in ["webhook.test", "alert.raised", "alert.resolved"] {
            assert_eq!(Operation::parse(event), None, "{event} is no CRM work");
        }
        assert_eq!(Operation::parse("drop table"), None);
    }

    #[test]
    fn chatwoot_work_reads_back_from_its_name() {
        for topic in Topic::ALL {
            let operation = Operation::Chatwoot(topic);
            assert_eq!(Operation::parse(operation.as_str()), Some(operation));
        }
        assert_eq!(
            Operation::Chatwoot(Topic::MessageCreated).as_str(),
            "chatwoot.message_created"
        );
    }

    #[test]
    fn a_jobs_work_is_read_whole_with_ids_of_their_kind() {
        let customer = CustomerId::generate([3; 16]);
        let conversation = ConversationId::generate([4; 16]);
        let message = MessageId::generate([5; 16]);
        let created = Operation::Follow(EventType::CustomerCreated);
        assert_eq!(
            Work::read(created, customer.as_str(), None),
            Ok(Work::Customer {
                id: customer.clone(),
                event: EventType::CustomerCreated
            })
        );
        let sent = Operation::Follow(EventType::MessageSent);
        assert_eq!(
            Work::read(sent, message.as_str(), None),
            Ok(Work::Message { id: message })
        );
        assert_eq!(
            Work::read(
                Operation::Escalate,
                conversation.as_str(),
                Some(&json!({ "reason": "angry" }))
            ),
            Ok(Work::Escalate {
                conversation: conversation.clone(),
                reason: "angry".to_owned(),
                routing: Routing::default(),
            })
        );
        let routing = Routing {
            priority: Priority::new(5),
            team: Some("5f00000000000000000000b1".to_owned()),
        };
        let mut input = Map::new();
        routing.write(&mut input);
        assert_eq!(
            Work::read(
                Operation::ChangeEscalation,
                conversation.as_str(),
                Some(&Value::Object(input))
            ),
            Ok(Work::ChangeEscalation {
                conversation: conversation.clone(),
                routing
            })
        );
        assert_eq!(
            Work::read(
                Operation::Note,
                conversation.as_str(),
                Some(&json!({ "body": "call back" }))
            ),
            Ok(Work::Note {
                conversation: conversation.clone(),
                body: "call back".to_owned()
            })
        );
        let chatwoot = json!({ "event": "contact_created", "id": 7, "name": "Bo" });
        assert!(matches!(
            Work::read(
                Operation::Chatwoot(Topic::ContactCreated),
                "chatwoot:7",
                Some(&chatwoot)
            ),
            Ok(Work::Chatwoot(event)) if matches!(*event, ChatwootEvent::ContactCreated(_))
        ));
    }

    #[test]
    fn an_escalations_routing_is_a_priority_and_a_team_id_each_optional() {
        let parsed = |priority: Value, team: Option<&str>| {
            Routing::parse(Some(&priority), team).map_err(|error| error.body.field.unwrap_or_default())
        };
        assert_eq!(
            parsed(json!("urgent"), Some(" team-1 ")),
            Ok(Routing {
                priority: Priority::new(5),
                team: Some("team-1".to_owned())
            })
        );
        assert_eq!(parsed(json!(null), None), Ok(Routing::default()));
        let before = Routing {
            priority: Priority::new(4),
            team: Some("support".to_owned()),
        };
        let lowered = Routing {
            priority: Priority::new(2),
            team: None,
        };
        assert_eq!(
            lowered.over(&before),
            Routing {
                priority: Priority::new(2),
                team: Some("support".to_owned())
            },
            "a part left out keeps what it was"
        );
        for (priority, team, field, why) in [
            (json!(6), None, "priority", "above 5"),
            (json!(0), None, "priority", "below 1"),
            (json!("critical"), None, "priority", "not a name of the scale"),
            (json!(2), Some(""), "team_id", "an empty team"),
            (json!(2), Some("a team"), "team_id", "a space"),
            (json!(2), Some("t/../x"), "team_id", "a path"),
        ] {
            assert_eq!(parsed(priority, team).err().as_deref(), Some(field), "{why}");
        }
        let longer = "t".repeat(MAX_TEAM_ID_CHARS + 1);
        assert_eq!(
            parsed(json!(3), Some(&longer)).err().as_deref(),
            Some("team_id"),
            "65 characters"
        );
    }

    #[test]
    fn a_damaged_job_says_what_is_wrong_with_it() {
        let conversation = ConversationId::generate([4; 16]);
        let error = |operation, subject: &str, input: Option<Value>| {
            Work::read(operation, subject, input.as_ref())
                .err()
                .unwrap_or_default()
        };
        assert_eq!(
            error(Operation::Follow(EventType::MessageSent), "not-an-id", None),
            "its subject \"not-an-id\" is not a message id"
        );
        assert_eq!(
            error(
                Operation::Note,
                conversation.as_str(),
                Some(json!({ "reason": "x" }))
            ),
            "its input has no body"
        );
        assert_eq!(
            error(Operation::Escalate, conversation.as_str(), None),
            "its input has no reason"
        );
        assert_eq!(
            error(Operation::Chatwoot(Topic::MessageCreated), "chatwoot:1", None),
            "it keeps no Chatwoot event"
        );
        assert!(
            error(
                Operation::Chatwoot(Topic::MessageCreated),
                "chatwoot:1",
                Some(json!({ "event": 1 }))
            )
            .starts_with("its Chatwoot event: ")
        );
    }

    #[test]
    fn contact_keys_read_back_from_their_text() {
        let customer = CustomerId::generate([9; 16]);
        for key in [ContactKey::Customer(customer.clone()), ContactKey::Chatwoot(42)] {
            assert_eq!(ContactKey::parse(&key.to_string()), Some(key.clone()));
            let queued = serde_json::to_string(&key).unwrap_or_default();
            assert_eq!(serde_json::from_str::<ContactKey>(&queued).ok(), Some(key));
        }
        assert_eq!(
            serde_json::to_string(&ContactKey::Customer(customer.clone())).unwrap_or_default(),
            format!("\"{customer}\""),
            "a customer's key is its id, as queue messages always carried it"
        );
        for bad in [
            "chatwoot:",
            "chatwoot:-1",
            "chatwoot:+1",
            "chatwoot:01",
            "chatwoot:1x",
            "nobody",
        ] {
            assert_eq!(ContactKey::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn each_event_becomes_one_job_per_connector_in_order() {
        let (first, second) = (EventId::generate([1; 16]), EventId::generate([2; 16]));
        let customer = CustomerId::generate([9; 16]);
        let events = [
            EventToFollow {
                id: &first,
                kind: EventType::CustomerCreated,
                subject_id: customer.as_str(),
                customer_id: Some(customer.clone()),
                detail: None,
            },
            EventToFollow {
                id: &second,
                kind: EventType::MessageReceived,
                subject_id: "m",
                customer_id: Some(customer.clone()),
                detail: None,
            },
        ];
        let jobs = plan(&events, &[everyone(1), everyone(2)]);
        let seen: Vec<(&str, &str)> = jobs
            .iter()
            .map(|job| (job.event_id.as_str(), job.connector_id.as_str()))
            .collect();
        assert_eq!(
            seen,
            vec![
                (first.as_str(), connector(1).as_str()),
                (first.as_str(), connector(2).as_str()),
                (second.as_str(), connector(1).as_str()),
                (second.as_str(), connector(2).as_str()),
            ]
        );
        assert!(jobs.iter().all(|job| job.skipped.is_none()));
    }

    #[test]
    fn a_change_a_crm_made_is_skipped_for_that_crm_only() {
        let event = EventId::generate([1; 16]);
        let detail = json!({ ORIGIN_CONNECTOR: connector(1).as_str() });
        let events = [EventToFollow {
            id: &event,
            kind: EventType::ConversationStatusChanged,
            subject_id: "c",
            customer_id: Some(CustomerId::generate([9; 16])),
            detail: Some(&detail),
        }];
        let jobs = plan(&events, &[everyone(1), everyone(2)]);
        assert!(jobs[0].skipped.is_some(), "not echoed to the CRM it came from");
        assert!(jobs[1].skipped.is_none(), "other CRMs follow it");
    }

    #[test]
    fn a_customer_outside_a_rollout_is_skipped_there_only() {
        let event = EventId::generate([1; 16]);
        let tenth = Rollout::parse("rollout_percent", 10).unwrap_or(Rollout::EVERYONE);
        let outside = (0..=255u8)
            .map(|n| CustomerId::generate([n; 16]))
            .find(|customer| !tenth.includes(&connector(1), customer));
        let Some(outside) = outside else {
            panic!("nine customers in ten are outside a tenth");
        };
        let events = [EventToFollow {
            id: &event,
            kind: EventType::MessageReceived,
            subject_id: "m",
            customer_id: Some(outside),
            detail: None,
        }];
        let jobs = plan(&events, &[(connector(1), tenth), everyone(2)]);
        assert_eq!(jobs[0].skipped, Some(tenth.skip_reason()), "recorded, and why");
        assert!(jobs[1].skipped.is_none(), "a connector for everyone follows it");
    }

    #[test]
    fn events_about_no_customer_are_no_work() {
        let event = EventId::generate([1; 16]);
        let events = [EventToFollow {
            id: &event,
            kind: EventType::Test,
            subject_id: "x",
            customer_id: Some(CustomerId::generate([9; 16])),
            detail: None,
        }];
        assert!(plan(&events, &[everyone(1)]).is_empty());
        let orphan = [EventToFollow {
            id: &event,
            kind: EventType::MessageSent,
            subject_id: "x",
            customer_id: None,
            detail: None,
        }];
        assert!(plan(&orphan, &[everyone(1)]).is_empty());
    }
}
