//! The work a connector does: the kinds of CRM, the operations of its sync log, their states, and
//! which of our events become work for which contact.

use crate::crm::chatwoot::Topic;
use crate::crm::chatwoot::webhook::{self as chatwoot_webhook, ChatwootEvent};
use crate::ids::{ConnectorId, ConversationId, CustomerId, EventId, MessageId};
use crate::webhooks::EventType;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;
use std::fmt;

/// The CRMs a business can connect.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum ConnectorKind {
    Kustomer,
    Krayin,
}

impl ConnectorKind {
    pub const ALL: [ConnectorKind; 2] = [Self::Kustomer, Self::Krayin];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Kustomer => "kustomer",
            Self::Krayin => "krayin",
        }
    }

    /// How the admin API names a connector of this kind when it is given no name.
    pub fn display_name(self) -> &'static str {
        match self {
            Self::Kustomer => "Kustomer",
            Self::Krayin => "Krayin",
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
    /// Add an internal note to the conversation in the CRM.
    Note,
    /// Follow a Chatwoot event: the delivery, as verified, is the work's input.
    Chatwoot(Topic),
}

impl Operation {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Follow(event) => event.as_str(),
            Self::Escalate => "escalate",
            Self::Note => "note",
            Self::Chatwoot(topic) => topic.operation(),
        }
    }

    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "escalate" => Some(Self::Escalate),
            "note" => Some(Self::Note),
            _ => Topic::from_operation(name).map(Self::Chatwoot).or_else(|| {
                EventType::parse(name)
                    .filter(|event| *event != EventType::Test)
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
    /// Hand the conversation to a person, for this reason.
    Escalate {
        conversation: ConversationId,
        reason: String,
    },
    /// An internal note on the conversation.
    Note {
        conversation: ConversationId,
        body: String,
    },
    /// A delivery of Chatwoot's webhooks, as it was verified when it came.
    Chatwoot(Box<ChatwootEvent>),
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
            Operation::Follow(EventType::Test) => return Err("the test event is no CRM work".to_owned()),
            Operation::Escalate => Self::Escalate {
                conversation: id(subject_id, ConversationId::parse, "conversation")?,
                reason: text("reason")?,
            },
            Operation::Note => Self::Note {
                conversation: id(subject_id, ConversationId::parse, "conversation")?,
                body: text("body")?,
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

/// The work `events` mean for the business's enabled `connectors`: one job per event and
/// connector, in event order. An event about no customer (the test event) is work for nobody; a
/// change that came from a connector is recorded there as skipped, so the log shows why
/// nothing was sent back.
pub fn plan(events: &[EventToFollow<'_>], connectors: &[ConnectorId]) -> Vec<PlannedJob> {
    let mut jobs = Vec::new();
    for event in events {
        let Some(customer_id) = &event.customer_id else {
            continue;
        };
        if event.kind == EventType::Test {
            continue;
        }
        let origin = event
            .detail
            .and_then(|detail| detail.get(ORIGIN_CONNECTOR))
            .and_then(Value::as_str);
        for connector_id in connectors {
            jobs.push(PlannedJob {
                connector_id: connector_id.clone(),
                customer_id: customer_id.clone(),
                operation: Operation::Follow(event.kind),
                subject_id: event.subject_id.to_owned(),
                event_id: event.id.clone(),
                skipped: (origin == Some(connector_id.as_str()))
                    .then_some("the change came from this CRM; it is not sent back"),
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

    #[test]
    fn operations_read_back_from_their_names() {
        for operation in [
            Operation::Escalate,
            Operation::Note,
            Operation::Follow(EventType::MessageReceived),
            Operation::Follow(EventType::CustomerUpdated),
        ] {
            assert_eq!(Operation::parse(operation.as_str()), Some(operation));
        }
        assert_eq!(
            Operation::parse("webhook.test"),
            None,
            "the test event is no CRM work"
        );
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
                reason: "angry".to_owned()
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
        let jobs = plan(&events, &[connector(1), connector(2)]);
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
        let jobs = plan(&events, &[connector(1), connector(2)]);
        assert!(jobs[0].skipped.is_some(), "not echoed to the CRM it came from");
        assert!(jobs[1].skipped.is_none(), "other CRMs follow it");
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
        assert!(plan(&events, &[connector(1)]).is_empty());
        let orphan = [EventToFollow {
            id: &event,
            kind: EventType::MessageSent,
            subject_id: "x",
            customer_id: None,
            detail: None,
        }];
        assert!(plan(&orphan, &[connector(1)]).is_empty());
    }
}
