//! Handing a conversation to a person, without waiting for any CRM: the escalation is recorded
//! (analytics count it), the customer is told at once on the conversation's channel, and each
//! connector's part (Kustomer's ticket, Krayin's note) is sync work done when its CRM answers, so
//! a CRM that is down delays the ticket, never the hand-off (the guide's "Fallback Mode").
//!
//! An escalation is asked for through the API, or by the customer in one of a Kustomer
//! connector's escalation phrases; the phrases are checked when the message's events are planned
//! into CRM work, whatever the connector's Conversation Sync says.

use crate::Env;
use crate::console_error;
use crate::db::Db;
use crate::db::crm_connectors::Enabled;
use crate::db::crm_sync_jobs::{self, Job};
use crate::db::escalations::{self, AtMost, Inserted, NewEscalation, Stored, Trigger};
use crate::{db, messaging::send_queue, platform::http, runtime};
use domain::crm::kustomer::escalation::asks_for_human;
use domain::crm::kustomer::settings::{DEFAULT_HANDOFF_MESSAGE, KustomerSettings};
use domain::crm::work::{ConnectorKind, Operation, Routing};
use domain::error::ApiError;
use domain::ids::{ConnectorId, ConversationId, CustomerId, EscalationId, MessageId};
use domain::lookup::CustomerKey;
use domain::message::{Conversation, Message};
use domain::outgoing::{CommentReply, OutgoingMessage};
use domain::tenant::Tenant;
use serde_json::{Map, Value, json};

/// An escalation asked for: of which conversation (and its customer), why, and how.
pub struct Escalation<'a> {
    pub conversation_id: &'a ConversationId,
    pub customer_id: &'a CustomerId,
    pub reason: &'a str,
    pub trigger: Trigger,
    /// The customer's message that asked for a person, when one did.
    pub message_id: Option<&'a MessageId>,
    /// The priority and team asked for (the connectors' settings where absent).
    pub routing: &'a Routing,
    /// How the customer is told, for a comment (its private reply: Meta lets a page message a
    /// commenter only so); None: on the conversation's channel.
    pub reply: Option<&'a CommentReply>,
    /// At most so many escalations of the customer by this trigger in a window (the bot's, over
    /// every post of a page); None: no limit.
    pub at_most: Option<AtMost>,
}

/// What came of asking for an escalation.
pub enum Requested {
    Recorded(Recorded),
    /// Its message escalated already.
    Already,
    /// The customer had as many as `at_most` allows: nothing was recorded, nobody was told.
    OverLimit,
}

impl Requested {
    pub fn recorded(self) -> Option<Recorded> {
        match self {
            Self::Recorded(recorded) => Some(recorded),
            Self::Already | Self::OverLimit => None,
        }
    }
}

/// What was recorded of an escalation.
pub struct Recorded {
    pub id: EscalationId,
    /// The connectors' work, one piece each.
    pub work: Vec<Job>,
}

/// Records the escalation and its work for each of `connectors`, and tells the customer that a
/// person will take over in `handoff`; nothing when its message escalated already or the
/// customer is over `at_most`.
pub async fn request(
    env: &Env,
    db: &Db,
    tenant: &Tenant,
    connectors: &[ConnectorId],
    asked: &Escalation<'_>,
    handoff: &str,
) -> Result<Requested, ApiError> {
    let id = EscalationId::generate(runtime::random()?);
    let now = runtime::now().micros();
    let inserted = escalations::insert_at_most(
        db,
        tenant,
        &NewEscalation {
            id: &id,
            conversation_id: asked.conversation_id,
            customer_id: asked.customer_id,
            reason: asked.reason,
            trigger: asked.trigger,
            message_id: asked.message_id,
            routing: asked.routing,
        },
        now,
        asked.at_most,
    )
    .await?;
    match inserted {
        Inserted::Recorded => {}
        Inserted::Already => return Ok(Requested::Already),
        Inserted::OverLimit => return Ok(Requested::OverLimit),
    }
    let mut input = Map::new();
    input.insert("escalation_id".to_owned(), json!(id));
    input.insert("reason".to_owned(), json!(asked.reason));
    asked.routing.write(&mut input);
    let work = crm_sync_jobs::insert_requested_for(
        db,
        tenant,
        connectors,
        asked.customer_id,
        Operation::Escalate,
        asked.conversation_id.as_str(),
        &Value::Object(input),
        now,
    )
    .await?;
    hand_off(env, db, tenant, &id, asked, handoff).await?;
    Ok(Requested::Recorded(Recorded { id, work }))
}

