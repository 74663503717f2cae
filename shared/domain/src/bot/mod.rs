//! The bot that answers a page's customers from its CRM data: what it is given
//! (the pieces a search found, the customer's own and the page's general knowledge), how it asks
//! a text-generation model for an answer and reads one back, the check every answer passes
//! before it is sent, and the composer that answers locally where no model runs.
//!
//! What is answered is decided apart from how it is worded: the model's answer is a structured
//! action (`reply` or `handoff`), never a phrase to look for in its text, and an answer whose
//! text states a fact that none of its pieces holds is not sent.

pub mod answer;
pub mod check;
pub mod compose;
pub mod settings;
pub mod subject;
pub mod target;

use serde::Serialize;

/// One piece of CRM data an answer may draw on, as the search found it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Piece {
    /// The link the piece came from.
    pub source_id: String,
    /// Its record in the link's data (`customers[3]`; empty for plain text), and which part.
    pub record: String,
    pub part: usize,
    /// Flattened lines, `path: value` each (`customers[3].plan: Gold`).
    pub text: String,
    /// How well it matched the question, 0 to 1.
    pub score: f64,
    pub kind: PieceKind,
}

/// Whether a piece is about the customer being answered or about the page's business.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PieceKind {
    /// A record tied to the customer who asked: nobody else's is ever a candidate.
    Personal,
    /// Plans, products, policies: the same for every customer.
    General,
}

impl Piece {
    /// The piece's lines as path and value (`customers[3].plan`, `Gold`); a line of plain text
    /// has an empty path.
    pub fn lines(&self) -> impl Iterator<Item = (&str, &str)> {
        self.text
            .lines()
            .map(|line| line.split_once(": ").unwrap_or(("", line)))
            .map(|(path, value)| (path, value.trim()))
    }

    /// The piece's values, each without its path: what an answer may state from it.
    pub fn values(&self) -> impl Iterator<Item = &str> {
        self.lines()
            .map(|(_, value)| value)
            .filter(|value| !value.is_empty())
    }
}

/// What the bot does with one message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// Answer the customer with the text.
    Reply,
    /// Send the page's hand-off message and leave the conversation to people.
    Handoff,
}

/// An answer as the bot means to send it: the action, the text, and the pieces it used (their
/// positions in the list it was given).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Answer {
    pub action: Action,
    pub text: String,
    pub used: Vec<usize>,
}

impl Answer {
    pub fn handoff() -> Self {
        Self {
            action: Action::Handoff,
            text: String::new(),
            used: Vec::new(),
        }
    }
}
