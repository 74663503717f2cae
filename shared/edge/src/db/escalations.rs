//! `escalations`: conversations handed to a human, through the API or because the customer asked
//! for one in so many words. One per inbound message at most, so a phrase seen twice (a retried
//! sync) escalates once. The hand-off message is sent once per escalation.

use crate::db::Db;
use crate::db::Statement;
use crate::db::{self, number, optional_number, optional_text, text};
use domain::crm::priority::Priority;
use domain::crm::work::Routing;
use domain::error::ApiError;
use domain::ids::{ConversationId, CustomerId, EscalationId, MessageId};
use domain::tenant::Tenant;
use serde::Deserialize;

/// How an escalation came about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trigger {
    Api,
    /// The customer's message contained one of the connector's escalation phrases.
    Phrase,
    /// The page's bot handed the conversation to people.
    Bot,
}

impl Trigger {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Api => "api",
            Self::Phrase => "phrase",
            Self::Bot => "bot",
        }
    }

    pub fn parse(name: &str) -> Option<Self> {
        [Self::Api, Self::Phrase, Self::Bot]
            .into_iter()
            .find(|trigger| trigger.as_str() == name)
    }
}

pub struct NewEscalation<'a> {
    pub id: &'a EscalationId,
    pub conversation_id: &'a ConversationId,
    pub customer_id: &'a CustomerId,
    pub reason: &'a str,
    pub trigger: Trigger,
    pub message_id: Option<&'a MessageId>,
    pub routing: &'a Routing,
}

/// An escalation as it is stored.
#[derive(Debug, Clone, PartialEq)]
pub struct Stored {
    pub id: EscalationId,
    pub conversation_id: ConversationId,
    pub customer_id: CustomerId,
    pub reason: String,
    pub trigger: Trigger,
    pub routing: Routing,
}

/// Records the escalation; false when its message escalated already.
pub async fn insert(
    db: &Db,
    tenant: &Tenant,
    new: &NewEscalation<'_>,
    now_us: i64,
) -> Result<bool, ApiError> {
    Ok(insert_at_most(db, tenant, new, now_us, None).await? == Inserted::Recorded)
}

/// At most `most` escalations of one customer by one trigger since `since_us`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AtMost {
    pub most: i64,
    pub since_us: i64,
}

/// What [`insert_at_most`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Inserted {
    Recorded,
    /// Its message escalated already.
    Already,
    /// The customer had as many escalations by its trigger as `AtMost` allows.
    OverLimit,
}

/// Records the escalation unless its message escalated already or, with `at_most`, its customer
/// had that many by the same trigger since then: the count and the insert are one statement, so
/// two at once cannot both pass the limit.
pub async fn insert_at_most(
    db: &Db,
    tenant: &Tenant,
    new: &NewEscalation<'_>,
    now_us: i64,
    at_most: Option<AtMost>,
) -> Result<Inserted, ApiError> {
    let result = db
        .scoped(
            tenant,
            "INSERT INTO escalations (id, business_id, conversation_id, customer_id, reason, trigger, message_id,              created_us, priority, team_id) SELECT ?2, ?1, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10              WHERE ?11 IS NULL OR (SELECT count(*) FROM escalations WHERE business_id = ?1 AND customer_id = ?4              AND trigger = ?6 AND created_us > ?12) < ?11 ON CONFLICT (message_id) DO NOTHING",
        )
        .bind(&[
            text(new.id.as_str()),
            text(new.conversation_id.as_str()),
            text(new.customer_id.as_str()),
            text(new.reason),
            text(new.trigger.as_str()),
            optional_text(new.message_id.map(MessageId::as_str)),
            number(now_us),
            optional_number(new.routing.priority.map(|priority| i64::from(priority.get()))),
            optional_text(new.routing.team.as_deref()),
            optional_number(at_most.map(|limit| limit.most)),
            number(at_most.map_or(0, |limit| limit.since_us)),
        ])?
        .run()
        .await?;
    if db::changes(&result) == 1 {
        return Ok(Inserted::Recorded);
    }
    let Some(message) = new.message_id.filter(|_| at_most.is_some()) else {
        return Ok(Inserted::Already);
    };
    #[derive(Deserialize)]
    struct Found {
        #[allow(dead_code, reason = "the row's presence is the answer")]
        found: i64,
    }
    let found: Option<Found> = db
        .scoped(
            tenant,
            "SELECT 1 AS found FROM escalations WHERE message_id = ?2 AND business_id = ?1",
        )
        .bind(&[text(message.as_str())])?
        .first(None)
        .await?;
    Ok(if found.is_some() {
        Inserted::Already
    } else {
        Inserted::OverLimit
    })
}

#[derive(Deserialize)]
struct Row {
    id: String,
    conversation_id: String,
    customer_id: String,
    reason: String,
    trigger: String,
    priority: Option<i64>,
    team_id: Option<String>,
}

