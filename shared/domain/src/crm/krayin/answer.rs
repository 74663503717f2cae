//! How to read Krayin's answers: the `{data, message}` envelope and its lists, the records we
//! look up (persons, leads, pipelines and their stages), and Laravel's errors told to people.

use super::ids::{LeadId, OrganizationId, PersonId, PipelineId, StageId};
use crate::email::Email;
use crate::json::Malformed;
use crate::phone::Phone;
use serde_json::{Map, Value};

fn document(body: &[u8]) -> Result<Value, Malformed> {
    serde_json::from_slice(body)
        .map_err(|error| Malformed::new(format!("Krayin's answer is not JSON: {error}")))
}

/// The `data` of a `{data, message}` answer (or of a bare resource `{data}`).
pub fn parse_data(body: &[u8]) -> Result<Map<String, Value>, Malformed> {
    match document(body)?.get_mut("data").map(Value::take) {
        Some(Value::Object(data)) => Ok(data),
        Some(_) => Err("Krayin's answer's data is not an object".into()),
        None => Err("Krayin's answer has no data".into()),
    }
}

/// The id of the record a create or update answered with.
pub fn parse_id(body: &[u8]) -> Result<u64, Malformed> {
    parse_data(body)?
        .get("id")
        .and_then(Value::as_u64)
        .filter(|id| *id > 0)
        .ok_or_else(|| Malformed::new("Krayin's answer has no record id"))
}

/// The items of a list answer (`{data: [...]}`, paginated or not).
pub fn parse_list(body: &[u8]) -> Result<Vec<Map<String, Value>>, Malformed> {
    match document(body)?.get_mut("data").map(Value::take) {
        Some(Value::Array(items)) => items
            .into_iter()
            .map(|item| match item {
                Value::Object(item) => Ok(item),
                _ => Err("an item of Krayin's list is not an object".into()),
            })
            .collect(),
        _ => Err("Krayin's answer has no data list".into()),
    }
}

fn text_of(object: &Map<String, Value>, name: &str) -> Option<String> {
    object
        .get(name)
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .map(str::to_owned)
}

fn id_of(object: &Map<String, Value>) -> Result<u64, Malformed> {
    object
        .get("id")
        .and_then(Value::as_u64)
        .filter(|id| *id > 0)
        .ok_or_else(|| Malformed::new("a record has no id"))
}

/// A person as Krayin's search answers it.
#[derive(Debug, Clone, PartialEq)]
pub struct Person {
    pub id: PersonId,
    pub name: Option<String>,
    pub emails: Vec<String>,
    pub contact_numbers: Vec<String>,
    pub organization_id: Option<OrganizationId>,
}

impl Person {
    pub fn from_data(data: &Map<String, Value>) -> Result<Self, Malformed> {
        let values = |name: &str| -> Vec<String> {
            data.get(name)
                .and_then(Value::as_array)
                .map(|items| {
                    items
                        .iter()
                        .filter_map(|item| item.get("value")?.as_str().map(str::to_owned))
                        .collect()
                })
                .unwrap_or_default()
        };
        Ok(Self {
            id: PersonId(id_of(data)?),
            name: text_of(data, "name"),
            emails: values("emails"),
            contact_numbers: values("contact_numbers"),
            organization_id: data
                .get("organization")
                .and_then(|o| o.get("id"))
                .and_then(Value::as_u64)
                .map(OrganizationId),
        })
    }

    /// Exactly this address (case-insensitively), where the search matched a substring.
    pub fn has_email(&self, email: &Email) -> bool {
        self.emails
            .iter()
            .any(|known| known.trim().eq_ignore_ascii_case(email.as_str()))
    }

    /// Exactly this number, however Krayin's copy is spaced.
    pub fn has_phone(&self, phone: &Phone) -> bool {
        self.contact_numbers
            .iter()
            .any(|known| Phone::parse(known, None).is_ok_and(|p| &p == phone))
    }
}

/// A lead as Krayin answers it: where it stands.
#[derive(Debug, Clone, PartialEq)]
pub struct Lead {
    pub id: LeadId,
    pub pipeline_id: Option<PipelineId>,
    pub stage_id: Option<StageId>,
    /// Whether a salesperson added products to it: Krayin's lead update deletes the products a
    /// body does not carry, so such a lead is not updated by us.
    pub has_products: bool,
}

impl Lead {
    pub fn from_data(data: &Map<String, Value>) -> Result<Self, Malformed> {
        let listed = |name: &str| {
            data.get(name)
                .and_then(Value::as_array)
                .is_some_and(|items| !items.is_empty())
        };
        Ok(Self {
            id: LeadId(id_of(data)?),
            pipeline_id: data
                .get("lead_pipeline_id")
                .and_then(Value::as_u64)
                .map(PipelineId),
            stage_id: data
                .get("lead_pipeline_stage_id")
                .and_then(Value::as_u64)
                .map(StageId),
            has_products: listed("products") || listed("lead_products"),
        })
    }
}

