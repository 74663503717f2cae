//! What the API asks Kustomer directly, outside the sync: the connection test (the key's user
//! against the configured organization, then its roles and expiry), the settings' check against
//! the organization's teams, the teams read page by page, a customer found by email, a titled
//! conversation opened, and a customer's past conversations.

use super::{Kustomer, status_failure};
use crate::crm::client::Refusal;
use crate::crm::{ConnectionTest, refusal_error, refused_test, unreadable};
use crate::runtime;
use domain::crm::kustomer::api::{self, ApiRequest, Resource};
use domain::crm::kustomer::permissions::{self, CurrentToken};
use domain::crm::retry::CallFailure;
use domain::crm::work::LinkKind;
use domain::error::ApiError;

/// The seed's "Test the connection" and "API Permissions Verification": the key's user, checked
/// against the configured organization, then the key's roles and expiry against what the
/// configured work needs.
pub(super) async fn test_connection(kustomer: &Kustomer<'_>) -> Result<ConnectionTest, ApiError> {
    let resource = match kustomer.resource(&api::current_user()).await {
        Ok(resource) => resource,
        Err(refusal) => return refused_test("Kustomer", refusal),
    };
    let user = api::CurrentUser::from_resource(&resource);
    if let (Some(expected), Some(actual)) =
        (kustomer.settings.organization_id.as_deref(), user.org.as_deref())
        && expected != actual
    {
        return Ok(ConnectionTest::failed(
            Some(403),
            format!(
                "the API key belongs to organization {actual}, not the configured {expected}; \
                 fix settings.organization_id or use a key of that organization"
            ),
        ));
    }
    let token = match kustomer.resource(&api::current_token()).await {
        Ok(resource) => CurrentToken::from_resource(&resource),
        Err(refusal) => return refused_test("Kustomer", refusal),
    };
    Ok(permissions::connection_test(
        serde_json::to_value(user)?,
        &token,
        &kustomer.settings,
        runtime::now(),
    ))
}

/// Pages read at most by one listing call (teams, a customer's history).
const MAX_PAGES: u32 = 10;

/// Every page of a Kustomer list, up to [`MAX_PAGES`].
async fn all_pages(
    kustomer: &Kustomer<'_>,
    page: impl Fn(u32) -> ApiRequest,
) -> Result<Vec<Resource>, Refusal> {
    let mut resources = Vec::new();
    for number in 1..=MAX_PAGES {
        let answer = kustomer.send(&page(number)).await?;
        if !answer.is_success() {
            return Err(Refusal::Failed(status_failure(&answer)));
        }
        let (items, more) = api::parse_list(&answer.body).map_err(|reason| unreadable("Kustomer", reason))?;
        resources.extend(items);
        if !more {
            break;
        }
    }
    Ok(resources)
}

/// Checks the settings against Kustomer as the admin API saves them: the default team, when one
/// is set, must be one of the organization's teams.
pub(super) async fn check_settings(kustomer: &Kustomer<'_>) -> Result<(), ApiError> {
    if kustomer.settings.default_team_id.is_none() {
        return Ok(());
    }
    api::Team::check_default(&kustomer.settings, &teams(kustomer).await?)
}

/// The organization's teams, for choosing the default team.
pub async fn teams(kustomer: &Kustomer<'_>) -> Result<Vec<api::Team>, ApiError> {
    let resources = all_pages(kustomer, api::list_teams)
        .await
        .map_err(|refusal| refusal_error("Kustomer", refusal))?;
    Ok(resources.iter().map(api::Team::from_resource).collect())
}

/// A Kustomer resource as its API answers it (JSON:API's `data`).
fn resource_json(resource: &Resource) -> serde_json::Value {
    serde_json::json!({
        "type": resource.kind,
        "id": resource.id,
        "attributes": resource.attributes,
        "relationships": resource.relationships,
    })
}