/// Gives the escalation its new routing (`change` over what it had), kept, and records the work
/// that changes each of `connectors`' tickets to it.
pub async fn reroute(
    db: &Db,
    tenant: &Tenant,
    connectors: &[ConnectorId],
    escalation: &mut Stored,
    change: &Routing,
) -> Result<Vec<Job>, ApiError> {
    escalation.routing = change.over(&escalation.routing);
    escalations::set_routing(db, tenant, &escalation.id, &escalation.routing).await?;
    let mut input = Map::new();
    input.insert("escalation_id".to_owned(), json!(escalation.id));
    change.write(&mut input);
    crm_sync_jobs::insert_requested_for(
        db,
        tenant,
        connectors,
        &escalation.customer_id,
        Operation::ChangeEscalation,
        escalation.conversation_id.as_str(),
        &Value::Object(input),
        runtime::now().micros(),
    )
    .await
}

/// What the customer is told when the API escalates: the hand-off message of the business's
/// first Kustomer connector that makes tickets, else the default one.
pub fn handoff_message(env: &Env, connectors: &[Enabled]) -> String {
    connectors
        .iter()
        .filter_map(|connector| kustomer_settings(env, connector))
        .find(|settings| settings.ticket_creation)
        .map_or_else(
            || DEFAULT_HANDOFF_MESSAGE.to_owned(),
            |settings| settings.handoff_message,
        )
}

fn kustomer_settings(env: &Env, connector: &Enabled) -> Option<KustomerSettings> {
    (connector.kind == ConnectorKind::Kustomer)
        .then(|| KustomerSettings::parse(&connector.settings, http::allows_loopback(env)).ok())
        .flatten()
}

/// Escalates the conversation of the customer's `message` when it says one of the escalation
/// phrases of a Kustomer connector that makes tickets and works for the customer (its rollout):
/// the first connector whose phrase it says tells the customer, and every such connector makes
/// its ticket.
pub async fn escalate_if_asked(
    env: &Env,
    db: &Db,
    tenant: &Tenant,
    connectors: &[Enabled],
    message: &Message,
) -> Result<(), ApiError> {
    let mut asking = Vec::new();
    let mut first: Option<(String, String)> = None;
    for connector in connectors
        .iter()
        .filter(|connector| connector.serves(&message.customer_id))
    {
        let Some(settings) = kustomer_settings(env, connector).filter(|settings| settings.ticket_creation)
        else {
            continue;
        };
        let Some(phrase) = asks_for_human(&message.content, &settings.escalation_phrases) else {
            continue;
        };
        asking.push(connector.id.clone());
        if first.is_none() {
            first = Some((phrase.to_owned(), settings.handoff_message));
        }
    }
    let Some((phrase, handoff)) = first else {
        return Ok(());
    };
    let reason = format!("the customer asked for a person (\"{phrase}\")");
    let asked = Escalation {
        conversation_id: &message.conversation_id,
        customer_id: &message.customer_id,
        reason: &reason,
        trigger: Trigger::Phrase,
        message_id: Some(&message.id),
        routing: &Routing::default(),
        reply: None,
        at_most: None,
    };
    request(env, db, tenant, &asking, &asked, &handoff).await?;
    Ok(())
}

