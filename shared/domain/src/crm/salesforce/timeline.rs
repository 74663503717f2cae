//! What our records become in Salesforce: a customer's Contact (or Lead) fields, a message's
//! completed Task on that record, and an escalation's Case. Every text is cut, on a character
//! boundary, to the size Salesforce gives its field; a value that would be wrong once cut (an
//! email address) is left out instead.

use super::api::{self, SObject};
use super::ids::SalesforceId;
use super::settings::{CustomerObject, SalesforceSettings};
use crate::channel::{Channel, Direction};
use crate::crm::kustomer::escalation::history_note;
use crate::crm::priority::Priority;
use crate::crm::request::ApiRequest;
use crate::customer::Customer;
use crate::message::Message;
use crate::text::cut_chars;
use crate::time::Timestamp;
use serde_json::{Map, Value, json};

/// Task.Subject and Case.Subject hold this many characters.
pub const MAX_SUBJECT_CHARS: usize = 255;
/// Task.Description and Case.Description (long text areas) hold this many characters.
pub const MAX_DESCRIPTION_CHARS: usize = 32_000;
const MAX_FIRST_NAME_CHARS: usize = 40;
const MAX_LAST_NAME_CHARS: usize = 80;
const MAX_EMAIL_CHARS: usize = 80;
const MAX_PHONE_CHARS: usize = 40;
/// Lead.Company and a picklist value.
const MAX_COMPANY_CHARS: usize = 255;
/// Case.SuppliedName and Case.SuppliedEmail, Case.SuppliedPhone.
const MAX_SUPPLIED_CHARS: usize = 80;
/// Salesforce requires a LastName; a customer with no name at all has this one.
const NO_NAME: &str = "[not provided]";

/// How a channel is named to people.
fn label(channel: Channel) -> &'static str {
    match channel {
        Channel::Whatsapp => "WhatsApp",
        Channel::Email => "Email",
        Channel::Sms => "SMS",
        Channel::Facebook => "Messenger",
        Channel::Instagram => "Instagram",
    }
}

/// `text` without surrounding spaces, None when nothing is left.
fn present(text: Option<&str>) -> Option<&str> {
    text.map(str::trim).filter(|text| !text.is_empty())
}

/// The fields of our customer's Contact or Lead: names, email, phones, the Lead's Company, and
/// our id in the business's External ID field when it has one. Values we do not have are left
/// out, so that an update never clears what the business keeps.
pub fn customer_fields(customer: &Customer, settings: &SalesforceSettings) -> Map<String, Value> {
    let mut fields = Map::new();
    let (first, last) = names(customer);
    if let Some(first) = first {
        fields.insert(
            "FirstName".to_owned(),
            json!(cut_chars(&first, MAX_FIRST_NAME_CHARS, "…")),
        );
    }
    fields.insert(
        "LastName".to_owned(),
        json!(cut_chars(&last, MAX_LAST_NAME_CHARS, "…")),
    );
    // An address cut short is another address: one too long for the field is left out.
    if let Some(email) =
        present(customer.email.as_deref()).filter(|email| email.chars().count() <= MAX_EMAIL_CHARS)
    {
        fields.insert("Email".to_owned(), json!(email));
    }
    let phone = present(customer.phone.as_deref()).or(present(customer.whatsapp_number.as_deref()));
    for (name, value) in [
        ("Phone", phone),
        ("MobilePhone", present(customer.whatsapp_number.as_deref())),
    ] {
        if let Some(value) = value.filter(|value| value.chars().count() <= MAX_PHONE_CHARS) {
            fields.insert(name.to_owned(), json!(value));
        }
    }
    if settings.customer_object == CustomerObject::Lead {
        fields.insert(
            "Company".to_owned(),
            json!(cut_chars(&settings.lead_company, MAX_COMPANY_CHARS, "…")),
        );
    }
    if let Some(field) = &settings.external_id_field {
        fields.insert(field.as_str().to_owned(), json!(customer.id.as_str()));
    }
    fields
}

/// The first and last name: as given, else the display name split at its first space. Salesforce
/// requires a last name, so a single name is the last name.
fn names(customer: &Customer) -> (Option<String>, String) {
    let (first, last) = if customer.first_name.is_some() || customer.last_name.is_some() {
        (
            present(customer.first_name.as_deref()).map(str::to_owned),
            present(customer.last_name.as_deref()).map(str::to_owned),
        )
    } else {
        match customer.name.trim().split_once(' ') {
            Some((first, last)) => (
                present(Some(first)).map(str::to_owned),
                present(Some(last)).map(str::to_owned),
            ),
            None => (None, present(Some(&customer.name)).map(str::to_owned)),
        }
    };
    match (first, last) {
        (first, Some(last)) => (first, last),
        (Some(first), None) => (None, first),
        (None, None) => (None, NO_NAME.to_owned()),
    }
}

