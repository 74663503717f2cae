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
//!
//! This file holds what the rest of the crate hands the bot (the queue's body) and what a turn
//! is asked and decides; `thinking` takes the turn (the rules, the search, the generations and
//! their checks) and sends nothing, and `taking` is the consumer's turn for one message: it reads
//! what the turn needs, takes it, sends the reply or hands off, and logs it.

pub mod generate;
mod taking;
mod thinking;

pub use taking::{answer_message, reply_id};
pub use thinking::{comment_reply, think};

use crate::db::bot_answers;
use crate::platform::queue::Work;
use domain::api::bots::{TurnPiece, TurnRefusal};
use domain::bot::answer::Turn;
use domain::bot::settings::{BotSettings, CommentReply, Conversation};
use domain::bot::target::BotTarget;
use domain::bot::{Piece, PieceKind};
use domain::customer::Customer;
use domain::ids::BusinessId;

/// A customer message for the bot: the queue's body, and the turn's row.
pub use crate::db::bot_turns::Turn as BotTask;

/// The queue that hands customer messages to the bot.
pub const BOT: &str = "BOT";

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
