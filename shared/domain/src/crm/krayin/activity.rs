//! What a conversation or a message becomes in Krayin: the activity's type, title, comment and
//! schedule, and when a lead moves to the next stage of its pipeline.
//!
//! The types follow the integration guide's channel table: email is `email`, phone-number
//! channels are `call`, chats are `note`. A `note` is created done and needs no schedule; every
//! other type is created not done and needs `schedule_from`/`schedule_to`
//! (`ActivityController::store`), so a finished exchange of another type is marked done after.

use super::answer::Stage;
use super::api::{ActivityFields, ActivityType};
use super::external_id::KrayinRefs;
use super::ids::StageId;
use super::settings::KrayinSettings;
use crate::channel::{Channel, Direction};
use crate::crm::chatwoot::{ChatwootChannel, ChatwootConversation, ChatwootMessage, MessageType};
use crate::message::{Conversation, Message};
use crate::text::cut_chars;
use crate::time::Timestamp;

/// Krayin keeps a comment in a TEXT column (64 KiB); a long message is cut well before.
pub const MAX_COMMENT_CHARS: usize = 10_000;
pub const COMMENT_CUT_MARKER: &str = "\n[…cut]";

/// The type of activity for one of our channels, as the integration's guide maps them: email is
/// an email, phone-number channels are calls, and Messenger and Instagram, chats like a web
/// widget, are notes.
pub fn activity_type_for_channel(channel: Channel) -> ActivityType {
    match channel {
        Channel::Email => ActivityType::Email,
        Channel::Whatsapp | Channel::Sms => ActivityType::Call,
        Channel::Facebook | Channel::Instagram => ActivityType::Note,
    }
}

/// The same rule for Chatwoot's inboxes: email is an email, SMS (Twilio, Bandwidth) and WhatsApp
/// are calls; the web widget, API inboxes and every other channel are notes.
pub fn activity_type_for_chatwoot(channel: &ChatwootChannel) -> ActivityType {
    match channel {
        ChatwootChannel::Email => ActivityType::Email,
        ChatwootChannel::Sms | ChatwootChannel::Whatsapp => ActivityType::Call,
        _ => ActivityType::Note,
    }
}

/// `Conversation #123`.
pub fn conversation_title(conversation: &str) -> String {
    format!("Conversation #{}", conversation.trim_start_matches('#'))
}

/// `Message from Ann Lee - Conversation #123`.
pub fn message_title(sender_name: &str, conversation: &str) -> String {
    let sender = sender_name.trim();
    let sender = if sender.is_empty() {
        "unknown sender"
    } else {
        sender
    };
    format!(
        "Message from {} - {}",
        cut_chars(sender, 100, "…"),
        conversation_title(conversation)
    )
}

/// A message's text followed by its files as links (file type or name, URL), cut to
/// [`MAX_COMMENT_CHARS`]: Krayin cannot fetch attachments into an activity made by the API.
pub fn message_comment(content: &str, attachment_links: &[(String, String)]) -> String {
    let mut comment = content.trim().to_owned();
    if !attachment_links.is_empty() {
        if !comment.is_empty() {
            comment.push_str("\n\n");
        }
        comment.push_str("Attachments:");
        for (label, url) in attachment_links {
            comment.push_str(&format!("\n- {label}: {url}"));
        }
    }
    if comment.is_empty() {
        comment.push_str("(no text)");
    }
    cut_chars(&comment, MAX_COMMENT_CHARS, COMMENT_CUT_MARKER)
}

/// Krayin's datetime form, in UTC: `2026-01-01 10:00:00`.
pub fn schedule_time(at: Timestamp) -> String {
    let text = at.to_rfc3339();
    format!(
        "{} {}",
        text.get(..10).unwrap_or_default(),
        text.get(11..19).unwrap_or_default()
    )
}

/// An activity to create, and whether it records something already finished, which the
/// runtime marks done ([`api::mark_activity_done`](super::api::mark_activity_done)) after
/// creating it when its type is not a note (Krayin creates notes done itself).
#[derive(Debug, Clone, PartialEq)]
pub struct PlannedActivity {
    pub fields: ActivityFields,
    pub done: bool,
}

impl PlannedActivity {
    pub fn needs_marking_done(&self) -> bool {
        self.done && self.fields.activity_type != ActivityType::Note
    }
}

