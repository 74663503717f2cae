//! What the connection test makes of a Kustomer API key: the setup guide's permissions in
//! Kustomer's roles, which of them the configured work needs, and what the key's roles and
//! expiry (`GET /v1/auth/tokens/current`) mean for the connection.
//!
//! Kustomer chooses an API key's roles when it is created and never lets them change, so a key
//! that lacks one fails on the first call that needs it, maybe days later (a note on the first
//! escalation); the test says so while someone is still looking.

use super::api::Resource;
use super::settings::KustomerSettings;
use crate::crm::{ConnectionTest, MissingPermission, Permissions};
use crate::time::Timestamp;
use serde_json::Value;

/// A key expiring sooner than this passes the test with a warning.
pub const EXPIRY_WARNING_DAYS: i64 = 14;

/// One of the setup guide's permissions ("Create API Key") and the Kustomer roles that make it:
/// a key holds the permission when it holds every one of them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GuidePermission {
    pub name: &'static str,
    pub roles: &'static [&'static str],
}

/// The guide's permissions, in its order. The roles are those Kustomer asks of the calls we make
/// for each (its permission-set roles, `org.permission.*`): writing a customer or a conversation
/// is both creating and updating one.
pub const GUIDE_PERMISSIONS: [GuidePermission; 7] = [
    GuidePermission {
        name: "customers:read",
        roles: &["org.permission.customer.read"],
    },
    GuidePermission {
        name: "customers:write",
        roles: &["org.permission.customer.create", "org.permission.customer.update"],
    },
    GuidePermission {
        name: "conversations:read",
        roles: &["org.permission.conversation.read"],
    },
    GuidePermission {
        name: "conversations:write",
        roles: &[
            "org.permission.conversation.create",
            "org.permission.conversation.update",
        ],
    },
    GuidePermission {
        name: "messages:write",
        roles: &["org.permission.message.create"],
    },
    GuidePermission {
        name: "notes:write",
        roles: &["org.permission.note.create"],
    },
    GuidePermission {
        name: "teams:read",
        roles: &["org.permission.team.read"],
    },
];

/// The role erasing a customer asks of a key (`DELETE /v1/customers/{id}`, docs/erasure.md): not
/// one of the guide's seven, and not needed to connect, but held by a key that erasure should
/// reach, so it is never counted as more than the key needs.
pub const ERASURE_ROLE: &str = "org.permission.customer.delete";

/// Roles a key holds beyond what this product's features ask of Kustomer (the guide's seven
/// permissions and erasure's role), in the key's order: the guide's "least privilege" says to
/// leave them out.
pub fn beyond_need(token: &CurrentToken) -> Vec<String> {
    token
        .roles
        .iter()
        .filter(|role| {
            *role != ERASURE_ROLE
                && !GUIDE_PERMISSIONS
                    .iter()
                    .any(|permission| permission.roles.contains(&role.as_str()))
        })
        .cloned()
        .collect()
}

/// Whether the configured work needs `permission`: all of them except `teams:read`, which only
/// a default team or Auto Assignment uses (as the guide says: "if using auto-assignment").
pub fn needed(permission: &GuidePermission, settings: &KustomerSettings) -> bool {
    permission.name != "teams:read" || settings.default_team_id.is_some() || settings.auto_assignment
}

/// The API key as Kustomer describes it (`GET /v1/auth/tokens/current`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CurrentToken {
    pub roles: Vec<String>,
    /// When the key expires; None when Kustomer gave no expiry.
    pub expires_at: Option<Timestamp>,
}

