//! Krayin's REST API (the `krayin/rest-api` package) as we use it: the requests (method, path
//! under `/api/v1`, query, JSON body), the contact they are built from, and how to read its
//! `{data, message}` answers and its Laravel errors.
//!
//! Every id put into a path is an integer and every value put into a query is percent-encoded,
//! so nothing a contact writes can add a segment or a parameter.

use super::ids::{ActivityId, LeadId, LeadSourceId, LeadTypeId, OrganizationId, PersonId, StageId, UserId};
use super::settings::{KrayinSettings, MAX_LEAD_VALUE};
use crate::crm::chatwoot::ChatwootContact;
use crate::crm::request::percent_encoded;
pub use crate::crm::request::{ApiRequest, Method};
use crate::customer::Customer;
use crate::email::Email;
use crate::phone::Phone;
use crate::text::cut_chars;
use serde_json::{Map, Value, json};

const MAX_NAME_CHARS: usize = 200;
const MAX_DESCRIPTION_CHARS: usize = 5_000;
/// The label Krayin's own forms give an address or number when nobody chose one.
const LABEL: &str = "work";

/// The user the token belongs to (`AccountController::get`): the cheapest call that proves a
/// token works.
/// Why [`current_user`] came back 404: Krayin answers its REST API only with the package
/// installed, and a 404 there says nothing about a record.
pub const NO_REST_API: &str = "Krayin answered 404 for its REST API (GET /api/v1/get): install Krayin's REST API \
     package (krayin/rest-api) on it, or check that settings.base_url is the Krayin's own address";

pub fn current_user() -> ApiRequest {
    ApiRequest::get("/api/v1/get".to_owned())
}

/// Persons whose emails contain this address. Krayin's search (l5-repository's RequestCriteria)
/// matches `like %value%` over the stored JSON, so `ann@x.com` also finds `joann@x.com`: pick
/// the exact match with [`Person::has_email`]. An [`Email`] holds no `:` or `;`, which the
/// criteria's syntax would split on.
pub fn search_person_by_email(email: &Email) -> ApiRequest {
    person_search("emails", email.as_str())
}

/// Persons whose numbers contain this E.164 number; pick the exact one with
/// [`Person::has_phone`].
pub fn search_person_by_phone(phone: &Phone) -> ApiRequest {
    person_search("contact_numbers", phone.as_str())
}

fn person_search(field: &str, value: &str) -> ApiRequest {
    ApiRequest::get("/api/v1/contacts/persons/search".to_owned()).query(format!(
        "search={field}%3A{}&searchFields={field}%3Alike&limit=10",
        percent_encoded(value)
    ))
}

pub fn create_person(person: &PersonFields) -> ApiRequest {
    ApiRequest::with(Method::Post, "/api/v1/contacts/persons".to_owned(), person.body())
}

/// Replaces the fields sent (lists such as `emails` are replaced whole).
pub fn update_person(person_id: PersonId, person: &PersonFields) -> ApiRequest {
    ApiRequest::with(
        Method::Put,
        format!("/api/v1/contacts/persons/{person_id}"),
        person.body(),
    )
}

/// Deletes the person (an erasure here): 200, or 404 when there is none.
pub fn delete_person(person_id: PersonId) -> ApiRequest {
    ApiRequest::delete(format!("/api/v1/contacts/persons/{person_id}"))
}

/// Organizations named exactly `name`: Krayin's index turns each query parameter into
/// `whereIn(column, explode(',', value))`, an exact match. A name with a comma would be split
/// into several, so there is no search for it: the runtime then sets
/// [`PersonFields::organization_name`], which Krayin finds or creates by exact name itself.
pub fn search_organization(name: &str) -> Option<ApiRequest> {
    let name = name.trim();
    if name.is_empty() || name.contains(',') {
        return None;
    }
    Some(
        ApiRequest::get("/api/v1/contacts/organizations".to_owned())
            .query(format!("name={}&limit=10", percent_encoded(name))),
    )
}