impl Row {
    fn stored(self) -> Result<Stored, ApiError> {
        let damaged =
            |what: &str| ApiError::internal("reading an escalation", format!("its {what} is damaged"));
        Ok(Stored {
            id: EscalationId::parse(&self.id).ok_or_else(|| damaged("id"))?,
            conversation_id: ConversationId::parse(&self.conversation_id)
                .ok_or_else(|| damaged("conversation"))?,
            customer_id: CustomerId::parse(&self.customer_id).ok_or_else(|| damaged("customer"))?,
            reason: self.reason,
            trigger: Trigger::parse(&self.trigger).ok_or_else(|| damaged("trigger"))?,
            routing: Routing {
                priority: self
                    .priority
                    .and_then(|level| u8::try_from(level).ok())
                    .and_then(Priority::new),
                team: self.team_id,
            },
        })
    }
}

/// The business's escalation `id`, if it has one.
pub async fn find(db: &Db, tenant: &Tenant, id: &EscalationId) -> Result<Option<Stored>, ApiError> {
    db.scoped(
        tenant,
        "SELECT id, conversation_id, customer_id, reason, trigger, priority, team_id FROM escalations \
         WHERE business_id = ?1 AND id = ?2",
    )
    .bind(&[text(id.as_str())])?
    .first::<Row>(None)
    .await?
    .map(Row::stored)
    .transpose()
}

/// Keeps the escalation's routing as it now is.
pub async fn set_routing(
    db: &Db,
    tenant: &Tenant,
    id: &EscalationId,
    routing: &Routing,
) -> Result<(), ApiError> {
    db.scoped(
        tenant,
        "UPDATE escalations SET priority = ?3, team_id = ?4 WHERE business_id = ?1 AND id = ?2",
    )
    .bind(&[
        text(id.as_str()),
        optional_number(routing.priority.map(|priority| i64::from(priority.get()))),
        optional_text(routing.team.as_deref()),
    ])?
    .run()
    .await?;
    Ok(())
}

/// Marks the escalation's hand-off message as sent; true for the one caller that marked it.
pub async fn take_handoff(
    db: &Db,
    tenant: &Tenant,
    id: &EscalationId,
    now_us: i64,
) -> Result<bool, ApiError> {
    let result = db
        .scoped(tenant, "UPDATE escalations SET handed_off_us = ?3 WHERE business_id = ?1 AND id = ?2 AND handed_off_us IS NULL",
        )
        .bind(&[text(id.as_str()), number(now_us)])?
        .run()
        .await?;
    Ok(db::changes(&result) == 1)
}

/// Escalations and conversations started in [from_us, to_us): the escalation rate's parts.
#[derive(Debug, Default, Deserialize)]
pub struct Rate {
    pub escalations: i64,
    pub conversations: i64,
}

pub async fn rate(db: &Db, tenant: &Tenant, from_us: i64, to_us: i64) -> Result<Rate, ApiError> {
    let row = db
        .scoped(tenant, "SELECT (SELECT count(DISTINCT conversation_id) FROM escalations WHERE business_id = ?1 \
               AND created_us >= ?2 AND created_us < ?3) AS escalations, \
             (SELECT count(*) FROM conversations WHERE business_id = ?1 AND created_at >= ?4 AND created_at < ?5) \
               AS conversations",
        )
        .bind(&[
            number(from_us),
            number(to_us),
            text(&domain::time::Timestamp::from_micros(from_us).to_rfc3339()),
            text(&domain::time::Timestamp::from_micros(to_us).to_rfc3339()),
        ])?
        .first::<Rate>(None)
        .await?;
    Ok(row.unwrap_or_default())
}

