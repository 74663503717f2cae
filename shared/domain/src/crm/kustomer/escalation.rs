//! Handing a conversation to a person: noticing that a customer asks for one, and the note that
//! tells the agent what happened so far.

use super::MAX_NOTE_CHARS;
use crate::channel::Direction;
use crate::message::Message;
use crate::text::cut_chars;
use crate::time::Timestamp;

/// A reason longer than this is cut: it heads the note, the history is what the agent needs.
const MAX_REASON_CHARS: usize = 1_000;

/// The words of `text`, lowercased: runs of letters and digits, so that punctuation, spacing and
/// case never decide whether a phrase matches.
fn words(text: &str) -> Vec<String> {
    text.split(|c: char| !crate::text::is_alphanumeric(c))
        .filter(|word| !word.is_empty())
        .map(crate::text::lowercase)
        .collect()
}

/// The configured phrase an inbound text asks for a human with, if any: case-insensitive, on word
/// boundaries ("agent" matches "an agent please", not "reagent"), whitespace and
/// punctuation-insensitive ("real-person!" matches "real person"). The first phrase of the list
/// that matches is the one returned.
pub fn asks_for_human<'a>(text: &str, phrases: &'a [String]) -> Option<&'a str> {
    let said = words(text);
    phrases
        .iter()
        .find(|phrase| {
            let wanted = words(phrase);
            !wanted.is_empty()
                && said
                    .windows(wanted.len())
                    .any(|window| window == wanted.as_slice())
        })
        .map(String::as_str)
}

/// `[2026-11-23 10:00 UTC]`, or the stored text as it is when it is not a time.
fn when(created_at: &str) -> String {
    match Timestamp::parse_rfc3339(created_at) {
        Some(at) => {
            let text = at.to_rfc3339();
            format!("[{} {} UTC]", &text[..10], &text[11..16])
        }
        None => format!("[{created_at}]"),
    }
}

fn line(message: &Message) -> String {
    let who = match message.direction {
        Direction::Inbound => "customer",
        Direction::Outbound => "agent",
    };
    let mut line = format!(
        "{} {who} ({}): {}",
        when(&message.created_at),
        message.channel,
        message.content.trim()
    );
    let files: Vec<&str> = message
        .attachments
        .iter()
        .flatten()
        .map(|file| file.filename.as_str())
        .collect();
    if !files.is_empty() {
        line.push_str(&format!(" [attachments: {}]", files.join(", ")));
    }
    line
}

fn left_out_line(count: usize, limit: &str) -> String {
    let noun = if count == 1 { "message" } else { "messages" };
    format!("({count} earlier {noun} left out to fit {limit})")
}

/// The internal note posted on an escalated conversation: the reason, then the chat history
/// oldest first (`[2026-11-23 10:00 UTC] customer (whatsapp): text`, or `agent` for ours).
///
/// When it would be longer than Kustomer's 10,240-character limit, the newest messages are kept
/// (they are what the agent answers) and a line says how many earlier ones were left out; a
/// single message too long for the note is cut at a character boundary.
pub fn escalation_note(reason: &str, history: &[Message]) -> String {
    history_note(reason, history, MAX_NOTE_CHARS, KUSTOMER_LIMIT)
}

const KUSTOMER_LIMIT: &str = "Kustomer's 10,240-character note limit";

