//! A page's bot on one channel, as its business sets it, and the rule each customer message meets
//! before anything is generated: answer it, hand it to people, or leave it alone.
//!
//! The rule is about the conversation, not the message alone: once a conversation is with
//! people (the bot handed it off, or a person wrote in it) the bot stays silent in it until it is
//! resolved, so a customer is never answered by both, and a customer who writes after a resolve
//! starts afresh (the caller counts a conversation's state from its last resolve), so a reopened
//! conversation cannot loop between the bot and its hand-off.

use crate::error::ApiError;
use serde::Deserialize;
use serde_json::{Value, json};

pub const MAX_INSTRUCTIONS_CHARS: usize = 4_000;
pub const MAX_HANDOFF_MESSAGE_CHARS: usize = 1_000;
pub const MAX_HANDOFF_PHRASES: usize = 20;
pub const MAX_PHRASE_CHARS: usize = 100;
pub const MAX_ANSWERS: u32 = 50;
pub const MAX_ACKNOWLEDGEMENT_CHARS: usize = 300;

/// What a customer writes to ask for a person, unless the business says otherwise.
pub const DEFAULT_HANDOFF_PHRASES: [&str; 5] = [
    "human",
    "agent",
    "real person",
    "talk to someone",
    "speak to someone",
];
pub const DEFAULT_HANDOFF_MESSAGE: &str =
    "Thanks, I'm passing you to someone from the team, who will reply here.";
/// Answers in one conversation before the bot hands it off.
pub const DEFAULT_MAX_ANSWERS: u32 = 5;
/// The least search score an answer is made from; below it the bot hands off rather than guess.
pub const DEFAULT_MIN_SCORE: f64 = 0.35;
/// Said under a comment whose answer went to its author privately, unless the business words it.
pub const DEFAULT_PUBLIC_ACKNOWLEDGEMENT: &str = "Thanks! We've sent you the details in a private message.";
/// A comment author's hand-offs by the bot that open a person's work (an escalation, the CRMs'
/// tickets) in [`HANDOFF_WINDOW_HOURS`], over every post of the page: one per author, so that
/// "human" under each post opens one ticket, not one per post.
pub const HANDOFFS_PER_AUTHOR: i64 = 1;
pub const HANDOFF_WINDOW_HOURS: i64 = 24;

/// A bot's settings as the business writes them; what it leaves out takes its default.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BotSettingsIn {
    pub enabled: Option<bool>,
    /// Tone, and what the bot may talk about.
    pub instructions: Option<String>,
    /// When the bot answers; absent or null: at any hour.
    pub hours: Option<HoursIn>,
    /// What a customer writes to ask for a person (matched as whole words, in any case).
    pub handoff_phrases: Option<Vec<String>>,
    /// Sent once when the bot hands a conversation to people.
    pub handoff_message: Option<String>,
    /// The most answers in one conversation; the next message is handed off.
    pub max_answers: Option<u32>,
    /// The least search score, 0 to 1, an answer may be made from.
    pub min_score: Option<f64>,
    /// How a comment on a post is answered: `auto` (the default: `private` where the page has a
    /// link of customers' records on the channel, else `public`), `public` (under it, from general
    /// knowledge; a question only the commenter's own record answers goes to them privately),
    /// `private` (into Messenger) or `both`. Only the `facebook` channel's bot answers comments.
    pub comment_reply: Option<String>,
    /// Said under a comment whose answer went to its author privately; empty: nothing is said.
    pub public_acknowledgement: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HoursIn {
    /// An IANA time zone (`Europe/Dublin`), which the runtime's clock reads the hours in.
    pub time_zone: String,
    /// The spans the bot answers in, by day: `{"days": ["mon", "tue"], "from": "09:00", "to": "17:30"}`.
    pub open: Vec<SpanIn>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SpanIn {
    pub days: Vec<String>,
    pub from: String,
    pub to: String,
}

/// A bot's settings, checked.
#[derive(Debug, Clone, PartialEq)]
pub struct BotSettings {
    pub enabled: bool,
    pub instructions: String,
    pub hours: Option<Hours>,
    /// Lowercase, each a list of words.
    pub handoff_phrases: Vec<String>,
    pub handoff_message: String,
    pub max_answers: u32,
    pub min_score: f64,
    pub comment_reply: CommentReply,
    /// Empty: nothing is said under the comment.
    pub public_acknowledgement: String,
}

/// Where the answer to a comment goes. Whatever is chosen, a public reply is made from general
/// knowledge alone (the model is never given the commenter's record for it), and the private
/// reply is the only place their own record is answered from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CommentReply {
    /// `Private` where the page has a link of customers' records on the channel, else `Public`.
    #[default]
    Auto,
    /// Under the comment, for everyone to read, from general knowledge; a question that needs the
    /// commenter's own record is answered privately, with the acknowledgement under the comment.
    Public,
    /// Into the commenter's Messenger (one private reply per comment, as the Graph API allows).
    Private,
    /// Privately, and under the comment from general knowledge (or the acknowledgement).
    Both,
}

