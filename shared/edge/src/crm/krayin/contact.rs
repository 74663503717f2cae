//! A contact's records in Krayin: its Person (found by email or phone before one is made, and
//! found again when a create loses a race), its Lead (in the pipeline's first stage), its
//! Organization when organizations are synced, and what the connector keeps of them. An update
//! brings the Person and the Lead up to date, leaving a Lead with products as it is.

use super::Krayin;
use crate::crm::client::Refusal;
use crate::crm::{Outcome, gone, synced, unreadable};
use crate::db;
use crate::db::crm_connectors::Connector;
use crate::db::crm_contacts::{self, Kept};
use domain::crm::krayin::activity::StageTrigger;
use domain::crm::krayin::answer::{self, Person};
use domain::crm::krayin::api::{self, Contact, LeadFields, OrganizationFields, PersonFields};
use domain::crm::krayin::{KrayinRefs, LeadId, OrganizationId, PersonId};
use domain::crm::retry::CallFailure;
use domain::crm::work::ContactKey;
use domain::error::ApiError;
use serde_json::{Map, Value};

/// What the connector keeps of one contact: its Krayin records and the stage moves made.
pub(super) struct ContactState {
    pub(super) refs: KrayinRefs,
    pub(super) stages_done: Vec<StageTrigger>,
}