pub fn create_organization(organization: &OrganizationFields) -> ApiRequest {
    ApiRequest::with(
        Method::Post,
        "/api/v1/contacts/organizations".to_owned(),
        organization.body(),
    )
}

/// A lead in `lead.lead_pipeline_stage_id`, or (none) in the default pipeline's first stage.
pub fn create_lead(lead: &LeadFields) -> ApiRequest {
    ApiRequest::with(
        Method::Post,
        "/api/v1/leads".to_owned(),
        lead.body(lead.lead_pipeline_stage_id),
    )
}

/// Updates a lead's fields and keeps it in `current_stage_id`: Krayin's update moves a lead sent
/// without a stage to the default pipeline's first stage, so the stage is always sent.
pub fn update_lead(lead_id: LeadId, current_stage_id: StageId, lead: &LeadFields) -> ApiRequest {
    ApiRequest::with(
        Method::Put,
        format!("/api/v1/leads/{lead_id}"),
        lead.body(Some(current_stage_id)),
    )
}

/// Moves a lead to another stage of its pipeline (Krayin answers 404 for a stage of another).
/// One lead, as its stage and products are now.
pub fn get_lead(lead_id: LeadId) -> ApiRequest {
    ApiRequest::get(format!("/api/v1/leads/{lead_id}"))
}

pub fn move_lead(lead_id: LeadId, stage_id: StageId) -> ApiRequest {
    ApiRequest::with(
        Method::Put,
        format!("/api/v1/leads/stage/edit/{lead_id}"),
        json!({ "lead_pipeline_stage_id": stage_id }),
    )
}

pub fn create_activity(activity: &ActivityFields) -> ApiRequest {
    ApiRequest::with(Method::Post, "/api/v1/activities".to_owned(), activity.body())
}

/// Krayin creates every activity but a note as not done, whatever the request says; this marks
/// one done afterwards.
pub fn mark_activity_done(activity_id: ActivityId) -> ApiRequest {
    ApiRequest::with(
        Method::Put,
        format!("/api/v1/activities/{activity_id}"),
        json!({ "is_done": 1 }),
    )
}

/// Brings an activity up to what it records now: its title, its comment, and whether it is done
/// (a note is left done, as Krayin keeps notes). It carries no `participants`: Krayin's update
/// replaces every participant with those a body names, and would drop a salesperson's additions.
pub fn update_activity(activity_id: ActivityId, activity: &ActivityFields, done: bool) -> ApiRequest {
    let mut body = json!({ "title": activity.title, "comment": activity.comment });
    if activity.activity_type != ActivityType::Note {
        body["is_done"] = json!(u8::from(done));
    }
    ApiRequest::with(Method::Put, format!("/api/v1/activities/{activity_id}"), body)
}

/// All pipelines with their stages, in Krayin's order; unpaginated.
pub fn pipelines() -> ApiRequest {
    ApiRequest::get("/api/v1/settings/pipelines".to_owned()).query("pagination=0".to_owned())
}

/// A company as a contact states it.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Company {
    pub name: String,
    pub address: Option<String>,
    pub city: Option<String>,
    pub state: Option<String>,
    pub country: Option<String>,
    pub postcode: Option<String>,
}

/// A contact as the Krayin mapping needs it, from either of its sources: one of our customers
/// or a Chatwoot contact.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Contact {
    /// Never empty: Krayin requires a person's name.
    pub name: String,
    pub emails: Vec<Email>,
    /// E.164.
    pub phones: Vec<Phone>,
    pub job_title: Option<String>,
    pub company: Option<Company>,
    pub lead_value: Option<f64>,
    /// Lines of the lead's description.
    pub description: Vec<String>,
}

fn clean(text: Option<&str>) -> Option<String> {
    text.map(str::trim)
        .filter(|text| !text.is_empty())
        .map(|text| cut_chars(text, MAX_NAME_CHARS, "…"))
}

