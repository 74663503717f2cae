//! Schemas of the Rust types an operation names, and the one rule `openapi.json` adds to them:
//! an answer's objects are closed, so a field the code adds or renames is a difference the
//! contract tests see.

use schemars::transform::{Transform, transform_subschemas};
use schemars::{JsonSchema, Schema, SchemaGenerator};
use serde_json::Value;

/// How a type's schema is made: with the generator of requests or of answers.
pub type SchemaFn = fn(&mut SchemaGenerator) -> Schema;

/// `T`'s schema, a reference into `components/schemas` unless `T` is inlined.
pub fn schema_of<T: JsonSchema>(generator: &mut SchemaGenerator) -> Schema {
    generator.subschema_for::<T>()
}

/// A CRM's id, which its clients send as a string or a number (serde reads both as its text).
#[derive(schemars::JsonSchema)]
#[serde(untagged)]
#[allow(dead_code, reason = "describes a field for the contract")]
pub enum StringOrInteger {
    Text(String),
    Integer(i64),
}

/// Writes an enum of strings whose variants have doc comments as one `enum` (schemars makes it
/// a `oneOf` of one `const` each, which says the same thing at length).
#[derive(Debug, Clone, Copy, Default)]
pub struct Tidy;

impl Transform for Tidy {
    fn transform(&mut self, schema: &mut Schema) {
        transform_subschemas(self, schema);
        let Some(Value::Array(parts)) = schema.get("oneOf") else {
            return;
        };
        let values: Option<Vec<Value>> = parts
            .iter()
            .map(|part| {
                let constant = part.get("const").filter(|value| value.is_string()).cloned();
                let listed = part
                    .get("enum")
                    .and_then(Value::as_array)
                    .filter(|values| values.iter().all(Value::is_string))
                    .cloned();
                constant.map(|value| vec![value]).or(listed)
            })
            .collect::<Option<Vec<_>>>()
            .map(|lists| lists.into_iter().flatten().collect());
        if let (Some(values), Some(object)) = (values, schema.as_object_mut()) {
            object.remove("oneOf");
            object.insert("type".into(), Value::String("string".into()));
            object.insert("enum".into(), Value::Array(values));
        }
    }
}

/// Closes every object of an answer's schema: an object that names its properties allows no
/// other (`additionalProperties: false`), and one that is put together from others (`allOf`,
/// `oneOf`, `anyOf` beside its own properties) allows none they do not name
/// (`unevaluatedProperties: false`). A map (`additionalProperties` given) stays open.
#[derive(Debug, Clone, Copy, Default)]
pub struct Closed;

const COMPOSED: [&str; 3] = ["allOf", "oneOf", "anyOf"];

impl Transform for Closed {
    fn transform(&mut self, schema: &mut Schema) {
        let composed = COMPOSED.iter().any(|key| schema.get(*key).is_some());
        let has_properties = schema.get("properties").is_some();
        if let Some(object) = schema.as_object_mut() {
            strip_null_from_optional(object);
            let open =
                !object.contains_key("additionalProperties") && !object.contains_key("unevaluatedProperties");
            if has_properties && open {
                let key = if composed {
                    "unevaluatedProperties"
                } else {
                    "additionalProperties"
                };
                object.insert(key.to_owned(), Value::Bool(false));
            }
        }
        if composed && has_properties {
            // The parts of a composed object describe the same instance as it does: closed on
            // their own, each would refuse the properties the others name. Only what is nested
            // inside them is closed.
            for key in COMPOSED {
                if let Some(Value::Array(parts)) = schema.get_mut(key) {
                    for part in parts {
                        if let Ok(part) = <&mut Schema>::try_from(part) {
                            transform_subschemas(self, part);
                        }
                    }
                }
            }
            for key in ["properties", "items", "additionalProperties"] {
                if let Some(value) = schema.get_mut(key) {
                    close_inside(self, key, value);
                }
            }
        } else {
            transform_subschemas(self, schema);
        }
    }
}

/// An answer's property that may be left out is left out rather than null (serde's
/// `skip_serializing_if`): where it is written, it has a value.
fn strip_null_from_optional(object: &mut serde_json::Map<String, Value>) {
    let required: Vec<String> = object
        .get("required")
        .and_then(Value::as_array)
        .map(|names| {
            names
                .iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default();
    let Some(Value::Object(properties)) = object.get_mut("properties") else {
        return;
    };
    for (name, property) in properties.iter_mut() {
        if required.contains(name) {
            continue;
        }
        if let Some(types) = property.get_mut("type").and_then(Value::as_array_mut) {
            types.retain(|kind| kind != "null");
            if types.len() == 1 {
                let only = types.remove(0);
                property["type"] = only;
            }
        }
        let nullable_ref = property
            .get("anyOf")
            .and_then(Value::as_array)
            .and_then(|options| {
                let rest: Vec<&Value> = options
                    .iter()
                    .filter(|option| option.get("type") != Some(&Value::String("null".into())))
                    .collect();
                (rest.len() == 1 && rest.len() < options.len()).then(|| rest[0].clone())
            });
        if let (Some(only), Some(outer)) = (nullable_ref, property.as_object_mut()) {
            outer.remove("anyOf");
            if let Value::Object(only) = only {
                outer.extend(only);
            }
        }
    }
}

fn close_inside(closed: &mut Closed, key: &str, value: &mut Value) {
    match (key, value) {
        ("properties", Value::Object(properties)) => {
            for property in properties.values_mut() {
                if let Ok(property) = <&mut Schema>::try_from(property) {
                    closed.transform(property);
                }
            }
        }
        (_, value) => {
            if let Ok(schema) = <&mut Schema>::try_from(value) {
                closed.transform(schema);
            }
        }
    }
}