impl Krayin<'_> {
    async fn state(&self, key: &ContactKey) -> Result<ContactState, Refusal> {
        let kept = crm_contacts::kept(self.db(), self.tenant(), &self.client.connector.id, key).await?;
        Ok(state_of(kept.as_ref(), self.client.connector, key)?)
    }

    pub(super) async fn keep(&self, key: &ContactKey, state: &ContactState) -> Result<(), Refusal> {
        let external_id = (!state.refs.is_empty()).then(|| state.refs.to_string());
        let stages = (!state.stages_done.is_empty()).then(|| StageTrigger::write_list(&state.stages_done));
        crm_contacts::keep(
            self.db(),
            self.tenant(),
            &self.client.connector.id,
            key,
            external_id.as_deref(),
            stages.as_deref(),
        )
        .await?;
        Ok(())
    }

    /// The Person Krayin has with one of the contact's emails or numbers (compared exactly:
    /// Krayin's search matches parts).
    async fn find_person(&self, contact: &Contact) -> Result<Option<PersonId>, Refusal> {
        for email in &contact.emails {
            let found = self.list(&api::search_person_by_email(email)).await?;
            if let Some(person) = persons(&found).find(|person| person.has_email(email)) {
                return Ok(Some(person.id));
            }
        }
        for phone in &contact.phones {
            let found = self.list(&api::search_person_by_phone(phone)).await?;
            if let Some(person) = persons(&found).find(|person| person.has_phone(phone)) {
                return Ok(Some(person.id));
            }
        }
        Ok(None)
    }

    /// The Organization of the contact's company: found by its exact name, else created (a
    /// create that loses a race with another contact of the same company finds the winner's).
    /// None when the contact names no company, or a name Krayin cannot be searched by.
    async fn organization(&self, contact: &Contact) -> Result<Option<OrganizationId>, Refusal> {
        let Some(mut fields) = OrganizationFields::from_contact(contact) else {
            return Ok(None);
        };
        fields.user_id = self.settings.user_id;
        let Some(search) = api::search_organization(&fields.name) else {
            return Ok(None);
        };
        let named = |found: &[Map<String, Value>]| {
            found
                .iter()
                .find(|item| item.get("name").and_then(Value::as_str) == Some(fields.name.as_str()))
                .and_then(|item| item.get("id"))
                .and_then(Value::as_u64)
                .map(OrganizationId)
        };
        if let Some(id) = named(&self.list(&search).await?) {
            return Ok(Some(id));
        }
        match self.created_id(&api::create_organization(&fields)).await {
            Ok(id) => Ok(Some(OrganizationId(id))),
            Err(Refusal::Failed(CallFailure::Status { status: 422, .. })) => {
                match named(&self.list(&search).await?) {
                    Some(id) => Ok(Some(id)),
                    None => Err(Refusal::Failed(gone(format!(
                        "Krayin refused the organization {} and has none of that name",
                        fields.name
                    )))),
                }
            }
            Err(other) => Err(other),
        }
    }

    fn person_fields(&self, contact: &Contact, organization: Option<OrganizationId>) -> PersonFields {
        let mut person = PersonFields::from_contact(contact);
        person.user_id = self.settings.user_id;
        person.organization_id = organization;
        if organization.is_none() && self.settings.sync_organizations {
            // A company Krayin cannot be searched by (a comma in its name): Krayin finds or
            // creates it by exact name itself.
            person.organization_name = contact
                .company
                .as_ref()
                .map(|company| company.name.clone())
                .filter(|name| api::search_organization(name).is_none());
        }
        person
    }

    /// The contact's Person and Lead, finding or creating each (and the Organization first, when
    /// organizations are synced). `created` says whether this call made the Person or the Lead.
    pub(super) async fn ensure_contact(
        &self,
        key: &ContactKey,
        contact: &Contact,
    ) -> Result<(ContactState, bool), Refusal> {
        let mut state = self.state(key).await?;
        let mut created = false;
        let person = match state.refs.person {
            Some(person) => person,
            None => {
                if self.settings.sync_organizations && state.refs.organization.is_none() {
                    state.refs.organization = self.organization(contact).await?;
                }
                let person = match self.find_person(contact).await? {
                    Some(person) => person,
                    None => {
                        created = true;
                        self.create_person(contact, state.refs.organization).await?
                    }
                };
                state.refs.person = Some(person);
                self.keep(key, &state).await?;
                person
            }
        };
        if state.refs.lead.is_none() {
            // Krayin refuses a lead without a stage: the first of the lead pipeline (kept an hour).
            let initial = self.settings.initial_stage(&self.pipelines().await?);
            let lead = LeadFields::from_contact(contact, person, &self.settings, initial);
            state.refs.lead = Some(LeadId(self.created_id(&api::create_lead(&lead)).await?));
            self.keep(key, &state).await?;
            created = true;
        }
        Ok((state, created))
    }

    async fn create_person(
        &self,
        contact: &Contact,
        organization: Option<OrganizationId>,
    ) -> Result<PersonId, Refusal> {
        let fields = self.person_fields(contact, organization);
        match self.created_id(&api::create_person(&fields)).await {
            Ok(id) => Ok(PersonId(id)),
            // An email or number another Person has: Krayin has this contact already (someone
            // made them between our search and our create).
            Err(Refusal::Failed(CallFailure::Status {
                status: 422, reason, ..
            })) => match self.find_person(contact).await? {
                Some(id) => Ok(id),
                None => Err(Refusal::Failed(CallFailure::Status {
                    status: 422,
                    wait: None,
                    reason,
                })),
            },
            Err(other) => Err(other),
        }
    }

    /// Brings the contact's Person and Lead up to date (creating them when they are not there).
    /// A Lead a salesperson added products to is left as it is: Krayin's lead update deletes
    /// the products its body does not carry.
    pub(super) async fn update_contact(
        &self,
        key: &ContactKey,
        contact: &Contact,
    ) -> Result<Outcome, Refusal> {
        let (mut state, created) = self.ensure_contact(key, contact).await?;
        let (Some(person), Some(lead)) = (state.refs.person, state.refs.lead) else {
            return Err(Refusal::Ours(ApiError::internal(
                "Krayin contact",
                "a contact made in Krayin has no person or lead",
            )));
        };
        if created {
            return synced(state.refs.to_string());
        }
        if self.settings.sync_organizations && state.refs.organization.is_none() {
            state.refs.organization = self.organization(contact).await?;
            self.keep(key, &state).await?;
        }
        self.data(&api::update_person(
            person,
            &self.person_fields(contact, state.refs.organization),
        ))
        .await?;
        let current = answer::Lead::from_data(&self.data(&api::get_lead(lead)).await?)
            .map_err(|reason| unreadable("Krayin", reason))?;
        if current.has_products {
            return Ok(Outcome::Skipped(format!(
                "person {person} updated; lead {lead} has products, which Krayin's update would delete, \
                 so it is left as it is"
            )));
        }
        if let Some(stage) = current.stage_id {
            let fields = LeadFields::from_contact(contact, person, &self.settings, None);
            self.data(&api::update_lead(lead, stage, &fields)).await?;
        }
        synced(state.refs.to_string())
    }
}

fn persons(found: &[Map<String, Value>]) -> impl Iterator<Item = Person> + '_ {
    found.iter().filter_map(|data| Person::from_data(data).ok())
}

/// What the connector keeps of a contact, as work reads it (nothing kept: no records yet).
fn state_of(kept: Option<&Kept>, connector: &Connector, key: &ContactKey) -> Result<ContactState, ApiError> {
    let refs = match kept.and_then(|kept| kept.external_id.as_deref()) {
        Some(external_id) => KrayinRefs::parse(external_id).map_err(|_| {
            db::corrupt(
                "CRM contact",
                &format!("{} {key}", connector.id),
                "its external id",
            )
        })?,
        None => KrayinRefs::default(),
    };
    Ok(ContactState {
        refs,
        stages_done: kept
            .and_then(|kept| kept.stages_done.as_deref())
            .map(StageTrigger::parse_list)
            .unwrap_or_default(),
    })
}

