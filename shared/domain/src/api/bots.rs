//! The bot's dashboard API: a page's bot per channel (its settings), asking it as a customer
//! would, its log and its KPIs; their declarations and the shapes they take and answer with.
//!
//! The bodies are read by `domain::bot` field by field (each problem names its field, unknown
//! fields are refused), so the types below that describe them are the contract's only.

use crate::api::{Caller::*, get, post, put};
use serde::Serialize;
use serde_json::Value;
#[cfg(feature = "openapi")]
use {crate::api::openapi::StringOrInteger, serde_json::json};

/// The largest body the bot's API reads: settings are a few KB.
pub const BOT_BODY_LIMIT: usize = 64 * 1024;

function! {
    /// The bot that answers a page's customers from its CRM links.
    pub const BOT: Function<Bot> = "bot", tag "bot";
    /// A page's bot on one channel
    ///
    /// Its settings (a bot never set is answered with the defaults, disabled) and how many CRM
    /// links are active for it. 404 unless page_id is one of the business's Facebook pages.
    GetBot = get("/api/dashboard/bots", ApiKeyOrBearer).console()
        => |c| c.query::<BotParameters>().ok::<BotOut>(200).errors(&[404]);
    /// Set a page's bot on one channel
    ///
    /// The settings replace the bot's; what they leave out takes its default. Unknown fields are
    /// refused.
    SetBot = put("/api/dashboard/bots", ApiKeyOrBearer).console().limit(BOT_BODY_LIMIT)
        => |c| c
            .json::<BotIn>()
            .example(json!({
                "page_id": "123456789", "channel": "messenger",
                "settings": {
                    "enabled": true, "instructions": "Be warm and brief. Talk only about orders and plans.",
                    "hours": { "time_zone": "Europe/Dublin", "open": [{ "days": ["mon", "tue", "wed", "thu", "fri"], "from": "09:00", "to": "18:00" }] },
                    "max_answers": 5, "min_score": 0.35,
                },
            }))
            .ok::<BotOut>(200)
            .errors(&[404]);
    /// Ask the bot as a customer would
    ///
    /// The bot's whole turn for the question (its rules, the search as that customer, the
    /// generation and the check) with nothing sent; logged as a try. Without customer_id it
    /// answers as a customer with no CRM record (general knowledge only). 503 when the embedder
    /// or the generator is unavailable.
    TryBot = post("/api/dashboard/bots/try", ApiKeyOrBearer).console().limit(BOT_BODY_LIMIT)
        => |c| c
            .json::<TryIn>()
            .example(json!({ "page_id": "123456789", "channel": "messenger", "question": "What plan am I on?" }))
            .ok::<TurnOut>(200)
            .errors(&[404, 503]);
    /// Customers to ask the bot as
    ///
    /// Up to 10 of the business's customers whose name starts with `q` (any case), or whose
    /// email is `q`: the try box's customer picker.
    PickBotCustomers = get("/api/dashboard/bots/customers", ApiKeyOrBearer).console()
        => |c| c.query::<PickParameters>().ok::<PickedOut>(200);
    /// The bot's log
    ///
    /// Every turn, newest first: the question, the action and why, the pieces it drew on, the
    /// model and its time. `before` pages back.
    ListBotAnswers = get("/api/dashboard/bots/answers", ApiKeyOrBearer).console()
        => |c| c.query::<AnswersParameters>().ok::<AnswersOut>(200).errors(&[404]);
    /// The bot's KPIs
    ///
    /// Over the last 7 or 30 days: answers, hand-offs, answers that needed no person afterwards,
    /// and the time from the customer's message to the bot's reply.
    GetBotKpis = get("/api/dashboard/bots/kpis", ApiKeyOrBearer).console()
        => |c| c.query::<KpiParameters>().ok::<KpisOut>(200).errors(&[404]);
}

/// A channel a bot answers on.
#[cfg(feature = "openapi")]
#[derive(schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
#[allow(dead_code, reason = "describes a field for the contract")]
enum BotChannelName {
    /// Comments on the page's posts.
    Facebook,
    /// The page's Messenger chats.
    Messenger,
}

/// The parameters naming a page's bot.
#[cfg(feature = "openapi")]
#[derive(schemars::JsonSchema)]
#[allow(dead_code, reason = "describes the query for the contract")]
struct BotParameters {
    /// A Facebook page id (digits).
    #[schemars(regex(pattern = r"^[0-9]{1,32}$"))]
    page_id: String,
    channel: BotChannelName,
}

#[cfg(feature = "openapi")]
#[derive(schemars::JsonSchema)]
#[allow(dead_code, reason = "describes the query for the contract")]
struct AnswersParameters {
    #[schemars(regex(pattern = r"^[0-9]{1,32}$"))]
    page_id: String,
    channel: BotChannelName,
    /// 1 to 100; 50 by default.
    #[schemars(range(min = 1, max = 100))]
    limit: Option<u32>,
    /// The `next_before` of the page before.
    before: Option<String>,
}

