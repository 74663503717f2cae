//! What our records become in HubSpot: a customer's contact properties, a message's record on
//! the contact's timeline (WhatsApp and SMS as communications, email as an email, Messenger and
//! Instagram as notes, HubSpot's communications taking only WhatsApp, LinkedIn and SMS), and an
//! escalation's ticket.

use super::api::Association;
use super::settings::{HubSpotSettings, TicketPriority};
use crate::channel::{Channel, Direction};
use crate::crm::kustomer::escalation::history_note;
use crate::customer::Customer;
use crate::message::Message;
use crate::text::cut_chars;
use serde_json::{Map, Value, json};

/// HubSpot refuses a note or email body longer than this; a ticket's description is kept to it.
pub const MAX_BODY_CHARS: usize = 65_536;
/// A ticket's subject is one line.
const MAX_SUBJECT_CHARS: usize = 200;

/// Where a message goes on the timeline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Engagement {
    Communication,
    Email,
    Note,
}

impl Engagement {
    pub fn of(channel: Channel) -> Self {
        match channel {
            Channel::Whatsapp | Channel::Sms => Self::Communication,
            Channel::Email => Self::Email,
            Channel::Facebook | Channel::Instagram => Self::Note,
        }
    }

    /// The object's name in its path.
    pub fn object(self) -> &'static str {
        match self {
            Self::Communication => "communications",
            Self::Email => "emails",
            Self::Note => "notes",
        }
    }

    /// How it is tied to the contact as it is made.
    pub fn to_contact(self) -> Association {
        match self {
            Self::Communication => Association::CommunicationToContact,
            Self::Email => Association::EmailToContact,
            Self::Note => Association::NoteToContact,
        }
    }
}

/// Mail providers whose domains are people's, not a company's: a contact there is not
/// associated with a company.
const FREE_MAIL: [&str; 24] = [
    "gmail.com",
    "googlemail.com",
    "yahoo.com",
    "yahoo.co.uk",
    "ymail.com",
    "hotmail.com",
    "hotmail.co.uk",
    "outlook.com",
    "live.com",
    "msn.com",
    "icloud.com",
    "me.com",
    "mac.com",
    "aol.com",
    "gmx.com",
    "gmx.de",
    "gmx.net",
    "web.de",
    "proton.me",
    "protonmail.com",
    "yandex.ru",
    "mail.ru",
    "qq.com",
    "163.com",
];

/// The company domain of an email (`jane@Acme.example` is `acme.example`): none for a free mail
/// provider's, or an address without a dotted domain.
pub fn company_domain(email: &str) -> Option<String> {
    let (_, domain) = email.trim().rsplit_once('@')?;
    let domain = domain.trim_end_matches('.').to_ascii_lowercase();
    let dotted = domain.contains('.') && !domain.starts_with('.') && !domain.contains("..");
    (dotted && !FREE_MAIL.contains(&domain.as_str())).then_some(domain)
}

/// The contact properties of our customer: email, phone, WhatsApp number and name, and our id
/// in the business's unique property when it has one. Empty values are left out (HubSpot would
/// clear the property).
pub fn contact_properties(customer: &Customer, settings: &HubSpotSettings) -> Map<String, Value> {
    let (first, last) = names(customer);
    let mut properties = Map::new();
    let mut set = |name: &str, value: Option<&str>| {
        if let Some(value) = value.map(str::trim).filter(|value| !value.is_empty()) {
            properties.insert(name.to_owned(), json!(value));
        }
    };
    set("email", customer.email.as_deref());
    set(
        "phone",
        customer.phone.as_deref().or(customer.whatsapp_number.as_deref()),
    );
    set("hs_whatsapp_phone_number", customer.whatsapp_number.as_deref());
    set("firstname", first.as_deref());
    set("lastname", last.as_deref());
    if let Some(property) = &settings.customer_id_property {
        set(property, Some(customer.id.as_str()));
    }
    properties
}

/// The first and last name: as given, else the display name split at its first space.
fn names(customer: &Customer) -> (Option<String>, Option<String>) {
    if customer.first_name.is_some() || customer.last_name.is_some() {
        return (customer.first_name.clone(), customer.last_name.clone());
    }
    match customer.name.trim().split_once(' ') {
        Some((first, last)) => (Some(first.to_owned()), Some(last.trim().to_owned())),
        None => (Some(customer.name.trim().to_owned()), None),
    }
}

