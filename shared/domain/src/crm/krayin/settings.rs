//! The Krayin connector's settings and secrets as a business configures them through the admin
//! API: parsed once, with every problem named by its field path, so that the runtime only ever
//! holds a configuration that can work.

use super::answer::Pipeline;
use super::ids::{LeadSourceId, LeadTypeId, PipelineId, StageId, UserId};
use crate::crm::fields::{
    base_url_at, flag, names, object, optional_secret, refuse_unknown, required_secret, secret,
};
use crate::destination::Destination;
use crate::error::ApiError;
use serde_json::{Value, json};
use std::fmt;

pub use crate::crm::fields::MAX_SECRET_CHARS;
/// Krayin's `lead_value` is a `decimal(12,4)` column.
pub const MAX_LEAD_VALUE: f64 = 99_999_999.999_9;

/// The connector's configuration. Construct it with [`KrayinSettings::parse`].
#[derive(Debug, Clone, PartialEq)]
pub struct KrayinSettings {
    /// Where Krayin is installed (`https://crm.example.com`); the API's paths (`/api/v1/…`) are
    /// added to it. Given as the guide's "API URL" (`…/api/admin`), `…/api/v1` or bare, and
    /// kept bare.
    pub base_url: Destination,
    /// The Krayin user made sales owner of persons and leads we create; none leaves it to Krayin.
    pub user_id: Option<UserId>,
    /// The pipeline new leads start in (at its first stage); none is Krayin's default pipeline.
    pub pipeline_id: Option<PipelineId>,
    pub lead_source_id: Option<LeadSourceId>,
    pub lead_type_id: Option<LeadTypeId>,
    pub sync_organizations: bool,
    pub sync_conversations: bool,
    pub sync_messages: bool,
    pub stage_progression: bool,
    /// The guide's "New Lead" stage: where a contact's lead starts (with stage progression on),
    /// instead of the first stage of its pipeline.
    pub stage_on_contact_created: Option<StageId>,
    pub stage_on_conversation_created: Option<StageId>,
    pub stage_on_first_response: Option<StageId>,
    pub stage_on_resolved: Option<StageId>,
    /// The lead value of a contact that states none.
    pub default_lead_value: Option<f64>,
}

const SETTING_NAMES: &[&str] = &[
    "base_url",
    "api_url",
    "user_id",
    "pipeline_id",
    "lead_source_id",
    "lead_type_id",
    "sync_organizations",
    "sync_conversations",
    "sync_messages",
    "stage_progression",
    "stage_on_contact_created",
    "stage_on_conversation_created",
    "stage_on_first_response",
    "stage_on_resolved",
    "default_lead_value",
];

const STAGE_SETTINGS: [&str; 4] = [
    "stage_on_contact_created",
    "stage_on_conversation_created",
    "stage_on_first_response",
    "stage_on_resolved",
];

impl KrayinSettings {
    /// From the admin API's `settings` JSON object. Only `base_url` is required; null means "the
    /// default". Unknown fields are refused, so a misspelt setting is not silently ignored.
    ///
    /// Every sync option defaults to off, as the integration guide's tables say ("Start Small:
    /// enable contact sync first, then conversations"): a new connector makes persons and leads,
    /// and the business turns on conversations, messages, organizations and stage progression
    /// when it wants them.
    pub fn parse(input: &Value, allow_loopback: bool) -> Result<Self, ApiError> {
        let fields = object("settings", input)?;
        refuse_unknown("settings", fields, SETTING_NAMES, "Krayin")?;
        let given = |name: &str| fields.get(name).filter(|value| !value.is_null());
        // The integration's guide calls it "API URL"; both names mean the same setting.
        let base_url = match (given("base_url"), given("api_url")) {
            (Some(value), None) => krayin_base_url("settings.base_url", value, allow_loopback)?,
            (None, Some(value)) => krayin_base_url("settings.api_url", value, allow_loopback)?,
            (Some(_), Some(_)) => {
                return Err(ApiError::invalid(
                    "settings.api_url",
                    "give settings.base_url or settings.api_url, not both: they are the same setting",
                ));
            }
            (None, None) => {
                return Err(ApiError::invalid(
                    "settings.base_url",
                    "settings.base_url is required: the address of your Krayin, as https://crm.example.com \
                     or the API URL https://crm.example.com/api/admin",
                ));
            }
        };
        let id = |name: &str| given(name).map(|value| krayin_id(name, value)).transpose();
        Ok(Self {
            base_url,
            user_id: id("user_id")?.map(UserId),
            pipeline_id: id("pipeline_id")?.map(PipelineId),
            lead_source_id: id("lead_source_id")?.map(LeadSourceId),
            lead_type_id: id("lead_type_id")?.map(LeadTypeId),
            sync_organizations: flag(fields, "sync_organizations", false)?,
            sync_conversations: flag(fields, "sync_conversations", false)?,
            sync_messages: flag(fields, "sync_messages", false)?,
            stage_progression: flag(fields, "stage_progression", false)?,
            stage_on_contact_created: id("stage_on_contact_created")?.map(StageId),
            stage_on_conversation_created: id("stage_on_conversation_created")?.map(StageId),
            stage_on_first_response: id("stage_on_first_response")?.map(StageId),
            stage_on_resolved: id("stage_on_resolved")?.map(StageId),
            default_lead_value: given("default_lead_value").map(lead_value).transpose()?,
        })
    }

