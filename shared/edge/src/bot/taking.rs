//! The consumer's turn for one customer message: what the turn needs is read (the message, its
//! bot, the customer, the conversation before it), the turn taken (retried while the generator
//! is unavailable, then handed off), and what it decided done: the reply sent through the send
//! queue once, or the hand-off escalated and the conversation set to `pending`; then the turn is
//! logged, its row gone in the same batch.

use super::{Asked, BotTask, Did, MAX_ATTEMPTS, Outcome, comment_reply, think};
use crate::db::bot_conversations::{self, Spell};
use crate::db::bot_turns::{self, Commented};
use crate::db::escalations::AtMost;
use crate::db::{self, Db, bot_answers, bots, crm_connectors, customer_identities};
use crate::platform::queue::Settle;
use crate::{
    Env, console_error, crm, messaging::conversation_change, messaging::send_queue, platform::http, runtime,
};
use domain::bot::answer::{self, Turn};
use domain::bot::settings::{HANDOFF_WINDOW_HOURS, HANDOFFS_PER_AUTHOR};
use domain::bot::target::{BotChannel, BotTarget};
use domain::channel::{Channel, Direction};
use domain::customer::Customer;
use domain::error::ApiError;
use domain::ids::MessageId;
use domain::links::link::PageId;
use domain::lookup::CustomerKey;
use domain::message::{ConversationStatus, Message};
use domain::outgoing::{CommentReply as ReplyTo, OutgoingMessage};
use domain::tenant::Tenant;
use sha2::{Digest, Sha256};

/// The id of the bot's reply `name` (`reply`; a comment's `public` and `private`) to `message`:
/// derived, so a turn taken again sends nothing again.
pub fn reply_id(message: &MessageId, name: &str) -> MessageId {
    let digest = Sha256::digest(format!("crm-edge bot {name} {}", message.as_str()).as_bytes());
    MessageId::generate(std::array::from_fn(|at| digest[at]))
}

/// A turn that will not be taken (its message or bot is gone, or it was answered): its row goes.
async fn let_go(db: &Db, tenant: &Tenant, message: &MessageId) -> Result<Settle, ApiError> {
    db.batch(vec![bot_turns::taken(db, tenant, message)?]).await?;
    Ok(Settle::Ack)
}

/// The consumer's turn for one message. `attempt` counts from 1; the last one that finds the
/// generator unavailable hands off instead of retrying.
pub async fn answer_message(env: &Env, task: &BotTask, attempt: u32) -> Result<Settle, ApiError> {
    let db = env.db()?;
    let tenant = Tenant::for_background(task.business_id.clone());
    let (db, tenant) = (&db, &tenant);
    let message_id = &task.message_id;
    if bot_answers::answered(db, tenant, message_id).await? {
        return let_go(db, tenant, message_id).await;
    }
    let (Ok(page_id), Some(channel)) = (
        PageId::parse(&serde_json::Value::from(task.page_id.as_str())),
        BotChannel::parse(&task.channel),
    ) else {
        return let_go(db, tenant, message_id).await;
    };
    let target = BotTarget { page_id, channel };
    let Some(bot) = bots::find(db, tenant, &target).await? else {
        return let_go(db, tenant, message_id).await;
    };
    let Some(message) = db::messages::by_ids(db, tenant, &[message_id]).await?.pop() else {
        return let_go(db, tenant, message_id).await;
    };
    if message.direction != Direction::Inbound || message.content.trim().is_empty() {
        return let_go(db, tenant, message_id).await;
    }
    let Some(spell) = bot_conversations::spell(db, tenant, &message.conversation_id).await? else {
        return let_go(db, tenant, message_id).await;
    };
    let customer = db::customers::find_one(db, tenant, &CustomerKey::Id(message.customer_id.clone())).await?;
    let page_scoped_id =
        customer_identities::latest_address(db, tenant, &message.customer_id, Channel::Facebook).await?;
    let history = history(db, tenant, &message).await?;
    let comment = match (&task.comment, channel) {
        (Some(_), BotChannel::Facebook) => {
            Some(comment_reply(db, tenant, &target.page_id, &bot.settings).await?)
        }
        _ => None,
    };
    let asked = Asked {
        target: &target,
        settings: &bot.settings,
        customer: customer.as_ref(),
        page_scoped_id: page_scoped_id.as_deref(),
        question: &message.content,
        history: &history,
        conversation: spell.conversation,
        comment,
    };
    let outcome = match think(env, db, tenant, &asked).await {
        Ok(outcome) => outcome,
        Err(error) if attempt < MAX_ATTEMPTS && error.retry_after_seconds.is_some() => {
            console_error!(
                "the bot's turn for message {} waits for a retry: {}",
                message.id,
                error.body.message
            );
            return Ok(Settle::RetryIn(
                error.retry_after_seconds.unwrap_or(5).max(5) * attempt,
            ));
        }
        Err(error) => {
            console_error!(
                "the bot hands message {} to people: {}",
                message.id,
                error.body.message
            );
            Outcome::handoff(&bot.settings, "generator_failed", Vec::new())
        }
    };
    let taking = Taking {
        env,
        db,
        tenant,
        target: &target,
        message: &message,
        customer: customer.as_ref(),
        spell: &spell,
        comment: task.comment.as_ref().filter(|_| channel == BotChannel::Facebook),
    };
    taking.act(outcome).await?;
    Ok(Settle::Ack)
}

