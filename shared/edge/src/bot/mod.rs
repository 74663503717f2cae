//! The bot that answers a page's customers from its CRM links (README.md, "The bot"): a turn per
//! customer message on a channel whose bot is enabled, taken in the consumer of `crm-edge-bot`,
//! never in the request that received the message.
//!
//! A turn: the rules (`domain::bot::settings::decide`: hours, the conversation with people, a
//! hand-off phrase, the most answers); the search as that customer (their own records and the
//! page's general knowledge only, `knowledge::search::for_customer`); general knowledge under the
//! bot's least score is left out, and with nothing left the turn is a hand-off; the generation (`generate`); the model's structured answer read back; the
//! check every answer passes (`domain::bot::check`). A reply is sent through the send queue, as
//! the message's own reply (its id derived from the message, so a turn taken twice sends once); a
//! hand-off is an escalation (the hand-off message once, the CRM connectors' tickets) and the
//! conversation set to `pending`, after which the bot is silent in it until it is resolved and
//! the customer writes again. Every turn is logged (`db::bot_answers`).
//!
//! The try in the console takes the same turn ([`think`]) and sends nothing.

pub mod generate;

use crate::db::bot_conversations::{self, Spell};
use crate::db::{self, Db, bot_answers, bots, crm_connectors, customer_identities};
use crate::knowledge::backend::Rag;
use crate::knowledge::search;
use crate::queue::Settle;
use crate::{DB, Env, console_error, conversation_change, crm, http, runtime, send_queue};
use domain::api::bots::TurnPiece;
use domain::bot::answer::{self, Prompt, Turn};
use domain::bot::settings::{BotSettings, Conversation, HandOff, LocalTime, Silence, decide};
use domain::bot::subject::subjects_of_customer;
use domain::bot::target::{BotChannel, BotTarget};
use domain::bot::{Action, Piece, PieceKind, check};
use domain::channel::{Channel, Direction};
use domain::customer::Customer;
use domain::error::ApiError;
use domain::ids::{BusinessId, MessageId};
use domain::links::link::PageId;
use domain::links::search::{Mode, Question};
use domain::lookup::CustomerKey;
use domain::message::{ConversationStatus, Message};
use domain::outgoing::{CommentReply, OutgoingMessage};
use domain::tenant::Tenant;
use generate::Generator;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// The queue that hands customer messages to the bot.
pub const BOT: &str = "BOT";
/// The pieces a turn searches for.
const TOP_K: usize = 5;
/// A turn whose generator is unavailable is retried this many times before it hands off.
pub const MAX_ATTEMPTS: u32 = 4;

/// A customer's message for a page's bot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BotTask {
    pub business_id: BusinessId,
    pub page_id: String,
    /// `facebook` (a comment) or `messenger`.
    pub channel: String,
    pub message_id: MessageId,
    /// A comment's post and its own id (Meta's), which its answer names.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<Commented>,
}

/// Where a comment is: the post (its conversation's thread) and the comment itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Commented {
    pub post_id: String,
    pub comment_id: String,
}

impl crate::queue::Work for BotTask {
    const QUEUE: &'static str = BOT;

    fn business(&self) -> Option<BusinessId> {
        Some(self.business_id.clone())
    }
}

/// What a turn did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Did {
    Reply,
    Handoff,
    Silent,
}

impl Did {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Reply => "reply",
            Self::Handoff => "handoff",
            Self::Silent => "silent",
        }
    }
}

/// A turn's outcome, before anything is sent.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub did: Did,
    /// Why it handed off or was silent (the log's `reason`).
    pub reason: Option<&'static str>,
    /// The reply, or the hand-off message.
    pub text: Option<String>,
    pub pieces: Vec<TurnPiece>,
    pub model: Option<String>,
    pub generator_ms: Option<u64>,
}

impl Outcome {
    fn silent(reason: &'static str) -> Self {
        Self {
            did: Did::Silent,
            reason: Some(reason),
            text: None,
            pieces: Vec::new(),
            model: None,
            generator_ms: None,
        }
    }

    fn handoff(settings: &BotSettings, reason: &'static str, pieces: Vec<TurnPiece>) -> Self {
        Self {
            did: Did::Handoff,
            reason: Some(reason),
            text: Some(settings.handoff_message.clone()),
            pieces,
            model: None,
            generator_ms: None,
        }
    }
}