impl CommentReply {
    pub const ALL: [Self; 4] = [Self::Auto, Self::Public, Self::Private, Self::Both];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Auto => "auto",
            Self::Public => "public",
            Self::Private => "private",
            Self::Both => "both",
        }
    }

    /// What `Auto` means on a page that has (`personal_data`) or has not a link of customers'
    /// records on the channel; any other choice is itself.
    pub fn resolved(self, personal_data: bool) -> Self {
        match self {
            Self::Auto if personal_data => Self::Private,
            Self::Auto => Self::Public,
            chosen => chosen,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hours {
    pub time_zone: String,
    pub open: Vec<Span>,
}

/// One open span of one day, in minutes since its midnight, `from` included and `to` not.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Span {
    /// 0 for Monday to 6 for Sunday.
    pub day: u8,
    pub from: u16,
    pub to: u16,
}

/// A moment as the bot's time zone reads it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LocalTime {
    /// 0 for Monday to 6 for Sunday.
    pub day: u8,
    /// Minutes since midnight.
    pub minute: u16,
}

const DAYS: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];

impl BotSettingsIn {
    /// The settings, with what was left out at its default; 422 with the field for anything out
    /// of its bounds.
    pub fn validate(self) -> Result<BotSettings, ApiError> {
        let instructions = bounded(
            "instructions",
            self.instructions.unwrap_or_default(),
            MAX_INSTRUCTIONS_CHARS,
        )?;
        let handoff_message = bounded(
            "handoff_message",
            self.handoff_message
                .unwrap_or_else(|| DEFAULT_HANDOFF_MESSAGE.to_owned()),
            MAX_HANDOFF_MESSAGE_CHARS,
        )?;
        if handoff_message.is_empty() {
            return Err(ApiError::invalid(
                "handoff_message",
                "the hand-off message may not be empty: the customer is told a person will answer",
            ));
        }
        let phrases = self
            .handoff_phrases
            .unwrap_or_else(|| DEFAULT_HANDOFF_PHRASES.map(str::to_owned).to_vec());
        if phrases.len() > MAX_HANDOFF_PHRASES {
            return Err(ApiError::invalid(
                "handoff_phrases",
                format!("at most {MAX_HANDOFF_PHRASES} hand-off phrases"),
            ));
        }
        let mut handoff_phrases = Vec::with_capacity(phrases.len());
        for (at, phrase) in phrases.into_iter().enumerate() {
            let field = format!("handoff_phrases[{at}]");
            let phrase = words(&bounded(&field, phrase, MAX_PHRASE_CHARS)?).join(" ");
            if phrase.is_empty() {
                return Err(ApiError::invalid(field, "a hand-off phrase needs a word"));
            }
            if !handoff_phrases.contains(&phrase) {
                handoff_phrases.push(phrase);
            }
        }
        let max_answers = self.max_answers.unwrap_or(DEFAULT_MAX_ANSWERS);
        if !(1..=MAX_ANSWERS).contains(&max_answers) {
            return Err(ApiError::invalid(
                "max_answers",
                format!("max_answers must be 1 to {MAX_ANSWERS}"),
            ));
        }
        let min_score = self.min_score.unwrap_or(DEFAULT_MIN_SCORE);
        if !(0.0..=1.0).contains(&min_score) {
            return Err(ApiError::invalid("min_score", "min_score must be 0 to 1"));
        }
        let comment_reply = match self.comment_reply.as_deref().map(str::trim) {
            None => CommentReply::default(),
            Some(name) => CommentReply::ALL
                .into_iter()
                .find(|reply| reply.as_str() == name)
                .ok_or_else(|| {
                    ApiError::invalid(
                        "comment_reply",
                        "comment_reply must be auto, public, private or both",
                    )
                })?,
        };
        let public_acknowledgement = bounded(
            "public_acknowledgement",
            self.public_acknowledgement
                .unwrap_or_else(|| DEFAULT_PUBLIC_ACKNOWLEDGEMENT.to_owned()),
            MAX_ACKNOWLEDGEMENT_CHARS,
        )?;
        Ok(BotSettings {
            comment_reply,
            public_acknowledgement,
            enabled: self.enabled.unwrap_or(false),
            instructions,
            hours: self.hours.map(HoursIn::validate).transpose()?,
            handoff_phrases,
            handoff_message,
            max_answers,
            min_score,
        })
    }
}