/// The conversation's messages before `message`, oldest first, as the model sees them.
async fn history(db: &Db, tenant: &Tenant, message: &Message) -> Result<Vec<Turn>, ApiError> {
    let recent =
        db::messages::of_conversations(db, tenant, &[&message.conversation_id], answer::HISTORY + 1).await?;
    Ok(recent
        .into_iter()
        .filter(|earlier| earlier.created_us < message.created_us && !earlier.content.trim().is_empty())
        .map(|earlier| Turn {
            from_customer: earlier.direction == Direction::Inbound,
            text: earlier.content,
        })
        .collect())
}

/// A turn being taken for one customer message: what it sends, and its log.
struct Taking<'a> {
    env: &'a Env,
    db: &'a Db,
    tenant: &'a Tenant,
    target: &'a BotTarget,
    message: &'a Message,
    customer: Option<&'a Customer>,
    spell: &'a Spell,
    /// The comment the message is, on the `facebook` channel.
    comment: Option<&'a Commented>,
}

impl Taking<'_> {
    /// Sends what the turn decided, and logs it (the turn's row goes in the same batch).
    async fn act(&self, mut outcome: Outcome) -> Result<(), ApiError> {
        let (db, tenant, message) = (self.db, self.tenant, self.message);
        let (mut reply_message_id, mut private_message_id) = (None, None);
        match (outcome.did, self.customer) {
            (Did::Reply, Some(customer)) => {
                let sent = self.reply(customer, &outcome).await?;
                (reply_message_id, private_message_id) = sent;
            }
            (Did::Handoff, _) if !self.hand_off(&outcome).await? => {
                outcome = Outcome {
                    pieces: std::mem::take(&mut outcome.pieces),
                    refusals: std::mem::take(&mut outcome.refusals),
                    model: outcome.model.take(),
                    generator_ms: outcome.generator_ms,
                    ..Outcome::silent("handoffs_limited")
                };
            }
            _ => {}
        }
        let now = runtime::now();
        let total_ms = u64::try_from(now.millis() - message.created_us / 1000).unwrap_or(0);
        let id = MessageId::generate(runtime::random()?);
        let created_at = now.to_rfc3339();
        let mut statements = Vec::new();
        if outcome.did != Did::Silent {
            statements.push(bot_conversations::record(
                db,
                tenant,
                &message.conversation_id,
                &message.id,
                self.spell,
                outcome.did == Did::Reply,
                (outcome.did == Did::Handoff).then_some(created_at.as_str()),
                &created_at,
            )?);
        }
        statements.push(bot_answers::insert(
            db,
            tenant,
            &bot_answers::NewTurn {
                customer_id: Some(&message.customer_id),
                conversation_id: Some(&message.conversation_id),
                message_id: Some(&message.id),
                reply_message_id: reply_message_id.as_ref(),
                private_message_id: private_message_id.as_ref(),
                ..outcome.logged(id.as_str(), self.target, &message.content, total_ms, &created_at)
            },
        )?);
        statements.push(bot_turns::taken(db, tenant, &message.id)?);
        db.batch(statements).await?;
        Ok(())
    }

    /// Sends the reply: in Messenger, or for a comment its public text under it and its private
    /// text into the author's Messenger. The ids of the message sent first and, when both are, of
    /// the private one.
    async fn reply(
        &self,
        customer: &Customer,
        outcome: &Outcome,
    ) -> Result<(Option<MessageId>, Option<MessageId>), ApiError> {
        let (env, db, tenant, message) = (self.env, self.db, self.tenant, self.message);
        let conversation = db::conversations::by_ids(db, tenant, &[&message.conversation_id])
            .await?
            .pop()
            .ok_or_else(|| ApiError::not_found(format!("no conversation {}", message.conversation_id)))?;
        let account = match conversation.channel_account_id {
            Some(account) => account,
            None => send_queue::sending_account(db, tenant, conversation.channel).await?,
        };
        let origin = http::configured_origin(env)?.unwrap_or_default();
        let reply_to = |privately| {
            self.comment.map(|comment| ReplyTo {
                post_id: comment.post_id.clone(),
                comment_id: comment.comment_id.clone(),
                privately,
            })
        };
        let sends: Vec<(&str, Option<ReplyTo>, &str)> = match self.comment {
            None => outcome
                .text
                .iter()
                .map(|text| ("reply", None, text.as_str()))
                .collect(),
            Some(_) => [
                ("public", reply_to(false), outcome.public_text.as_deref()),
                ("private", reply_to(true), outcome.text.as_deref()),
            ]
            .into_iter()
            .filter_map(|(name, reply, text)| Some((name, reply, text?)))
            .collect(),
        };
        let mut ids = Vec::new();
        for (name, reply, text) in sends {
            let outgoing = OutgoingMessage {
                channel: conversation.channel,
                content: text.to_owned(),
                subject: None,
                attachments: Vec::new(),
                reply,
            };
            let id = reply_id(&message.id, name);
            send_queue::accept_once(
                env,
                db,
                tenant,
                customer,
                &account,
                &outgoing,
                &origin,
                id.clone(),
            )
            .await?;
            ids.push(id);
        }
        let mut ids = ids.into_iter();
        let first = ids.next();
        Ok((first, ids.next()))
    }

    /// The hand-off: an escalation (the hand-off message, once, a comment's as its private
    /// reply; each serving CRM connector's ticket) and the conversation set to `pending`, waiting
    /// for a person. False when the comment's author had their hand-off of the day already:
    /// nothing is done, the bot is silent.
    async fn hand_off(&self, outcome: &Outcome) -> Result<bool, ApiError> {
        let (env, db, tenant, message) = (self.env, self.db, self.tenant, self.message);
        let enabled = crm_connectors::enabled(db, tenant).await?;
        let connectors = crm_connectors::serving(&enabled, &message.customer_id);
        let reason = outcome.reason.unwrap_or("model");
        let why = format!("the bot handed the conversation to people ({reason})");
        let private_reply = self.comment.map(|comment| ReplyTo {
            post_id: comment.post_id.clone(),
            comment_id: comment.comment_id.clone(),
            privately: true,
        });
        let window_us = HANDOFF_WINDOW_HOURS * 3_600_000_000;
        let asked = crm::escalation::Escalation {
            conversation_id: &message.conversation_id,
            customer_id: &message.customer_id,
            reason: &why,
            trigger: db::escalations::Trigger::Bot,
            message_id: Some(&message.id),
            routing: &domain::crm::work::Routing::default(),
            reply: private_reply.as_ref(),
            at_most: self.comment.map(|_| AtMost {
                most: HANDOFFS_PER_AUTHOR,
                since_us: runtime::now().micros() - window_us,
            }),
        };
        let text = outcome.text.as_deref().unwrap_or_default();
        match crm::escalation::request(env, db, tenant, &connectors, &asked, text).await? {
            crm::escalation::Requested::OverLimit => return Ok(false),
            crm::escalation::Requested::Recorded(recorded) => {
                crm::sync::hand_over_jobs(env, tenant, &recorded.work).await;
            }
            crm::escalation::Requested::Already => {}
        }
        let change = conversation_change::Change {
            status: Some(ConversationStatus::Pending),
            assignee: None,
        };
        conversation_change::apply(
            env,
            db,
            tenant,
            &message.conversation_id,
            &change,
            &Default::default(),
        )
        .await?;
        Ok(true)
    }
}