/// Tells the customer, once per escalation, that a person will take over: on the conversation's
/// channel (as the reply the escalation asks for, when it does), through the normal send path. A
/// customer who cannot be reached there (no account on the channel) leaves the escalation
/// standing; that is logged.
async fn hand_off(
    env: &Env,
    db: &Db,
    tenant: &Tenant,
    escalation_id: &EscalationId,
    asked: &Escalation<'_>,
    text: &str,
) -> Result<(), ApiError> {
    let conversation_id = asked.conversation_id;
    if !escalations::take_handoff(db, tenant, escalation_id, runtime::now().micros()).await? {
        return Ok(());
    }
    let Some(conversation): Option<Conversation> = db::conversations::by_ids(db, tenant, &[conversation_id])
        .await?
        .pop()
    else {
        return Ok(());
    };
    let Some(customer) =
        db::customers::find_one(db, tenant, &CustomerKey::Id(conversation.customer_id.clone())).await?
    else {
        return Ok(());
    };
    let outgoing = OutgoingMessage {
        channel: conversation.channel,
        content: text.to_owned(),
        subject: None,
        attachments: Vec::new(),
        reply: asked.reply.cloned(),
    };
    let origin = http::configured_origin(env)?.unwrap_or_default();
    if let Err(error) = send_queue::accept_on_channel(env, db, tenant, &customer, &outgoing, &origin).await {
        console_error!(
            "escalation {escalation_id}: the hand-off message was not sent: {}",
            error.body.message
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crm::test_support::{
        UNLIMITED, conversation, customer, jobs, kustomer_connector, message, rows_of, whatsapp_account,
    };
    use crate::db::crm_connectors;
    use crate::runtime::Level;
    use crate::testing::Fixture;
    use domain::crm::rollout::Rollout;
    use domain::ids::MessageId;
    use serde_json::{Value, json};

    fn ok<T, E: std::fmt::Debug>(result: Result<T, E>) -> T {
        result.unwrap_or_else(|error| panic!("{error:?}"))
    }

    /// The texts queued for sending to customers, as the messages table keeps them.
    fn told(fixture: &Fixture, tenant: &Tenant) -> Vec<String> {
        rows_of(fixture, "messages", "created_us", tenant)
            .iter()
            .filter(|row| row["direction"] == "outbound")
            .map(|row| row["content"].as_str().unwrap_or_default().to_owned())
            .collect()
    }

    async fn the_message(fixture: &Fixture, tenant: &Tenant, id: &MessageId) -> Message {
        ok(db::messages::by_ids(&fixture.db, tenant, &[id]).await)
            .pop()
            .unwrap_or_else(|| panic!("message {id}"))
    }

    #[test]
    fn an_escalation_is_recorded_once_per_message_with_work_for_each_connector_and_the_customer_is_told_once()
    {
        let fixture = Fixture::new();
        fixture.run(async {
            let tenant = fixture.business("Acme").await;
            whatsapp_account(&fixture, &tenant).await;
            let first = kustomer_connector(&fixture, &tenant, json!({}), UNLIMITED).await;
            let second = kustomer_connector(&fixture, &tenant, json!({}), UNLIMITED).await;
            let ada = customer(&fixture, &tenant, "Ada", None).await;
            let talk = conversation(&fixture, &tenant, &ada).await;
            let asked = message(&fixture, &tenant, &talk, &ada, "a human please").await;
            let escalation = Escalation {
                conversation_id: &talk,
                customer_id: &ada,
                reason: "asked for a person",
                trigger: Trigger::Phrase,
                message_id: Some(&asked),
                routing: &Routing::default(),
                reply: None,
                at_most: None,
            };
            let connectors = [first.id.clone(), second.id.clone()];
            let recorded = ok(request(
                &fixture.env,
                &fixture.db,
                &tenant,
                &connectors,
                &escalation,
                "A person will reply soon.",
            )
            .await)
            .recorded()
            .unwrap_or_else(|| panic!("recorded"));
            assert_eq!(recorded.work.len(), 2);
            for (job, connector) in recorded.work.iter().zip([&first, &second]) {
                assert_eq!(job.connector_id, connector.id);
                assert_eq!(job.operation, domain::crm::work::Operation::Escalate);
                assert_eq!(job.subject_id, talk.as_str());
                assert_eq!(
                    job.input.as_ref().map(|input| input["reason"].clone()),
                    Some(json!("asked for a person"))
                );
            }
            assert_eq!(told(&fixture, &tenant), ["A person will reply soon."]);
            assert_eq!(
                fixture.stack.queued(send_queue::OUTBOUND).len(),
                1,
                "queued for sending"
            );

            let again = ok(request(
                &fixture.env,
                &fixture.db,
                &tenant,
                &connectors,
                &escalation,
                "A person will reply soon.",
            )
            .await);
            assert!(
                matches!(again, Requested::Already),
                "the message escalated already"
            );
            let escalations = rows_of(&fixture, "escalations", "created_us", &tenant);
            assert_eq!(escalations.len(), 1, "{escalations:?}");
            assert_eq!(escalations[0]["trigger"], "phrase");
            assert!(escalations[0]["handed_off_us"].is_i64(), "{escalations:?}");
            assert_eq!(jobs(&fixture, &first).len() + jobs(&fixture, &second).len(), 2);
            assert_eq!(told(&fixture, &tenant).len(), 1, "told once");
        });
    }

    #[test]
    fn a_customer_who_cannot_be_told_leaves_the_escalation_standing_and_the_failure_logged() {
        let fixture = Fixture::new();
        fixture.run(async {
            let tenant = fixture.business("Acme").await;
            let connector = kustomer_connector(&fixture, &tenant, json!({}), UNLIMITED).await;
            let ada = customer(&fixture, &tenant, "Ada", None).await;
            let talk = conversation(&fixture, &tenant, &ada).await;
            let escalation = Escalation {
                conversation_id: &talk,
                customer_id: &ada,
                reason: "refund over limit",
                trigger: Trigger::Api,
                message_id: None,
                routing: &Routing::default(),
                reply: None,
                at_most: None,
            };
            let recorded = ok(request(
                &fixture.env,
                &fixture.db,
                &tenant,
                std::slice::from_ref(&connector.id),
                &escalation,
                "Soon.",
            )
            .await);
            assert!(
                recorded
                    .recorded()
                    .is_some_and(|recorded| recorded.work.len() == 1)
            );
            assert!(told(&fixture, &tenant).is_empty());
            assert_eq!(
                fixture
                    .stack
                    .logged(Level::Error, "the hand-off message was not sent")
                    .len(),
                1,
                "{:#?}",
                fixture.stack.logs()
            );
            assert_eq!(rows_of(&fixture, "escalations", "created_us", &tenant).len(), 1);
        });
    }

    #[test]
    fn the_handoff_message_is_that_of_the_first_kustomer_connector_that_makes_tickets() {
        let fixture = Fixture::new();
        let kustomer = |settings: Value| Enabled {
            id: ConnectorId::generate([1; 16]),
            kind: ConnectorKind::Kustomer,
            rollout: Rollout::EVERYONE,
            settings: KustomerSettings::parse(&settings, false)
                .unwrap_or_else(|error| panic!("{error:?}"))
                .to_json(),
        };
        let no_tickets =
            kustomer(json!({ "subdomain": "a", "ticket_creation": false, "handoff_message": "Not me" }));
        let tickets = kustomer(json!({ "subdomain": "a", "handoff_message": "Me" }));
        let krayin = Enabled {
            id: ConnectorId::generate([2; 16]),
            kind: ConnectorKind::Krayin,
            rollout: Rollout::EVERYONE,
            settings: json!({ "handoff_message": "Not a Kustomer" }),
        };
        let unreadable = Enabled {
            settings: json!({ "handoff_message": "No subdomain" }),
            ..kustomer(json!({ "subdomain": "a" }))
        };
        let cases = [
            (vec![], DEFAULT_HANDOFF_MESSAGE, "no connector"),
            (
                vec![no_tickets.clone(), tickets.clone()],
                "Me",
                "the first that makes tickets",
            ),
            (
                vec![krayin, unreadable, no_tickets],
                DEFAULT_HANDOFF_MESSAGE,
                "none that makes tickets",
            ),
            (
                vec![
                    tickets.clone(),
                    kustomer(json!({ "subdomain": "a", "handoff_message": "Later" })),
                ],
                "Me",
                "the first of two",
            ),
        ];
        for (connectors, expected, why) in cases {
            assert_eq!(handoff_message(&fixture.env, &connectors), expected, "{why}");
        }
    }

    #[test]
    fn a_customers_words_escalate_for_each_connector_that_makes_tickets_and_knows_them() {
        let fixture = Fixture::new();
        fixture.run(async {
            let tenant = fixture.business("Acme").await;
            whatsapp_account(&fixture, &tenant).await;
            let defaults = kustomer_connector(&fixture, &tenant, json!({}), UNLIMITED).await;
            let no_tickets =
                kustomer_connector(&fixture, &tenant, json!({ "ticket_creation": false }), UNLIMITED).await;
            let managers = kustomer_connector(
                &fixture,
                &tenant,
                json!({ "escalation_phrases": ["manager"], "handoff_message": "A manager is coming." }),
                UNLIMITED,
            )
            .await;
            let enabled = ok(crm_connectors::enabled(&fixture.db, &tenant).await);
            let ada = customer(&fixture, &tenant, "Ada", None).await;
            let talk = conversation(&fixture, &tenant, &ada).await;
            let cases = [
                ("thanks, all sorted", 0, "no phrase"),
                ("can I talk to a person please", 1, "a default phrase"),
                ("get me your MANAGER!", 1, "the third connector's phrase"),
            ];
            for (text, escalated, why) in &cases {
                let said = message(&fixture, &tenant, &talk, &ada, text).await;
                let said = the_message(&fixture, &tenant, &said).await;
                ok(escalate_if_asked(&fixture.env, &fixture.db, &tenant, &enabled, &said).await);
                let rows = rows_of(&fixture, "escalations", "created_us", &tenant);
                let of_message: Vec<_> = rows
                    .iter()
                    .filter(|row| row["message_id"] == said.id.as_str())
                    .collect();
                assert_eq!(of_message.len(), *escalated, "{why}: {rows:?}");
            }
            let escalations = rows_of(&fixture, "escalations", "created_us", &tenant);
            assert!(escalations.iter().all(|row| row["trigger"] == "phrase"));
            let reasons: Vec<&str> = escalations
                .iter()
                .map(|row| row["reason"].as_str().unwrap_or_default())
                .collect();
            assert_eq!(
                reasons,
                [
                    "the customer asked for a person (\"talk to a person\")",
                    "the customer asked for a person (\"manager\")"
                ]
            );
            assert_eq!(
                jobs(&fixture, &defaults).len(),
                1,
                "the default phrases' connector: once"
            );
            assert_eq!(
                jobs(&fixture, &managers).len(),
                1,
                "the manager's connector: once"
            );
            assert!(
                jobs(&fixture, &no_tickets).is_empty(),
                "a connector without tickets makes none"
            );
            assert_eq!(
                told(&fixture, &tenant),
                [DEFAULT_HANDOFF_MESSAGE, "A manager is coming."],
                "each told in the words of the first connector whose phrase it was"
            );
        });
    }
}
