//! The bot that answers a page's customers from its CRM links (README.md, "The bot"): a turn per
//! customer message on a channel whose bot is enabled, taken in the consumer of `crm-edge-bot`,
//! never in the request that received the message. The turn is a row (`db::bot_turns`) written
//! with the message; the queue message is its nudge, and the sweep nudges again a turn not taken.
//!
//! A turn: the rules (`domain::bot::settings::decide`: hours, the conversation with people, a
//! hand-off phrase, the most answers); the search as that customer (their own records and the
//! page's general knowledge only, `knowledge::search::for_customer`); general knowledge under the
//! bot's least score is left out, and with nothing left the turn is a hand-off; the generation
//! (`generate`); the model's structured answer read back; the check every answer passes
//! (`domain::bot::check`), which assumes the model did whatever the asker or a record told it.
//!
//! Who reads a reply decides what it is made from. A Messenger message and a comment's private
//! reply are the asker's alone: their own record and general knowledge. A comment's public reply
//! is everyone's: it is made from general knowledge only (the model is never given the
//! commenter's record for it, and the check refuses any of it), and a question that only their
//! record answers is answered privately, with the business's acknowledgement under the comment.
//!
//! A reply is sent through the send queue, as the message's own reply (its id derived from the
//! message, so a turn taken twice sends once); a hand-off is an escalation (the hand-off message
//! once, as a comment's private reply for a comment; the CRM connectors' tickets, at most one per
//! comment author a day over every post) and the conversation set to `pending`, after which the
//! bot is silent in it until it is resolved and the customer writes again. Every turn is logged
//! (`db::bot_answers`).
//!
//! The try in the console takes the same turn ([`think`]) and sends nothing.

pub mod generate;

use crate::db::bot_conversations::{self, Spell};
use crate::db::bot_turns::{self, Commented};
use crate::db::escalations::AtMost;
use crate::db::{self, Db, bot_answers, bots, crm_connectors, customer_identities, knowledge_links};
use crate::knowledge::backend::Rag;
use crate::knowledge::search;
use crate::platform::queue::{Settle, Work};
use crate::{
    Env, console_error, crm, messaging::conversation_change, messaging::send_queue, platform::http, runtime,
};
use domain::api::bots::{TurnPiece, TurnRefusal};
use domain::bot::answer::{self, Prompt, Turn};
use domain::bot::check::{self, Audience, Fact, Given};
use domain::bot::settings::{
    BotSettings, CommentReply, Conversation, HANDOFF_WINDOW_HOURS, HANDOFFS_PER_AUTHOR, HandOff, LocalTime,
    Silence, decide,
};
use domain::bot::subject::subjects_of_customer;
use domain::bot::target::{BotChannel, BotTarget};
use domain::bot::{Action, Answer, Piece, PieceKind};
use domain::channel::{Channel, Direction};
use domain::customer::Customer;
use domain::error::ApiError;
use domain::ids::{BusinessId, MessageId};
use domain::links::link::{LinkChannel, PageId};
use domain::links::search::{Mode, Question};
use domain::lookup::CustomerKey;
use domain::message::{ConversationStatus, Message};
use domain::outgoing::{CommentReply as ReplyTo, OutgoingMessage};
use domain::tenant::Tenant;
use generate::Generator;
use sha2::{Digest, Sha256};

/// A customer message for the bot: the queue's body, and the turn's row.
pub use crate::db::bot_turns::Turn as BotTask;

/// The queue that hands customer messages to the bot.
pub const BOT: &str = "BOT";
/// The pieces a turn searches for.
const TOP_K: usize = 5;
/// A turn whose generator is unavailable is retried this many times before it hands off.
pub const MAX_ATTEMPTS: u32 = 4;

impl Work for BotTask {
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
    /// What the asker is sent privately (a Messenger message, or a comment's private reply): the
    /// reply, or the hand-off message.
    pub text: Option<String>,
    /// What is said under a comment, for everyone.
    pub public_text: Option<String>,
    pub pieces: Vec<TurnPiece>,
    /// What the check refused, in any answer the turn asked for.
    pub refusals: Vec<TurnRefusal>,
    pub model: Option<String>,
    pub generator_ms: Option<u64>,
}