    /// As stored and returned by the admin API, in the form [`KrayinSettings::parse`] reads back
    /// to the same value.
    pub fn to_json(&self) -> Value {
        json!({
            "base_url": self.base_url.as_str(),
            "user_id": self.user_id,
            "pipeline_id": self.pipeline_id,
            "lead_source_id": self.lead_source_id,
            "lead_type_id": self.lead_type_id,
            "sync_organizations": self.sync_organizations,
            "sync_conversations": self.sync_conversations,
            "sync_messages": self.sync_messages,
            "stage_progression": self.stage_progression,
            "stage_on_contact_created": self.stage_on_contact_created,
            "stage_on_conversation_created": self.stage_on_conversation_created,
            "stage_on_first_response": self.stage_on_first_response,
            "stage_on_resolved": self.stage_on_resolved,
            "default_lead_value": self.default_lead_value,
        })
    }

    /// The origin [`api`](super::api) paths are added to, without a trailing slash.
    pub fn api_base(&self) -> String {
        self.base_url.as_str().trim_end_matches('/').to_owned()
    }

    /// The pipeline leads go to: the configured one, else Krayin's default (its `is_default`,
    /// else its first, as `PipelineRepository::getDefaultPipeline` picks).
    pub fn lead_pipeline<'a>(&self, pipelines: &'a [Pipeline]) -> Option<&'a Pipeline> {
        match self.pipeline_id {
            Some(id) => pipelines.iter().find(|pipeline| pipeline.id == id),
            None => pipelines
                .iter()
                .find(|pipeline| pipeline.is_default)
                .or_else(|| pipelines.first()),
        }
    }

    /// The stage a new lead is created in: the "New Lead" stage when stage progression is on and
    /// one is set (a stage of the lead's pipeline), else the first of the configured pipeline, else
    /// of Krayin's default one (Krayin refuses a lead whose stage is null).
    pub fn initial_stage(&self, pipelines: &[Pipeline]) -> Option<StageId> {
        let pipeline = self.lead_pipeline(pipelines)?;
        self.stage_on_contact_created
            .filter(|stage| self.stage_progression && pipeline.stage(*stage).is_some())
            .or_else(|| pipeline.stages.first().map(|stage| stage.id))
    }

    /// Checks the configured pipeline and stages against Krayin's pipelines (`GET
    /// /api/v1/settings/pipelines`), for the runtime to call when settings are saved: Krayin moves
    /// a lead only between stages of its own pipeline (`LeadController::updateStage` answers 404
    /// otherwise), so a stage of another pipeline would fail on every conversation.
    pub fn check_stages(&self, pipelines: &[Pipeline]) -> Result<(), ApiError> {
        let Some(pipeline) = self.lead_pipeline(pipelines) else {
            return Err(match self.pipeline_id {
                Some(id) => ApiError::invalid(
                    "settings.pipeline_id",
                    format!(
                        "settings.pipeline_id {id} is not a Krayin pipeline; Krayin has {}",
                        names(pipelines.iter().map(|p| (p.id, p.name.as_str())))
                    ),
                ),
                None => ApiError::invalid(
                    "settings.pipeline_id",
                    "Krayin answered with no pipelines: create one under Settings › Pipelines",
                ),
            });
        };
        for name in STAGE_SETTINGS {
            let stage_id = match name {
                "stage_on_contact_created" => self.stage_on_contact_created,
                "stage_on_conversation_created" => self.stage_on_conversation_created,
                "stage_on_first_response" => self.stage_on_first_response,
                _ => self.stage_on_resolved,
            };
            if let Some(stage_id) = stage_id
                && pipeline.stage(stage_id).is_none()
            {
                return Err(ApiError::invalid(
                    format!("settings.{name}"),
                    format!(
                        "settings.{name} {stage_id} is not a stage of the pipeline {} leads go to; its stages are {}",
                        pipeline.name,
                        names(pipeline.stages.iter().map(|s| (s.id, s.name.as_str())))
                    ),
                ));
            }
        }
        Ok(())
    }
}

