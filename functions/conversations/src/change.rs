//! Checking a change of a conversation's status or assignee as the API takes it; applying it is
//! `edge::messaging::conversation_change`'s (a compare-and-set with its events).

use domain::api::messages::{ChangeIn, ConversationOut, MAX_ASSIGNEE_CHARS};
use domain::error::ApiError;
use domain::ids::ConversationId;
use domain::message::ConversationStatus;
use domain::tenant::Tenant;
use edge::Env;
use edge::messaging::conversation_change::{self, Change, Source};

fn check(input: ChangeIn) -> Result<Change, ApiError> {
    let status = match input.status.as_deref().map(str::trim) {
        None => None,
        Some(name) => Some(ConversationStatus::parse(name).ok_or_else(|| {
            let names: Vec<&str> = ConversationStatus::ALL.map(ConversationStatus::as_str).to_vec();
            ApiError::invalid("status", format!("status is one of {}", names.join(", ")))
        })?),
    };
    let assignee = match input.assignee {
        None => None,
        Some(None) => Some(None),
        Some(Some(name)) => {
            let name = name.trim();
            if name.is_empty() || name.chars().count() > MAX_ASSIGNEE_CHARS {
                return Err(ApiError::invalid(
                    "assignee",
                    format!("assignee is 1 to {MAX_ASSIGNEE_CHARS} characters, or null to unassign"),
                ));
            }
            Some(Some(name.to_owned()))
        }
    };
    if status.is_none() && assignee.is_none() {
        return Err(ApiError::invalid(
            "status",
            "give status and/or assignee to change",
        ));
    }
    Ok(Change { status, assignee })
}

pub async fn apply(
    env: &Env,
    tenant: &Tenant,
    id: &ConversationId,
    input: ChangeIn,
    origin: &str,
) -> Result<ConversationOut, ApiError> {
    let change = check(input)?;
    let source = Source {
        origin: Some(origin),
        connector: None,
    };
    let conversation = conversation_change::apply(env, &env.db()?, tenant, id, &change, &source).await?;
    Ok(ConversationOut { conversation })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input(json: &str) -> ChangeIn {
        serde_json::from_str(json).unwrap_or_default()
    }

    #[test]
    fn a_change_names_a_known_status_or_an_assignee() {
        let cases = [
            (r#"{"status":"resolved"}"#, true, "a known status"),
            (r#"{"assignee":"ana@example.com"}"#, true, "an assignee"),
            (r#"{"assignee":null}"#, true, "unassigning"),
            (r#"{"status":"done"}"#, false, "an unknown status"),
            (r#"{"assignee":"  "}"#, false, "a blank assignee"),
            (r#"{}"#, false, "nothing to change"),
        ];
        for (json, ok, why) in cases {
            assert_eq!(check(input(json)).is_ok(), ok, "{why}");
        }
        let named = |chars: usize| format!(r#"{{"assignee":" {} "}}"#, "é".repeat(chars));
        assert!(
            check(input(&named(MAX_ASSIGNEE_CHARS))).is_ok(),
            "an assignee at the limit, trimmed"
        );
        assert!(
            check(input(&named(MAX_ASSIGNEE_CHARS + 1))).is_err(),
            "an assignee over it"
        );
        let unassign = check(input(r#"{"assignee":null}"#)).ok().and_then(|c| c.assignee);
        assert_eq!(unassign, Some(None));
    }
}