/// A stage of a pipeline. Krayin's answers have no `sort_order`: they list stages ordered by it
/// (`Pipeline::stages()`), so it is the stage's position in that list.
#[derive(Debug, Clone, PartialEq)]
pub struct Stage {
    pub id: StageId,
    pub name: String,
    /// `new`, `won`, `lost` or a business's own.
    pub code: String,
    pub sort_order: u32,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Pipeline {
    pub id: PipelineId,
    pub name: String,
    pub is_default: bool,
    pub stages: Vec<Stage>,
}

impl Pipeline {
    pub fn from_data(data: &Map<String, Value>) -> Result<Self, Malformed> {
        let stages = match data.get("stages") {
            Some(Value::Array(stages)) => stages,
            _ => return Err("a pipeline has no stages list".into()),
        };
        let stages = stages
            .iter()
            .enumerate()
            .map(|(at, stage)| {
                let stage = stage.as_object().ok_or("a stage is not an object")?;
                let id = StageId(id_of(stage)?);
                Ok(Stage {
                    id,
                    name: text_of(stage, "name").unwrap_or_else(|| id.to_string()),
                    code: text_of(stage, "code").unwrap_or_default(),
                    sort_order: u32::try_from(at).unwrap_or(u32::MAX),
                })
            })
            .collect::<Result<Vec<_>, Malformed>>()?;
        let id = PipelineId(id_of(data)?);
        Ok(Self {
            id,
            name: text_of(data, "name").unwrap_or_else(|| id.to_string()),
            // Laravel sends the tinyint as 1/0 (or true/false once cast).
            is_default: matches!(data.get("is_default"), Some(Value::Bool(true)))
                || data.get("is_default").and_then(Value::as_u64) == Some(1)
                || data.get("is_default").and_then(Value::as_str) == Some("1"),
            stages,
        })
    }