impl Outcome {
    fn silent(reason: &'static str) -> Self {
        Self {
            did: Did::Silent,
            reason: Some(reason),
            text: None,
            public_text: None,
            pieces: Vec::new(),
            refusals: Vec::new(),
            model: None,
            generator_ms: None,
        }
    }

    fn handoff(settings: &BotSettings, reason: &'static str, pieces: Vec<TurnPiece>) -> Self {
        Self {
            did: Did::Handoff,
            reason: Some(reason),
            text: Some(settings.handoff_message.clone()),
            public_text: None,
            pieces,
            refusals: Vec::new(),
            model: None,
            generator_ms: None,
        }
    }

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
            public_text: self.public_text.as_deref(),
            pieces: &self.pieces,
            refusals: &self.refusals,
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
    /// For a comment: how it is answered, the page's setting resolved ([`comment_reply`]); None
    /// for a Messenger message.
    pub comment: Option<CommentReply>,
}

/// How the page answers a comment: its bot's `comment_reply`, `auto` resolved by whether the
/// page's comments have a link of customers' records.
pub async fn comment_reply(
    db: &Db,
    tenant: &Tenant,
    page: &PageId,
    settings: &BotSettings,
) -> Result<CommentReply, ApiError> {
    if settings.comment_reply != CommentReply::Auto {
        return Ok(settings.comment_reply);
    }
    let active = knowledge_links::active_by_holds(db, tenant, page, LinkChannel::Facebook).await?;
    Ok(settings.comment_reply.resolved(!active.customers.is_empty()))
}

/// Takes the turn: the rules, the search, the generations and the checks. Nothing is sent. An
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
    // The asker's own records are about them and few: they are given whatever their score (a
    // question about one field of a long record scores low against the record's other parts).
    // General knowledge must reach the bot's least score. Theirs come first: a private answer's
    // facts are numbered so, and a public one is given the general ones alone.
    let (mut given, mut general) = (Vec::new(), Vec::new());
    let mut under = Vec::new();
    for hit in hits {
        let piece = Piece {
            source_id: hit.found.source_id.to_string(),
            record: hit.found.record,
            part: hit.found.part,
            text: hit.found.text,
            score: hit.score,
            kind: hit.kind,
        };
        match piece.kind {
            PieceKind::Personal => given.push(piece),
            PieceKind::General if piece.score >= settings.min_score => general.push(piece),
            PieceKind::General => under.push(piece),
        }
    }
    let personal = given.len();
    given.append(&mut general);
    if given.is_empty() {
        return Ok(Outcome::handoff(settings, "low_score", logged(&under, &[])));
    }
    let how = asked.comment.map(|how| how.resolved(personal > 0));
    let mut turn = Generations {
        generator: Generator::from_env(env)?,
        asked,
        how,
        given: &given,
        personal,
        model: None,
        generator_ms: 0,
        refused: Vec::new(),
    };
    let (private, public) = match how {
        None | Some(CommentReply::Private | CommentReply::Auto) => (turn.private().await?, None),
        Some(CommentReply::Public) => match turn.public().await? {
            Ok(public) => (Err("public"), Some(Ok(public))),
            Err(why) if personal > 0 => {
                let private = turn.private().await?;
                let acknowledged = private.is_ok();
                (private, Some(Err(why)).filter(|_| !acknowledged))
            }
            Err(why) => (Err(why), None),
        },
        Some(CommentReply::Both) => {
            let private = turn.private().await?;
            let public = if private.is_ok() && personal < given.len() {
                Some(turn.public().await?)
            } else {
                None
            };
            (private, public)
        }
    };
    Ok(turn.outcome(private, public))
}

/// The generations of one turn over the pieces it was given (the asker's own first, then
/// general knowledge), and what they cost and refused.
struct Generations<'a> {
    generator: Generator,
    asked: &'a Asked<'a>,
    /// How a comment is answered (resolved); None for a Messenger message.
    how: Option<CommentReply>,
    given: &'a [Piece],
    /// How many of `given` are the asker's own.
    personal: usize,
    model: Option<String>,
    generator_ms: u64,
    refused: Vec<Fact>,
}

