//! Records admin and security actions in the audit log (`db::audit_log`): who (the admin token, an
//! API key by its prefix, or a console session), what, when and from where. Details name what
//! changed, never a secret's value.
//!
//! An entry is written after its action succeeded. Should the write fail, the action stands (it
//! is done, and the client is told so) and the entry goes to the error log in full instead.

use crate::Env;
use crate::console_error;
use crate::runtime::Request;
use crate::{db, platform::http, runtime};
use domain::audit::{Action, Actor};
use domain::ids::{AuditEntryId, BusinessId};
use serde::Serialize;
use serde_json::{Map, Value, json};

/// Who is acting in this request, and from where.
pub struct Audit {
    actor: Actor,
    client_ip: Option<String>,
}

impl Audit {
    /// A request by `actor`: an API key or a console session of the business.
    pub fn by(actor: Actor, req: &Request) -> Self {
        Self::new(actor, http::client_ip(req))
    }

    pub fn new(actor: Actor, client_ip: Option<String>) -> Self {
        Self { actor, client_ip }
    }

    /// Who is acting, as the audit log names them.
    pub fn actor(&self) -> &Actor {
        &self.actor
    }

    /// Records an update, by the names of the fields it set.
    pub async fn record_update<T: Serialize>(
        &self,
        env: &Env,
        business_id: &BusinessId,
        action: Action,
        target_id: &str,
        input: &T,
    ) {
        let detail = json!({ "changed": changes(input) });
        self.record(env, business_id, action, Some(target_id), detail)
            .await;
    }

    pub async fn record(
        &self,
        env: &Env,
        business_id: &BusinessId,
        action: Action,
        target_id: Option<&str>,
        detail: Value,
    ) {
        let actor = self.actor.label();
        let detail = detail.to_string();
        let written = async {
            let entry = db::audit_log::NewEntry {
                id: &AuditEntryId::generate(runtime::random()?),
                business_id,
                at_us: runtime::now().micros(),
                actor: &actor,
                action,
                target_id,
                detail: &detail,
                client_ip: self.client_ip.as_deref(),
            };
            db::audit_log::insert(&env.db()?, &entry).await
        };
        if let Err(error) = written.await {
            console_error!(
                "audit entry not written ({error:?}): business {business_id} actor {actor} action {} target {target_id:?} detail {detail} from {:?}",
                action.as_str(),
                self.client_ip,
            );
        }
    }
}

/// What an update set, never a value: each field it gave, as `true`, or for an object (settings,
/// secrets) the names of the keys it set or removed.
pub fn changes<T: Serialize>(input: &T) -> Value {
    let Ok(Value::Object(fields)) = serde_json::to_value(input) else {
        return json!({});
    };
    let changed: Map<String, Value> = fields
        .into_iter()
        .filter(|(_, value)| !value.is_null() && value.as_object().is_none_or(|object| !object.is_empty()))
        .map(|(name, value)| {
            let what = match value {
                Value::Object(object) => json!(object.keys().collect::<Vec<_>>()),
                _ => Value::Bool(true),
            };
            (name, what)
        })
        .collect();
    Value::Object(changed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::{Level, Method};
    use crate::testing::Fixture;
    use serde::Serialize;

    #[derive(Serialize)]
    struct UpdateIn {
        name: Option<String>,
        default_country: Option<String>,
        settings: Option<Map<String, Value>>,
        secrets: Option<Map<String, Value>>,
        empty: Option<Map<String, Value>>,
    }

    fn from(ip: Option<&str>) -> Request {
        let req = Request::new("https://api.example/admin/businesses", Method::Patch)
            .unwrap_or_else(|error| panic!("{error}"));
        match ip {
            Some(ip) => req.with_header("cf-connecting-ip", ip),
            None => req,
        }
    }

    #[test]
    fn an_entry_says_who_did_what_to_which_when_and_from_where() {
        let fixture = Fixture::new();
        fixture.run(async {
            let tenant = fixture.business("Acme").await;
            let audit = Audit::by(Actor::Admin, &from(Some("203.0.113.7")));
            audit
                .record(
                    &fixture.env,
                    &tenant.business_id,
                    Action::ApiKeyRevoked,
                    Some("key_1"),
                    json!({ "prefix": "cek_0102" }),
                )
                .await;
            let entries = fixture.rows("audit_log", "at_us");
            assert_eq!(entries.len(), 1);
            let entry = &entries[0];
            assert_eq!(
                (
                    entry["actor"].as_str(),
                    entry["action"].as_str(),
                    entry["target_type"].as_str(),
                    entry["target_id"].as_str(),
                    entry["client_ip"].as_str(),
                    entry["at_us"].as_i64()
                ),
                (
                    Some("admin"),
                    Some("api_key.revoked"),
                    Some("api_key"),
                    Some("key_1"),
                    Some("203.0.113.7"),
                    Some(fixture.stack.now_ms() * 1000)
                )
            );
            assert_eq!(entry["detail"], r#"{"prefix":"cek_0102"}"#);
            assert_eq!(entry["business_id"], tenant.business_id.as_str());
        });
    }

    #[test]
    fn an_update_is_recorded_by_the_names_of_what_it_set_never_a_value() {
        let fixture = Fixture::new();
        fixture.run(async {
            let tenant = fixture.business("Acme").await;
            let (key, _) = fixture.api_key(&tenant).await;
            let mut secrets = Map::new();
            secrets.insert("api_key".to_owned(), json!("super-secret-value"));
            secrets.insert("old".to_owned(), Value::Null);
            let mut settings = Map::new();
            settings.insert("subdomain".to_owned(), json!("acme"));
            let input = UpdateIn {
                name: Some("Acme Ltd".to_owned()),
                default_country: None,
                settings: Some(settings),
                secrets: Some(secrets),
                empty: Some(Map::new()),
            };
            let audit = Audit::by(Actor::key(&key), &from(None));
            audit
                .record_update(&fixture.env, &tenant.business_id, Action::ConnectorUpdated, "con_1", &input)
                .await;
            let entry = &fixture.rows("audit_log", "at_us")[0];
            let detail: Value = serde_json::from_str(entry["detail"].as_str().unwrap_or_default())
                .unwrap_or_else(|error| panic!("{error}"));
            assert_eq!(
                detail,
                json!({ "changed": { "name": true, "settings": ["subdomain"], "secrets": ["api_key", "old"] } })
            );
            assert!(!entry["detail"].to_string().contains("super-secret-value"));
            assert_eq!(entry["actor"], format!("key:{}", &key[..12]));
            assert!(entry["client_ip"].is_null());
        });
    }

    #[test]
    fn an_entry_that_cannot_be_written_goes_to_the_error_log_in_full_and_the_action_stands() {
        let fixture = Fixture::new();
        fixture.run(async {
            let tenant = fixture.business("Acme").await;
            for shard in fixture.stack.shard_bindings() {
                fixture.stack.outage(&shard, "D1 DB is overloaded.");
            }
            Audit::by(Actor::Admin, &from(Some("198.51.100.2")))
                .record(
                    &fixture.env,
                    &tenant.business_id,
                    Action::BusinessUpdated,
                    Some("b"),
                    json!({ "changed": { "name": true } }),
                )
                .await;
        });
        let logged = fixture.stack.logged(Level::Error, "audit entry not written");
        assert_eq!(logged.len(), 1, "{:?}", fixture.stack.logs());
        for part in [
            "actor admin",
            "action business.updated",
            r#"{"changed":{"name":true}}"#,
            "198.51.100.2",
        ] {
            assert!(logged[0].contains(part), "{part}: {}", logged[0]);
        }
    }
}