/// The connector's credentials. Kept apart from the settings: sealed at rest, never returned by
/// the admin API, and `Debug` does not show them.
#[derive(Clone, PartialEq, Eq)]
pub struct KrayinSecrets {
    /// A Krayin (Laravel Sanctum) API token, sent as `Authorization: Bearer <api_token>`.
    pub api_token: String,
    /// The secret of the Chatwoot account webhook that feeds this connector: the HMAC key of
    /// `X-Chatwoot-Signature`.
    pub webhook_secret: Option<String>,
    /// For a Chatwoot before 4.11.2, which signs nothing: the secret last segment of the webhook
    /// URL (`/webhooks/chatwoot/{connector_id}/{webhook_token}`), chosen by the business, at
    /// least [`MIN_WEBHOOK_TOKEN_CHARS`] URL-safe characters, replaced to rotate it.
    pub webhook_token: Option<String>,
}

/// The shortest webhook token taken: 32 characters of `[A-Za-z0-9_-]` (`openssl rand -hex 32`
/// makes 64), so that it cannot be guessed.
pub const MIN_WEBHOOK_TOKEN_CHARS: usize = 32;

impl fmt::Debug for KrayinSecrets {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "KrayinSecrets {{ api_token: <redacted>, webhook_secret: {}, webhook_token: {} }}",
            redacted(&self.webhook_secret),
            redacted(&self.webhook_token),
        )
    }
}

fn redacted(secret: &Option<String>) -> &'static str {
    if secret.is_some() { "<redacted>" } else { "none" }
}

impl KrayinSecrets {
    pub fn parse(input: &Value) -> Result<Self, ApiError> {
        let fields = object("secrets", input)?;
        refuse_unknown(
            "secrets",
            fields,
            &["api_token", "webhook_secret", "webhook_token"],
            "Krayin",
        )?;
        let api_token = required_secret(
            fields,
            "api_token",
            "token",
            "a Krayin API token (Settings › API tokens, or POST /api/v1/login)",
        )?;
        let webhook_secret = optional_secret(fields, "webhook_secret", "token")?;
        let webhook_token = fields
            .get("webhook_token")
            .filter(|value| !value.is_null())
            .map(webhook_token)
            .transpose()?;
        Ok(Self {
            api_token,
            webhook_secret,
            webhook_token,
        })
    }

    pub fn to_json(&self) -> Value {
        json!({
            "api_token": self.api_token,
            "webhook_secret": self.webhook_secret,
            "webhook_token": self.webhook_token,
        })
    }
}

/// A webhook token: a path segment as it is (URL-safe characters only), long enough not to be
/// guessed.
fn webhook_token(value: &Value) -> Result<String, ApiError> {
    const FIELD: &str = "secrets.webhook_token";
    let token = secret(FIELD, value, "token")?;
    let url_safe = token
        .bytes()
        .all(|byte| byte.is_ascii_alphanumeric() || byte == b'-' || byte == b'_');
    if !url_safe || token.chars().count() < MIN_WEBHOOK_TOKEN_CHARS {
        return Err(ApiError::invalid(
            FIELD,
            format!(
                "{FIELD} is at least {MIN_WEBHOOK_TOKEN_CHARS} characters of A-Z, a-z, 0-9, - and _ \
                 (for example the output of `openssl rand -hex 32`)"
            ),
        ));
    }
    Ok(token)
}

