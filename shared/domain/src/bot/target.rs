//! Which bot a request is about (a page and one of its channels), and the question a try asks:
//! read from a query or a JSON body field by field, each problem naming its field.

use crate::error::ApiError;
use crate::ids::CustomerId;
use crate::links::link::{LinkChannel, PageId};
use serde_json::Value;

/// The channels a bot answers on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BotChannel {
    /// Comments on the page's posts.
    Facebook,
    /// The page's Messenger chats.
    Messenger,
}

impl BotChannel {
    pub const ALL: [Self; 2] = [Self::Facebook, Self::Messenger];

    pub fn as_str(self) -> &'static str {
        self.links().as_str()
    }

    pub fn parse(name: &str) -> Option<Self> {
        let name = name.trim();
        Self::ALL.into_iter().find(|channel| channel.as_str() == name)
    }

    /// The CRM links' channel it answers from.
    pub fn links(self) -> LinkChannel {
        match self {
            Self::Facebook => LinkChannel::Facebook,
            Self::Messenger => LinkChannel::Messenger,
        }
    }
}

/// A page's bot on one channel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BotTarget {
    pub page_id: PageId,
    pub channel: BotChannel,
}

/// The longest question a try asks, in characters (Messenger's own cap on a message's text is 2000).
pub const MAX_QUESTION_CHARS: usize = 2_000;

impl BotTarget {
    /// From `page_id` and `channel`, as `field` finds them (a query's parameters or a body's
    /// members).
    pub fn parse(field: impl Fn(&str) -> Option<Value>) -> Result<Self, ApiError> {
        let page_id = PageId::parse(
            &field("page_id").ok_or_else(|| ApiError::invalid("page_id", "page_id is required"))?,
        )?;
        let channel = field("channel")
            .and_then(|value| value.as_str().and_then(BotChannel::parse))
            .ok_or_else(|| {
                ApiError::invalid("channel", "channel must be facebook (comments) or messenger")
            })?;
        Ok(Self { page_id, channel })
    }
}

/// A try: the bot, the question, and who asks it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TryIn {
    pub target: BotTarget,
    pub question: String,
    pub customer_id: Option<CustomerId>,
}

impl TryIn {
    pub fn parse(body: &Value) -> Result<Self, ApiError> {
        let members = crate::json::members(body, &["page_id", "channel", "question", "customer_id"], "try")?;
        let given = |name: &str| members.get(name).filter(|value| !value.is_null()).cloned();
        let target = BotTarget::parse(given)?;
        let question = given("question")
            .and_then(|value| value.as_str().map(str::trim).map(str::to_owned))
            .filter(|question| !question.is_empty())
            .ok_or_else(|| ApiError::invalid("question", "question must be the customer's words"))?;
        if question.chars().count() > MAX_QUESTION_CHARS {
            return Err(ApiError::invalid(
                "question",
                format!("question is longer than {MAX_QUESTION_CHARS} characters"),
            ));
        }
        let customer_id = given("customer_id")
            .map(|value| {
                value
                    .as_str()
                    .and_then(CustomerId::parse)
                    .ok_or_else(|| ApiError::invalid("customer_id", "customer_id must be a customer's id"))
            })
            .transpose()?;
        Ok(Self {
            target,
            question,
            customer_id,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn field_of(body: Value) -> Option<String> {
        TryIn::parse(&body).err().and_then(|error| error.body.field)
    }

    #[test]
    fn a_try_names_its_bot_and_question_and_each_problem_its_field() {
        let asked = TryIn::parse(
            &json!({"page_id": 1234, "channel": "messenger", "question": " What plan am I on? "}),
        );
        let asked = asked.unwrap_or_else(|error| panic!("{error:?}"));
        assert_eq!(
            (
                asked.target.page_id.as_str(),
                asked.target.channel,
                asked.question.as_str()
            ),
            ("1234", BotChannel::Messenger, "What plan am I on?")
        );
        let cases = [
            (json!([]), "body"),
            (json!({"channel": "messenger", "question": "q"}), "page_id"),
            (
                json!({"page_id": "12", "channel": "whatsapp", "question": "q"}),
                "channel",
            ),
            (
                json!({"page_id": "12", "channel": "messenger", "question": "  "}),
                "question",
            ),
            (
                json!({"page_id": "12", "channel": "messenger", "question": "q".repeat(MAX_QUESTION_CHARS + 1)}),
                "question",
            ),
            (
                json!({"page_id": "12", "channel": "messenger", "question": "q", "customer_id": "bob"}),
                "customer_id",
            ),
            (
                json!({"page_id": "12", "channel": "messenger", "question": "q", "as": "x"}),
                "as",
            ),
        ];
        for (body, field) in cases {
            assert_eq!(field_of(body.clone()).as_deref(), Some(field), "{body}");
        }
    }
}