fn push_unique<T: PartialEq>(list: &mut Vec<T>, item: Option<T>) {
    if let Some(item) = item
        && !list.contains(&item)
    {
        list.push(item);
    }
}

impl Contact {
    /// Job title, company and lead value are read from the customer's custom fields under the
    /// names the integration's guide uses for Chatwoot (`job_title`, `company_name`,
    /// `company_city`…, `lead_value`).
    pub fn from_customer(customer: &Customer) -> Self {
        let custom = |name: &str| clean(customer.custom_fields.get(name).and_then(Value::as_str));
        let mut emails = Vec::new();
        push_unique(
            &mut emails,
            customer.email.as_deref().and_then(|e| Email::parse(e).ok()),
        );
        let mut phones = Vec::new();
        for number in [&customer.phone, &customer.whatsapp_number] {
            push_unique(
                &mut phones,
                number.as_deref().and_then(|n| Phone::parse(n, None).ok()),
            );
        }
        let mut description = Vec::new();
        if let Some(notes) = clean(customer.notes.as_deref()) {
            description.push(notes);
        }
        if let Some(address) = clean(customer.address.as_deref()) {
            description.push(format!("Address: {address}"));
        }
        if !customer.tags.is_empty() {
            description.push(format!("Tags: {}", customer.tags.join(", ")));
        }
        Self {
            name: clean(Some(&customer.name))
                .or_else(|| emails.first().map(|e: &Email| e.as_str().to_owned()))
                .unwrap_or_else(|| format!("Customer {}", customer.id)),
            emails,
            phones,
            job_title: custom("job_title"),
            company: custom("company_name").map(|name| Company {
                name,
                address: custom("company_address"),
                city: custom("company_city"),
                state: custom("company_state"),
                country: custom("company_country"),
                postcode: custom("company_zipcode"),
            }),
            lead_value: lead_value(customer.custom_fields.get("lead_value")),
            description,
        }
    }

    pub fn from_chatwoot(contact: &ChatwootContact) -> Self {
        let mut emails = Vec::new();
        push_unique(
            &mut emails,
            contact.email.as_deref().and_then(|e| Email::parse(e).ok()),
        );
        let mut phones = Vec::new();
        push_unique(
            &mut phones,
            contact
                .phone_number
                .as_deref()
                .and_then(|n| Phone::parse(n, None).ok()),
        );
        let mut description = Vec::new();
        if let Some(about) = clean(contact.description.as_deref()) {
            description.push(about);
        }
        description.push(format!("Chatwoot contact #{}", contact.id));
        Self {
            name: clean(contact.name.as_deref())
                .or_else(|| emails.first().map(|e: &Email| e.as_str().to_owned()))
                .or_else(|| phones.first().map(|p: &Phone| p.as_str().to_owned()))
                .unwrap_or_else(|| format!("Chatwoot contact #{}", contact.id)),
            emails,
            phones,
            job_title: clean(contact.job_title.as_deref()),
            company: clean(contact.company_name.as_deref()).map(|name| Company {
                name,
                address: clean(contact.company_address.as_deref()),
                city: clean(contact.company_city.as_deref()),
                state: clean(contact.company_state.as_deref()),
                country: clean(contact.company_country.as_deref()),
                postcode: clean(contact.company_zipcode.as_deref()),
            }),
            lead_value: contact.lead_value.filter(|v| (0.0..=MAX_LEAD_VALUE).contains(v)),
            description,
        }
    }
}

fn lead_value(value: Option<&Value>) -> Option<f64> {
    match value? {
        Value::Number(number) => number.as_f64(),
        Value::String(text) => crate::json::number_in_text(text),
        _ => None,
    }
    .filter(|v| v.is_finite() && (0.0..=MAX_LEAD_VALUE).contains(v))
}