#[cfg(test)]
mod tests {
    use super::super::tests::{
        HOST, body_of, calls, connector, contact, created, follow, holding, kept, person, pipelines,
        synced_to, taken,
    };
    use super::*;
    use crate::runtime::native::Reply;
    use crate::testing::Fixture;
    use serde_json::json;
    use std::cell::Cell;
    use std::rc::Rc;

    #[test]
    fn a_person_is_found_by_its_exact_email_among_the_partial_matches_of_krayins_search() {
        let fixture = Fixture::new();
        fixture.run(async {
            let connector = connector(&fixture, json!({})).await;
            holding(&fixture, &connector, 42, None).await;
            fixture
                .stack
                .partner(HOST, |call| match (call.method.as_str(), call.path()) {
                    ("GET", "/api/v1/contacts/persons/search") => Reply::json(
                        200,
                        &json!({ "data": [person(5, "joann@acme.com"), person(7, " ANN@acme.com")] }),
                    ),
                    ("GET", "/api/v1/settings/pipelines") => pipelines(),
                    ("POST", "/api/v1/leads") => created(11),
                    _ => Reply::status(500),
                });
            let outcome = follow(&fixture, &connector, contact(42)).await;
            assert_eq!(synced_to(&outcome), "krayin:person:7|krayin:lead:11");
            assert!(
                !calls(&fixture).contains(&"POST /api/v1/contacts/persons".to_owned()),
                "no second person: {:?}",
                calls(&fixture)
            );
            let lead = body_of(&fixture, "POST", "/api/v1/leads");
            assert_eq!(
                (&lead["person_id"], &lead["lead_pipeline_stage_id"]),
                (&json!(7), &json!(1)),
                "on the person found, in the default pipeline's first stage"
            );
            let kept = kept(&fixture, &connector, 42).await;
            assert_eq!(
                kept.and_then(|kept| kept.external_id).as_deref(),
                Some("krayin:person:7|krayin:lead:11")
            );
        });
    }

    #[test]
    fn a_person_krayin_refuses_as_taken_is_looked_for_again_and_used_when_someone_made_it_meanwhile() {
        for (winner, expected) in [(true, Some("krayin:person:9|krayin:lead:11")), (false, None)] {
            let fixture = Fixture::new();
            fixture.run(async {
                let connector = connector(&fixture, json!({})).await;
                holding(&fixture, &connector, 42, None).await;
                let searches = Rc::new(Cell::new(0));
                let counted = Rc::clone(&searches);
                fixture
                    .stack
                    .partner(HOST, move |call| match (call.method.as_str(), call.path()) {
                        ("GET", "/api/v1/contacts/persons/search") => {
                            counted.set(counted.get() + 1);
                            let found = if winner && counted.get() > 1 {
                                vec![person(9, "ann@acme.com")]
                            } else {
                                Vec::new()
                            };
                            Reply::json(200, &json!({ "data": found }))
                        }
                        ("POST", "/api/v1/contacts/persons") => taken("emails.0.value"),
                        ("GET", "/api/v1/settings/pipelines") => pipelines(),
                        ("POST", "/api/v1/leads") => created(11),
                        _ => Reply::status(500),
                    });
                let outcome = follow(&fixture, &connector, contact(42)).await;
                match expected {
                    Some(id) => assert_eq!(synced_to(&outcome), id, "winner found"),
                    None => assert!(
                        matches!(
                            &outcome,
                            Err(Refusal::Failed(CallFailure::Status { status: 422, reason, .. }))
                                if reason.contains("emails.0.value")
                        ),
                        "nobody found: Krayin's refusal stands: {outcome:?}"
                    ),
                }
                assert_eq!(searches.get(), 2, "searched before and after the create");
                let creates = calls(&fixture)
                    .iter()
                    .filter(|call| *call == "POST /api/v1/contacts/persons")
                    .count();
                assert_eq!(creates, 1, "created once");
            });
        }
    }