/// The guide's "Customer Lookup Test": Kustomer's customer with this address, None when it has
/// none.
pub async fn customer_by_email(
    kustomer: &Kustomer<'_>,
    email: &str,
) -> Result<Option<serde_json::Value>, ApiError> {
    let found = kustomer
        .find(&api::find_customer_by_email(email))
        .await
        .map_err(|refusal| refusal_error("Kustomer", refusal))?;
    Ok(found.as_ref().map(resource_json))
}

/// The guide's "Ticket Creation Test": the titled conversation opened in Kustomer, as Kustomer
/// answered it.
pub async fn open_titled_conversation(
    kustomer: &Kustomer<'_>,
    conversation: &api::TitledConversation,
) -> Result<serde_json::Value, ApiError> {
    let opened = kustomer
        .resource(&api::create_titled_conversation(conversation))
        .await
        .map_err(|refusal| match refusal {
            // Kustomer refused what was asked (a customer it does not have): the caller's to fix.
            Refusal::Failed(CallFailure::Status {
                status: 400 | 404 | 422,
                reason,
                ..
            }) => ApiError::invalid("customer_id", reason),
            refusal => refusal_error("Kustomer", refusal),
        })?;
    Ok(resource_json(&opened))
}

/// The customer's past conversations in Kustomer (the seed's "Customer Found → loads history and
/// context"); None when the customer is not in Kustomer (and not found by email either).
pub async fn history(
    kustomer: &Kustomer<'_>,
    customer: &domain::customer::Customer,
) -> Result<Option<(String, Vec<api::PastConversation>)>, ApiError> {
    let linked = kustomer
        .linked(LinkKind::Customer, customer.id.as_str())
        .await
        .map_err(|refusal| refusal_error("Kustomer", refusal))?;
    let crm_id = match linked {
        Some(crm_id) => crm_id,
        None => {
            let found = match customer.email.as_deref() {
                Some(email) if kustomer.settings.customer_lookup => kustomer
                    .find(&api::find_customer_by_email(email))
                    .await
                    .map_err(|refusal| refusal_error("Kustomer", refusal))?,
                _ => None,
            };
            match found {
                Some(found) => found.id,
                None => return Ok(None),
            }
        }
    };
    let resources = all_pages(kustomer, |page| api::customer_conversations(&crm_id, page, 100))
        .await
        .map_err(|refusal| refusal_error("Kustomer", refusal))?;
    Ok(Some((
        crm_id,
        resources
            .iter()
            .map(api::PastConversation::from_resource)
            .collect(),
    )))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crm::test_support::{HOST, ORG, Script, UNLIMITED, customer, kustomer_connector, linked};
    use crate::db;
    use crate::runtime::native::Reply;
    use crate::testing::Fixture;
    use domain::ids::CustomerId;
    use domain::lookup::CustomerKey;
    use serde_json::json;

    #[test]
    fn the_connection_test_names_the_organization_a_key_belongs_to_when_it_is_not_the_configured_one() {
        let fixture = Fixture::new();
        fixture.run(async {
            let tenant = fixture.business("Acme").await;
            Script::install(&fixture.stack);
            let ours =
                kustomer_connector(&fixture, &tenant, json!({ "organization_id": ORG }), UNLIMITED).await;
            let kustomer =
                Kustomer::new(&fixture.env, &fixture.db, &ours).unwrap_or_else(|reason| panic!("{reason}"));
            let passed = test_connection(&kustomer)
                .await
                .unwrap_or_else(|error| panic!("{error:?}"));
            assert!(passed.ok, "{passed:?}");
            assert_eq!(
                passed.user.as_ref().map(|user| user["org"].clone()),
                Some(json!(ORG))
            );

            let elsewhere = "5f0000000000000000000999";
            let theirs = kustomer_connector(
                &fixture,
                &tenant,
                json!({ "organization_id": elsewhere }),
                UNLIMITED,
            )
            .await;
            let kustomer =
                Kustomer::new(&fixture.env, &fixture.db, &theirs).unwrap_or_else(|reason| panic!("{reason}"));
            let failed = test_connection(&kustomer)
                .await
                .unwrap_or_else(|error| panic!("{error:?}"));
            assert!(!failed.ok);
            assert_eq!(failed.status, Some(403));
            let reason = failed.reason.unwrap_or_default();
            assert!(reason.contains(ORG) && reason.contains(elsewhere), "{reason}");
        });
    }

    #[test]
    fn teams_are_read_page_by_page_up_to_ten_pages() {
        let fixture = Fixture::new();
        fixture.run(async {
            let tenant = fixture.business("Acme").await;
            let connector = kustomer_connector(&fixture, &tenant, json!({}), UNLIMITED).await;
            let script = Script::install(&fixture.stack);
            script.then((1..=12).map(|page| {
                Reply::json(
                    200,
                    &json!({
                        "data": [{ "type": "team", "id": format!("{page:024x}"), "attributes": { "name": format!("Team {page}") } }],
                        "links": { "next": format!("/v1/teams?page={}", page + 1) }
                    }),
                )
            }));
            let kustomer = Kustomer::new(&fixture.env, &fixture.db, &connector).unwrap_or_else(|reason| panic!("{reason}"));
            let listed = teams(&kustomer).await.unwrap_or_else(|error| panic!("{error:?}"));
            assert_eq!(listed.len(), 10, "{listed:?}");
            assert_eq!(listed[9].name, "Team 10");
            let pages: Vec<String> = script
                .calls()
                .iter()
                .map(|call| call.query().get("page").unwrap_or_default().to_owned())
                .collect();
            assert_eq!(pages, (1..=10).map(|page| page.to_string()).collect::<Vec<_>>());
            assert!(script.calls().iter().all(|call| call.url.starts_with(&format!("https://{HOST}/"))));
        });
    }

    #[test]
    fn history_is_none_for_a_customer_kustomer_does_not_know_and_lists_a_linked_ones_conversations() {
        let fixture = Fixture::new();
        fixture.run(async {
            let tenant = fixture.business("Acme").await;
            let connector = kustomer_connector(&fixture, &tenant, json!({}), UNLIMITED).await;
            let script = Script::install(&fixture.stack);
            let kustomer = Kustomer::new(&fixture.env, &fixture.db, &connector).unwrap_or_else(|reason| panic!("{reason}"));
            let find = |id: &CustomerId| {
                let (db, tenant, id) = (&fixture.db, &tenant, id.clone());
                async move {
                    db::customers::find_one(db, tenant, &CustomerKey::Id(id))
                        .await
                        .unwrap_or_else(|error| panic!("{error:?}"))
                        .unwrap_or_else(|| panic!("the customer"))
                }
            };
            let unknown = customer(&fixture, &tenant, "Bo", Some("bo@example.com")).await;
            let none = history(&kustomer, &find(&unknown).await).await.unwrap_or_else(|error| panic!("{error:?}"));
            assert!(none.is_none());
            assert_eq!(script.lines(), ["GET /v1/customers/email=bo%40example.com"]);

            let ada = customer(&fixture, &tenant, "Ada", None).await;
            linked(&fixture, &connector, LinkKind::Customer, ada.as_str(), "5f00000000000000000000c5").await;
            script.then([Reply::json(
                200,
                &json!({ "data": [
                    { "type": "conversation", "id": "5f00000000000000000000e1", "attributes": { "name": "Old order question", "status": "done" } }
                ], "links": { "next": null } }),
            )]);
            let (crm_id, past) = history(&kustomer, &find(&ada).await)
                .await
                .unwrap_or_else(|error| panic!("{error:?}"))
                .unwrap_or_else(|| panic!("Kustomer knows Ada"));
            assert_eq!(crm_id, "5f00000000000000000000c5");
            assert_eq!(past.len(), 1);
            assert_eq!(script.lines()[1], "GET /v1/customers/5f00000000000000000000c5/conversations");
        });
    }
}