/// An answer that may be sent (its `used` numbered in all the pieces given), or why not.
type Generated = Result<Answer, &'static str>;

impl Generations<'_> {
    /// The asker's own answer: every piece, for them alone.
    async fn private(&mut self) -> Result<Generated, ApiError> {
        self.generate(0, Audience::Private).await
    }

    /// The answer for everyone: general knowledge only, and nothing of the asker's record.
    async fn public(&mut self) -> Result<Generated, ApiError> {
        self.generate(self.personal, Audience::Public).await
    }

    /// Asks the model for an answer from the pieces from `first` on, for `audience`, and checks it.
    async fn generate(&mut self, first: usize, audience: Audience) -> Result<Generated, ApiError> {
        let pieces = &self.given[first..];
        if pieces.is_empty() {
            return Ok(Err("low_score"));
        }
        let settings = self.asked.settings;
        let request = answer::request(&Prompt {
            instructions: &settings.instructions,
            question: self.asked.question,
            history: self.asked.history,
            pieces,
            audience,
        });
        let started = runtime::now().millis();
        let generated =
            self.generator.generate(&request).await.map_err(|why| {
                ApiError::unavailable(format!("the bot's generator is unavailable: {why}"), 5)
            })?;
        self.generator_ms += u64::try_from(runtime::now().millis() - started).unwrap_or(0);
        self.model = Some(generated.model);
        let Ok(answer) = answer::read(&generated.body, pieces.len()) else {
            return Ok(Err("unreadable"));
        };
        if answer.action == Action::Handoff {
            return Ok(Err("model"));
        }
        let given = Given {
            pieces,
            question: self.asked.question,
            instructions: &settings.instructions,
            audience,
            withheld: &self.given[..first],
        };
        if let Err(check::Unsupported(facts)) = check::check(&answer, &given) {
            self.refused.extend(facts);
            return Ok(Err("refused"));
        }
        Ok(Ok(Answer {
            used: answer.used.iter().map(|at| at + first).collect(),
            ..answer
        }))
    }

    /// The turn's outcome from its private answer and, for a comment answered in public, its
    /// public one: `Err` there means the business's acknowledgement is said instead.
    fn outcome(self, private: Generated, public: Option<Generated>) -> Outcome {
        let settings = self.asked.settings;
        let acknowledgement =
            Some(settings.public_acknowledgement.clone()).filter(|text| !text.trim().is_empty());
        let (text, public_text, used, reason) = match (private, public) {
            (_, Some(Ok(public))) if self.how != Some(CommentReply::Both) => {
                (None, Some(public.text), public.used, None)
            }
            (Ok(private), Some(Ok(public))) => {
                let used = private.used.iter().chain(&public.used).copied().collect();
                (Some(private.text), Some(public.text), used, None)
            }
            (Ok(private), _) => {
                // A comment answered in public whose answer went privately is acknowledged there.
                let said = match self.how {
                    Some(CommentReply::Public | CommentReply::Both) => acknowledgement,
                    _ => None,
                };
                (Some(private.text), said, private.used, None)
            }
            (Err(why), _) => (None, None, Vec::new(), Some(why)),
        };
        let refusals = self
            .refused
            .into_iter()
            .map(|fact| TurnRefusal {
                kind: fact.kind.as_str().to_owned(),
                value: fact.value,
            })
            .collect();
        let pieces = logged(self.given, &used);
        let outcome = match reason {
            Some(why) => Outcome::handoff(settings, why, pieces),
            None => Outcome {
                did: Did::Reply,
                reason: None,
                text,
                public_text,
                pieces,
                refusals: Vec::new(),
                model: None,
                generator_ms: None,
            },
        };
        Outcome {
            refusals,
            model: self.model,
            generator_ms: Some(self.generator_ms),
            ..outcome
        }
    }
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
                PieceKind::Personal => "personal",
                PieceKind::General => "general",
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