/// A Krayin person's fields (`contacts/persons`).
#[derive(Debug, Clone, PartialEq)]
pub struct PersonFields {
    pub name: String,
    pub emails: Vec<String>,
    pub contact_numbers: Vec<String>,
    pub job_title: Option<String>,
    pub organization_id: Option<OrganizationId>,
    /// Krayin finds the organization of this exact name or creates it (`PersonRepository`); for
    /// names [`search_organization`] cannot look up.
    pub organization_name: Option<String>,
    /// The sales owner.
    pub user_id: Option<UserId>,
}

impl PersonFields {
    /// Without an organization: the runtime links one once it knows its id.
    pub fn from_contact(contact: &Contact) -> Self {
        Self {
            name: contact.name.clone(),
            emails: contact.emails.iter().map(|e| e.as_str().to_owned()).collect(),
            contact_numbers: contact.phones.iter().map(|p| p.as_str().to_owned()).collect(),
            job_title: contact.job_title.clone(),
            organization_id: None,
            organization_name: None,
            user_id: None,
        }
    }

    fn body(&self) -> Value {
        let labelled = |values: &[String]| -> Vec<Value> {
            values
                .iter()
                .map(|value| json!({ "value": value, "label": LABEL }))
                .collect()
        };
        let mut body = Map::new();
        body.insert("name".to_owned(), json!(self.name));
        // `emails` is required when sent, so an empty list is not sent; `contact_numbers` must be
        // (PersonController reads it unconditionally) with a first entry (the repository reads
        // index 0): a person without a number gets one empty number, which Krayin keeps and
        // never checks for uniqueness.
        if !self.emails.is_empty() {
            body.insert("emails".to_owned(), json!(labelled(&self.emails)));
        }
        let numbers = if self.contact_numbers.is_empty() {
            vec![json!({ "value": "", "label": LABEL })]
        } else {
            labelled(&self.contact_numbers)
        };
        body.insert("contact_numbers".to_owned(), json!(numbers));
        if let Some(job_title) = &self.job_title {
            body.insert("job_title".to_owned(), json!(job_title));
        }
        if let Some(id) = self.organization_id {
            body.insert("organization_id".to_owned(), json!(id));
        } else if let Some(name) = &self.organization_name {
            body.insert("organization_name".to_owned(), json!(name));
        }
        if let Some(id) = self.user_id {
            body.insert("user_id".to_owned(), json!(id));
        }
        Value::Object(body)
    }
}

/// A Krayin organization's fields (`contacts/organizations`).
#[derive(Debug, Clone, PartialEq)]
pub struct OrganizationFields {
    pub name: String,
    pub company: Company,
    pub user_id: Option<UserId>,
}

impl OrganizationFields {
    /// None when the contact names no company.
    pub fn from_contact(contact: &Contact) -> Option<Self> {
        let company = contact.company.clone()?;
        Some(Self {
            name: company.name.clone(),
            company,
            user_id: None,
        })
    }

    fn body(&self) -> Value {
        let mut body = Map::new();
        body.insert("name".to_owned(), json!(self.name));
        let company = &self.company;
        let parts = [
            &company.address,
            &company.country,
            &company.state,
            &company.city,
            &company.postcode,
        ];
        if parts.iter().any(|part| part.is_some()) {
            let part = |value: &Option<String>| json!(value.as_deref().unwrap_or(""));
            body.insert(
                "address".to_owned(),
                json!({
                    "address": part(&company.address),
                    "country": part(&company.country),
                    "state": part(&company.state),
                    "city": part(&company.city),
                    "postcode": part(&company.postcode),
                }),
            );
        }
        if let Some(id) = self.user_id {
            body.insert("user_id".to_owned(), json!(id));
        }
        Value::Object(body)
    }
}

/// A Krayin lead's fields (`leads`).
#[derive(Debug, Clone, PartialEq)]
pub struct LeadFields {
    pub title: String,
    pub description: Option<String>,
    pub lead_value: Option<f64>,
    pub lead_source_id: Option<LeadSourceId>,
    pub lead_type_id: Option<LeadTypeId>,
    /// None: the default pipeline's first stage (on creation).
    pub lead_pipeline_stage_id: Option<StageId>,
    pub person_id: PersonId,
    pub user_id: Option<UserId>,
}