impl Outcome {
    /// The turn as its log row holds it, asked `question` and taking `total_ms`: of no message (a
    /// try), until the caller names the message, its conversation and what was sent.
    pub fn logged<'a>(
        &'a self,
        id: &'a str,
        target: &'a BotTarget,
        question: &'a str,
        total_ms: u64,
        created_at: &'a str,
    ) -> bot_answers::NewTurn<'a> {
        bot_answers::NewTurn {
            id,
            target,
            customer_id: None,
            conversation_id: None,
            message_id: None,
            question,
            action: self.did.as_str(),
            reason: self.reason,
            text: self.text.as_deref(),
            pieces: &self.pieces,
            model: self.model.as_deref(),
            generator_ms: self.generator_ms,
            total_ms,
            reply_message_id: None,
            private_message_id: None,
            created_at,
        }
    }
}

/// What a turn is asked.
pub struct Asked<'a> {
    pub target: &'a BotTarget,
    pub settings: &'a BotSettings,
    /// The customer asking; None for a try without one (general knowledge only).
    pub customer: Option<&'a Customer>,
    /// Their page-scoped id on the page, when they have one.
    pub page_scoped_id: Option<&'a str>,
    pub question: &'a str,
    /// The conversation before the question, oldest first.
    pub history: &'a [Turn],
    pub conversation: Conversation,
}

/// Takes the turn: the rules, the search, the generation and the check. Nothing is sent. An
/// unavailable embedder or generator is an error (503): the caller retries or says so.
pub async fn think(env: &Env, db: &Db, tenant: &Tenant, asked: &Asked<'_>) -> Result<Outcome, ApiError> {
    let settings = asked.settings;
    let now = match &settings.hours {
        None => None,
        Some(hours) => match runtime::local_time(&hours.time_zone, runtime::now()) {
            Some((day, minute)) => Some(LocalTime { day, minute }),
            // A zone the runtime does not know (the API checked it when it was set) keeps the bot closed.
            None => return Ok(Outcome::silent("outside_hours")),
        },
    };
    match decide(settings, asked.conversation, now, asked.question) {
        domain::bot::settings::Turn::Silent(silence) => {
            return Ok(Outcome::silent(match silence {
                Silence::Disabled => "disabled",
                Silence::OutsideHours => "outside_hours",
                Silence::WithPeople => "with_people",
            }));
        }
        domain::bot::settings::Turn::HandOff(why) => {
            let reason = match why {
                HandOff::Asked => "asked",
                HandOff::MostAnswers => "most_answers",
            };
            return Ok(Outcome::handoff(settings, reason, Vec::new()));
        }
        domain::bot::settings::Turn::Answer => {}
    }
    let customer = asked.customer;
    let subjects = subjects_of_customer(
        customer.and_then(|customer| customer.email.as_deref()),
        customer.and_then(|customer| customer.phone.as_deref()),
        customer.and_then(|customer| customer.external_id.as_deref()),
        asked.page_scoped_id,
        tenant.default_country,
    );
    let question = Question {
        page_id: asked.target.page_id.clone(),
        channel: asked.target.channel.links(),
        text: asked.question.to_owned(),
        top_k: TOP_K,
        mode: Mode::Semantic,
    };
    let rag = Rag::from_env(env)?;
    let hits = search::for_customer(db, &rag, tenant, &question, &subjects).await?;
    let pieces: Vec<Piece> = hits
        .into_iter()
        .map(|hit| Piece {
            source_id: hit.found.source_id.to_string(),
            record: hit.found.record,
            part: hit.found.part,
            text: hit.found.text,
            score: hit.score,
            kind: hit.kind,
        })
        .collect();
    // The asker's own records are about them and few: they are given whatever their score (a
    // question about one field of a long record scores low against the record's other parts).
    // General knowledge must reach the bot's least score.
    let (passed, under): (Vec<Piece>, Vec<Piece>) = pieces
        .into_iter()
        .partition(|piece| piece.kind == PieceKind::Personal || piece.score >= settings.min_score);
    if passed.is_empty() {
        return Ok(Outcome::handoff(settings, "low_score", logged(&under, &[])));
    }
    let request = answer::request(&Prompt {
        instructions: &settings.instructions,
        question: asked.question,
        history: asked.history,
        pieces: &passed,
    });
    let generator = Generator::from_env(env)?;
    let started = runtime::now().millis();
    let generated = generator
        .generate(&request)
        .await
        .map_err(|why| ApiError::unavailable(format!("the bot's generator is unavailable: {why}"), 5))?;
    let generator_ms = u64::try_from(runtime::now().millis() - started).unwrap_or(0);
    let with_model = |mut outcome: Outcome| {
        outcome.model = Some(generated.model.clone());
        outcome.generator_ms = Some(generator_ms);
        outcome
    };
    let answer = match answer::read(&generated.body, passed.len()) {
        Ok(answer) => answer,
        Err(_) => {
            return Ok(with_model(Outcome::handoff(
                settings,
                "unreadable",
                logged(&passed, &[]),
            )));
        }
    };
    let pieces = logged(&passed, &answer.used);
    if answer.action == Action::Handoff {
        return Ok(with_model(Outcome::handoff(settings, "model", pieces)));
    }
    if check::check(&answer, &passed, asked.question, &settings.instructions).is_err() {
        return Ok(with_model(Outcome::handoff(settings, "refused", pieces)));
    }
    Ok(with_model(Outcome {
        did: Did::Reply,
        reason: None,
        text: Some(answer.text),
        pieces,
        model: None,
        generator_ms: None,
    }))
}