/// The timeline record of `message`: its properties, with its attachments as signed links
/// (`files`: name and link; a file without a link is named alone).
pub fn engagement_properties(message: &Message, files: &[(String, String)]) -> (Engagement, Value) {
    let engagement = Engagement::of(message.channel);
    let mut text = message.content.trim().to_owned();
    if !files.is_empty() {
        let listed: Vec<String> = files
            .iter()
            .map(|(name, link)| {
                if link.is_empty() {
                    name.clone()
                } else {
                    format!("{name}: {link}")
                }
            })
            .collect();
        text.push_str(&format!("\n\nAttachments:\n{}", listed.join("\n")));
    }
    let text = cut_chars(&text, MAX_BODY_CHARS, "…");
    let at = message.created_at.as_str();
    let properties = match engagement {
        Engagement::Communication => json!({
            "hs_communication_channel_type": if message.channel == Channel::Sms { "SMS" } else { "WHATS_APP" },
            "hs_communication_logged_from": "CRM",
            "hs_communication_body": text,
            "hs_timestamp": at,
        }),
        Engagement::Email => json!({
            "hs_email_direction": match message.direction {
                Direction::Inbound => "INCOMING_EMAIL",
                Direction::Outbound => "EMAIL",
            },
            "hs_email_status": "SENT",
            "hs_email_subject": subject(&message.content),
            "hs_email_text": text,
            "hs_timestamp": at,
        }),
        Engagement::Note => {
            let who = match message.direction {
                Direction::Inbound => "the customer",
                Direction::Outbound => "us",
            };
            let channel = match message.channel {
                Channel::Instagram => "Instagram",
                _ => "Messenger",
            };
            let body = format!("{channel} message from {who}:\n{text}");
            json!({
                "hs_note_body": cut_chars(&html_text(&body), MAX_BODY_CHARS, "…"),
                "hs_timestamp": at,
            })
        }
    };
    (engagement, properties)
}

/// An email's subject: the first line of its text, cut.
fn subject(content: &str) -> String {
    let first = content
        .lines()
        .map(str::trim)
        .find(|line| !line.is_empty())
        .unwrap_or("(no text)");
    cut_chars(first, MAX_SUBJECT_CHARS, "…")
}

/// `text` as the HTML a note's body is: nothing in it markup, its lines kept.
fn html_text(text: &str) -> String {
    crate::text::escape_html(text).replace('\n', "<br>")
}

/// An escalation's ticket: the reason as its subject, the chat history as its description, in
/// the configured pipeline and stage, with its priority, owner and (HubSpot) team.
pub fn ticket_properties(
    settings: &HubSpotSettings,
    reason: &str,
    history: &[Message],
    priority: TicketPriority,
    team: Option<&str>,
) -> Value {
    let mut properties = json!({
        "subject": cut_chars(&format!("Escalated: {}", reason.trim()), MAX_SUBJECT_CHARS, "…"),
        "content": history_note(reason, history, MAX_BODY_CHARS, "HubSpot's 65,536-character limit"),
        "hs_pipeline": settings.ticket_pipeline,
        "hs_pipeline_stage": settings.ticket_stage,
        "hs_ticket_priority": priority.as_str(),
    });
    if let Some(fields) = properties.as_object_mut() {
        if let Some(owner) = &settings.ticket_owner_id {
            fields.insert("hubspot_owner_id".to_owned(), json!(owner));
        }
        if let Some(team) = team {
            fields.insert("hubspot_team_id".to_owned(), json!(team));
        }
    }
    properties
}