#[cfg(feature = "openapi")]
#[derive(schemars::JsonSchema)]
#[allow(dead_code, reason = "describes the query for the contract")]
struct PickParameters {
    /// The start of a name, or an email.
    #[schemars(length(min = 1, max = 200))]
    q: String,
}

/// Customers a person may pick to ask the bot as.
#[derive(Serialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
pub struct PickedOut {
    pub customers: Vec<PickedCustomer>,
}

#[derive(Serialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
pub struct PickedCustomer {
    pub id: String,
    pub name: Option<String>,
    pub email: Option<String>,
}

#[cfg(feature = "openapi")]
#[derive(schemars::JsonSchema)]
#[allow(dead_code, reason = "describes the query for the contract")]
struct KpiParameters {
    #[schemars(regex(pattern = r"^[0-9]{1,32}$"))]
    page_id: String,
    channel: BotChannelName,
    /// 7 (the default) or 30.
    #[schemars(extend("enum" = [7, 30]))]
    days: Option<u32>,
}

/// A bot's settings.
#[cfg(feature = "openapi")]
#[derive(schemars::JsonSchema)]
#[schemars(deny_unknown_fields)]
#[allow(dead_code, reason = "describes the body for the contract")]
struct BotSettingsIn {
    /// Whether it answers; false by default.
    enabled: Option<bool>,
    /// Tone, and what it may talk about.
    #[schemars(length(max = crate::bot::settings::MAX_INSTRUCTIONS_CHARS))]
    instructions: Option<String>,
    /// When it answers; null: at any hour.
    hours: Option<BotHours>,
    /// What a customer writes to ask for a person (whole words, any case).
    #[schemars(length(max = crate::bot::settings::MAX_HANDOFF_PHRASES))]
    handoff_phrases: Option<Vec<String>>,
    /// Sent once when it hands a conversation to people.
    #[schemars(length(min = 1, max = crate::bot::settings::MAX_HANDOFF_MESSAGE_CHARS))]
    handoff_message: Option<String>,
    /// Answers per conversation before it hands off.
    #[schemars(range(min = 1, max = crate::bot::settings::MAX_ANSWERS))]
    max_answers: Option<u32>,
    /// The least search score an answer is made from; below it, a hand-off.
    #[schemars(range(min = 0.0, max = 1.0))]
    min_score: Option<f64>,
    /// How a comment is answered (the facebook channel's bot): auto (the default) is private
    /// where the page has a link of customers' records, else public. A public reply is made from
    /// general knowledge only.
    #[schemars(extend("enum" = ["auto", "public", "private", "both"]))]
    comment_reply: Option<String>,
    /// Said under a comment whose answer went to its author privately; empty: nothing.
    #[schemars(length(max = crate::bot::settings::MAX_ACKNOWLEDGEMENT_CHARS))]
    public_acknowledgement: Option<String>,
}

/// A bot's settings as they stand, every one given.
#[cfg(feature = "openapi")]
#[derive(schemars::JsonSchema)]
#[allow(dead_code, reason = "describes the answer for the contract")]
struct BotSettingsOut {
    enabled: bool,
    instructions: String,
    hours: Option<BotHours>,
    handoff_phrases: Vec<String>,
    handoff_message: String,
    max_answers: u32,
    min_score: f64,
    #[schemars(extend("enum" = ["auto", "public", "private", "both"]))]
    comment_reply: String,
    public_acknowledgement: String,
}

#[cfg(feature = "openapi")]
#[derive(schemars::JsonSchema)]
#[schemars(deny_unknown_fields)]
#[allow(dead_code, reason = "describes the body for the contract")]
struct BotHours {
    /// An IANA time zone (Europe/Dublin).
    time_zone: String,
    #[schemars(length(min = 1))]
    open: Vec<BotSpan>,
}

#[cfg(feature = "openapi")]
#[derive(schemars::JsonSchema)]
#[schemars(deny_unknown_fields)]
#[allow(dead_code, reason = "describes the body for the contract")]
struct BotSpan {
    #[schemars(length(min = 1), extend("items" = { "type": "string", "enum": ["mon", "tue", "wed", "thu", "fri", "sat", "sun"] }))]
    days: Vec<String>,
    /// HH:MM
    #[schemars(regex(pattern = r"^[0-9]{2}:[0-9]{2}$"))]
    from: String,
    /// HH:MM, up to 24:00
    #[schemars(regex(pattern = r"^[0-9]{2}:[0-9]{2}$"))]
    to: String,
}

/// A bot's settings, for one page and channel.
#[cfg(feature = "openapi")]
#[derive(schemars::JsonSchema)]
#[schemars(deny_unknown_fields)]
#[allow(dead_code, reason = "describes the body for the contract")]
struct BotIn {
    page_id: StringOrInteger,
    channel: BotChannelName,
    settings: BotSettingsIn,
}