    pub fn stage(&self, stage_id: StageId) -> Option<&Stage> {
        self.stages.iter().find(|stage| stage.id == stage_id)
    }
}

/// The pipelines of a `GET /api/v1/settings/pipelines` answer.
pub fn parse_pipelines(body: &[u8]) -> Result<Vec<Pipeline>, Malformed> {
    parse_list(body)?.iter().map(Pipeline::from_data).collect()
}

/// What Krayin said, for people: Laravel's `message`, and for a 422 the first message of each
/// field at fault, bounded; for 401 and 403 what to check. Only the error fields are read, so a
/// body that echoes our request (contact data) is never passed on.
pub fn error_reason(status: u16, body: &[u8]) -> String {
    let said = serde_json::from_slice::<Value>(body).ok().and_then(|document| {
        let message = document
            .get("message")
            .and_then(Value::as_str)
            .map(str::trim)
            .filter(|m| !m.is_empty());
        let fields: Vec<String> = document
            .get("errors")
            .and_then(Value::as_object)
            .map(|errors| {
                errors
                    .iter()
                    .take(5)
                    .filter_map(|(field, messages)| {
                        let first = match messages {
                            Value::Array(list) => list.first()?.as_str()?,
                            Value::String(one) => one,
                            _ => return None,
                        };
                        Some(format!("{field}: {}", first.trim()))
                    })
                    .collect()
            })
            .unwrap_or_default();
        // Laravel's message repeats the first field's ("… (and 2 more errors)"): the list says it.
        match (fields.is_empty(), message) {
            (false, _) => Some(fields.join("; ")),
            (true, Some(message)) => Some(message.to_owned()),
            (true, None) => None,
        }
    });
    let advice = match status {
        401 => Some("Check the Krayin API token in the connector's secrets (it may have been revoked)"),
        403 => Some(
            "Check that the token's Krayin user has a role allowed to manage contacts, leads and activities",
        ),
        404 => {
            Some("The record may have been deleted in Krayin, or settings.base_url is not Krayin's address")
        }
        429 => Some("Krayin's rate limit was reached; the call is retried later"),
        _ => None,
    };
    crate::crm::spec::error_reason("Krayin", status, said, advice)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_are_read_from_data_and_message() {
        let created = br#"{"data":{"id":123,"name":"Ann Lee","emails":[{"value":"joann@acme.com","label":"work"},{"value":"ANN@acme.com","label":"home"}],
            "contact_numbers":[{"value":"+1 415 555 0123","label":"work"}],"organization":{"id":789,"name":"Acme Corp"}},"message":"Person created successfully."}"#;
        assert_eq!(parse_id(created), Ok(123));
        let person = parse_data(created)
            .and_then(|data| Person::from_data(&data))
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(Email::parse("ann@acme.com").is_ok_and(|email| person.has_email(&email)));
        assert!(Email::parse("nn@acme.com").is_ok_and(|email| !person.has_email(&email)));
        assert!(Phone::parse("+14155550123", None).is_ok_and(|phone| person.has_phone(&phone)));
        assert_eq!(person.organization_id, Some(OrganizationId(789)));
        let found = br#"{"data":[{"id":1,"name":"A","emails":null,"contact_numbers":[]}]}"#;
        assert_eq!(parse_list(found).map(|items| items.len()), Ok(1));
        let lead = br#"{"data":{"id":456,"lead_pipeline_id":1,"lead_pipeline_stage_id":2,"person":{"id":123}},"message":"Lead updated successfully."}"#;
        assert_eq!(
            parse_data(lead).and_then(|data| Lead::from_data(&data)),
            Ok(Lead {
                id: LeadId(456),
                pipeline_id: Some(PipelineId(1)),
                stage_id: Some(StageId(2)),
                has_products: false
            })
        );
        let sold = br#"{"data":{"id":7,"products":[{"id":1,"product_id":3,"quantity":2}]}}"#;
        assert_eq!(
            parse_data(sold)
                .and_then(|data| Lead::from_data(&data))
                .map(|lead| lead.has_products),
            Ok(true),
            "a lead with products is known as one"
        );
        let bad: [&[u8]; 6] = [
            b"",
            b"<html>",
            b"{}",
            br#"{"data":[]}"#,
            br#"{"data":{"id":"1"}}"#,
            br#"{"data":{"id":0}}"#,
        ];
        for body in bad {
            assert!(parse_id(body).is_err(), "{}", String::from_utf8_lossy(body));
        }
        assert!(parse_list(br#"{"data":[1]}"#).is_err());
    }

    #[test]
    fn pipelines_take_their_stage_order_from_the_list() {
        let body = br#"{"data":[{"id":1,"name":"Default Pipeline","is_default":1,"rotten_days":30,"stages":[
            {"id":1,"code":"new","name":"New","lead_value":0,"is_user_defined":0},
            {"id":2,"code":"follow-up","name":"Follow Up"},{"id":5,"code":"won","name":"Won"},{"id":6,"code":"lost","name":"Lost"}]},
            {"id":2,"name":"Enterprise","is_default":0,"stages":[]}],
            "links":{"first":null},"meta":{"current_page":1}}"#;
        let pipelines = parse_pipelines(body).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(pipelines.len(), 2);
        assert!(pipelines[0].is_default && !pipelines[1].is_default);
        let orders: Vec<(u64, u32)> = pipelines[0]
            .stages
            .iter()
            .map(|s| (s.id.0, s.sort_order))
            .collect();
        assert_eq!(orders, [(1, 0), (2, 1), (5, 2), (6, 3)]);
        assert_eq!(
            pipelines[0].stage(StageId(5)).map(|s| s.code.as_str()),
            Some("won")
        );
        assert!(parse_pipelines(br#"{"data":[{"id":1,"name":"x"}]}"#).is_err());
        assert!(parse_pipelines(br#"{"data":[{"id":1,"stages":[{"name":"no id"}]}]}"#).is_err());
    }

    #[test]
    fn errors_are_told_to_people_with_each_field_and_what_to_check() {
        let cases: [(u16, &[u8], &str); 6] = [
            (
                422,
                br#"{"message":"The emails.0.value field must be a valid email address. (and 1 more error)",
                     "errors":{"emails.0.value":["The emails.0.value field must be a valid email address."],
                               "lead_pipeline_stage_id":["The selected lead pipeline stage id is invalid."]}}"#,
                "Krayin answered 422: emails.0.value: The emails.0.value field must be a valid email address.; lead_pipeline_stage_id: The selected lead pipeline stage id is invalid.",
            ),
            (
                401,
                br#"{"message":"Unauthenticated."}"#,
                "Krayin answered 401: Unauthenticated. Check the Krayin API token in the connector's secrets (it may have been revoked)",
            ),
            (
                403,
                b"",
                "Krayin answered 403. Check that the token's Krayin user has a role allowed to manage contacts, leads and activities",
            ),
            (500, br#"{"message":"Server Error"}"#, "Krayin answered 500: Server Error"),
            (502, b"<html>Bad gateway</html>", "Krayin answered 502"),
            (422, br#"{"name":"Ann Lee","errors":[]}"#, "Krayin answered 422"),
        ];
        for (status, body, expected) in cases {
            assert_eq!(error_reason(status, body), expected);
        }
        let long = format!(r#"{{"message":"{}"}}"#, "ä".repeat(1000));
        let reason = error_reason(400, long.as_bytes());
        assert!(reason.chars().count() <= 330 && reason.ends_with('…'), "{reason}");
    }
}