impl CurrentToken {
    pub fn from_resource(resource: &Resource) -> Self {
        let roles = resource
            .attributes
            .get("roles")
            .and_then(Value::as_array)
            .map(|roles| {
                roles
                    .iter()
                    .filter_map(Value::as_str)
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default();
        // Kustomer's token schema (developer.kustomer.com, "Auth Tokens") lists name, roles,
        // lastTokenChars and lastAccessedAt but no expiry; the expiry attribute's name comes from
        // the Amazon AppFlow user guide's "Kustomer connector" page, whose Auth Tokens object has
        // `expireAt` (DateTime). An answer without it is taken as "no expiry reported".
        let expires_at = resource
            .attributes
            .get("expireAt")
            .and_then(Value::as_str)
            .and_then(Timestamp::parse_rfc3339);
        Self { roles, expires_at }
    }

    fn holds(&self, permission: &GuidePermission) -> bool {
        permission
            .roles
            .iter()
            .all(|role| self.roles.iter().any(|held| held == role))
    }
}

/// The connection test's answer for a key whose user (`user`, already checked against the
/// organization) and token were read at `now`.
pub fn connection_test(
    user: Value,
    token: &CurrentToken,
    settings: &KustomerSettings,
    now: Timestamp,
) -> ConnectionTest {
    let held: Vec<String> = GUIDE_PERMISSIONS
        .iter()
        .filter(|permission| token.holds(permission))
        .map(|permission| permission.name.to_owned())
        .collect();
    let missing: Vec<MissingPermission> = GUIDE_PERMISSIONS
        .iter()
        .filter(|permission| needed(permission, settings) && !token.holds(permission))
        .map(|permission| MissingPermission {
            permission: permission.name.to_owned(),
            roles: permission.roles.iter().map(|role| (*role).to_owned()).collect(),
        })
        .collect();
    let mut test = ConnectionTest::passed(user);
    test.expires_at = token.expires_at;
    let seconds_left = token.expires_at.map(|at| at.seconds() - now.seconds());
    let failure = if let Some(at) = token
        .expires_at
        .filter(|_| seconds_left.is_some_and(|left| left <= 0))
    {
        Some((
            401,
            format!(
                "the API key expired at {at}; create a new one in Kustomer (Settings › Security › API Keys) \
                 and save it in secrets.api_key"
            ),
        ))
    } else if !missing.is_empty() {
        let lacking: Vec<String> = missing
            .iter()
            .map(|missing| {
                format!(
                    "{} (Kustomer role {})",
                    missing.permission,
                    missing.roles.join(" and ")
                )
            })
            .collect();
        Some((
            403,
            format!(
                "the API key lacks {}; Kustomer cannot add roles to a key, so create one with them \
                 (Settings › Security › API Keys) and save it in secrets.api_key",
                lacking.join(", ")
            ),
        ))
    } else {
        None
    };
    let extra = beyond_need(token);
    test.permissions = Some(Permissions {
        held,
        missing,
        extra: extra.clone(),
    });
    if let Some((status, reason)) = failure {
        test.ok = false;
        test.status = Some(status);
        test.reason = Some(reason);
        return test;
    }
    let mut warnings = Vec::new();
    if let (Some(at), Some(left)) = (token.expires_at, seconds_left)
        && left < EXPIRY_WARNING_DAYS * 86_400
    {
        let days = left / 86_400;
        warnings.push(format!(
            "the API key expires at {at} (in {}); create its replacement before then",
            match days {
                0 => "less than a day".to_owned(),
                1 => "1 day".to_owned(),
                days => format!("{days} days"),
            }
        ));
    }
    if !extra.is_empty() {
        warnings.push(format!(
            "the API key holds {} role(s) no feature here uses ({}); least privilege: create a key \
             with only the guide's permissions and save it in secrets.api_key",
            extra.len(),
            extra.join(", ")
        ));
    }
    if !warnings.is_empty() {
        test.warning = Some(warnings.join("; "));
    }
    test
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn settings(extra: Value) -> KustomerSettings {
        let mut input = json!({ "subdomain": "acme" });
        if let (Some(input), Some(extra)) = (input.as_object_mut(), extra.as_object()) {
            input.extend(extra.clone());
        }
        KustomerSettings::parse(&input, false).unwrap_or_else(|error| panic!("{error:?}"))
    }

    fn token(roles: &[&str], expires_at: Option<&str>) -> CurrentToken {
        CurrentToken {
            roles: roles.iter().map(|role| (*role).to_owned()).collect(),
            expires_at: expires_at.and_then(Timestamp::parse_rfc3339),
        }
    }

    /// Every role the guide's key is created with, written out here rather than read from the table.
    const ALL_ROLES: [&str; 9] = [
        "org.permission.customer.read",
        "org.permission.customer.create",
        "org.permission.customer.update",
        "org.permission.conversation.read",
        "org.permission.conversation.create",
        "org.permission.conversation.update",
        "org.permission.message.create",
        "org.permission.note.create",
        "org.permission.team.read",
    ];

    /// Why, the key's roles, its expiry, extra settings, whether the test passes, the permissions
    /// it names as missing, and what its warning says.
    type Case<'a> = (
        &'a str,
        &'a [&'a str],
        Option<&'a str>,
        Value,
        bool,
        &'a [&'a str],
        Option<&'a str>,
    );

    fn now() -> Timestamp {
        Timestamp::parse_rfc3339("2026-12-01T12:00:00Z").unwrap_or_else(|| panic!("a date"))
    }

    #[test]
    fn the_token_is_read_from_kustomers_answer_with_its_roles_and_expiry() {
        let body = json!({ "data": { "type": "auth_token", "id": "t1", "attributes": {
            "name": "crm-edge", "roles": ["org.permission.note.create", 7], "lastTokenChars": "abcd",
            "expireAt": "2027-01-01T00:00:00.000Z"
        } } });
        let resource = super::super::api::parse_resource(body.to_string().as_bytes())
            .unwrap_or_else(|error| panic!("{error}"));
        assert_eq!(
            CurrentToken::from_resource(&resource),
            token(&["org.permission.note.create"], Some("2027-01-01T00:00:00Z"))
        );
        let without = json!({ "data": { "type": "auth_token", "id": "t1", "attributes": {} } });
        let resource = super::super::api::parse_resource(without.to_string().as_bytes())
            .unwrap_or_else(|error| panic!("{error}"));
        assert_eq!(CurrentToken::from_resource(&resource), token(&[], None));
    }

    #[test]
    fn the_test_passes_only_with_every_permission_the_configured_work_needs_and_an_unexpired_key() {
        let without =
            |role: &str| -> Vec<&str> { ALL_ROLES.iter().copied().filter(|r| *r != role).collect() };
        let no_notes = without("org.permission.note.create");
        let no_teams = without("org.permission.team.read");
        let no_update = without("org.permission.customer.update");
        let with = |more: &[&'static str]| -> Vec<&str> { ALL_ROLES.iter().chain(more).copied().collect() };
        let erasing = with(&[ERASURE_ROLE]);
        let admin = with(&["org.permission.message.read", "org.admin.user.update"]);
        let cases: [Case; 10] = [
            ("every role", &ALL_ROLES, None, json!({}), true, &[], None),
            ("and erasure's", &erasing, None, json!({}), true, &[], None),
            (
                "and two roles no feature uses",
                &admin,
                None,
                json!({}),
                true,
                &[],
                Some(
                    "holds 2 role(s) no feature here uses (org.permission.message.read, org.admin.user.update); least privilege",
                ),
            ),
            (
                "no note role",
                &no_notes,
                None,
                json!({}),
                false,
                &["notes:write"],
                None,
            ),
            (
                "no team role, no default team",
                &no_teams,
                None,
                json!({}),
                true,
                &[],
                None,
            ),
            (
                "no team role, a default team",
                &no_teams,
                None,
                json!({ "default_team_id": "t1" }),
                false,
                &["teams:read"],
                None,
            ),
            (
                "no team role, auto assignment",
                &no_teams,
                None,
                json!({ "auto_assignment": true }),
                false,
                &["teams:read"],
                None,
            ),
            (
                "half of customers:write",
                &no_update,
                None,
                json!({}),
                false,
                &["customers:write"],
                None,
            ),
            (
                "expired an hour ago",
                &ALL_ROLES,
                Some("2026-12-01T11:00:00Z"),
                json!({}),
                false,
                &[],
                None,
            ),
            (
                "expiring in 5 days",
                &ALL_ROLES,
                Some("2026-12-06T12:00:00Z"),
                json!({}),
                true,
                &[],
                Some("5 days"),
            ),
        ];
        for (why, roles, expires_at, extra, ok, missing, warning) in cases {
            let test = connection_test(json!({}), &token(roles, expires_at), &settings(extra), now());
            assert_eq!(test.ok, ok, "{why}: {test:?}");
            let permissions = test
                .permissions
                .clone()
                .unwrap_or_else(|| panic!("{why}: no permissions"));
            let named: Vec<&str> = permissions
                .missing
                .iter()
                .map(|m| m.permission.as_str())
                .collect();
            assert_eq!(named, missing, "{why}");
            for name in missing {
                assert!(
                    test.reason.as_deref().is_some_and(|reason| reason.contains(name)),
                    "{why}: the reason names {name}: {test:?}"
                );
            }
            match warning {
                Some(text) => assert!(
                    test.warning
                        .as_deref()
                        .is_some_and(|warning| warning.contains(text)),
                    "{why}: {test:?}"
                ),
                None => assert_eq!(test.warning, None, "{why}"),
            }
        }
    }

    #[test]
    fn a_missing_permission_names_the_kustomer_role_and_a_key_without_expiry_shows_none() {
        let test = connection_test(
            json!({ "id": "u1" }),
            &token(&["org.permission.customer.read"], None),
            &settings(json!({})),
            now(),
        );
        let answer = serde_json::to_value(&test).unwrap_or_else(|error| panic!("{error}"));
        assert_eq!(answer["ok"], false);
        assert_eq!(answer["status"], 403);
        assert!(
            answer.get("expires_at").is_none(),
            "no expiry reported, none shown: {answer}"
        );
        assert_eq!(answer["permissions"]["held"], json!(["customers:read"]));
        assert_eq!(
            answer["permissions"]["missing"][4],
            json!({ "permission": "notes:write", "roles": ["org.permission.note.create"] })
        );
        let reason = answer["reason"].as_str().unwrap_or_default();
        assert!(
            reason.contains("conversations:write (Kustomer role org.permission.conversation.create and org.permission.conversation.update)"),
            "{reason}"
        );
        assert!(
            !reason.contains("teams:read"),
            "not needed without a default team: {reason}"
        );
        let expired = connection_test(
            json!({}),
            &token(&ALL_ROLES, Some("2026-11-30T00:00:00Z")),
            &settings(json!({})),
            now(),
        );
        assert_eq!(expired.status, Some(401));
        assert!(
            expired.reason.as_deref().is_some_and(|r| r.contains("expired")),
            "{expired:?}"
        );
    }
}