/// The request that writes a customer: an upsert by the business's External ID field when it
/// has one (never two records for one customer), else an update of the record found, else a new
/// record.
pub fn customer_request(
    customer: &Customer,
    settings: &SalesforceSettings,
    found: Option<&SalesforceId>,
) -> ApiRequest {
    let object = SObject::from(settings.customer_object);
    let fields = customer_fields(customer, settings);
    match (&settings.external_id_field, found) {
        (Some(field), _) => api::upsert(object, field, customer.id.as_str(), &fields),
        (None, Some(id)) => api::update(object, id, &fields),
        (None, None) => api::create(object, &fields),
    }
}

/// The completed Task a message becomes on the customer's record `who` (a Contact or a Lead):
/// its channel, direction, time and text, its attachments as links (`files`: name and link; a
/// file without a link is named alone).
pub fn message_task(
    message: &Message,
    files: &[(String, String)],
    who: &SalesforceId,
    settings: &SalesforceSettings,
) -> Map<String, Value> {
    let channel = label(message.channel);
    let (toward, verb) = match message.direction {
        Direction::Inbound => ("from the customer", "Received"),
        Direction::Outbound => ("to the customer", "Sent"),
    };
    let first_line = message
        .content
        .lines()
        .map(str::trim)
        .find(|line| !line.is_empty())
        .unwrap_or("(no text)");
    let at = Timestamp::parse_rfc3339(&message.created_at);
    let when = at.map_or_else(|| message.created_at.clone(), Timestamp::to_rfc3339);
    let mut description = format!("{verb} on {channel} at {when}\n\n{}", message.content.trim());
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
        description.push_str(&format!("\n\nAttachments:\n{}", listed.join("\n")));
    }
    let mut fields = Map::new();
    fields.insert(
        "Subject".to_owned(),
        json!(cut_chars(
            &format!("{channel} {toward}: {first_line}"),
            MAX_SUBJECT_CHARS,
            "…"
        )),
    );
    fields.insert(
        "Description".to_owned(),
        json!(cut_chars(&description, MAX_DESCRIPTION_CHARS, "…")),
    );
    if let Some(at) = at {
        let date: String = at.to_rfc3339().chars().take(10).collect();
        fields.insert("ActivityDate".to_owned(), json!(date));
    }
    fields.insert("Status".to_owned(), json!("Completed"));
    let subtype = if message.channel == Channel::Email {
        "Email"
    } else {
        "Task"
    };
    fields.insert("TaskSubtype".to_owned(), json!(subtype));
    fields.insert("WhoId".to_owned(), json!(who.as_str()));
    if let Some(kind) = &settings.task_type {
        fields.insert("Type".to_owned(), json!(kind));
    }
    if let Some(field) = &settings.task_channel_field {
        fields.insert(field.as_str().to_owned(), json!(message.channel.as_str()));
    }
    if let Some(field) = &settings.task_message_id_field {
        fields.insert(field.as_str().to_owned(), json!(message.id.as_str()));
    }
    fields
}

/// The request that records a message: an upsert by the business's Task External ID field when
/// it has one (a message delivered twice is one Task), else a new Task.
pub fn message_request(
    message: &Message,
    files: &[(String, String)],
    who: &SalesforceId,
    settings: &SalesforceSettings,
) -> ApiRequest {
    let fields = message_task(message, files, who, settings);
    match &settings.task_message_id_field {
        Some(field) => api::upsert(SObject::Task, field, message.id.as_str(), &fields),
        None => api::create(SObject::Task, &fields),
    }
}

/// The completed Task a note becomes: on the customer's record `who`, and on the conversation's
/// Case (`what`) when an escalation opened one.
pub fn note_task(
    body: &str,
    who: &SalesforceId,
    what: Option<&SalesforceId>,
    at: Timestamp,
) -> Map<String, Value> {
    let first_line = body
        .lines()
        .map(str::trim)
        .find(|line| !line.is_empty())
        .unwrap_or("(no text)");
    let mut fields = Map::new();
    fields.insert(
        "Subject".to_owned(),
        json!(cut_chars(&format!("Note: {first_line}"), MAX_SUBJECT_CHARS, "…")),
    );
    fields.insert(
        "Description".to_owned(),
        json!(cut_chars(body.trim(), MAX_DESCRIPTION_CHARS, "…")),
    );
    let date: String = at.to_rfc3339().chars().take(10).collect();
    fields.insert("ActivityDate".to_owned(), json!(date));
    fields.insert("Status".to_owned(), json!("Completed"));
    fields.insert("WhoId".to_owned(), json!(who.as_str()));
    if let Some(case) = what {
        fields.insert("WhatId".to_owned(), json!(case.as_str()));
    }
    fields
}