impl LeadFields {
    /// The lead of a contact's person: its name as the title, its description lines, its lead
    /// value or the configured default, and the configured source, type, owner and first stage
    /// (`initial_stage`, from [`KrayinSettings::initial_stage`]).
    pub fn from_contact(
        contact: &Contact,
        person_id: PersonId,
        settings: &KrayinSettings,
        initial_stage: Option<StageId>,
    ) -> Self {
        let description = (!contact.description.is_empty())
            .then(|| cut_chars(&contact.description.join("\n"), MAX_DESCRIPTION_CHARS, "…"));
        Self {
            title: contact.name.clone(),
            description,
            lead_value: contact.lead_value.or(settings.default_lead_value),
            lead_source_id: settings.lead_source_id,
            lead_type_id: settings.lead_type_id,
            lead_pipeline_stage_id: initial_stage,
            person_id,
            user_id: settings.user_id,
        }
    }

    fn body(&self, stage: Option<StageId>) -> Value {
        let mut body = Map::new();
        body.insert("title".to_owned(), json!(self.title));
        body.insert(
            "description".to_owned(),
            json!(self.description.as_deref().unwrap_or("")),
        );
        // Krayin's form makes these required when present: absent, not null, when unknown.
        let optional = [
            ("lead_value", self.lead_value.map(|v| json!(v))),
            ("lead_source_id", self.lead_source_id.map(|v| json!(v))),
            ("lead_type_id", self.lead_type_id.map(|v| json!(v))),
            ("user_id", self.user_id.map(|v| json!(v))),
        ];
        for (name, value) in optional {
            if let Some(value) = value {
                body.insert(name.to_owned(), value);
            }
        }
        // The controller reads this key unconditionally: it must be present, null or not.
        body.insert("lead_pipeline_stage_id".to_owned(), json!(stage));
        body.insert("person_id".to_owned(), json!(self.person_id));
        body.insert("person".to_owned(), json!({ "id": self.person_id }));
        Value::Object(body)
    }
}

/// What Krayin accepts as an activity `type` for what we record (see [`super::activity`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ActivityType {
    /// Created done; needs no schedule.
    Note,
    /// Created not done, with `schedule_from`/`schedule_to`.
    Call,
    /// Like a call; Krayin stores the type as given.
    Email,
}

impl ActivityType {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Note => "note",
            Self::Call => "call",
            Self::Email => "email",
        }
    }

    /// Whether Krayin wants `schedule_from` and `schedule_to` (all types but note and file).
    pub fn needs_schedule(self) -> bool {
        self != Self::Note
    }
}

/// A Krayin activity's fields (`activities`). Krayin ties an activity to a contact in two
/// independent ways, and we use both: the record it belongs to, which Krayin's listener
/// (`Admin\Listeners\Activity::afterUpdateOrCreate`) takes from `lead_id`, or else from
/// `person_id`, never both (the lead's page lists it, or else the person's); and its
/// participants, `participants[persons][]` and `participants[users][]`, which
/// `ActivityRepository::create` stores whatever else the body carries. So an activity of a
/// contact with a lead sits on the lead and names the person as its participant, as the guide's
/// "Link to Person" asks.
#[derive(Debug, Clone, PartialEq)]
pub struct ActivityFields {
    pub activity_type: ActivityType,
    pub title: String,
    pub comment: String,
    /// `YYYY-MM-DD HH:MM:SS`, UTC.
    pub schedule_from: Option<String>,
    pub schedule_to: Option<String>,
    pub lead_id: Option<LeadId>,
    pub person_id: Option<PersonId>,
}