/// A note's properties: `body` as HTML, at `at` (RFC 3339).
pub fn note_properties(body: &str, at: &str) -> Value {
    json!({
        "hs_note_body": cut_chars(&html_text(body), MAX_BODY_CHARS, "…"),
        "hs_timestamp": at,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::crm::test_support::{customer, message};
    use crate::ids::CustomerId;

    fn settings(input: Value) -> HubSpotSettings {
        HubSpotSettings::parse(&input, false).unwrap_or_else(|error| panic!("{error:?}"))
    }

    #[test]
    fn each_channel_lands_where_hubspot_documents_it() {
        let cases = [
            (Channel::Whatsapp, "communications", Some("WHATS_APP")),
            (Channel::Sms, "communications", Some("SMS")),
            (Channel::Email, "emails", None),
            (Channel::Facebook, "notes", None),
            (Channel::Instagram, "notes", None),
        ];
        for (channel, object, channel_type) in cases {
            let (engagement, properties) =
                engagement_properties(&message(channel, Direction::Inbound, "hello"), &[]);
            assert_eq!(engagement.object(), object, "{channel:?}");
            assert_eq!(
                properties
                    .get("hs_communication_channel_type")
                    .and_then(Value::as_str),
                channel_type,
                "{channel:?}"
            );
            assert_eq!(properties["hs_timestamp"], "2026-11-27T10:00:00.000Z");
        }
    }

    #[test]
    fn an_email_keeps_its_direction_and_a_note_its_text_escaped() {
        let (_, sent) = engagement_properties(
            &message(Channel::Email, Direction::Outbound, "Re: order\nbody"),
            &[],
        );
        assert_eq!(
            (
                sent["hs_email_direction"].as_str(),
                sent["hs_email_subject"].as_str()
            ),
            (Some("EMAIL"), Some("Re: order"))
        );
        let (_, note) = engagement_properties(
            &message(Channel::Facebook, Direction::Inbound, "<b>5 > 4</b> & more"),
            &[],
        );
        assert_eq!(
            note["hs_note_body"],
            "Messenger message from the customer:<br>&lt;b&gt;5 &gt; 4&lt;/b&gt; &amp; more"
        );
    }

    #[test]
    fn attachments_follow_the_text_as_signed_links() {
        let files = [
            (
                "receipt.png".to_owned(),
                "https://api.example/dl?sig=1".to_owned(),
            ),
            ("unsigned.pdf".to_owned(), String::new()),
        ];
        let (_, properties) =
            engagement_properties(&message(Channel::Whatsapp, Direction::Inbound, "see"), &files);
        assert_eq!(
            properties["hs_communication_body"],
            "see\n\nAttachments:\nreceipt.png: https://api.example/dl?sig=1\nunsigned.pdf"
        );
    }

    #[test]
    fn a_contact_carries_what_we_know_and_our_id_when_the_business_keeps_it() {
        let plain = contact_properties(
            &customer("Ada Lovelace", Some("ada@acme.example"), Some("+447700900123")),
            &settings(json!({})),
        );
        assert_eq!(
            Value::Object(plain),
            json!({
                "email": "ada@acme.example",
                "phone": "+447700900123",
                "hs_whatsapp_phone_number": "+447700900123",
                "firstname": "Ada",
                "lastname": "Lovelace",
            })
        );
        let keyed = contact_properties(
            &customer("Bo", None, None),
            &settings(json!({ "customer_id_property": "crm_edge_id" })),
        );
        assert_eq!(keyed.get("firstname"), Some(&json!("Bo")));
        assert_eq!(
            keyed.get("crm_edge_id").and_then(Value::as_str),
            Some(CustomerId::generate([3; 16]).as_str())
        );
        assert!(!keyed.contains_key("email") && !keyed.contains_key("lastname"));
    }

    #[test]
    fn a_ticket_goes_to_the_configured_stage_with_the_history() {
        let history = [message(Channel::Whatsapp, Direction::Inbound, "I want a person")];
        let ticket = ticket_properties(
            &settings(json!({ "ticket_pipeline": "0", "ticket_stage": "2", "ticket_owner_id": "77" })),
            "asked for a human",
            &history,
            TicketPriority::Urgent,
            Some("42"),
        );
        assert_eq!(ticket["subject"], "Escalated: asked for a human");
        assert_eq!(
            (
                ticket["hs_pipeline_stage"].as_str(),
                ticket["hs_ticket_priority"].as_str()
            ),
            (Some("2"), Some("URGENT"))
        );
        assert_eq!(
            (
                ticket["hubspot_owner_id"].as_str(),
                ticket["hubspot_team_id"].as_str()
            ),
            (Some("77"), Some("42"))
        );
        let content = ticket["content"].as_str().unwrap_or_default();
        assert!(
            content.contains("customer (whatsapp): I want a person"),
            "{content}"
        );
    }

    #[test]
    fn a_company_domain_is_an_emails_own_not_a_mail_providers() {
        assert_eq!(
            company_domain("Jane@Acme.Example"),
            Some("acme.example".to_owned())
        );
        assert_eq!(
            company_domain(" ops@eu.acme.example. "),
            Some("eu.acme.example".to_owned())
        );
        for email in [
            "jane@gmail.com",
            "jo@Hotmail.com",
            "x@localhost",
            "no-at-sign",
            "a@.com",
            "a@b..c",
        ] {
            assert_eq!(company_domain(email), None, "{email}");
        }
    }
}