/// A Case's new priority, as the org names it.
pub fn case_priority(priority: Priority, settings: &SalesforceSettings) -> Map<String, Value> {
    let mut fields = Map::new();
    fields.insert(
        "Priority".to_owned(),
        json!(settings.case_priority_value(priority)),
    );
    fields
}

/// Who a Case is about: a Contact it is tied to, or (a Case cannot point at a Lead) the
/// customer's own name, email and phone.
#[derive(Debug, Clone, Copy)]
pub enum CaseCustomer<'a> {
    Contact(&'a SalesforceId),
    Supplied(&'a Customer),
}

/// What an escalation is: why, on which channel, how urgent, and the conversation so far.
#[derive(Debug, Clone, Copy)]
pub struct Escalation<'a> {
    /// The conversation's subject, when it has one; else the Case is named after the reason.
    pub subject: Option<&'a str>,
    pub reason: &'a str,
    pub channel: Option<Channel>,
    pub priority: Option<Priority>,
    pub history: &'a [Message],
}

/// The Case an escalation opens.
pub fn case_fields(
    escalation: &Escalation<'_>,
    customer: CaseCustomer<'_>,
    settings: &SalesforceSettings,
) -> Map<String, Value> {
    let subject = match present(escalation.subject) {
        Some(subject) => subject.to_owned(),
        None => format!("Escalated: {}", escalation.reason.trim()),
    };
    let priority = escalation.priority.unwrap_or(settings.case_priority);
    let mut fields = Map::new();
    fields.insert(
        "Subject".to_owned(),
        json!(cut_chars(&subject, MAX_SUBJECT_CHARS, "…")),
    );
    fields.insert(
        "Description".to_owned(),
        json!(history_note(
            escalation.reason,
            escalation.history,
            MAX_DESCRIPTION_CHARS,
            "Salesforce's 32,000-character limit"
        )),
    );
    fields.insert(
        "Priority".to_owned(),
        json!(settings.case_priority_value(priority)),
    );
    fields.insert("Status".to_owned(), json!(settings.case_status));
    if let Some(channel) = escalation.channel {
        fields.insert("Origin".to_owned(), json!(settings.case_origins.of(channel)));
    }
    match customer {
        CaseCustomer::Contact(id) => {
            fields.insert("ContactId".to_owned(), json!(id.as_str()));
        }
        CaseCustomer::Supplied(customer) => {
            let (first, last) = names(customer);
            let name = match first {
                Some(first) => format!("{first} {last}"),
                None => last,
            };
            fields.insert(
                "SuppliedName".to_owned(),
                json!(cut_chars(&name, MAX_SUPPLIED_CHARS, "…")),
            );
            if let Some(email) =
                present(customer.email.as_deref()).filter(|email| email.chars().count() <= MAX_SUPPLIED_CHARS)
            {
                fields.insert("SuppliedEmail".to_owned(), json!(email));
            }
            let phone = present(customer.phone.as_deref()).or(present(customer.whatsapp_number.as_deref()));
            if let Some(phone) = phone.filter(|phone| phone.chars().count() <= MAX_PHONE_CHARS) {
                fields.insert("SuppliedPhone".to_owned(), json!(phone));
            }
        }
    }
    fields
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::crm::request::Method;
    use crate::crm::test_support::{customer, message};

    fn settings(mut input: Value) -> SalesforceSettings {
        if let Some(fields) = input.as_object_mut() {
            fields.insert("instance_url".to_owned(), json!("https://acme.my.salesforce.com"));
        }
        SalesforceSettings::parse(&input, false).unwrap_or_else(|error| panic!("{error:?}"))
    }

    fn who() -> SalesforceId {
        SalesforceId::parse("0035g00000abcde").unwrap_or_else(|| panic!())
    }

    #[test]
    fn a_note_is_a_completed_task_on_the_record_and_on_the_case_when_there_is_one() {
        let case = SalesforceId::parse("5005g00000qwert").unwrap_or_else(|| panic!());
        let at = Timestamp::parse_rfc3339("2026-11-26T12:00:00Z").unwrap_or_else(|| panic!());
        let fields = note_task("\n  Called back\nno answer", &who(), Some(&case), at);
        assert_eq!(
            Value::Object(fields),
            json!({
                "Subject": "Note: Called back",
                "Description": "Called back\nno answer",
                "ActivityDate": "2026-11-26",
                "Status": "Completed",
                "WhoId": "0035g00000abcdeAAA",
                "WhatId": "5005g00000qwertAAA",
            })
        );
        let alone = note_task(&"x".repeat(40_000), &who(), None, at);
        assert!(!alone.contains_key("WhatId"));
        assert_eq!(
            alone["Description"].as_str().map(|text| text.chars().count()),
            Some(MAX_DESCRIPTION_CHARS)
        );
        let priority = case_priority(Priority::new(5).unwrap_or_else(|| panic!()), &settings(json!({})));
        assert_eq!(Value::Object(priority), json!({ "Priority": "High" }));
    }

    #[test]
    fn a_customer_becomes_a_contact_with_what_we_know_and_nothing_we_do_not() {
        let fields = customer_fields(
            &customer("Ada Lovelace", Some("ada@acme.example"), Some("+447700900123")),
            &settings(json!({})),
        );
        assert_eq!(
            Value::Object(fields),
            json!({
                "FirstName": "Ada",
                "LastName": "Lovelace",
                "Email": "ada@acme.example",
                "Phone": "+447700900123",
                "MobilePhone": "+447700900123",
            })
        );
        let single = customer_fields(&customer("Bo", None, None), &settings(json!({})));
        assert_eq!(
            Value::Object(single),
            json!({ "LastName": "Bo" }),
            "Salesforce requires a last name"
        );
    }

    #[test]
    fn a_lead_has_a_company_and_our_id_goes_in_the_external_id_field() {
        let lead = settings(json!({ "customer_object": "lead", "external_id_field": "Crm_Edge_Id__c" }));
        let person = customer("Ada Lovelace", None, None);
        let fields = customer_fields(&person, &lead);
        assert_eq!(fields.get("Company"), Some(&json!("[not provided]")));
        assert_eq!(fields.get("Crm_Edge_Id__c"), Some(&json!(person.id.as_str())));
        let request = customer_request(&person, &lead, None);
        assert_eq!(request.method, Method::Patch);
        assert_eq!(
            request.path,
            format!(
                "/services/data/v66.0/sobjects/Lead/Crm_Edge_Id__c/{}",
                person.id.as_str()
            )
        );
        let plain = settings(json!({}));
        assert_eq!(
            customer_request(&person, &plain, None).path,
            "/services/data/v66.0/sobjects/Contact"
        );
        assert_eq!(
            customer_request(&person, &plain, Some(&who())).path,
            "/services/data/v66.0/sobjects/Contact/0035g00000abcdeAAA"
        );
    }

    #[test]
    fn values_are_cut_to_salesforces_field_sizes_and_a_too_long_email_is_left_out() {
        let long_name = format!("{} {}", "é".repeat(60), "ß".repeat(100));
        let long_email = format!("{}@acme.example", "a".repeat(80));
        let fields = customer_fields(
            &customer(&long_name, Some(&long_email), Some(&"9".repeat(41))),
            &settings(json!({})),
        );
        let chars = |name: &str| {
            fields
                .get(name)
                .and_then(Value::as_str)
                .map(|text| text.chars().count())
        };
        assert_eq!(chars("FirstName"), Some(40));
        assert_eq!(chars("LastName"), Some(80));
        assert_eq!(chars("Email"), None);
        assert_eq!(chars("MobilePhone"), None);
    }

    #[test]
    fn a_message_is_a_completed_task_with_its_channel_time_and_text() {
        let task = message_task(
            &message(Channel::Whatsapp, Direction::Inbound, "Hello\nI need help"),
            &[],
            &who(),
            &settings(json!({ "task_channel_field": "Channel__c", "task_type": "Other" })),
        );
        assert_eq!(task["Subject"], "WhatsApp from the customer: Hello");
        assert_eq!(
            task["Description"],
            "Received on WhatsApp at 2026-11-27T10:00:00.000Z\n\nHello\nI need help"
        );
        assert_eq!(task["ActivityDate"], "2026-11-27");
        assert_eq!(task["Status"], "Completed");
        assert_eq!(task["TaskSubtype"], "Task");
        assert_eq!(task["WhoId"], "0035g00000abcdeAAA");
        assert_eq!(task["Type"], "Other");
        assert_eq!(task["Channel__c"], "whatsapp");
        let email = message_task(
            &message(Channel::Email, Direction::Outbound, "Re: order"),
            &[],
            &who(),
            &settings(json!({})),
        );
        assert_eq!(email["TaskSubtype"], "Email");
        assert_eq!(email["Subject"], "Email to the customer: Re: order");
    }

    #[test]
    fn attachments_follow_the_text_as_links() {
        let files = [
            (
                "receipt.png".to_owned(),
                "https://api.example/dl?sig=1".to_owned(),
            ),
            ("unsigned.pdf".to_owned(), String::new()),
        ];
        let task = message_task(
            &message(Channel::Sms, Direction::Inbound, "see"),
            &files,
            &who(),
            &settings(json!({})),
        );
        assert_eq!(
            task["Description"],
            "Received on SMS at 2026-11-27T10:00:00.000Z\n\nsee\n\nAttachments:\nreceipt.png: https://api.example/dl?sig=1\nunsigned.pdf"
        );
    }

    #[test]
    fn a_long_message_is_cut_to_the_tasks_sizes_on_character_boundaries() {
        let text = "😀".repeat(40_000);
        let task = message_task(
            &message(Channel::Facebook, Direction::Inbound, &text),
            &[],
            &who(),
            &settings(json!({})),
        );
        let count = |name: &str| task[name].as_str().map(|text| text.chars().count());
        assert_eq!(count("Subject"), Some(255));
        assert_eq!(count("Description"), Some(32_000));
        assert!(
            task["Description"]
                .as_str()
                .is_some_and(|text| text.ends_with('…'))
        );
    }

    #[test]
    fn a_message_with_the_business_task_id_field_is_upserted_once() {
        let keyed = settings(json!({ "task_message_id_field": "Crm_Edge_Message_Id__c" }));
        let sent = message(Channel::Instagram, Direction::Outbound, "hi");
        let request = message_request(&sent, &[], &who(), &keyed);
        assert_eq!(
            request.path,
            format!(
                "/services/data/v66.0/sobjects/Task/Crm_Edge_Message_Id__c/{}",
                sent.id.as_str()
            )
        );
        assert_eq!(
            request
                .body
                .as_ref()
                .and_then(|body| body.get("Crm_Edge_Message_Id__c")),
            None,
            "the id travels in the path"
        );
        assert_eq!(
            message_request(&sent, &[], &who(), &settings(json!({}))).path,
            "/services/data/v66.0/sobjects/Task"
        );
    }

    #[test]
    fn an_escalation_opens_a_case_with_its_priority_origin_and_history() {
        let history = [message(Channel::Whatsapp, Direction::Inbound, "I want a person")];
        let escalation = Escalation {
            subject: None,
            reason: "asked for a human",
            channel: Some(Channel::Whatsapp),
            priority: Some(Priority::URGENT),
            history: &history,
        };
        let custom =
            settings(json!({ "case_origins": { "whatsapp": "WhatsApp" }, "case_status": "Working" }));
        let case = case_fields(&escalation, CaseCustomer::Contact(&who()), &custom);
        assert_eq!(case["Subject"], "Escalated: asked for a human");
        assert_eq!(case["Priority"], "High");
        assert_eq!(case["Origin"], "WhatsApp");
        assert_eq!(case["Status"], "Working");
        assert_eq!(case["ContactId"], "0035g00000abcdeAAA");
        let description = case["Description"].as_str().unwrap_or_default();
        assert!(
            description.contains("customer (whatsapp): I want a person"),
            "{description}"
        );

        let named = Escalation {
            subject: Some("Order 1234 never arrived"),
            priority: None,
            channel: None,
            ..escalation
        };
        let case = case_fields(
            &named,
            CaseCustomer::Contact(&who()),
            &settings(json!({ "case_priority": 2 })),
        );
        assert_eq!(case["Subject"], "Order 1234 never arrived");
        assert_eq!(case["Priority"], "Low", "the business's default priority");
        assert_eq!(case.get("Origin"), None);
    }

    #[test]
    fn a_leads_case_names_the_customer_it_cannot_point_at() {
        let escalation = Escalation {
            subject: Some(&"x".repeat(300)),
            reason: "angry",
            channel: Some(Channel::Email),
            priority: None,
            history: &[],
        };
        let person = customer("Ada Lovelace", Some("ada@acme.example"), Some("+447700900123"));
        let case = case_fields(
            &escalation,
            CaseCustomer::Supplied(&person),
            &settings(json!({ "customer_object": "lead" })),
        );
        assert_eq!(case["SuppliedName"], "Ada Lovelace");
        assert_eq!(case["SuppliedEmail"], "ada@acme.example");
        assert_eq!(case["SuppliedPhone"], "+447700900123");
        assert_eq!(case["Origin"], "Email");
        assert_eq!(case.get("ContactId"), None);
        assert_eq!(
            case["Subject"].as_str().map(|text| text.chars().count()),
            Some(255)
        );
    }
}