/// A question asked as a customer would ask it.
#[cfg(feature = "openapi")]
#[derive(schemars::JsonSchema)]
#[schemars(deny_unknown_fields)]
#[allow(dead_code, reason = "describes the body for the contract")]
struct TryIn {
    page_id: StringOrInteger,
    channel: BotChannelName,
    #[schemars(length(min = 1, max = 2000))]
    question: String,
    /// The customer to ask as (their CRM records become candidates).
    customer_id: Option<String>,
}

/// A page's bot on one channel.
#[derive(Serialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
pub struct BotOut {
    pub page_id: String,
    #[cfg_attr(feature = "openapi", schemars(with = "BotChannelName"))]
    pub channel: &'static str,
    #[cfg_attr(feature = "openapi", schemars(with = "BotSettingsOut"))]
    pub settings: Value,
    /// CRM links active on the channel: what it answers from.
    pub active_links: usize,
    /// When the settings were last set; null for a bot never set.
    pub updated_at: Option<String>,
}

/// One turn of the bot.
#[derive(Serialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
pub struct TurnOut {
    pub id: String,
    #[cfg_attr(feature = "openapi", schemars(extend("enum" = ["reply", "handoff", "silent"])))]
    pub action: &'static str,
    /// Why it handed off or stayed silent; null for a reply.
    pub reason: Option<&'static str>,
    /// What the asker is sent privately (a Messenger message, or a comment's private reply): the
    /// reply, or the hand-off message; null when silent or when a comment is answered in public
    /// only.
    pub text: Option<String>,
    /// For a comment: what is said under it, for everyone (general knowledge only, or the
    /// business's acknowledgement of a private answer); null when nothing is.
    pub public_text: Option<String>,
    pub pieces: Vec<TurnPiece>,
    /// What the check refused in the answer (a hand-off with reason `refused`).
    pub refusals: Vec<TurnRefusal>,
    /// The model that wrote the answer; null when none was asked.
    pub model: Option<String>,
    pub generator_ms: Option<u64>,
    pub total_ms: u64,
}

/// A fact an answer stated that nothing it was given holds (`domain::bot::check`).
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
pub struct TurnRefusal {
    /// number, email, link, or personal (the asker's own record in a public reply).
    #[cfg_attr(feature = "openapi", schemars(extend("enum" = ["number", "email", "link", "personal"])))]
    pub kind: String,
    /// As it was compared (digits, a lowercase address, a host).
    pub value: String,
}

/// A piece of CRM data a turn drew on.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
pub struct TurnPiece {
    /// The CRM link.
    pub source_id: String,
    pub record: String,
    pub part: usize,
    pub score: f64,
    /// personal: the customer's own record; general: the business's knowledge.
    #[cfg_attr(feature = "openapi", schemars(extend("enum" = ["personal", "general"])))]
    pub kind: String,
    /// Whether the answer relied on it.
    pub used: bool,
}

/// The bot's log, newest first.
#[derive(Serialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
pub struct AnswersOut {
    pub answers: Vec<AnswerEntry>,
    /// Pass as `before` for older turns; null on the last page.
    pub next_before: Option<String>,
}

#[derive(Serialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
pub struct AnswerEntry {
    pub id: String,
    pub created_at: String,
    pub customer_id: Option<String>,
    pub conversation_id: Option<String>,
    pub message_id: Option<String>,
    pub question: String,
    #[cfg_attr(feature = "openapi", schemars(extend("enum" = ["reply", "handoff", "silent"])))]
    pub action: String,
    pub reason: Option<String>,
    pub text: Option<String>,
    /// For a comment: what was said under it, for everyone.
    pub public_text: Option<String>,
    pub pieces: Vec<TurnPiece>,
    pub refusals: Vec<TurnRefusal>,
    pub model: Option<String>,
    pub generator_ms: Option<u64>,
    pub total_ms: u64,
    /// The message the bot sent (its reply, or the hand-off message).
    pub reply_message_id: Option<String>,
    /// Asked in the console: nothing was sent.
    pub is_try: bool,
}

/// The bot's KPIs over a window (tries not counted).
#[derive(Serialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
pub struct KpisOut {
    pub days: u32,
    /// Customer messages the bot replied to.
    pub answered: u64,
    pub handed_off: u64,
    /// Messages it stayed silent on (disabled, outside hours, with people).
    pub silent: u64,
    /// Replies after which no person wrote and no hand-off came in their conversation.
    pub answered_without_person: u64,
    /// From the customer's message to the bot's reply being queued, in milliseconds.
    pub time_to_answer_ms: Percentiles,
}

#[derive(Serialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
pub struct Percentiles {
    pub p50: Option<u64>,
    pub p95: Option<u64>,
}