fn planned(
    activity_type: ActivityType,
    title: String,
    comment: String,
    at: Timestamp,
    refs: &KrayinRefs,
    done: bool,
) -> Option<PlannedActivity> {
    if refs.lead.is_none() && refs.person.is_none() {
        return None;
    }
    let schedule = activity_type.needs_schedule().then(|| schedule_time(at));
    Some(PlannedActivity {
        fields: ActivityFields {
            activity_type,
            title,
            comment,
            schedule_from: schedule.clone(),
            schedule_to: schedule,
            lead_id: refs.lead,
            person_id: refs.person,
        },
        done,
    })
}

/// The activity of a Chatwoot conversation, done when it is resolved; none until the contact's
/// person or lead exists.
pub fn conversation_activity(
    conversation: &ChatwootConversation,
    refs: &KrayinRefs,
    at: Timestamp,
) -> Option<PlannedActivity> {
    let mut comment = format!(
        "Chatwoot conversation #{}, {}",
        conversation.id, conversation.status
    );
    if let Some(name) = conversation.contact.as_ref().and_then(|c| c.name.as_deref()) {
        comment.push_str(&format!("\nContact: {name}"));
    }
    if let Some(assignee) = &conversation.assignee {
        comment.push_str(&format!("\nAssigned to: {assignee}"));
    }
    planned(
        activity_type_for_chatwoot(&conversation.channel),
        conversation_title(&conversation.id.to_string()),
        comment,
        at,
        refs,
        conversation.status == "resolved",
    )
}

/// The activity of a Chatwoot message (always done: it happened). Chatwoot's own activity
/// messages ("Conversation was resolved by …") are not messages of the exchange and give none.
pub fn chatwoot_message_activity(
    message: &ChatwootMessage,
    refs: &KrayinRefs,
    at: Timestamp,
) -> Option<PlannedActivity> {
    if message.message_type == MessageType::Activity {
        return None;
    }
    let links: Vec<(String, String)> = message
        .attachments
        .iter()
        .map(|file| (file.file_type.clone(), file.data_url.clone()))
        .collect();
    let mut comment = message_comment(&message.content, &links);
    if message.private {
        comment = cut_chars(
            &format!("(private note)\n{comment}"),
            MAX_COMMENT_CHARS,
            COMMENT_CUT_MARKER,
        );
    }
    planned(
        activity_type_for_chatwoot(&message.channel),
        message_title(
            message.sender_name.as_deref().unwrap_or_default(),
            &message.conversation_id.to_string(),
        ),
        comment,
        message.created_at.unwrap_or(at),
        refs,
        true,
    )
}

/// Which spell of one of our conversations its activity is about: the conversation's id for its
/// first, `<id>#<n>` after the customer reopened it n times.
pub fn spell_id(conversation: &Conversation) -> String {
    match conversation.reopen_count {
        0 => conversation.id.to_string(),
        n => format!("{}#{n}", conversation.id),
    }
}

/// The activity of one of our conversations, done once it is resolved or closed; none until the
/// contact's person or lead exists.
pub fn our_conversation_activity(
    conversation: &Conversation,
    refs: &KrayinRefs,
    at: Timestamp,
) -> Option<PlannedActivity> {
    let mut comment = format!(
        "Conversation {} on {}, {}",
        conversation.id, conversation.channel, conversation.status
    );
    if let Some(assignee) = &conversation.assignee {
        comment.push_str(&format!("\nAssigned to: {assignee}"));
    }
    if conversation.reopen_count > 0 {
        comment.push_str(&format!(
            "\nReopened by the customer ({} {})",
            conversation.reopen_count,
            if conversation.reopen_count == 1 {
                "time"
            } else {
                "times"
            }
        ));
    }
    planned(
        activity_type_for_channel(conversation.channel),
        conversation_title(conversation.id.as_str()),
        comment,
        at,
        refs,
        conversation.status.is_ended(),
    )
}

/// A note on the contact's lead (an internal note, an escalation's reason): titled `title`, about
/// the conversation shown after `#`.
pub fn note_activity(
    title: &str,
    conversation: &str,
    text: &str,
    refs: &KrayinRefs,
    at: Timestamp,
) -> Option<PlannedActivity> {
    planned(
        ActivityType::Note,
        format!("{title} - {}", conversation_title(conversation)),
        cut_chars(text.trim(), MAX_COMMENT_CHARS, COMMENT_CUT_MARKER),
        at,
        refs,
        true,
    )
}