/// The address of Krayin, given as the guide's API URL (`https://crm.example.com/api/admin`),
/// as its REST API's (`…/api/v1`), or bare, and kept bare: `/api/v1/…` is added to it. Any other
/// path under `/api` is not Krayin's API, and is refused with the fix.
fn krayin_base_url(field: &str, value: &Value, allow_loopback: bool) -> Result<Destination, ApiError> {
    let destination = base_url_at(field, value, allow_loopback)?;
    let path = destination.url().path().trim_end_matches('/');
    let segments: Vec<&str> = path.split('/').collect();
    let Some(api) = segments
        .iter()
        .position(|segment| segment.eq_ignore_ascii_case("api"))
    else {
        return Ok(destination);
    };
    let rest = &segments[api + 1..];
    let is_krayin_api = match rest {
        [] => true,
        [version] => version.eq_ignore_ascii_case("admin") || version.eq_ignore_ascii_case("v1"),
        _ => false,
    };
    if !is_krayin_api {
        return Err(ApiError::invalid(
            field,
            format!(
                "{field} is Krayin's address (https://crm.example.com) or its API URL \
                 (https://crm.example.com/api/admin); {path} is neither"
            ),
        ));
    }
    let mut bare = destination.url().clone();
    bare.set_path(&segments[..api].join("/"));
    Destination::parse(field, bare.as_str(), allow_loopback)
        .map_err(|message| ApiError::invalid(field, message))
}

/// Krayin's ids are auto-increment integers, given as a number or a string of digits.
fn krayin_id(name: &str, value: &Value) -> Result<u64, ApiError> {
    let id = match value {
        Value::Number(number) => number.as_u64(),
        Value::String(text) if text.trim().bytes().all(|b| b.is_ascii_digit()) => text.trim().parse().ok(),
        _ => None,
    };
    id.filter(|id| *id > 0).ok_or_else(|| {
        ApiError::invalid(
            format!("settings.{name}"),
            format!("settings.{name} must be a Krayin id: a positive integer"),
        )
    })
}