    #[test]
    fn an_organization_is_taken_by_its_exact_name_and_a_lost_race_to_create_it_finds_the_winner() {
        let fixture = Fixture::new();
        fixture.run(async {
            let connector = connector(&fixture, json!({ "sync_organizations": true })).await;
            holding(&fixture, &connector, 42, None).await;
            let lists = Rc::new(Cell::new(0));
            let counted = Rc::clone(&lists);
            fixture
                .stack
                .partner(HOST, move |call| match (call.method.as_str(), call.path()) {
                    ("GET", "/api/v1/contacts/organizations") => {
                        counted.set(counted.get() + 1);
                        let mut found = vec![json!({ "id": 3, "name": "Acme Corp Ltd" })];
                        if counted.get() > 1 {
                            found.push(json!({ "id": 4, "name": "Acme Corp" }));
                        }
                        Reply::json(200, &json!({ "data": found }))
                    }
                    ("POST", "/api/v1/contacts/organizations") => taken("name"),
                    ("GET", "/api/v1/contacts/persons/search") => Reply::json(200, &json!({ "data": [] })),
                    ("POST", "/api/v1/contacts/persons") => created(7),
                    ("GET", "/api/v1/settings/pipelines") => pipelines(),
                    ("POST", "/api/v1/leads") => created(11),
                    _ => Reply::status(500),
                });
            let mut payload = contact(42);
            payload["additional_attributes"] = json!({ "company_name": "Acme Corp" });
            let outcome = follow(&fixture, &connector, payload).await;
            assert_eq!(
                synced_to(&outcome),
                "krayin:person:7|krayin:lead:11|krayin:organization:4"
            );
            let search = fixture
                .stack
                .calls_to(HOST)
                .into_iter()
                .find(|call| call.path() == "/api/v1/contacts/organizations")
                .map(|call| call.query().get("name").map(str::to_owned));
            assert_eq!(search, Some(Some("Acme Corp".to_owned())), "an exact filter");
            let person = body_of(&fixture, "POST", "/api/v1/contacts/persons");
            assert_eq!(person["organization_id"], 4, "not Acme Corp Ltd: {person}");
            assert!(person.get("organization_name").is_none(), "{person}");
        });
    }

    #[test]
    fn a_company_krayin_cannot_be_searched_by_is_left_to_krayin_to_find_or_create_by_name() {
        let fixture = Fixture::new();
        fixture.run(async {
            let connector = connector(&fixture, json!({ "sync_organizations": true })).await;
            holding(&fixture, &connector, 42, None).await;
            fixture
                .stack
                .partner(HOST, |call| match (call.method.as_str(), call.path()) {
                    ("GET", "/api/v1/contacts/persons/search") => Reply::json(200, &json!({ "data": [] })),
                    ("POST", "/api/v1/contacts/persons") => created(7),
                    ("GET", "/api/v1/settings/pipelines") => pipelines(),
                    ("POST", "/api/v1/leads") => created(11),
                    _ => Reply::status(500),
                });
            let mut payload = contact(42);
            payload["additional_attributes"] = json!({ "company_name": "Acme, Inc." });
            let outcome = follow(&fixture, &connector, payload).await;
            assert_eq!(synced_to(&outcome), "krayin:person:7|krayin:lead:11");
            assert!(
                !calls(&fixture).iter().any(|call| call.contains("/organizations")),
                "a comma would split Krayin's filter: {:?}",
                calls(&fixture)
            );
            let person = body_of(&fixture, "POST", "/api/v1/contacts/persons");
            assert_eq!(person["organization_name"], "Acme, Inc.");
        });
    }

    #[test]
    fn an_update_keeps_the_lead_in_its_stage_and_leaves_a_lead_with_products_as_it_is() {
        for (products, description) in [
            (json!([]), "a lead without products"),
            (json!([{ "id": 1 }]), "a lead with products"),
        ] {
            let fixture = Fixture::new();
            fixture.run(async {
                let connector = connector(&fixture, json!({})).await;
                holding(&fixture, &connector, 42, Some("krayin:person:7|krayin:lead:11")).await;
                let lead = json!({ "data": { "id": 11, "lead_pipeline_id": 1, "lead_pipeline_stage_id": 3,
                                             "lead_products": products } });
                fixture
                    .stack
                    .partner(HOST, move |call| match (call.method.as_str(), call.path()) {
                        ("PUT", "/api/v1/contacts/persons/7") => created(7),
                        ("GET", "/api/v1/leads/11") => Reply::json(200, &lead),
                        ("PUT", "/api/v1/leads/11") => created(11),
                        _ => Reply::status(500),
                    });
                let mut payload = contact(42);
                payload["event"] = json!("contact_updated");
                let outcome = follow(&fixture, &connector, payload).await;
                let updated_lead = calls(&fixture).contains(&"PUT /api/v1/leads/11".to_owned());
                if products.as_array().is_some_and(Vec::is_empty) {
                    assert_eq!(
                        synced_to(&outcome),
                        "krayin:person:7|krayin:lead:11",
                        "{description}"
                    );
                    let body = body_of(&fixture, "PUT", "/api/v1/leads/11");
                    assert_eq!(
                        body["lead_pipeline_stage_id"], 3,
                        "{description}: sent in its stage, or Krayin moves it back to the first"
                    );
                } else {
                    assert!(
                        matches!(&outcome, Ok(Outcome::Skipped(reason)) if reason.contains("products")),
                        "{description}: {outcome:?}"
                    );
                    assert!(
                        !updated_lead,
                        "{description}: Krayin's update would delete its products"
                    );
                }
                assert!(
                    calls(&fixture).contains(&"PUT /api/v1/contacts/persons/7".to_owned()),
                    "{description}: the person is updated either way"
                );
            });
        }
    }
}
