//! What the connection test makes of a Salesforce connection: whether it reaches the
//! connector's org, which object permissions the configured work needs that the connected user
//! (or a server app's integration user) lacks, and how much of the org's daily API allowance is
//! left.
//!
//! A user without Edit on Contact connects fine and fails on the first update, maybe days later;
//! the test says so while someone is still looking. It reads the user's access from the object
//! list (`GET …/sobjects`, one call), not by trying writes.

use super::api::{DailyApiRequests, Identity, ObjectAccess, SObject};
use super::settings::SalesforceSettings;
use crate::crm::{ConnectionTest, MissingPermission, Permissions};
use serde_json::json;

/// An object permission, as a profile's or permission set's Object Settings name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    Read,
    Create,
    Edit,
}

impl Access {
    fn name(self) -> &'static str {
        match self {
            Self::Read => "Read",
            Self::Create => "Create",
            Self::Edit => "Edit",
        }
    }

    fn held(self, object: &ObjectAccess) -> bool {
        match self {
            Self::Read => object.queryable,
            Self::Create => object.createable,
            Self::Edit => object.updateable,
        }
    }
}

/// The object permissions the configured work needs: the customer's object read, made and
/// updated; Tasks made (and read and updated, to upsert them by the message's id) when messages
/// are kept; Cases made and read (their status is followed back) when escalations open them.
pub fn needed(settings: &SalesforceSettings) -> Vec<(SObject, Access)> {
    let mut needed = Vec::new();
    let customer = SObject::from(settings.customer_object);
    needed.extend([Access::Read, Access::Create, Access::Edit].map(|access| (customer, access)));
    if settings.sync_messages {
        needed.push((SObject::Task, Access::Create));
        if settings.task_message_id_field.is_some() {
            needed.extend([(SObject::Task, Access::Read), (SObject::Task, Access::Edit)]);
        }
    }
    if settings.create_cases {
        needed.extend([(SObject::Case, Access::Read), (SObject::Case, Access::Create)]);
    }
    needed
}

fn permission(object: SObject, access: Access) -> String {
    format!("{}: {}", object.api_name(), access.name())
}