fn lead_value(value: &Value) -> Result<f64, ApiError> {
    const FIELD: &str = "settings.default_lead_value";
    value
        .as_f64()
        .filter(|amount| amount.is_finite() && (0.0..=MAX_LEAD_VALUE).contains(amount))
        .ok_or_else(|| {
            ApiError::invalid(
                FIELD,
                format!("{FIELD} must be a number from 0 to {MAX_LEAD_VALUE}"),
            )
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crm::krayin::answer::Stage;

    fn parse(input: Value) -> Result<KrayinSettings, ApiError> {
        KrayinSettings::parse(&input, false)
    }

    fn stage(id: u64, name: &str, sort_order: u32) -> Stage {
        Stage {
            id: StageId(id),
            name: name.to_owned(),
            code: name.to_lowercase(),
            sort_order,
        }
    }

    fn pipelines() -> Vec<Pipeline> {
        vec![
            Pipeline {
                id: PipelineId(1),
                name: "Default Pipeline".to_owned(),
                is_default: true,
                stages: vec![stage(1, "New", 0), stage(2, "Follow-Up", 1), stage(5, "Won", 2)],
            },
            Pipeline {
                id: PipelineId(2),
                name: "Enterprise".to_owned(),
                is_default: false,
                stages: vec![stage(7, "Discovery", 0), stage(8, "Won", 1)],
            },
        ]
    }

    #[test]
    fn a_base_url_alone_gives_the_documented_defaults() {
        let settings =
            parse(json!({ "base_url": "https://crm.example.com/" })).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(settings.api_base(), "https://crm.example.com");
        assert!(!settings.sync_organizations && !settings.sync_conversations && !settings.sync_messages);
        assert!(!settings.stage_progression);
        assert_eq!(
            (
                settings.user_id,
                settings.pipeline_id,
                settings.default_lead_value
            ),
            (None, None, None)
        );
        let nested =
            parse(json!({ "base_url": "https://example.com/krayin" })).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(nested.api_base(), "https://example.com/krayin");
    }

    #[test]
    fn the_guides_api_url_is_kept_as_krayins_bare_address() {
        for (given, expected) in [
            (
                json!({ "base_url": "https://crm.example.com/api/admin" }),
                "https://crm.example.com",
            ),
            (
                json!({ "api_url": "https://crm.example.com/api/admin/" }),
                "https://crm.example.com",
            ),
            (
                json!({ "base_url": "https://crm.example.com/API/V1" }),
                "https://crm.example.com",
            ),
            (
                json!({ "base_url": "https://crm.example.com/api" }),
                "https://crm.example.com",
            ),
            (
                json!({ "api_url": "https://example.com/krayin/api/admin" }),
                "https://example.com/krayin",
            ),
        ] {
            let settings = parse(given.clone()).unwrap_or_else(|e| panic!("{given}: {e}"));
            assert_eq!(settings.api_base(), expected, "{given}");
            assert_eq!(
                settings.to_json()["base_url"]
                    .as_str()
                    .map(|url| url.trim_end_matches('/')),
                Some(expected),
                "{given}"
            );
        }
    }

    #[test]
    fn settings_round_trip_through_their_stored_form() {
        let settings = parse(json!({
            "base_url": "https://crm.example.com",
            "user_id": 3, "pipeline_id": "2", "lead_source_id": 1, "lead_type_id": 2,
            "sync_organizations": false, "sync_messages": false, "stage_progression": true,
            "stage_on_conversation_created": 7, "stage_on_resolved": 8, "default_lead_value": 250.5,
        }))
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(settings.pipeline_id, Some(PipelineId(2)));
        assert_eq!(parse(settings.to_json()).ok(), Some(settings.clone()));
        let defaults =
            parse(json!({ "base_url": "https://crm.example.com" })).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(parse(defaults.to_json()).ok(), Some(defaults));
    }

    #[test]
    fn bad_settings_are_refused_with_the_path_of_the_field_at_fault() {
        let url = "https://crm.example.com";
        let cases: Vec<(Value, &str, &str)> = vec![
            (json!([]), "settings", "not an object"),
            (json!({}), "settings.base_url", "no base_url"),
            (
                json!({ "base_url": "https://crm.example.com/api/admin/users" }),
                "settings.base_url",
                "a path under the API",
            ),
            (
                json!({ "api_url": "https://crm.example.com/api/v2" }),
                "settings.api_url",
                "the API path",
            ),
            (
                json!({ "base_url": "http://127.0.0.1:8000" }),
                "settings.base_url",
                "loopback outside the local stack",
            ),
            (
                json!({ "base_url": "http://crm.example.com" }),
                "settings.base_url",
                "plain http",
            ),
            (
                json!({ "base_url": "https://crm.example.com/?x=1" }),
                "settings.base_url",
                "a query",
            ),
            (json!({ "base_url": 5 }), "settings.base_url", "a number"),
            (
                json!({ "base_url": url, "api_url": url }),
                "settings.api_url",
                "both names of the address",
            ),
            (
                json!({ "base_url": url, "apiurl": url }),
                "settings.apiurl",
                "an unknown setting",
            ),
            (
                json!({ "base_url": url, "user_id": 0 }),
                "settings.user_id",
                "id 0",
            ),
            (
                json!({ "base_url": url, "pipeline_id": -2 }),
                "settings.pipeline_id",
                "a negative id",
            ),
            (
                json!({ "base_url": url, "lead_type_id": 1.5 }),
                "settings.lead_type_id",
                "a fraction",
            ),
            (
                json!({ "base_url": url, "lead_source_id": "web" }),
                "settings.lead_source_id",
                "a word",
            ),
            (
                json!({ "base_url": url, "stage_on_resolved": "" }),
                "settings.stage_on_resolved",
                "an empty id",
            ),
            (
                json!({ "base_url": url, "sync_messages": "yes" }),
                "settings.sync_messages",
                "a string flag",
            ),
            (
                json!({ "base_url": url, "default_lead_value": -1 }),
                "settings.default_lead_value",
                "a negative value",
            ),
            (
                json!({ "base_url": url, "default_lead_value": 1e12 }),
                "settings.default_lead_value",
                "over decimal(12,4)",
            ),
            (
                json!({ "base_url": url, "default_lead_value": "100" }),
                "settings.default_lead_value",
                "a string value",
            ),
        ];
        for (input, field, description) in cases {
            match parse(input) {
                Ok(settings) => panic!("{description}: accepted as {settings:?}"),
                Err(error) => {
                    assert_eq!(error.body.field.as_deref(), Some(field), "{description}: {error}");
                    assert_eq!(error.status(), 422, "{description}");
                }
            }
        }
    }

    #[test]
    fn stages_must_belong_to_the_pipeline_leads_go_to() {
        let base = json!({ "base_url": "https://crm.example.com", "stage_on_resolved": 5 });
        let default_pipeline = parse(base).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(default_pipeline.check_stages(&pipelines()), Ok(()));
        assert_eq!(
            default_pipeline.initial_stage(&pipelines()),
            Some(StageId(1)),
            "without a pipeline, leads start at the first stage of Krayin's default one"
        );

        let cases: Vec<(Value, &str, &str)> = vec![
            (
                json!({ "base_url": "https://crm.example.com", "stage_on_first_response": 7 }),
                "settings.stage_on_first_response",
                "a stage of another pipeline",
            ),
            (
                json!({ "base_url": "https://crm.example.com", "pipeline_id": 2, "stage_on_resolved": 5 }),
                "settings.stage_on_resolved",
                "a default-pipeline stage with pipeline 2",
            ),
            (
                json!({ "base_url": "https://crm.example.com", "pipeline_id": 9 }),
                "settings.pipeline_id",
                "an unknown pipeline",
            ),
            (
                json!({ "base_url": "https://crm.example.com", "pipeline_id": 2, "stage_on_contact_created": 2 }),
                "settings.stage_on_contact_created",
                "a New Lead stage of another pipeline",
            ),
        ];
        for (input, field, description) in cases {
            let settings = parse(input).unwrap_or_else(|e| panic!("{e}"));
            let error = settings.check_stages(&pipelines()).err();
            assert_eq!(
                error.as_ref().and_then(|e| e.body.field.as_deref()),
                Some(field),
                "{description}"
            );
            assert_eq!(error.map(|e| e.status()), Some(422), "{description}");
        }
        let enterprise =
            parse(json!({ "base_url": "https://crm.example.com", "pipeline_id": 2, "stage_on_resolved": 8 }))
                .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(enterprise.check_stages(&pipelines()), Ok(()));
        assert_eq!(enterprise.initial_stage(&pipelines()), Some(StageId(7)));
        let new_lead = |progression: bool| {
            parse(
                json!({ "base_url": "https://crm.example.com", "stage_progression": progression,
                          "stage_on_contact_created": 2 }),
            )
            .unwrap_or_else(|e| panic!("{e}"))
            .initial_stage(&pipelines())
        };
        assert_eq!(
            new_lead(true),
            Some(StageId(2)),
            "the New Lead stage, with progression on"
        );
        assert_eq!(
            new_lead(false),
            Some(StageId(1)),
            "the first stage, with progression off"
        );
        let none = enterprise.check_stages(&[]).err();
        assert_eq!(
            none.and_then(|e| e.body.field),
            Some("settings.pipeline_id".to_owned())
        );
    }

    #[test]
    fn secrets_need_a_token_and_keep_both_out_of_debug_output() {
        let token = "0123456789abcdef0123456789abcdef";
        let secrets = KrayinSecrets::parse(
            &json!({ "api_token": " 1|abcDEF ", "webhook_secret": "cw-secret", "webhook_token": token }),
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(secrets.webhook_token.as_deref(), Some(token));
        assert_eq!(secrets.api_token, "1|abcDEF");
        assert_eq!(
            KrayinSecrets::parse(&secrets.to_json()).ok(),
            Some(secrets.clone())
        );
        let shown = format!("{secrets:?}");
        assert!(
            !shown.contains("abcDEF") && !shown.contains("cw-secret") && !shown.contains(token),
            "{shown}"
        );
        let cases: Vec<(Value, &str, &str)> = vec![
            (json!("t"), "secrets", "not an object"),
            (json!({}), "secrets.api_token", "no token"),
            (json!({ "api_token": "" }), "secrets.api_token", "an empty token"),
            (
                json!({ "api_token": "Bearer 1|abc" }),
                "secrets.api_token",
                "the Bearer prefix",
            ),
            (json!({ "api_token": "1|a b" }), "secrets.api_token", "a space"),
            (
                json!({ "api_token": "t".repeat(4097) }),
                "secrets.api_token",
                "4097 characters",
            ),
            (
                json!({ "api_token": "t", "webhook_secret": 5 }),
                "secrets.webhook_secret",
                "a number secret",
            ),
            (
                json!({ "api_token": "t", "webhook_token": "0123456789abcdef0123456789abcde" }),
                "secrets.webhook_token",
                "a token of 31 characters, too easily guessed",
            ),
            (
                json!({ "api_token": "t", "webhook_token": "0123456789abcdef0123456789abcdef/x" }),
                "secrets.webhook_token",
                "a token that is not one path segment",
            ),
            (
                json!({ "api_token": "t", "webhook_token": "0123456789abcdef0123456789abcdé" }),
                "secrets.webhook_token",
                "a token with a character a URL would escape",
            ),
            (
                json!({ "api_token": "t", "api_key": "k" }),
                "secrets.api_key",
                "an unknown secret",
            ),
        ];
        for (input, field, description) in cases {
            let error = KrayinSecrets::parse(&input).err();
            assert_eq!(
                error.and_then(|e| e.body.field),
                Some(field.to_owned()),
                "{description}"
            );
        }
    }
}