/// Pieces as the log keeps them: by link and record, with their scores and whether the answer
/// used them.
fn logged(pieces: &[Piece], used: &[usize]) -> Vec<TurnPiece> {
    pieces
        .iter()
        .enumerate()
        .map(|(at, piece)| TurnPiece {
            source_id: piece.source_id.clone(),
            record: piece.record.clone(),
            part: piece.part,
            score: (piece.score * 10_000.0).round() / 10_000.0,
            kind: match piece.kind {
                domain::bot::PieceKind::Personal => "personal",
                domain::bot::PieceKind::General => "general",
            }
            .to_owned(),
            used: used.contains(&at),
        })
        .collect()
}

/// The id of the bot's reply `name` (`reply`; a comment's `public` and `private`) to `message`:
/// derived, so a turn taken again sends nothing again.
pub fn reply_id(message: &MessageId, name: &str) -> MessageId {
    let digest = Sha256::digest(format!("crm-edge bot {name} {}", message.as_str()).as_bytes());
    MessageId::generate(std::array::from_fn(|at| digest[at]))
}

/// A customer's message for a page's bot, as the receiver stored it.
pub struct ForBot {
    pub message_id: MessageId,
    pub channel: BotChannel,
    pub comment: Option<Commented>,
}

/// Hands the page's new customer messages to its bots: one read of the page's enabled bots, then
/// a task per message on a channel whose bot is enabled. A failure to queue is logged: the
/// message is stored, and people see it as always.
pub async fn hand_over(env: &Env, db: &Db, tenant: &Tenant, page: &str, messages: &[ForBot]) {
    if messages.is_empty() {
        return;
    }
    let Ok(page_id) = PageId::parse(&serde_json::Value::from(page)) else {
        return;
    };
    let enabled = match bots::enabled_on(db, tenant, &page_id).await {
        Ok(enabled) => enabled,
        Err(error) => {
            console_error!("the bots of page {page} were not read: {}", error.body.message);
            return;
        }
    };
    let tasks: Vec<BotTask> = messages
        .iter()
        .filter(|message| enabled.contains(&message.channel))
        .map(|message| BotTask {
            business_id: tenant.business_id.clone(),
            page_id: page.to_owned(),
            channel: message.channel.as_str().to_owned(),
            message_id: message.message_id.clone(),
            comment: message.comment.clone(),
        })
        .collect();
    if tasks.is_empty() {
        return;
    }
    if let Err(error) = crate::queue::send_all(env, BOT, &tasks, 0).await {
        console_error!("{} messages were not handed to the bot: {error}", tasks.len());
    }
}

