//! The Kustomer connection test through the admin API (`POST /admin/connectors/{id}/test`) as the
//! setup checklist's "API Permissions Verification" uses it: the key's roles against the
//! permissions the configured work needs, and its expiry.

use crate::app::test;
use crate::partners::kustomer::PERMISSIONS;
use crate::steps::crms::kustomer::connected_business;
use crate::steps::text;
use domain::time::Timestamp;
use edge::runtime::Method;
use serde_json::{Value, json};

const DAY_SECONDS: i64 = 86_400;

/// One key the connector holds, and what its test must answer.
struct Case {
    why: &'static str,
    /// The guide's permissions the key was created with.
    held: Vec<&'static str>,
    settings: Value,
    /// Days from now until the key expires (None: it never does).
    expires_in_days: Option<i64>,
    ok: bool,
    /// The permissions the answer lists as missing, each named in its reason with its role.
    missing: &'static [(&'static str, &'static str)],
    /// What its warning must say (None: no warning).
    warned: Option<&'static str>,
}

/// The seven permissions the guide's key is created with (the fake also knows messages:read and
/// notes:read, which no feature here uses).
fn guide() -> Vec<&'static str> {
    PERMISSIONS
        .iter()
        .copied()
        .filter(|permission| !matches!(*permission, "messages:read" | "notes:read"))
        .collect()
}

fn all_but(left_out: &str) -> Vec<&'static str> {
    guide()
        .into_iter()
        .filter(|permission| *permission != left_out)
        .collect()
}

#[test]
fn the_connection_test_passes_only_with_the_permissions_the_work_needs_and_an_unexpired_key() {
    let cases = [
        Case {
            why: "every permission of the guide",
            held: guide(),
            settings: json!({}),
            expires_in_days: None,
            ok: true,
            missing: &[],
            warned: None,
        },
        Case {
            why: "every permission the fake knows: two roles beyond need",
            held: PERMISSIONS.to_vec(),
            settings: json!({}),
            expires_in_days: None,
            ok: true,
            missing: &[],
            warned: Some(
                "holds 2 role(s) no feature here uses (org.permission.message.read, org.permission.note.read)",
            ),
        },
        Case {
            why: "without notes:write",
            held: all_but("notes:write"),
            settings: json!({}),
            expires_in_days: None,
            ok: false,
            missing: &[("notes:write", "org.permission.note.create")],
            warned: None,
        },
        Case {
            why: "without teams:read and no default team",
            held: all_but("teams:read"),
            settings: json!({}),
            expires_in_days: None,
            ok: true,
            missing: &[],
            warned: None,
        },
        Case {
            why: "without teams:read and a default team",
            held: all_but("teams:read"),
            settings: json!({ "default_team_id": "DEFAULT_TEAM" }),
            expires_in_days: None,
            ok: false,
            missing: &[("teams:read", "org.permission.team.read")],
            warned: None,
        },
        Case {
            why: "expired yesterday",
            held: guide(),
            settings: json!({}),
            expires_in_days: Some(-1),
            ok: false,
            missing: &[],
            warned: None,
        },
        Case {
            why: "expiring in 5 days",
            held: guide(),
            settings: json!({}),
            expires_in_days: Some(5),
            ok: true,
            missing: &[],
            warned: Some("5 days"),
        },
        Case {
            why: "expiring in 30 days",
            held: guide(),
            settings: json!({}),
            expires_in_days: Some(30),
            ok: true,
            missing: &[],
            warned: None,
        },
    ];
    for case in cases {
        test(|app| async move {
            let why = case.why;
            let mut settings = case.settings.clone();
            let setup = connected_business(&app, json!({})).await;
            let org = setup.kustomer.org();
            if settings["default_team_id"] == "DEFAULT_TEAM" {
                let team = setup.kustomer.teams()[0]["id"].clone();
                settings["default_team_id"] = team;
            }
            let id = setup.id().to_owned();
            if settings.as_object().is_some_and(|fields| !fields.is_empty()) {
                app.admin(
                    Method::Patch,
                    &format!("/admin/connectors/{id}"),
                    Some(json!({ "settings": settings })),
                )
                .await
                .expect(200);
            }
            // Kustomer never changes a key's roles: the key the connector holds is replaced by one
            // made with `held`, under the same token.
            setup.kustomer.add_key(&setup.api_key, &org, &case.held);
            if let Some(days) = case.expires_in_days {
                let now = Timestamp::from_millis(app.stack.now_ms());
                setup
                    .kustomer
                    .key_expires(&setup.api_key, now.plus_seconds(days * DAY_SECONDS));
            }

            let answer = app
                .admin(Method::Post, &format!("/admin/connectors/{id}/test"), None)
                .await
                .expect(200)
                .json();
            assert_eq!(answer["ok"], case.ok, "{why}: {answer}");
            let reason = text(&answer["reason"]).to_owned();
            if case.expires_in_days.is_some_and(|days| days < 0) {
                assert_eq!(
                    answer["status"], 401,
                    "{why}: Kustomer refuses an expired key: {answer}"
                );
                assert!(reason.contains("API key"), "{why}: {answer}");
                return;
            }
            let missing: Vec<Value> = case
                .missing
                .iter()
                .map(|(permission, role)| json!({ "permission": permission, "roles": [role] }))
                .collect();
            assert_eq!(
                answer["permissions"]["missing"],
                json!(missing),
                "{why}: {answer}"
            );
            for (permission, role) in case.missing {
                assert!(
                    reason.contains(&format!("{permission} (Kustomer role {role})")),
                    "{why}: the reason names {permission} and its role: {answer}"
                );
            }
            let held: Vec<&str> = answer["permissions"]["held"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .collect();
            for permission in &case.held {
                let in_guide = !matches!(*permission, "messages:read" | "notes:read");
                assert_eq!(
                    held.contains(permission),
                    in_guide,
                    "{why}: the guide's {permission} is listed as held: {answer}"
                );
            }
            assert_eq!(
                answer["user"]["org"],
                org.as_str(),
                "{why}: the user is still shown"
            );
            match case.expires_in_days {
                None => assert_eq!(
                    answer.get("expires_at"),
                    None,
                    "{why}: no expiry reported, none shown: {answer}"
                ),
                Some(_) => assert!(
                    answer["expires_at"]
                        .as_str()
                        .is_some_and(|at| at.starts_with("20")),
                    "{why}: {answer}"
                ),
            }
            match case.warned {
                Some(said) => {
                    assert!(text(&answer["warning"]).contains(said), "{why}: {answer}");
                    let extra = answer["permissions"]["extra"].as_array().map_or(0, Vec::len);
                    assert_eq!(
                        extra > 0,
                        said.contains("role(s)"),
                        "{why}: the extra roles are listed: {answer}"
                    );
                }
                None => assert_eq!(answer.get("warning"), None, "{why}: {answer}"),
            }
        });
    }
}