/// The activity of one of our messages: `sender_name` is the customer's for inbound messages
/// and the business's (or agent's) for outbound ones, `conversation` how the conversation is
/// shown after `#`, `attachment_links` filename and download URL.
pub fn message_activity(
    message: &Message,
    sender_name: &str,
    conversation: &str,
    attachment_links: &[(String, String)],
    refs: &KrayinRefs,
) -> Option<PlannedActivity> {
    let at =
        Timestamp::parse_rfc3339(&message.created_at).unwrap_or(Timestamp::from_micros(message.created_us));
    let direction = match message.direction {
        Direction::Inbound => "received",
        Direction::Outbound => "sent",
    };
    let comment = format!(
        "{}\n\n({direction} on {})",
        message_comment(&message.content, attachment_links),
        message.channel
    );
    planned(
        activity_type_for_channel(message.channel),
        message_title(sender_name, conversation),
        cut_chars(&comment, MAX_COMMENT_CHARS, COMMENT_CUT_MARKER),
        at,
        refs,
        true,
    )
}

/// The moments of a conversation that can move its contact's lead.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StageTrigger {
    ConversationCreated,
    /// An agent's public reply (the runtime may pass every one: moves never go backwards).
    FirstResponse,
    Resolved,
}

impl StageTrigger {
    pub const ALL: [StageTrigger; 3] = [Self::ConversationCreated, Self::FirstResponse, Self::Resolved];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::ConversationCreated => "conversation_created",
            Self::FirstResponse => "first_response",
            Self::Resolved => "resolved",
        }
    }

    /// The triggers a stored list (`conversation_created,resolved`) names; unknown names are
    /// left out.
    pub fn parse_list(list: &str) -> Vec<StageTrigger> {
        list.split(',')
            .filter_map(|name| {
                Self::ALL
                    .into_iter()
                    .find(|trigger| trigger.as_str() == name.trim())
            })
            .collect()
    }

    pub fn write_list(triggers: &[StageTrigger]) -> String {
        triggers
            .iter()
            .map(|trigger| trigger.as_str())
            .collect::<Vec<_>>()
            .join(",")
    }
}

/// The stage configured for `trigger`, when stage progression is on.
pub fn stage_for(settings: &KrayinSettings, trigger: StageTrigger) -> Option<StageId> {
    if !settings.stage_progression {
        return None;
    }
    match trigger {
        StageTrigger::ConversationCreated => settings.stage_on_conversation_created,
        StageTrigger::FirstResponse => settings.stage_on_first_response,
        StageTrigger::Resolved => settings.stage_on_resolved,
    }
}

/// True for a message that counts as the agents' response: outgoing, public, by a person.
pub fn is_agent_response(message: &ChatwootMessage) -> bool {
    message.message_type == MessageType::Outgoing
        && !message.private
        && message.sender_type.as_deref() == Some("user")
}