impl BotSettings {
    /// Settings read from JSON the API wrote (`written`) or a caller sent: 422 naming the field.
    pub fn parse(value: &Value) -> Result<Self, ApiError> {
        let input: BotSettingsIn = serde_json::from_value(value.clone()).map_err(|error| {
            let message = error.to_string();
            let field = message
                .split('`')
                .nth(1)
                .filter(|_| message.starts_with("unknown field"))
                .unwrap_or("settings")
                .to_owned();
            ApiError::invalid(field, message)
        })?;
        input.validate()
    }

    /// The settings as the API answers them and as they are kept: the shape [`BotSettingsIn`]
    /// reads, every field written, so that reading it back gives the same settings.
    pub fn written(&self) -> Value {
        let hours = self.hours.as_ref().map(|hours| {
            let open: Vec<Value> = hours
                .open
                .iter()
                .map(|span| json!({"days": [DAYS[usize::from(span.day)]], "from": clock(span.from), "to": clock(span.to)}))
                .collect();
            json!({"time_zone": hours.time_zone, "open": open})
        });
        json!({
            "enabled": self.enabled,
            "instructions": self.instructions,
            "hours": hours,
            "handoff_phrases": self.handoff_phrases,
            "handoff_message": self.handoff_message,
            "max_answers": self.max_answers,
            "min_score": self.min_score,
            "comment_reply": self.comment_reply.as_str(),
            "public_acknowledgement": self.public_acknowledgement,
        })
    }
}

/// Minutes since midnight as `HH:MM`.
fn clock(minute: u16) -> String {
    format!("{:02}:{:02}", minute / 60, minute % 60)
}

impl HoursIn {
    fn validate(self) -> Result<Hours, ApiError> {
        let zone = self.time_zone.trim();
        let plausible = zone
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '/' | '_' | '-' | '+'));
        if zone.is_empty() || zone.len() > 64 || !plausible {
            return Err(ApiError::invalid(
                "hours.time_zone",
                "time_zone must be an IANA time zone such as Europe/Dublin",
            ));
        }
        let mut open = Vec::new();
        for (at, span) in self.open.into_iter().enumerate() {
            let field = format!("hours.open[{at}]");
            let (from, to) = (minute_of(&span.from), minute_of(&span.to));
            let (Some(from), Some(to)) = (from, to) else {
                return Err(ApiError::invalid(
                    field,
                    "from and to are times of day, HH:MM (to may be 24:00)",
                ));
            };
            if from >= to {
                return Err(ApiError::invalid(field, "from must come before to"));
            }
            if span.days.is_empty() {
                return Err(ApiError::invalid(
                    format!("{field}.days"),
                    "name at least one day",
                ));
            }
            for name in &span.days {
                let day = DAYS.iter().position(|day| name.trim().eq_ignore_ascii_case(day));
                let Some(day) = day.and_then(|day| u8::try_from(day).ok()) else {
                    return Err(ApiError::invalid(
                        format!("{field}.days"),
                        format!("days are {}", DAYS.join(", ")),
                    ));
                };
                open.push(Span { day, from, to });
            }
        }
        if open.is_empty() {
            return Err(ApiError::invalid(
                "hours.open",
                "name when the bot answers, or leave hours out for any hour",
            ));
        }
        Ok(Hours {
            time_zone: zone.to_owned(),
            open,
        })
    }
}

