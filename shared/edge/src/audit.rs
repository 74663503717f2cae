//! Records admin and security actions in the audit log (`db::audit_log`): who (the admin token, an
//! API key by its prefix, or a console session), what, when and from where. Details name what
//! changed, never a secret's value.
//!
//! An entry is written after its action succeeded. Should the write fail, the action stands (it
//! is done, and the client is told so) and the entry goes to the error log in full instead.

use crate::Env;
use crate::console_error;
use crate::runtime::Request;
use crate::{DB, db, http, runtime};
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
    /// A request authorised by the admin token.
    pub fn admin(req: &Request) -> Self {
        Self::by(Actor::Admin, req)
    }

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
            db::audit_log::insert(&env.d1(DB)?, &entry).await
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