/// [`escalation_note`] for a CRM whose text holds at most `max_chars` characters, `limit` naming
/// that limit in the line that says how many earlier messages were left out.
pub fn history_note(reason: &str, history: &[Message], max_chars: usize, limit: &str) -> String {
    let header = format!(
        "Escalated to a person: {}",
        cut_chars(reason.trim(), MAX_REASON_CHARS, "…")
    );
    let mut ordered: Vec<&Message> = history.iter().collect();
    // Stable: messages stored in the same microsecond keep the order they were given in.
    ordered.sort_by_key(|message| {
        Timestamp::parse_rfc3339(&message.created_at).map_or(message.created_us, Timestamp::micros)
    });
    let lines: Vec<String> = ordered.into_iter().map(line).collect();
    if lines.is_empty() {
        return cut_chars(&format!("{header}\n\nNo messages yet."), max_chars, "…");
    }
    let intro = "Conversation so far, oldest first:";
    let note = |omitted: usize, kept: &[String]| {
        let mut note = format!("{header}\n\n{intro}\n");
        if omitted > 0 {
            note.push_str(&left_out_line(omitted, limit));
            note.push('\n');
        }
        note.push_str(&kept.join("\n"));
        note
    };
    let whole = note(0, &lines);
    if whole.chars().count() <= max_chars {
        return whole;
    }
    // Keep as many of the newest lines as fit beside the header and the left-out line.
    let fixed = format!("{header}\n\n{intro}\n{}\n", left_out_line(lines.len(), limit))
        .chars()
        .count();
    let mut budget = max_chars.saturating_sub(fixed);
    let mut first_kept = lines.len();
    for (at, text) in lines.iter().enumerate().rev() {
        let cost = text.chars().count() + usize::from(at + 1 < lines.len());
        if cost > budget {
            break;
        }
        budget -= cost;
        first_kept = at;
    }
    if first_kept == lines.len() {
        // Even the newest message alone is too long: keep its beginning.
        let newest = lines.len() - 1;
        let cut = cut_chars(&lines[newest], budget, "…");
        return note(newest, &[cut]);
    }
    note(first_kept, &lines[first_kept..])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::channel::{Channel, MessageStatus};
    use crate::ids::{AttachmentId, ConversationId, CustomerId, MessageId};
    use crate::message::{Attachment, AttachmentStatus};

    fn phrases(list: &[&str]) -> Vec<String> {
        list.iter().map(|p| (*p).to_owned()).collect()
    }

    fn message(n: u8, direction: Direction, content: &str, created_at: &str) -> Message {
        Message {
            id: MessageId::generate([n; 16]),
            conversation_id: ConversationId::generate([1; 16]),
            customer_id: CustomerId::generate([2; 16]),
            content: content.to_owned(),
            platform: Channel::Whatsapp,
            channel: Channel::Whatsapp,
            direction,
            status: MessageStatus::Received,
            status_reason: None,
            created_at: created_at.to_owned(),
            updated_at: created_at.to_owned(),
            attachments: None,
            created_us: 0,
        }
    }

    #[test]
    fn phrases_match_whole_words_whatever_the_case_spacing_or_punctuation() {
        let configured = phrases(&[
            "human",
            "agent",
            "real person",
            "speak to someone",
            "don't understand",
        ]);
        let cases = [
            (
                "Can I talk to an agent please?",
                Some("agent"),
                "a word in a sentence",
            ),
            ("AGENT!!!", Some("agent"), "shouted"),
            ("I need a REAL   person", Some("real person"), "extra spaces"),
            (
                "real-person, now",
                Some("real person"),
                "a hyphen between the words",
            ),
            (
                "real\nperson",
                Some("real person"),
                "a line break between the words",
            ),
            (
                "speak to... someone?",
                Some("speak to someone"),
                "punctuation between the words",
            ),
            (
                "I dont understand",
                None,
                "an apostrophe missing changes the words",
            ),
            (
                "I don’t understand",
                Some("don't understand"),
                "a typographic apostrophe",
            ),
            ("are you human?", Some("human"), "at the end"),
            ("Human agent", Some("human"), "the first configured phrase wins"),
            ("the reagent arrived", None, "inside another word"),
            ("agents are slow", None, "a plural is another word"),
            ("a real, personal touch", None, "the words of a phrase apart"),
            ("person real", None, "the words of a phrase reversed"),
            ("", None, "an empty text"),
            ("!!!", None, "punctuation only"),
        ];
        for (text, expected, description) in cases {
            assert_eq!(asks_for_human(text, &configured), expected, "{description}");
        }
        assert_eq!(asks_for_human("agent", &[]), None, "no phrases configured");
        assert_eq!(
            asks_for_human("Mensch bitte", &phrases(&["MENSCH"])),
            Some("MENSCH")
        );
        assert_eq!(
            asks_for_human("Ich möchte einen MENSCHEN", &phrases(&["menschen"])),
            Some("menschen")
        );
    }

    #[test]
    fn the_note_gives_the_reason_then_the_history_oldest_first() {
        let mut photo = message(3, Direction::Inbound, "Here it is", "2026-11-23T10:02:30.000Z");
        photo.attachments = Some(vec![Attachment {
            id: AttachmentId::generate([9; 16]),
            message_id: None,
            filename: "receipt.jpg".to_owned(),
            mime_type: "image/jpeg".to_owned(),
            size: 10,
            created_at: "2026-11-23T10:02:30.000Z".to_owned(),
            status: AttachmentStatus::default(),
            status_reason: None,
            download_url: None,
        }]);
        let history = [
            message(
                2,
                Direction::Outbound,
                "Can you send the receipt?",
                "2026-11-23T10:01:00.000Z",
            ),
            photo,
            message(
                1,
                Direction::Inbound,
                "My order is late",
                "2026-11-23T10:00:00.000Z",
            ),
        ];
        assert_eq!(
            escalation_note("The customer asked for a person (\"agent\")", &history),
            "Escalated to a person: The customer asked for a person (\"agent\")\n\n\
             Conversation so far, oldest first:\n\
             [2026-11-23 10:00 UTC] customer (whatsapp): My order is late\n\
             [2026-11-23 10:01 UTC] agent (whatsapp): Can you send the receipt?\n\
             [2026-11-23 10:02 UTC] customer (whatsapp): Here it is [attachments: receipt.jpg]"
        );
        assert_eq!(
            escalation_note("asked", &[]),
            "Escalated to a person: asked\n\nNo messages yet."
        );
    }

    #[test]
    fn a_long_history_keeps_the_newest_messages_and_says_how_many_were_left_out() {
        let history: Vec<Message> = (0..60u8)
            .map(|n| {
                let at = format!("2026-11-23T{:02}:{:02}:00.000Z", 10 + n / 60, n % 60);
                message(
                    n,
                    Direction::Inbound,
                    &format!("message {n} {}", "ü".repeat(300)),
                    &at,
                )
            })
            .collect();
        let note = escalation_note("asked for a person", &history);
        assert!(
            note.chars().count() <= MAX_NOTE_CHARS,
            "{} chars",
            note.chars().count()
        );
        assert!(note.ends_with(&format!("message 59 {}", "ü".repeat(300))));
        let kept = note.matches("] customer (whatsapp): message ").count();
        assert!(kept > 20 && kept < 60, "{kept} kept");
        assert!(
            note.contains(&left_out_line(60 - kept, KUSTOMER_LIMIT)),
            "{}",
            &note[..200]
        );
        assert!(!note.contains("message 0 "));
    }

    #[test]
    fn a_single_huge_message_is_cut_at_a_character_boundary() {
        let history = [
            message(1, Direction::Inbound, "hello", "2026-11-23T10:00:00.000Z"),
            message(
                2,
                Direction::Inbound,
                &"日本".repeat(8_000),
                "2026-11-23T10:01:00.000Z",
            ),
        ];
        let note = escalation_note("asked", &history);
        assert!(note.chars().count() <= MAX_NOTE_CHARS);
        assert!(note.contains(&left_out_line(1, KUSTOMER_LIMIT)));
        assert!(note.ends_with('…'));
        assert!(note.contains("[2026-11-23 10:01 UTC] customer (whatsapp): 日本日本"));
    }

    #[test]
    fn a_time_that_is_not_one_is_shown_as_stored() {
        let history = [message(1, Direction::Inbound, "hi", "yesterday")];
        assert!(escalation_note("asked", &history).ends_with("[yesterday] customer (whatsapp): hi"));
    }
}