impl Hours {
    pub fn is_open(&self, at: LocalTime) -> bool {
        self.open
            .iter()
            .any(|span| span.day == at.day && (span.from..span.to).contains(&at.minute))
    }
}

/// `HH:MM` as minutes since midnight, up to `24:00`.
fn minute_of(text: &str) -> Option<u16> {
    let (hours, minutes) = text.trim().split_once(':')?;
    if hours.len() != 2 || minutes.len() != 2 {
        return None;
    }
    let (hours, minutes): (u16, u16) = (hours.parse().ok()?, minutes.parse().ok()?);
    let minute = hours * 60 + minutes;
    (minutes < 60 && minute <= 24 * 60).then_some(minute)
}

fn bounded(field: &str, text: String, max_chars: usize) -> Result<String, ApiError> {
    let text = text.trim();
    if text.chars().count() > max_chars {
        return Err(ApiError::invalid(
            field,
            format!("{field} is longer than {max_chars} characters"),
        ));
    }
    Ok(text.to_owned())
}

/// The words of `text`, lowercase, as phrases are matched: the keyword search's tokens.
fn words(text: &str) -> Vec<String> {
    crate::links::keyword::tokens(text).collect()
}

/// A conversation as the bot sees it, counted from its last resolve (or its start).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Conversation {
    /// How many times the bot answered in it.
    pub answers: u32,
    /// The bot handed it off, or a person wrote in it.
    pub with_people: bool,
}