/// The statement that deletes the customer's escalations (an erasure's: their reasons quote the
/// customer).
pub fn erase_of_customer(db: &Db, tenant: &Tenant, customer: &CustomerId) -> Result<Statement, ApiError> {
    Ok(db
        .scoped(
            tenant,
            "DELETE FROM escalations WHERE business_id = ?1 AND customer_id = ?2",
        )
        .bind(&[text(customer.as_str())])?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{Fixture, Must, random};
    use domain::channel::Channel;
    use std::time::Duration;

    #[test]
    fn an_escalation_is_found_and_routed_again_in_its_own_business_only() {
        let fixture = Fixture::new();
        fixture.run(async {
            let acme = fixture.business_on("Acme", 0).await;
            let globex = fixture.business_on("Globex", 0).await;
            let (id, conversation, customer) = (
                EscalationId::generate(random()),
                ConversationId::generate(random()),
                CustomerId::generate(random()),
            );
            let asked = Routing {
                priority: Priority::new(4),
                team: None,
            };
            let new = NewEscalation {
                id: &id,
                conversation_id: &conversation,
                customer_id: &customer,
                reason: "refund",
                trigger: Trigger::Api,
                message_id: None,
                routing: &asked,
            };
            assert!(insert(&fixture.db, &acme, &new, 0).await.must());
            assert_eq!(
                find(&fixture.db, &globex, &id).await.must(),
                None,
                "another business's"
            );
            let routed = Routing {
                priority: Priority::new(2),
                team: Some("billing".to_owned()),
            };
            set_routing(&fixture.db, &globex, &id, &routed).await.must();
            assert_eq!(
                find(&fixture.db, &acme, &id)
                    .await
                    .must()
                    .map(|stored| stored.routing),
                Some(asked),
                "Globex's change touched nothing"
            );
            set_routing(&fixture.db, &acme, &id, &routed).await.must();
            let stored = find(&fixture.db, &acme, &id).await.must();
            assert_eq!(
                stored.map(|stored| (stored.conversation_id, stored.trigger, stored.routing)),
                Some((conversation, Trigger::Api, routed)),
            );
        });
    }

    #[test]
    fn a_message_escalates_once_and_its_hand_off_is_sent_once() {
        let fixture = Fixture::new();
        fixture.run(async {
            let acme = fixture.business_on("Acme", 0).await;
            let globex = fixture.business_on("Globex", 0).await;
            let (conversation, customer, message) = (
                ConversationId::generate(random()),
                CustomerId::generate(random()),
                MessageId::generate(random()),
            );
            let now = fixture.now().micros();
            let no_routing = Routing::default();
            let by_phrase = |id| NewEscalation {
                id,
                conversation_id: &conversation,
                customer_id: &customer,
                reason: "asked for a person",
                trigger: Trigger::Phrase,
                message_id: Some(&message),
                routing: &no_routing,
            };
            let first = EscalationId::generate(random());
            assert!(insert(&fixture.db, &acme, &by_phrase(&first), now).await.must());
            let again = EscalationId::generate(random());
            assert!(
                !insert(&fixture.db, &acme, &by_phrase(&again), now).await.must(),
                "the same message again"
            );
            let by_api = |id| NewEscalation {
                trigger: Trigger::Api,
                message_id: None,
                ..by_phrase(id)
            };
            let (api_1, api_2) = (EscalationId::generate(random()), EscalationId::generate(random()));
            assert!(insert(&fixture.db, &acme, &by_api(&api_1), now).await.must());
            assert!(
                insert(&fixture.db, &acme, &by_api(&api_2), now).await.must(),
                "API escalations have no message"
            );
            assert!(
                !take_handoff(&fixture.db, &globex, &first, now).await.must(),
                "another business's"
            );
            assert!(take_handoff(&fixture.db, &acme, &first, now).await.must());
            assert!(
                !take_handoff(&fixture.db, &acme, &first, now + 1).await.must(),
                "sent once"
            );
            let rows = fixture.rows("escalations", "created_us");
            assert_eq!(rows.len(), 3);
        });
    }

    #[test]
    fn the_rate_counts_escalated_conversations_against_conversations_begun_in_the_window() {
        let fixture = Fixture::new();
        fixture.run(async {
            let acme = fixture.business_on("Acme", 0).await;
            let globex = fixture.business_on("Globex", 0).await;
            let account = fixture.account(&acme, Channel::Sms).await;
            let from = fixture.now();
            let mut conversations = Vec::new();
            for name in ["Ann", "Bob", "Cat"] {
                let customer = fixture.customer(&acme, name).await;
                conversations.push((
                    fixture
                        .send(&acme, &customer, Channel::Sms, &account, "hi")
                        .await
                        .conversation_id,
                    customer,
                ));
            }
            let theirs = fixture.account(&globex, Channel::Sms).await;
            let dan = fixture.customer(&globex, "Dan").await;
            fixture.send(&globex, &dan, Channel::Sms, &theirs, "hi").await;
            let escalate = |tenant: Tenant, conversation: ConversationId, customer: CustomerId| {
                let db = fixture.db.clone();
                let now = fixture.now().micros();
                async move {
                    let id = EscalationId::generate(random());
                    let new = NewEscalation {
                        id: &id,
                        conversation_id: &conversation,
                        customer_id: &customer,
                        reason: "r",
                        trigger: Trigger::Api,
                        message_id: None,
                        routing: &Routing::default(),
                    };
                    insert(&db, &tenant, &new, now).await.must();
                }
            };
            let (first, ann) = conversations[0].clone();
            escalate(acme.clone(), first.clone(), ann.clone()).await;
            escalate(acme.clone(), first, ann).await;
            escalate(
                acme.clone(),
                conversations[1].0.clone(),
                conversations[1].1.clone(),
            )
            .await;
            escalate(globex.clone(), ConversationId::generate(random()), dan).await;
            fixture.stack.advance(Duration::from_secs(60));
            let to = fixture.now();
            escalate(
                acme.clone(),
                conversations[2].0.clone(),
                conversations[2].1.clone(),
            )
            .await;
            let counted = rate(&fixture.db, &acme, from.micros(), to.micros()).await.must();
            assert_eq!(
                (counted.escalations, counted.conversations),
                (2, 3),
                "a conversation escalated twice counts once"
            );
        });
    }
}