impl ActivityFields {
    fn body(&self) -> Value {
        let mut body = Map::new();
        body.insert("type".to_owned(), json!(self.activity_type.as_str()));
        body.insert("title".to_owned(), json!(self.title));
        body.insert("comment".to_owned(), json!(self.comment));
        if let (Some(from), Some(to)) = (&self.schedule_from, &self.schedule_to) {
            body.insert("schedule_from".to_owned(), json!(from));
            body.insert("schedule_to".to_owned(), json!(to));
        }
        match (self.lead_id, self.person_id) {
            (Some(lead), _) => body.insert("lead_id".to_owned(), json!(lead)),
            (None, Some(person)) => body.insert("person_id".to_owned(), json!(person)),
            (None, None) => None,
        };
        if let Some(person) = self.person_id {
            body.insert("participants".to_owned(), json!({ "persons": [person] }));
        }
        Value::Object(body)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::CustomerId;

    fn email(text: &str) -> Email {
        Email::parse(text).unwrap_or_else(|e| panic!("{e}"))
    }

    fn phone(text: &str) -> Phone {
        Phone::parse(text, None).unwrap_or_else(|e| panic!("{e:?}"))
    }

    fn settings() -> KrayinSettings {
        KrayinSettings::parse(
            &json!({ "base_url": "https://crm.example.com", "user_id": 3, "lead_source_id": 1, "lead_type_id": 2,
                     "default_lead_value": 500 }),
            false,
        )
        .unwrap_or_else(|e| panic!("{e}"))
    }

    fn chatwoot_contact() -> ChatwootContact {
        ChatwootContact {
            id: 42,
            name: Some("Ann Lee".to_owned()),
            email: Some("Ann@Acme.com".to_owned()),
            phone_number: Some("+1 415 555 0123".to_owned()),
            job_title: Some("VP of Engineering".to_owned()),
            company_name: Some("Acme Corp".to_owned()),
            company_city: Some("San Francisco".to_owned()),
            company_zipcode: Some("94105".to_owned()),
            lead_value: Some(75_000.0),
            description: Some("Met at the fair".to_owned()),
            ..ChatwootContact::default()
        }
    }

    #[test]
    fn lookups_encode_every_value_into_the_query() {
        let cases = [
            (
                search_person_by_email(&email("ann+test@example.com")),
                "/api/v1/contacts/persons/search",
                Some("search=emails%3Aann%2Btest%40example.com&searchFields=emails%3Alike&limit=10"),
            ),
            (
                search_person_by_phone(&phone("+14155550123")),
                "/api/v1/contacts/persons/search",
                Some("search=contact_numbers%3A%2B14155550123&searchFields=contact_numbers%3Alike&limit=10"),
            ),
            (current_user(), "/api/v1/get", None),
            (pipelines(), "/api/v1/settings/pipelines", Some("pagination=0")),
        ];
        for (request, path, query) in cases {
            assert_eq!((request.method, request.path.as_str()), (Method::Get, path));
            assert_eq!(request.query.as_deref(), query);
            assert_eq!(request.body, None);
        }
        let organization = search_organization(" Acme & Sons ");
        assert_eq!(
            organization.and_then(|r| r.query),
            Some("name=Acme%20%26%20Sons&limit=10".to_owned())
        );
        assert_eq!(search_organization("Acme, Inc."), None);
        assert_eq!(search_organization(" "), None);
    }

    #[test]
    fn a_chatwoot_contact_becomes_a_person_with_labelled_email_and_number() {
        let contact = Contact::from_chatwoot(&chatwoot_contact());
        assert_eq!(contact.phones, vec![phone("+14155550123")]);
        let mut person = PersonFields::from_contact(&contact);
        person.organization_id = Some(OrganizationId(789));
        person.user_id = Some(UserId(3));
        let request = create_person(&person);
        assert_eq!(
            (request.method, request.path.as_str()),
            (Method::Post, "/api/v1/contacts/persons")
        );
        assert_eq!(
            request.body,
            Some(json!({
                "name": "Ann Lee",
                "emails": [{ "value": "ann@acme.com", "label": "work" }],
                "contact_numbers": [{ "value": "+14155550123", "label": "work" }],
                "job_title": "VP of Engineering",
                "organization_id": 789,
                "user_id": 3,
            }))
        );
        assert_eq!(
            update_person(PersonId(123), &person).path,
            "/api/v1/contacts/persons/123"
        );
        assert_eq!(update_person(PersonId(123), &person).method, Method::Put);
    }

    #[test]
    fn a_person_without_email_sends_no_emails_but_always_contact_numbers() {
        let contact = Contact::from_chatwoot(&ChatwootContact {
            id: 9,
            ..ChatwootContact::default()
        });
        assert_eq!(contact.name, "Chatwoot contact #9");
        let mut person = PersonFields::from_contact(&contact);
        person.organization_name = Some("Acme, Inc.".to_owned());
        assert_eq!(
            create_person(&person).body,
            Some(
                json!({ "name": "Chatwoot contact #9", "contact_numbers": [{ "value": "", "label": "work" }], "organization_name": "Acme, Inc." })
            )
        );
    }

    #[test]
    fn an_organization_carries_the_address_parts_the_contact_gave() {
        let contact = Contact::from_chatwoot(&chatwoot_contact());
        let organization = OrganizationFields::from_contact(&contact).unwrap_or_else(|| panic!("no company"));
        assert_eq!(
            create_organization(&organization).body,
            Some(json!({
                "name": "Acme Corp",
                "address": { "address": "", "country": "", "state": "", "city": "San Francisco", "postcode": "94105" },
            }))
        );
        let bare = Contact {
            name: "Bo".to_owned(),
            ..Contact::default()
        };
        assert_eq!(OrganizationFields::from_contact(&bare), None);
    }

    #[test]
    fn a_lead_sends_its_stage_key_always_and_optional_ids_only_when_known() {
        let contact = Contact::from_chatwoot(&chatwoot_contact());
        let lead = LeadFields::from_contact(&contact, PersonId(123), &settings(), None);
        let request = create_lead(&lead);
        assert_eq!(
            (request.method, request.path.as_str()),
            (Method::Post, "/api/v1/leads")
        );
        assert_eq!(
            request.body,
            Some(json!({
                "title": "Ann Lee",
                "description": "Met at the fair\nChatwoot contact #42",
                "lead_value": 75000.0,
                "lead_source_id": 1,
                "lead_type_id": 2,
                "user_id": 3,
                "lead_pipeline_stage_id": null,
                "person_id": 123,
                "person": { "id": 123 },
            }))
        );
        let bare = KrayinSettings::parse(&json!({ "base_url": "https://crm.example.com" }), false)
            .unwrap_or_else(|e| panic!("{e}"));
        let minimal = LeadFields::from_contact(
            &Contact {
                name: "Bo".to_owned(),
                ..Contact::default()
            },
            PersonId(7),
            &bare,
            Some(StageId(4)),
        );
        let body = create_lead(&minimal).body.unwrap_or_default();
        assert_eq!(body["lead_pipeline_stage_id"], json!(4));
        for absent in ["lead_value", "lead_source_id", "lead_type_id", "user_id"] {
            assert!(body.get(absent).is_none(), "{absent}");
        }
        let default_value = LeadFields::from_contact(
            &Contact {
                name: "Bo".to_owned(),
                ..Contact::default()
            },
            PersonId(7),
            &settings(),
            None,
        );
        assert_eq!(default_value.lead_value, Some(500.0));
    }

    #[test]
    fn a_lead_update_keeps_the_stage_and_a_move_sends_only_the_stage() {
        let contact = Contact::from_chatwoot(&chatwoot_contact());
        let lead = LeadFields::from_contact(&contact, PersonId(123), &settings(), Some(StageId(1)));
        let update = update_lead(LeadId(456), StageId(2), &lead);
        assert_eq!(
            (update.method, update.path.as_str()),
            (Method::Put, "/api/v1/leads/456")
        );
        assert_eq!(
            update.body.unwrap_or_default()["lead_pipeline_stage_id"],
            json!(2)
        );
        let moved = move_lead(LeadId(456), StageId(5));
        assert_eq!(
            (moved.method, moved.path.as_str()),
            (Method::Put, "/api/v1/leads/stage/edit/456")
        );
        assert_eq!(moved.body, Some(json!({ "lead_pipeline_stage_id": 5 })));
        assert_eq!(
            mark_activity_done(ActivityId(101)).body,
            Some(json!({ "is_done": 1 }))
        );
        assert_eq!(mark_activity_done(ActivityId(101)).path, "/api/v1/activities/101");
    }

    #[test]
    fn an_activity_sits_on_the_lead_or_else_the_person_and_names_the_person_as_participant() {
        let activity = ActivityFields {
            activity_type: ActivityType::Call,
            title: "Conversation #123".to_owned(),
            comment: "Hi".to_owned(),
            schedule_from: Some("2026-01-01 10:00:00".to_owned()),
            schedule_to: Some("2026-01-01 10:00:00".to_owned()),
            lead_id: Some(LeadId(456)),
            person_id: Some(PersonId(123)),
        };
        assert_eq!(
            create_activity(&activity).body,
            Some(
                json!({ "type": "call", "title": "Conversation #123", "comment": "Hi",
                         "schedule_from": "2026-01-01 10:00:00", "schedule_to": "2026-01-01 10:00:00", "lead_id": 456,
                         "participants": { "persons": [123] } })
            )
        );
        let note = ActivityFields {
            activity_type: ActivityType::Note,
            schedule_from: None,
            schedule_to: None,
            lead_id: None,
            ..activity.clone()
        };
        assert_eq!(
            create_activity(&note).body,
            Some(
                json!({ "type": "note", "title": "Conversation #123", "comment": "Hi", "person_id": 123,
                         "participants": { "persons": [123] } })
            )
        );
        let lead_only = ActivityFields {
            person_id: None,
            lead_id: Some(LeadId(456)),
            ..note.clone()
        };
        assert_eq!(
            create_activity(&lead_only).body,
            Some(json!({ "type": "note", "title": "Conversation #123", "comment": "Hi", "lead_id": 456 })),
            "no person known: no participants"
        );
        assert_eq!(
            update_activity(ActivityId(101), &activity, true).body,
            Some(json!({ "title": "Conversation #123", "comment": "Hi", "is_done": 1 })),
            "an update leaves Krayin's participants as they are"
        );
    }

    #[test]
    fn our_customer_becomes_a_contact_with_its_custom_fields() {
        let mut custom_fields = Map::new();
        custom_fields.insert("company_name".to_owned(), json!("Bo Ltd"));
        custom_fields.insert("lead_value".to_owned(), json!("1200.50"));
        custom_fields.insert("job_title".to_owned(), json!(7));
        let customer = Customer {
            id: CustomerId::generate([3; 16]),
            name: " ".to_owned(),
            email: Some("bo@example.com".to_owned()),
            phone: Some("+353871234567".to_owned()),
            whatsapp_number: Some("+353 87 123 4567".to_owned()),
            first_name: None,
            last_name: None,
            address: Some("1 Main St".to_owned()),
            notes: Some("VIP".to_owned()),
            tags: vec!["vip".to_owned(), "eu".to_owned()],
            external_id: None,
            external_system: None,
            custom_fields,
            created_at: "2026-01-01T00:00:00.000Z".to_owned(),
            updated_at: "2026-01-01T00:00:00.000Z".to_owned(),
        };
        let contact = Contact::from_customer(&customer);
        assert_eq!(contact.name, "bo@example.com");
        assert_eq!(contact.phones, vec![phone("+353871234567")]);
        assert_eq!(contact.company.map(|c| c.name).as_deref(), Some("Bo Ltd"));
        assert_eq!(contact.lead_value, Some(1200.5));
        assert_eq!(contact.job_title, None);
        assert_eq!(
            contact.description,
            ["VIP", "Address: 1 Main St", "Tags: vip, eu"]
        );
    }
}