/// What happens to one customer message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Turn {
    /// The bot makes an answer (which may still become a hand-off).
    Answer,
    HandOff(HandOff),
    /// The bot does nothing; people see the message as they always do.
    Silent(Silence),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HandOff {
    /// The customer wrote one of the hand-off phrases.
    Asked,
    /// The bot has answered as often as it may in this conversation.
    MostAnswers,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Silence {
    Disabled,
    OutsideHours,
    /// Handed off, or a person wrote, since the last resolve.
    WithPeople,
}

/// The rule for a customer's message `text` in `conversation`, at `now` as the bot's hours read
/// it (None when the bot has no hours).
pub fn decide(
    settings: &BotSettings,
    conversation: Conversation,
    now: Option<LocalTime>,
    text: &str,
) -> Turn {
    if !settings.enabled {
        return Turn::Silent(Silence::Disabled);
    }
    if conversation.with_people {
        return Turn::Silent(Silence::WithPeople);
    }
    if let (Some(hours), Some(now)) = (&settings.hours, now)
        && !hours.is_open(now)
    {
        return Turn::Silent(Silence::OutsideHours);
    }
    let said = format!(" {} ", words(text).join(" "));
    if settings
        .handoff_phrases
        .iter()
        .any(|phrase| said.contains(&format!(" {phrase} ")))
    {
        return Turn::HandOff(HandOff::Asked);
    }
    if conversation.answers >= settings.max_answers {
        return Turn::HandOff(HandOff::MostAnswers);
    }
    Turn::Answer
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorCode;
    use serde_json::json;

    fn settings(value: serde_json::Value) -> Result<BotSettings, ApiError> {
        serde_json::from_value::<BotSettingsIn>(value)
            .map_err(|error| ApiError::invalid("", error.to_string()))?
            .validate()
    }

    fn enabled() -> BotSettings {
        settings(json!({"enabled": true})).unwrap_or_else(|error| panic!("{error:?}"))
    }

    #[test]
    fn what_is_left_out_takes_its_default_and_phrases_are_kept_as_lowercase_words() {
        let defaults = enabled();
        assert_eq!(defaults.max_answers, DEFAULT_MAX_ANSWERS);
        assert_eq!(defaults.min_score, DEFAULT_MIN_SCORE);
        assert_eq!(defaults.handoff_message, DEFAULT_HANDOFF_MESSAGE);
        assert_eq!(defaults.handoff_phrases.len(), DEFAULT_HANDOFF_PHRASES.len());
        assert_eq!(defaults.hours, None);
        let set = settings(json!({"handoff_phrases": ["  Talk to a HUMAN!", "talk to a human"]}));
        assert_eq!(
            set.map(|s| s.handoff_phrases),
            Ok(vec!["talk to a human".to_owned()])
        );
    }

    #[test]
    fn settings_out_of_bounds_are_refused_with_their_field() {
        let cases = [
            (
                json!({"instructions": "x".repeat(MAX_INSTRUCTIONS_CHARS + 1)}),
                "instructions",
            ),
            (json!({"handoff_message": "  "}), "handoff_message"),
            (
                json!({"handoff_phrases": vec!["a"; MAX_HANDOFF_PHRASES + 1]}),
                "handoff_phrases",
            ),
            (json!({"handoff_phrases": ["ok", "!!"]}), "handoff_phrases[1]"),
            (json!({"max_answers": 0}), "max_answers"),
            (json!({"max_answers": MAX_ANSWERS + 1}), "max_answers"),
            (json!({"min_score": 1.5}), "min_score"),
            (
                json!({"hours": {"time_zone": "Europe/Dublin; DROP", "open": []}}),
                "hours.time_zone",
            ),
            (json!({"hours": {"time_zone": "UTC", "open": []}}), "hours.open"),
            (
                json!({"hours": {"time_zone": "UTC", "open": [{"days": ["mon"], "from": "9:00", "to": "17:00"}]}}),
                "hours.open[0]",
            ),
            (
                json!({"hours": {"time_zone": "UTC", "open": [{"days": ["mon"], "from": "17:00", "to": "09:00"}]}}),
                "hours.open[0]",
            ),
            (
                json!({"hours": {"time_zone": "UTC", "open": [{"days": ["mon"], "from": "09:00", "to": "24:01"}]}}),
                "hours.open[0]",
            ),
            (
                json!({"hours": {"time_zone": "UTC", "open": [{"days": ["monday"], "from": "09:00", "to": "17:00"}]}}),
                "hours.open[0].days",
            ),
            (
                json!({"hours": {"time_zone": "UTC", "open": [{"days": [], "from": "09:00", "to": "17:00"}]}}),
                "hours.open[0].days",
            ),
        ];
        for (value, field) in cases {
            let error = settings(value.clone()).err();
            assert_eq!(
                error.as_ref().map(ApiError::code),
                Some(ErrorCode::ValidationFailed),
                "{value}"
            );
            assert_eq!(
                error.and_then(|e| e.body.field).as_deref(),
                Some(field),
                "{value}"
            );
        }
    }

    #[test]
    fn the_bot_answers_within_its_hours_until_people_have_the_conversation() {
        let mut bot = enabled();
        bot.hours = settings(json!({"hours": {"time_zone": "Europe/Dublin", "open": [
            {"days": ["mon", "tue", "wed", "thu", "fri"], "from": "09:00", "to": "17:30"},
            {"days": ["sat"], "from": "10:00", "to": "24:00"}
        ]}}))
        .ok()
        .and_then(|s| s.hours);
        let at = |day, hour: u16, minute: u16| {
            Some(LocalTime {
                day,
                minute: hour * 60 + minute,
            })
        };
        let fresh = Conversation::default();
        let cases = [
            (
                fresh,
                at(0, 9, 0),
                "Where is my order?",
                Turn::Answer,
                "Monday at opening",
            ),
            (
                fresh,
                at(4, 17, 29),
                "Where is my order?",
                Turn::Answer,
                "Friday a minute before closing",
            ),
            (
                fresh,
                at(4, 17, 30),
                "hi",
                Turn::Silent(Silence::OutsideHours),
                "Friday at closing",
            ),
            (
                fresh,
                at(5, 23, 59),
                "hi",
                Turn::Answer,
                "Saturday until midnight",
            ),
            (
                fresh,
                at(6, 12, 0),
                "hi",
                Turn::Silent(Silence::OutsideHours),
                "Sunday",
            ),
            (
                fresh,
                at(1, 10, 0),
                "Can I talk to SOMEONE please?",
                Turn::HandOff(HandOff::Asked),
                "a phrase",
            ),
            (
                fresh,
                at(1, 10, 0),
                "my reagent order",
                Turn::Answer,
                "a phrase's word inside another word",
            ),
            (
                Conversation {
                    answers: 5,
                    with_people: false,
                },
                at(1, 10, 0),
                "and?",
                Turn::HandOff(HandOff::MostAnswers),
                "the most answers",
            ),
            (
                Conversation {
                    answers: 1,
                    with_people: true,
                },
                at(1, 10, 0),
                "human",
                Turn::Silent(Silence::WithPeople),
                "with people",
            ),
        ];
        for (conversation, now, text, expected, description) in cases {
            assert_eq!(decide(&bot, conversation, now, text), expected, "{description}");
        }
        bot.enabled = false;
        assert_eq!(
            decide(&bot, fresh, at(0, 9, 0), "hi"),
            Turn::Silent(Silence::Disabled)
        );
    }
    #[test]
    fn settings_written_read_back_as_the_same_settings() {
        let set = settings(json!({
            "enabled": true, "instructions": "Be brief.", "comment_reply": "both", "max_answers": 3, "min_score": 0.5,
            "hours": {"time_zone": "Europe/Dublin", "open": [{"days": ["mon", "fri"], "from": "09:00", "to": "24:00"}]},
        }))
        .unwrap_or_else(|error| panic!("{error:?}"));
        assert_eq!(set.comment_reply, CommentReply::Both);
        let written = set.written();
        assert_eq!(
            written["hours"]["open"][1],
            json!({"days": ["fri"], "from": "09:00", "to": "24:00"})
        );
        assert_eq!(BotSettings::parse(&written), Ok(set));
        let unknown = BotSettings::parse(&json!({"enabled": true, "tone": "warm"}));
        assert_eq!(
            unknown.map_err(|error| error.body.field),
            Err(Some("tone".to_owned()))
        );
        let reply = BotSettings::parse(&json!({"comment_reply": "loud"}));
        assert_eq!(
            reply.map_err(|error| error.body.field),
            Err(Some("comment_reply".to_owned()))
        );
        let long = BotSettings::parse(&json!({"public_acknowledgement": "x".repeat(301)}));
        assert_eq!(
            long.map_err(|error| error.body.field),
            Err(Some("public_acknowledgement".to_owned()))
        );
    }

    #[test]
    fn comments_are_answered_privately_by_default_wherever_the_page_holds_customers_records() {
        let untouched = settings(json!({})).unwrap_or_else(|error| panic!("{error:?}"));
        assert_eq!(untouched.comment_reply, CommentReply::Auto);
        assert_eq!(untouched.comment_reply.resolved(true), CommentReply::Private);
        assert_eq!(untouched.comment_reply.resolved(false), CommentReply::Public);
        assert_eq!(
            untouched.public_acknowledgement, DEFAULT_PUBLIC_ACKNOWLEDGEMENT,
            "a private answer to a public comment is acknowledged under it, in the business's words"
        );
        for chosen in [CommentReply::Public, CommentReply::Private, CommentReply::Both] {
            assert_eq!(
                chosen.resolved(true),
                chosen,
                "{chosen:?} is the business's choice"
            );
        }
        let silent =
            settings(json!({"public_acknowledgement": ""})).unwrap_or_else(|error| panic!("{error:?}"));
        assert_eq!(silent.public_acknowledgement, "");
    }
}