/// The consumer's turn for one message. `attempt` counts from 1; the last one that finds the
/// generator unavailable hands off instead of retrying.
pub async fn answer_message(env: &Env, task: &BotTask, attempt: u32) -> Result<Settle, ApiError> {
    let db = env.d1(DB)?;
    let tenant = Tenant::for_background(task.business_id.clone());
    let (db, tenant) = (&db, &tenant);
    if bot_answers::answered(db, tenant, &task.message_id).await? {
        return Ok(Settle::Ack);
    }
    let (Ok(page_id), Some(channel)) = (
        PageId::parse(&serde_json::Value::from(task.page_id.as_str())),
        BotChannel::parse(&task.channel),
    ) else {
        return Ok(Settle::Ack);
    };
    let target = BotTarget { page_id, channel };
    let Some(bot) = bots::find(db, tenant, &target).await? else {
        return Ok(Settle::Ack);
    };
    let Some(message) = db::messages::by_ids(db, tenant, &[&task.message_id]).await?.pop() else {
        return Ok(Settle::Ack);
    };
    if message.direction != Direction::Inbound || message.content.trim().is_empty() {
        return Ok(Settle::Ack);
    }
    let Some(spell) = bot_conversations::spell(db, tenant, &message.conversation_id).await? else {
        return Ok(Settle::Ack);
    };
    let customer = db::customers::find_one(db, tenant, &CustomerKey::Id(message.customer_id.clone())).await?;
    let page_scoped_id =
        customer_identities::latest_address(db, tenant, &message.customer_id, Channel::Facebook).await?;
    let history = history(db, tenant, &message).await?;
    let asked = Asked {
        target: &target,
        settings: &bot.settings,
        customer: customer.as_ref(),
        page_scoped_id: page_scoped_id.as_deref(),
        question: &message.content,
        history: &history,
        conversation: spell.conversation,
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
    let how = (&bot.settings, task.comment.as_ref());
    act(
        env,
        db,
        tenant,
        &target,
        &message,
        customer.as_ref(),
        &spell,
        how,
        outcome,
    )
    .await?;
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

/// Sends what the turn decided, and logs it.
#[allow(clippy::too_many_arguments, reason = "the turn's parts")]
async fn act(
    env: &Env,
    db: &Db,
    tenant: &Tenant,
    target: &BotTarget,
    message: &Message,
    customer: Option<&Customer>,
    spell: &Spell,
    (settings, comment): (&BotSettings, Option<&Commented>),
    outcome: Outcome,
) -> Result<(), ApiError> {
    let (mut reply_message_id, mut private_message_id) = (None, None);
    match (outcome.did, customer) {
        (Did::Reply, Some(customer)) => {
            let conversation = db::conversations::by_ids(db, tenant, &[&message.conversation_id])
                .await?
                .pop()
                .ok_or_else(|| ApiError::not_found(format!("no conversation {}", message.conversation_id)))?;
            let account = match conversation.channel_account_id {
                Some(account) => account,
                None => send_queue::sending_account(db, tenant, conversation.channel).await?,
            };
            let origin = http::configured_origin(env)?.unwrap_or_default();
            let text = outcome.text.clone().unwrap_or_default();
            // A comment is answered as the page chose (under it, privately, or both); a
            // Messenger message, in Messenger.
            let replies: Vec<(Option<CommentReply>, &str)> = match (comment, target.channel) {
                (Some(comment), BotChannel::Facebook) => {
                    let reply = |privately| CommentReply {
                        post_id: comment.post_id.clone(),
                        comment_id: comment.comment_id.clone(),
                        privately,
                    };
                    let how = settings.comment_reply;
                    [(how.public(), false, "public"), (how.private(), true, "private")]
                        .into_iter()
                        .filter(|(wanted, _, _)| *wanted)
                        .map(|(_, privately, name)| (Some(reply(privately)), name))
                        .collect()
                }
                _ => vec![(None, "reply")],
            };
            for (reply, name) in replies {
                let privately = reply.as_ref().is_some_and(|reply| reply.privately);
                let outgoing = OutgoingMessage {
                    channel: conversation.channel,
                    content: text.clone(),
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
                if privately && reply_message_id.is_some() {
                    private_message_id = Some(id);
                } else {
                    reply_message_id = Some(id);
                }
            }
        }
        (Did::Handoff, _) => {
            hand_off(
                env,
                db,
                tenant,
                message,
                outcome.reason.unwrap_or("model"),
                &outcome,
            )
            .await?
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
            spell,
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
            ..outcome.logged(id.as_str(), target, &message.content, total_ms, &created_at)
        },
    )?);
    db.batch(statements).await?;
    Ok(())
}

/// The hand-off: an escalation (the hand-off message, once; each serving CRM connector's ticket)
/// and the conversation set to `pending`, waiting for a person.
async fn hand_off(
    env: &Env,
    db: &Db,
    tenant: &Tenant,
    message: &Message,
    reason: &str,
    outcome: &Outcome,
) -> Result<(), ApiError> {
    let enabled = crm_connectors::enabled(db, tenant).await?;
    let connectors = crm_connectors::serving(&enabled, &message.customer_id);
    let why = format!("the bot handed the conversation to people ({reason})");
    let asked = crm::escalation::Escalation {
        conversation_id: &message.conversation_id,
        customer_id: &message.customer_id,
        reason: &why,
        trigger: db::escalations::Trigger::Bot,
        message_id: Some(&message.id),
        routing: &domain::crm::work::Routing::default(),
    };
    let text = outcome.text.as_deref().unwrap_or_default();
    if let Some(recorded) = crm::escalation::request(env, db, tenant, &connectors, &asked, text).await? {
        crm::sync::hand_over_jobs(env, tenant, &recorded.work).await;
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
    Ok(())
}