/// The connection test's answer for the user `identity` names, whose object access is `objects`
/// and whose org's allowance is `limits` (None when the user may not read the org's limits).
pub fn connection_test(
    identity: &Identity,
    objects: &[ObjectAccess],
    limits: Option<DailyApiRequests>,
    settings: &SalesforceSettings,
) -> ConnectionTest {
    let user = json!({
        "name": format!("Salesforce org {}", identity.organization_id),
        "organization_id": identity.organization_id.as_str(),
        "user_id": identity.user_id.as_str(),
        "username": identity.username,
        "display_name": identity.name,
        "api_requests": limits.map(|limits| json!({ "max": limits.max, "remaining": limits.remaining })),
    });
    if let Some(expected) = &settings.organization_id
        && *expected != identity.organization_id
    {
        return ConnectionTest::failed(
            Some(403),
            format!(
                "the credentials are for the org {}, and this connector is for the org {expected}: connect it \
                 from {expected}, or make a new connector for the other org",
                identity.organization_id
            ),
        );
    }
    let access = |object: SObject| objects.iter().find(|known| known.name == object.api_name());
    let holds = |object: SObject, wanted: Access| access(object).is_some_and(|found| wanted.held(found));
    let held: Vec<String> = SObject::ALL
        .iter()
        .flat_map(|object| [Access::Read, Access::Create, Access::Edit].map(|wanted| (*object, wanted)))
        .filter(|(object, wanted)| holds(*object, *wanted))
        .map(|(object, wanted)| permission(object, wanted))
        .collect();
    let missing: Vec<MissingPermission> = needed(settings)
        .into_iter()
        .filter(|(object, wanted)| !holds(*object, *wanted))
        .map(|(object, wanted)| MissingPermission {
            permission: permission(object, wanted),
            roles: vec![format!(
                "{} on {} (Object Settings of the user's profile or a permission set)",
                wanted.name(),
                object.api_name()
            )],
        })
        .collect();
    let mut test = ConnectionTest::passed(user);
    let failure = (!missing.is_empty()).then(|| {
        let lacking: Vec<&str> = missing
            .iter()
            .map(|missing| missing.permission.as_str())
            .collect();
        format!(
            "the connected user lacks {}; give them to its profile or a permission set (Setup › Users › \
             the user › Permission Set Assignments) and test again",
            lacking.join(", ")
        )
    });
    test.permissions = Some(Permissions {
        held,
        missing,
        extra: Vec::new(),
    });
    if let Some(reason) = failure {
        test.ok = false;
        test.status = Some(403);
        test.reason = Some(reason);
        return test;
    }
    test.warning = match limits {
        None => Some(
            "the connected user cannot read the org's limits (it lacks View Setup and Configuration): the \
             connector still pauses at its share of the daily allowance, from the usage every answer reports"
                .to_owned(),
        ),
        Some(limits) => {
            let share = settings.api_share.of(limits.max);
            (limits.used() >= share).then(|| {
                format!(
                    "the org has used {} of its {} API calls of the last 24 hours, past this connector's share \
                     of {share} ({} %, settings.api_share_percent): it waits until usage falls below it",
                    limits.used(),
                    limits.max,
                    settings.api_share.get()
                )
            })
        }
    };
    test
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crm::salesforce::ids::{OrganizationId, SalesforceId};
    use serde_json::Value;

    fn settings(extra: Value) -> SalesforceSettings {
        let mut input = json!({ "instance_url": "https://acme.my.salesforce.com" });
        if let (Some(input), Some(extra)) = (input.as_object_mut(), extra.as_object()) {
            input.extend(extra.clone());
        }
        SalesforceSettings::parse(&input, false).unwrap_or_else(|error| panic!("{error:?}"))
    }

    fn identity() -> Identity {
        Identity {
            organization_id: OrganizationId::parse("00D5g000004Xyz1").unwrap_or_else(|| panic!()),
            user_id: SalesforceId::parse("0055g000001abcd").unwrap_or_else(|| panic!()),
            username: Some("integration@acme.example".to_owned()),
            name: Some("Integration User".to_owned()),
            email: None,
        }
    }

    fn full(name: &str) -> ObjectAccess {
        ObjectAccess {
            name: name.to_owned(),
            queryable: true,
            createable: true,
            updateable: true,
        }
    }

    const PLENTY: Option<DailyApiRequests> = Some(DailyApiRequests {
        max: 100_000,
        remaining: 99_000,
    });

    #[test]
    fn a_user_with_every_needed_permission_passes_and_says_who_it_is() {
        let objects = ["Contact", "Task", "Case"].map(full);
        let test = connection_test(&identity(), &objects, PLENTY, &settings(json!({})));
        assert!(test.ok, "{:?}", test.reason);
        assert_eq!(test.warning, None);
        let user = test.user.unwrap_or_default();
        assert_eq!(user["username"], "integration@acme.example");
        assert_eq!(
            user["api_requests"],
            json!({ "max": 100_000, "remaining": 99_000 })
        );
        let held = test
            .permissions
            .map(|permissions| permissions.held)
            .unwrap_or_default();
        assert!(held.contains(&"Contact: Edit".to_owned()), "{held:?}");
    }

    #[test]
    fn each_missing_object_permission_is_named_with_where_to_grant_it() {
        let cases = [
            (
                vec![
                    ObjectAccess {
                        updateable: false,
                        ..full("Contact")
                    },
                    full("Task"),
                    full("Case"),
                ],
                json!({}),
                vec!["Contact: Edit"],
                "a contact that cannot be updated",
            ),
            (
                vec![full("Contact"), full("Case")],
                json!({}),
                vec!["Task: Create"],
                "no Task access at all",
            ),
            (
                vec![full("Contact"), full("Task")],
                json!({}),
                vec!["Case: Read", "Case: Create"],
                "no Case access",
            ),
            (
                vec![full("Contact"), full("Task")],
                json!({ "create_cases": false }),
                vec![],
                "Cases not needed when escalations open none",
            ),
            (
                vec![full("Contact"), full("Task"), full("Case")],
                json!({ "customer_object": "lead" }),
                vec!["Lead: Read", "Lead: Create", "Lead: Edit"],
                "customers as Leads",
            ),
            (
                vec![
                    full("Contact"),
                    ObjectAccess {
                        queryable: false,
                        updateable: false,
                        ..full("Task")
                    },
                    full("Case"),
                ],
                json!({ "task_message_id_field": "Crm_Edge_Message_Id__c" }),
                vec!["Task: Read", "Task: Edit"],
                "Tasks upserted by the message's id",
            ),
        ];
        for (objects, extra, expected, description) in cases {
            let test = connection_test(&identity(), &objects, PLENTY, &settings(extra));
            let missing: Vec<String> = test
                .permissions
                .as_ref()
                .map(|permissions| {
                    permissions
                        .missing
                        .iter()
                        .map(|missing| missing.permission.clone())
                        .collect()
                })
                .unwrap_or_default();
            assert_eq!(missing, expected, "{description}");
            assert_eq!(test.ok, expected.is_empty(), "{description}");
            if let Some(reason) = &test.reason {
                assert!(reason.contains(&expected.join(", ")), "{description}: {reason}");
            }
        }
    }

    #[test]
    fn credentials_for_another_org_fail_the_test() {
        let objects = ["Contact", "Task", "Case"].map(full);
        let other = settings(json!({ "organization_id": "00D5g000004Xyz2" }));
        let test = connection_test(&identity(), &objects, PLENTY, &other);
        assert!(!test.ok);
        assert_eq!(test.status, Some(403));
        assert!(
            test.reason
                .is_some_and(|reason| reason.contains("this connector is for the org 00D5g000004Xyz2"))
        );
    }

    #[test]
    fn an_allowance_already_past_the_share_or_unreadable_is_a_warning() {
        let objects = ["Contact", "Task", "Case"].map(full);
        let spent = Some(DailyApiRequests {
            max: 15_000,
            remaining: 7_000,
        });
        let test = connection_test(&identity(), &objects, spent, &settings(json!({})));
        assert!(test.ok);
        let warning = test.warning.unwrap_or_default();
        assert!(warning.contains("used 8000 of its 15000"), "{warning}");
        let unreadable = connection_test(&identity(), &objects, None, &settings(json!({})));
        assert!(unreadable.ok);
        assert!(
            unreadable
                .warning
                .is_some_and(|warning| warning.contains("View Setup and Configuration"))
        );
    }
}