/// The stage to move a lead to: `target`'s id when it is further along the pipeline than the
/// lead's current stage (its `sort_order`; none when unknown), else none. A lead never moves
/// backwards, so a salesperson's own move past our stages is never undone, and a repeated
/// trigger (a retried webhook, a second reply) changes nothing.
pub fn next_stage(current_sort_order: Option<u32>, target: &Stage) -> Option<StageId> {
    match current_sort_order {
        Some(current) if current >= target.sort_order => None,
        _ => Some(target.id),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::channel::MessageStatus;
    use crate::crm::chatwoot::{ChatwootAttachment, ChatwootContact};
    use crate::crm::krayin::ids::{LeadId, PersonId};
    use crate::ids::{ConversationId, CustomerId, MessageId};
    use serde_json::json;

    const AT: &str = "2026-01-01T10:00:00.000Z";

    fn at() -> Timestamp {
        Timestamp::parse_rfc3339(AT).unwrap_or(Timestamp::from_micros(0))
    }

    fn refs() -> KrayinRefs {
        KrayinRefs {
            person: Some(PersonId(123)),
            lead: Some(LeadId(456)),
            organization: None,
            activity: None,
        }
    }

    fn chatwoot_message(channel: ChatwootChannel, message_type: MessageType) -> ChatwootMessage {
        ChatwootMessage {
            id: 9001,
            content: "Do you ship to Canada?".to_owned(),
            message_type,
            private: false,
            sender_name: Some("Ann Lee".to_owned()),
            sender_type: Some("contact".to_owned()),
            conversation_id: 123,
            conversation_status: Some("open".to_owned()),
            channel,
            contact: None,
            attachments: vec![ChatwootAttachment {
                file_type: "image".to_owned(),
                data_url: "https://chat.acme.com/photo.jpg".to_owned(),
            }],
            created_at: Some(at().plus_seconds(30)),
        }
    }

    #[test]
    fn channels_map_to_the_types_krayin_accepts() {
        let ours = [
            (Channel::Whatsapp, ActivityType::Call),
            (Channel::Sms, ActivityType::Call),
            (Channel::Email, ActivityType::Email),
            (Channel::Facebook, ActivityType::Note),
            (Channel::Instagram, ActivityType::Note),
        ];
        for (channel, expected) in ours {
            assert_eq!(activity_type_for_channel(channel), expected, "{channel}");
        }
        let chatwoot = [
            (ChatwootChannel::Whatsapp, ActivityType::Call),
            (ChatwootChannel::Sms, ActivityType::Call),
            (ChatwootChannel::Email, ActivityType::Email),
            (ChatwootChannel::WebWidget, ActivityType::Note),
            (ChatwootChannel::Api, ActivityType::Note),
            (ChatwootChannel::Telegram, ActivityType::Note),
            (ChatwootChannel::Other("Voice".to_owned()), ActivityType::Note),
        ];
        for (channel, expected) in chatwoot {
            assert_eq!(activity_type_for_chatwoot(&channel), expected, "{channel:?}");
        }
    }

    #[test]
    fn titles_read_as_the_integrations_guide_writes_them() {
        assert_eq!(conversation_title("123"), "Conversation #123");
        assert_eq!(conversation_title("#123"), "Conversation #123");
        assert_eq!(
            message_title("John", "123"),
            "Message from John - Conversation #123"
        );
        assert_eq!(
            message_title(" ", "7"),
            "Message from unknown sender - Conversation #7"
        );
    }

    #[test]
    fn a_message_comment_lists_its_files_and_is_cut_to_size() {
        let links = [(
            "invoice.pdf".to_owned(),
            "https://edge.example.com/d/1".to_owned(),
        )];
        assert_eq!(
            message_comment("Here it is", &links),
            "Here it is\n\nAttachments:\n- invoice.pdf: https://edge.example.com/d/1"
        );
        assert_eq!(
            message_comment("", &links),
            "Attachments:\n- invoice.pdf: https://edge.example.com/d/1"
        );
        assert_eq!(message_comment("  ", &[]), "(no text)");
        let long = message_comment(&"é".repeat(MAX_COMMENT_CHARS + 5), &[]);
        assert_eq!(long.chars().count(), MAX_COMMENT_CHARS);
        assert!(long.ends_with(COMMENT_CUT_MARKER));
    }

    #[test]
    fn a_whatsapp_message_is_a_call_at_the_message_time_marked_done_after() {
        let planned = chatwoot_message_activity(
            &chatwoot_message(ChatwootChannel::Whatsapp, MessageType::Incoming),
            &refs(),
            at(),
        )
        .unwrap_or_else(|| panic!("nothing planned"));
        assert!(planned.needs_marking_done());
        let body = crate::crm::krayin::api::create_activity(&planned.fields).body;
        assert_eq!(
            body,
            Some(json!({
                "type": "call",
                "title": "Message from Ann Lee - Conversation #123",
                "comment": "Do you ship to Canada?\n\nAttachments:\n- image: https://chat.acme.com/photo.jpg",
                "schedule_from": "2026-01-01 10:00:30",
                "schedule_to": "2026-01-01 10:00:30",
                "lead_id": 456,
                "participants": { "persons": [123] },
            }))
        );
    }

    #[test]
    fn a_web_widget_message_is_a_note_without_schedule_and_activity_messages_are_skipped() {
        let planned = chatwoot_message_activity(
            &chatwoot_message(ChatwootChannel::WebWidget, MessageType::Outgoing),
            &refs(),
            at(),
        )
        .unwrap_or_else(|| panic!("nothing planned"));
        assert_eq!(planned.fields.activity_type, ActivityType::Note);
        assert_eq!(
            (
                planned.fields.schedule_from.as_deref(),
                planned.needs_marking_done()
            ),
            (None, false)
        );
        let mut private = chatwoot_message(ChatwootChannel::WebWidget, MessageType::Outgoing);
        private.private = true;
        let note = chatwoot_message_activity(&private, &refs(), at()).map(|p| p.fields.comment);
        assert!(note.is_some_and(|c| c.starts_with("(private note)\n")));
        let system = chatwoot_message(ChatwootChannel::WebWidget, MessageType::Activity);
        assert_eq!(chatwoot_message_activity(&system, &refs(), at()), None);
        let unlinked = chatwoot_message(ChatwootChannel::WebWidget, MessageType::Incoming);
        assert_eq!(
            chatwoot_message_activity(&unlinked, &KrayinRefs::default(), at()),
            None
        );
    }

    #[test]
    fn a_conversation_is_done_only_once_resolved_and_links_the_person_without_a_lead() {
        let mut conversation = ChatwootConversation {
            id: 123,
            status: "open".to_owned(),
            contact: Some(ChatwootContact {
                id: 42,
                name: Some("Ann Lee".to_owned()),
                ..ChatwootContact::default()
            }),
            assignee: Some("Sam Agent".to_owned()),
            channel: ChatwootChannel::Sms,
            inbox_id: Some(1),
            changed_attributes: Vec::new(),
        };
        let person_only = KrayinRefs {
            person: Some(PersonId(123)),
            ..KrayinRefs::default()
        };
        let open = conversation_activity(&conversation, &person_only, at()).unwrap_or_else(|| panic!("none"));
        assert_eq!(open.fields.title, "Conversation #123");
        assert_eq!(
            open.fields.comment,
            "Chatwoot conversation #123, open\nContact: Ann Lee\nAssigned to: Sam Agent"
        );
        assert_eq!(
            (open.fields.lead_id, open.fields.person_id),
            (None, Some(PersonId(123)))
        );
        assert_eq!(open.fields.schedule_from.as_deref(), Some("2026-01-01 10:00:00"));
        assert!(!open.done);
        conversation.status = "resolved".to_owned();
        assert!(
            conversation_activity(&conversation, &person_only, at()).is_some_and(|p| p.needs_marking_done())
        );
    }

    #[test]
    fn every_activity_names_the_person_as_participant_and_sits_on_the_lead_where_there_is_one() {
        let conversation = ChatwootConversation {
            id: 123,
            status: "open".to_owned(),
            contact: None,
            assignee: None,
            channel: ChatwootChannel::WebWidget,
            inbox_id: Some(1),
            changed_attributes: Vec::new(),
        };
        let message = chatwoot_message(ChatwootChannel::WebWidget, MessageType::Incoming);
        let person_only = KrayinRefs {
            person: Some(PersonId(123)),
            ..KrayinRefs::default()
        };
        let with_lead = (
            refs(),
            json!({ "lead_id": 456, "participants": { "persons": [123] } }),
            "a contact with a lead",
        );
        let without_lead = (
            person_only,
            json!({ "person_id": 123, "participants": { "persons": [123] } }),
            "a contact whose lead is not made yet",
        );
        for (refs, expected, contact) in [with_lead, without_lead] {
            let made = [
                (
                    "a conversation",
                    conversation_activity(&conversation, &refs, at()),
                ),
                ("a message", chatwoot_message_activity(&message, &refs, at())),
                ("a note", note_activity("Note", "123", "x", &refs, at())),
            ];
            for (what, planned) in made {
                let body = planned
                    .and_then(|planned| crate::crm::krayin::api::create_activity(&planned.fields).body)
                    .unwrap_or_else(|| panic!("{what} of {contact}: nothing planned"));
                let links = json!({
                    "lead_id": body["lead_id"], "person_id": body["person_id"], "participants": body["participants"]
                });
                let expected_links = json!({
                    "lead_id": expected["lead_id"], "person_id": expected["person_id"],
                    "participants": expected["participants"]
                });
                assert_eq!(links, expected_links, "{what} of {contact}");
            }
        }
    }

    #[test]
    fn our_message_becomes_an_activity_of_its_channel_at_its_time() {
        let message = Message {
            id: MessageId::generate([1; 16]),
            conversation_id: ConversationId::generate([2; 16]),
            customer_id: CustomerId::generate([3; 16]),
            content: "On its way".to_owned(),
            platform: Channel::Sms,
            channel: Channel::Sms,
            direction: Direction::Outbound,
            status: MessageStatus::Sent,
            status_reason: None,
            created_at: "2026-01-02T08:30:00.000Z".to_owned(),
            updated_at: "2026-01-02T08:30:00.000Z".to_owned(),
            attachments: None,
            created_us: 0,
        };
        let planned = message_activity(&message, "Acme Support", "A-17", &[], &refs())
            .unwrap_or_else(|| panic!("none"));
        assert_eq!(
            planned.fields.title,
            "Message from Acme Support - Conversation #A-17"
        );
        assert_eq!(planned.fields.comment, "On its way\n\n(sent on sms)");
        assert_eq!(planned.fields.schedule_to.as_deref(), Some("2026-01-02 08:30:00"));
        assert!(planned.needs_marking_done());
    }

    #[test]
    fn leads_only_ever_move_forward() {
        let won = Stage {
            id: StageId(5),
            name: "Won".to_owned(),
            code: "won".to_owned(),
            sort_order: 2,
        };
        let cases = [
            (None, Some(5), "an unknown current stage"),
            (Some(0), Some(5), "from New"),
            (Some(1), Some(5), "from Follow Up"),
            (Some(2), None, "already there"),
            (Some(3), None, "from Lost, further along"),
        ];
        for (current, expected, description) in cases {
            let expected = expected.map(StageId);
            assert_eq!(next_stage(current, &won), expected, "{description}");
        }
    }

    #[test]
    fn stages_are_configured_per_trigger_and_only_with_progression_on() {
        let mut settings = KrayinSettings::parse(
            &json!({ "base_url": "https://crm.example.com", "stage_on_conversation_created": 2, "stage_on_resolved": 5 }),
            false,
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(stage_for(&settings, StageTrigger::Resolved), None);
        settings.stage_progression = true;
        assert_eq!(
            stage_for(&settings, StageTrigger::ConversationCreated),
            Some(StageId(2))
        );
        assert_eq!(stage_for(&settings, StageTrigger::FirstResponse), None);
        assert_eq!(stage_for(&settings, StageTrigger::Resolved), Some(StageId(5)));
        let mut reply = chatwoot_message(ChatwootChannel::WebWidget, MessageType::Outgoing);
        reply.sender_type = Some("user".to_owned());
        assert!(is_agent_response(&reply));
        reply.private = true;
        assert!(!is_agent_response(&reply));
        let bot = ChatwootMessage {
            sender_type: Some("agent_bot".to_owned()),
            private: false,
            ..reply
        };
        assert!(!is_agent_response(&bot));
    }

    #[test]
    fn stage_moves_made_read_back_from_their_stored_list() {
        let made = [StageTrigger::ConversationCreated, StageTrigger::Resolved];
        let stored = StageTrigger::write_list(&made);
        assert_eq!(stored, "conversation_created,resolved");
        assert_eq!(StageTrigger::parse_list(&stored), made.to_vec());
        assert_eq!(
            StageTrigger::parse_list("first_response,bogus,"),
            vec![StageTrigger::FirstResponse],
            "an unknown name is left out, not read as a move"
        );
    }

    #[test]
    fn notes_on_the_lead_are_done_notes_titled_by_what_they_are() {
        let planned = note_activity("Note", "abc", "  call them back  ", &refs(), at())
            .unwrap_or_else(|| panic!("a contact with a lead gets a note"));
        assert_eq!(planned.fields.activity_type, ActivityType::Note);
        assert_eq!(planned.fields.title, "Note - Conversation #abc");
        assert_eq!(planned.fields.comment, "call them back");
        assert!(planned.done && !planned.needs_marking_done());
        assert!(note_activity("Note", "abc", "x", &KrayinRefs::default(), at()).is_none());
    }
}
